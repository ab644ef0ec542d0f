import type { Client } from 'graphql-ws'
import { RoomMessageDocument, SendRoomMessageDocument } from '../generated/graphql.js'
import { fromStart } from './cursors.js'
import { mustExecute } from './http.js'
import { adminToken } from './tokens.js'
import { connectClient, subscribe } from './ws-client.js'

/**
 * A bystander: one graphql-ws client following a room of its own, to show that a limit one
 * client crosses leaves the others alone.
 */
export interface ControlSubscriber {
  /** Closes its socket saw (none, while all is well). */
  readonly closes: ReadonlyArray<{ code: number; reason: string }>
  /**
   * Publishes one message to the control room over HTTP and resolves once this subscriber
   * received it; rejects when its socket closed or its subscription failed meanwhile.
   */
  expectDelivery(timeoutMs?: number): Promise<void>
  dispose(): Promise<void>
}

export interface ControlSubscriberOptions {
  /** `ws://…/graphql` to subscribe on. */
  readonly wsUrl: string
  /** `http://…/graphql` to publish through (may be another instance of the cluster). */
  readonly url: string
  /** Token of the subscriber; it must be allowed to read `room`. */
  readonly token: string
  /** Token that sends the messages (any reader of `room` may). */
  readonly publisherToken: string
  readonly room: string
}

/** Connects and subscribes from the start of `room`, so nothing published later is missed. */
export async function startControlSubscriber({
  wsUrl,
  url,
  token,
  publisherToken,
  room,
}: ControlSubscriberOptions): Promise<ControlSubscriber> {
  const closes: Array<{ code: number; reason: string }> = []
  const client: Client = connectClient(wsUrl, token, {
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string }
        closes.push({ code, reason: String(reason) })
      },
    },
  })
  const sub = subscribe(client, RoomMessageDocument, {
    room,
    after: fromStart({ kind: 'room', room }),
  })
  let sent = 0
  return {
    closes,
    async expectDelivery(timeoutMs = 10_000) {
      sent += 1
      const { sendRoomMessage } = await mustExecute(url, publisherToken, SendRoomMessageDocument, {
        input: { room, body: `control ${sent}` },
      })
      const seqs = () => sub.data.map((d) => d.roomMessage.seq)
      while (!seqs().includes(sendRoomMessage.seq)) {
        await sub.waitForCount(sub.data.length + 1, timeoutMs)
      }
      if (closes.length > 0) throw new Error(`control socket closed: ${JSON.stringify(closes)}`)
      if (sub.error !== undefined) throw new Error(`control failed: ${JSON.stringify(sub.error)}`)
    },
    async dispose() {
      sub.unsubscribe()
      await client.dispose()
    },
  }
}

/**
 * An admin control subscriber on room `control` of `server`, publishing with
 * `publisherToken`; resolves once it has seen a message, so it is live.
 */
export async function startRoomControl(
  server: { readonly wsUrl: string; readonly url: string },
  publisherToken: string,
): Promise<ControlSubscriber> {
  const control = await startControlSubscriber({
    wsUrl: server.wsUrl,
    url: server.url,
    token: await adminToken(),
    publisherToken,
    room: 'control',
  })
  await control.expectDelivery()
  return control
}
