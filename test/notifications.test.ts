import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChannelRef, channelName, type Role } from '../src/events/channels.js'
import { encodeCursor } from '../src/events/cursor.js'
import {
  InboxDocument,
  type InboxQuery,
  MarkAllNotificationsReadDocument,
  MarkNotificationReadDocument,
  NotificationDocument,
  SendNotificationDocument,
  type SendNotificationInput,
} from './generated/graphql.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string

/** Channel heads so far, counted as the tests send, to build cursors at known positions. */
const heads = new Map<string, number>()

const channelsOf = (sub: string, role: Role): ChannelRef[] => [
  { kind: 'userNotifications', userId: sub },
  { kind: 'roleNotifications', role },
  { kind: 'broadcastNotifications' },
]

/**
 * A cursor at the current head of the viewer's three channels: events sent right after
 * `subscribe()` are replayed even if the server was still setting the stream up.
 */
const cursorNow = (sub: string, role: Role) =>
  encodeCursor(
    new Map(
      channelsOf(sub, role).map((ref) => [channelName(ref), heads.get(channelName(ref)) ?? 0]),
    ),
  )

const codeOf = (result: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }) =>
  result.errors?.[0]?.extensions?.['code']

async function send(
  target: Pick<SendNotificationInput, 'userId' | 'role' | 'everyone'>,
  title: string,
) {
  const { sendNotification } = await mustExecute(server.url, service, SendNotificationDocument, {
    input: { ...target, title, body: `${title} body` },
  })
  heads.set(sendNotification.channel, sendNotification.seq)
  return sendNotification
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
})

afterAll(async () => {
  await server?.stop()
})

describe('notifications', () => {
  it('delivers to the user, their role and everyone on one subscription, and nothing else', async () => {
    const alice = await tokenFor({ sub: 'alice', role: 'client' })
    const client = connectClient(server.wsUrl, alice)
    const sub = subscribe(client, NotificationDocument, { after: cursorNow('alice', 'client') })
    await send({ userId: 'bob' }, 'for bob')
    await send({ role: 'seller' }, 'for sellers')
    const mine = [
      await send({ userId: 'alice' }, 'for alice'),
      await send({ role: 'client' }, 'for clients'),
      await send({ everyone: true }, 'for everyone'),
    ]
    // A last one to alice: once it arrived, anything else would have arrived before it.
    const fence = await send({ userId: 'alice' }, 'fence')
    const received = (await sub.waitForCount(4)).map((d) => d.notification)
    expect(sub.data).toHaveLength(4)
    sub.unsubscribe()
    await client.dispose()

    expect(received.map((n) => n.notificationId).sort()).toEqual(
      [...mine, fence].map((n) => n.notificationId).sort(),
    )
    const byTitle = new Map(received.map((n) => [n.title, n]))
    expect(byTitle.get('for alice')).toMatchObject({
      channel: 'user:alice:notifications',
      audience: 'USER',
      target: 'alice',
      body: 'for alice body',
      level: 'INFO',
    })
    expect(byTitle.get('for clients')).toMatchObject({
      channel: 'role:client:notifications',
      audience: 'ROLE',
      target: 'client',
    })
    expect(byTitle.get('for everyone')).toMatchObject({
      channel: 'broadcast:notifications',
      audience: 'EVERYONE',
      target: null,
    })
    for (const notification of received) expect(notification.cursor).toMatch(/^c1\./)
  })

  it("keeps an offline user's notifications in the inbox, unread until marked read", async () => {
    const carol = await tokenFor({ sub: 'carol', role: 'operator' })
    const dave = await tokenFor({ sub: 'dave', role: 'operator' })
    const sent = await mustExecute(server.url, service, SendNotificationDocument, {
      input: {
        userId: 'carol',
        title: 'Invoice ready',
        body: 'April invoice',
        level: 'WARNING',
        data: { invoiceId: 'INV-4', amount: 12.5 },
      },
    })
    await send({ role: 'operator' }, 'for operators')
    await send({ userId: 'dave' }, 'for dave')

    const inbox = await mustExecute(server.url, carol, InboxDocument, {})
    const titles = inbox.inbox.items.map((i) => i.title)
    expect(titles.slice(0, 2)).toEqual(['for operators', 'Invoice ready'])
    expect(titles).toContain('for everyone')
    expect(titles).not.toContain('for dave')
    expect(titles).not.toContain('for clients')
    expect(inbox.inbox.unreadCount).toBe(titles.length)
    expect(inbox.inbox.items[1]).toMatchObject({
      id: sent.sendNotification.notificationId,
      audience: 'USER',
      body: 'April invoice',
      level: 'WARNING',
      data: { invoiceId: 'INV-4', amount: 12.5 },
      read: false,
      readAt: null,
    })

    const id = sent.sendNotification.notificationId
    const { markNotificationRead } = await mustExecute(
      server.url,
      carol,
      MarkNotificationReadDocument,
      { notificationId: id },
    )
    expect(markNotificationRead).toMatchObject({ id, read: true })
    const again = await mustExecute(server.url, carol, MarkNotificationReadDocument, {
      notificationId: id,
    })
    expect(again.markNotificationRead.readAt).toBe(markNotificationRead.readAt)
    const unread = await mustExecute(server.url, carol, InboxDocument, { unreadOnly: true })
    expect(unread.inbox.unreadCount).toBe(titles.length - 1)
    expect(unread.inbox.items.map((i) => i.id)).not.toContain(id)

    // Not in carol's inbox: NOT_FOUND, whether it exists or not.
    const daves = (await mustExecute(server.url, dave, InboxDocument, {})).inbox.items
    const davesOwn = daves.find((i) => i.title === 'for dave')
    for (const notificationId of [davesOwn?.id ?? '', 'no-such-id']) {
      const result = await execute(server.url, carol, MarkNotificationReadDocument, {
        notificationId,
      })
      expect(codeOf(result)).toBe('NOT_FOUND')
    }

    const all = await mustExecute(server.url, carol, MarkAllNotificationsReadDocument)
    expect(all.markAllNotificationsRead).toBe(titles.length - 1)
    const after = await mustExecute(server.url, carol, InboxDocument, { unreadOnly: true })
    expect(after.inbox).toEqual({ unreadCount: 0, nextCursor: null, items: [] })
    // Read marks are per user: dave still has the shared ones unread.
    const davesInbox = await mustExecute(server.url, dave, InboxDocument, {})
    expect(davesInbox.inbox.unreadCount).toBe(daves.length)
  })

  it('pages the inbox newest first', async () => {
    const erin = await tokenFor({ sub: 'erin', role: 'delivery' })
    for (let i = 1; i <= 5; i++) await send({ userId: 'erin' }, `page ${i}`)
    const { inbox: whole } = await mustExecute(server.url, erin, InboxDocument, { first: 100 })
    const pages: string[][] = []
    let after: string | null = null
    do {
      const { inbox }: InboxQuery = await mustExecute(server.url, erin, InboxDocument, {
        first: 2,
        after,
      })
      pages.push(inbox.items.map((i) => i.id))
      after = inbox.nextCursor
    } while (after)
    expect(pages.flat()).toEqual(whole.items.map((i) => i.id))
    expect(pages.slice(0, -1).every((page) => page.length === 2)).toBe(true)
    expect(whole.items.slice(0, 5).map((i) => i.title)).toEqual([
      'page 5',
      'page 4',
      'page 3',
      'page 2',
      'page 1',
    ])
    const times = whole.items.map((i) => i.createdAt)
    expect([...times].sort().reverse()).toEqual(times)
    const bad = await execute(server.url, erin, InboxDocument, { after: 'garbage' })
    expect(codeOf(bad)).toBe('BAD_CURSOR')
  })

  it('resumes after a disconnect with exactly what was missed on all three channels', async () => {
    const frank = await tokenFor({ sub: 'frank', role: 'seller' })
    const first = connectClient(server.wsUrl, frank)
    const live = subscribe(first, NotificationDocument, { after: cursorNow('frank', 'seller') })
    await send({ userId: 'frank' }, 'before')
    const [seen] = await live.waitForCount(1)
    await first.dispose()
    const cursor = seen?.notification.cursor
    expect(cursor).toMatch(/^c1\./)

    const missed = [
      await send({ userId: 'frank' }, 'missed user'),
      await send({ role: 'seller' }, 'missed role'),
      await send({ everyone: true }, 'missed everyone'),
    ]
    await send({ userId: 'bob' }, 'not for frank')
    await send({ role: 'client' }, 'not for sellers')

    const second = connectClient(server.wsUrl, frank)
    const resumed = subscribe(second, NotificationDocument, { after: cursor })
    await resumed.waitForCount(3)
    const fence = await send({ userId: 'frank' }, 'fence')
    const received = (await resumed.waitForCount(4)).map((d) => d.notification)
    expect(resumed.data).toHaveLength(4)
    resumed.unsubscribe()
    await second.dispose()

    expect(
      received
        .slice(0, 3)
        .map((n) => n.title)
        .sort(),
    ).toEqual(missed.map((n) => n.title).sort())
    expect(received[3]?.notificationId).toBe(fence.notificationId)
    expect(received.map((n) => [n.channel, n.seq])).not.toContainEqual([
      seen?.notification.channel,
      seen?.notification.seq,
    ])
  })

  it('refuses bad sends and anonymous inboxes', async () => {
    const client = await tokenFor({ sub: 'alice', role: 'client' })
    const byClient = await execute(server.url, client, SendNotificationDocument, {
      input: { everyone: true, title: 't', body: 'b' },
    })
    expect(codeOf(byClient)).toBe('FORBIDDEN')
    for (const input of [
      { title: 'no target', body: '' },
      { userId: 'bob', everyone: true, title: 'two targets', body: '' },
      { role: 'wizard', title: 'unknown role', body: '' },
      { userId: 'bob', title: '  ', body: 'empty title' },
      { userId: 'bob', title: 'big', body: '', data: { blob: 'x'.repeat(9_000) } },
    ]) {
      const result = await execute(server.url, service, SendNotificationDocument, { input })
      expect(codeOf(result), input.title).toBe('BAD_USER_INPUT')
    }
    const anonymous = await execute(server.url, undefined, InboxDocument, {})
    expect(codeOf(anonymous)).toBe('UNAUTHENTICATED')
  })
})
