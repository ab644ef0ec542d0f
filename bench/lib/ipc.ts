/**
 * Request/reply over a child process's IPC channel, shared by the bench runner and the
 * processes it starts (servers' probe, receivers, publisher). A command map types both ends:
 * `{ connect: [ConnectArgs, ConnectResult] }`.
 */
import type { ChildProcess } from 'node:child_process'

/** Commands a process answers: name -> [argument, result]. */
export type CommandMap = Record<string, [unknown, unknown]>

interface Request {
  readonly id: number
  readonly cmd: string
  readonly args: unknown
}

interface Reply {
  readonly id: number
  readonly ok: boolean
  readonly result?: unknown
  readonly error?: string
}

/** A message the child sends unasked, e.g. "all expected messages arrived". */
export interface Notice {
  readonly notice: string
  readonly data?: unknown
}

const DEFAULT_TIMEOUT = 120_000 // ms a command may take before the request rejects

/** The runner's end of one child: typed requests, and the child's notices. */
export interface IpcClient<C extends CommandMap> {
  /** Sends `cmd` and resolves with its result; rejects on a child error, exit or timeout. */
  request<K extends keyof C & string>(cmd: K, args: C[K][0], timeoutMs?: number): Promise<C[K][1]>
  /** Calls `listener` for every notice the child sends. */
  onNotice(listener: (notice: Notice) => void): void
}

/** Wraps `child` (spawned with an `ipc` stdio slot) as an `IpcClient`. */
export function ipcClient<C extends CommandMap>(child: ChildProcess, label: string): IpcClient<C> {
  let nextId = 1
  const pending = new Map<number, { resolve(value: unknown): void; reject(e: Error): void }>()
  const listeners: Array<(notice: Notice) => void> = []
  child.on('message', (message: Reply | Notice) => {
    if ('notice' in message) {
      for (const listener of listeners) listener(message)
      return
    }
    const waiter = pending.get(message.id)
    if (!waiter) return
    pending.delete(message.id)
    if (message.ok) waiter.resolve(message.result)
    else waiter.reject(new Error(`${label}: ${message.error}`))
  })
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`${label} exited (code ${code}, signal ${signal})`))
    }
    pending.clear()
  })
  return {
    request(cmd, args, timeoutMs = DEFAULT_TIMEOUT) {
      const id = nextId++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${label}: ${cmd} took over ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, {
          resolve: (value) => {
            clearTimeout(timer)
            resolve(value as never)
          },
          reject: (error) => {
            clearTimeout(timer)
            reject(error)
          },
        })
        child.send({ id, cmd, args } satisfies Request)
      })
    },
    onNotice(listener) {
      listeners.push(listener)
    },
  }
}

/** Handlers for every command of `C`. */
export type Handlers<C extends CommandMap> = {
  [K in keyof C]: (args: C[K][0]) => C[K][1] | Promise<C[K][1]>
}

/**
 * The child's end: answers the runner's requests with `handlers` and returns `notify` for
 * notices. With `unref`, the channel does not keep the process alive (a server's probe).
 */
export function serveIpc<C extends CommandMap>(
  handlers: Handlers<C>,
  { unref = false }: { unref?: boolean } = {},
): { notify(notice: string, data?: unknown): void } {
  const send = (message: Reply | Notice) => {
    if (process.connected) process.send?.(message)
  }
  if (!process.send) throw new Error('this process must be started with an IPC channel')
  process.on('message', async (message: Request) => {
    const handler = handlers[message.cmd as keyof C]
    try {
      if (!handler) throw new Error(`unknown command ${message.cmd}`)
      const result = await handler(message.args as C[keyof C][0])
      send({ id: message.id, ok: true, result })
    } catch (error) {
      send({
        id: message.id,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      })
    }
  })
  if (unref) process.channel?.unref()
  // The runner went away: nothing will ask for results any more.
  process.once('disconnect', () => {
    if (!unref) process.exit(0)
  })
  return { notify: (notice, data) => send({ notice, data }) }
}
