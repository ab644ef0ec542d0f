/** The type and id of a client message, when it has them. */
export interface MessageHead {
  readonly type: string
  readonly id: string | undefined
}

/**
 * Keeps a client's messages about one operation id in a safe order. graphql-ws tracks
 * operations by id only, so `subscribe a, complete a, subscribe a` sent while the first is
 * still being set up would let both streams run under `a` (events twice, one stream never
 * ended). Here a `complete` waits until its operation is set up, and a `subscribe` reusing an
 * id waits until the previous operation with that id has fully ended. Other messages pass.
 */
export interface OperationOrder {
  /** Passes `text` on now, or holds it until its operation id is free. */
  receive(text: string, head: MessageHead | undefined): void
  /** The operation `id` is set up (streaming or refused): a held `complete` may pass. */
  setUp(id: string): void
  /** The operation `id` ended: a held `subscribe` for it may pass. */
  ended(id: string): void
}

/** Creates the order keeper of one socket; `pass` hands a message to the protocol. */
export function createOperationOrder(pass: (text: string) => void): OperationOrder {
  // Operations passed on and not yet ended, by id.
  const live = new Map<string, { settingUp: boolean; completed: boolean }>()
  // Messages waiting for their id, made on first need: almost no client ever waits.
  let held: Map<string, Array<{ text: string; type: string }>> | undefined

  /** Passes a message on, or says it must wait. */
  const admit = (id: string, text: string, type: string): boolean => {
    const operation = live.get(id)
    if (type === 'complete') {
      if (operation?.settingUp) return false
      if (operation) operation.completed = true
      pass(text)
      return true
    }
    // Reusing the id of an operation the client completed: wait until it is gone. Reusing
    // one still running is the client's error, which graphql-ws answers with 4409.
    if (operation?.completed) return false
    if (!operation) live.set(id, { settingUp: true, completed: false })
    pass(text)
    return true
  }
  const release = (id: string) => {
    const queue = held?.get(id)
    while (queue && queue.length > 0) {
      const next = queue[0] as { text: string; type: string }
      if (!admit(id, next.text, next.type)) return
      queue.shift()
    }
    held?.delete(id)
  }

  return {
    receive(text, head) {
      const id = head?.id
      if (id === undefined || (head?.type !== 'subscribe' && head?.type !== 'complete')) {
        pass(text)
        return
      }
      const queue = held?.get(id)
      if (queue) {
        queue.push({ text, type: head.type })
        return
      }
      if (admit(id, text, head.type)) return
      // A complete held while its operation sets up counts as the client's completion.
      if (head.type === 'complete') {
        const operation = live.get(id)
        if (operation) operation.completed = true
      }
      held ??= new Map()
      held.set(id, [{ text, type: head.type }])
    },
    setUp(id) {
      const operation = live.get(id)
      if (operation) operation.settingUp = false
      release(id)
    },
    ended(id) {
      // graphql-ws forgets the id only after its last callback returns.
      setImmediate(() => {
        live.delete(id)
        release(id)
      })
    },
  }
}
