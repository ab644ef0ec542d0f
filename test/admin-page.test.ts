import { mkdir } from 'node:fs/promises'
import type { Client } from 'graphql-ws'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OPERATOR_CLOSE_CODE } from '../src/transport/connection-registry.js'
import { ParkingPositionsDocument, StatsUpdatedDocument } from './generated/graphql.js'
import { browserUnavailableReason, launchBrowser } from './utils/browser.js'
import { fromStart } from './utils/cursors.js'
import { createLot, raiseAlert } from './utils/parking-fixtures.js'
import { openRawSocket } from './utils/raw-socket.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'
import { connectClient, connected, nextClose, subscribe } from './utils/ws-client.js'

const skipReason = browserUnavailableReason()
if (skipReason) console.warn(`skipping admin page browser test: ${skipReason}`)

describe.skipIf(skipReason !== undefined)('/admin in Chromium', () => {
  let server: TestServer
  let browser: Browser
  const clients: Client[] = []

  /** A connected client of `sub` following lot `lotId` (parking, and stats when asked). */
  async function follower(sub: string, role: string, lotId: string, stats = false) {
    const token = await tokenFor({ sub, role: role as never, scopes: [`lot:${lotId}`] })
    const client = connectClient(server.wsUrl, token)
    clients.push(client)
    await connected(client)
    subscribe(client, ParkingPositionsDocument, {
      lotId,
      after: fromStart(`lot:${lotId}:parking`),
    })
    if (stats) subscribe(client, StatsUpdatedDocument, { lotId })
    return client
  }

  beforeAll(async () => {
    server = await startTestServer()
    browser = await launchBrowser()
    const service = await serviceToken()
    for (const lot of ['P1', 'P2']) await createLot(server.url, service, lot)
  })

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()))
    await browser?.close()
    await server?.stop()
  })

  it('signs in, shows connections and live counts, and disconnects a connection', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    const failedRequests: string[] = []
    const consoleErrors: string[] = []
    page.on('requestfailed', (request) => failedRequests.push(request.url()))
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text())
    })
    // Traffic to look at: followers of two lots, and one refused socket.
    const target = await follower('page-user', 'operator', 'P1', true)
    await follower('kiosk-7', 'client', 'P1')
    await follower('gate-west', 'delivery', 'P2')
    const refused = await openRawSocket(server.wsUrl)
    refused.send({ type: 'connection_init', payload: { token: 'expired-or-forged' } })
    await refused.closed

    await page.goto(`${server.origin}/admin`)
    await page.locator('#token').fill(await adminToken())
    await page.getByRole('button', { name: 'Sign in' }).click()

    const row = page.locator('#connections tr[data-user="page-user"]')
    await row.waitFor({ timeout: 10_000 })
    expect(await row.textContent()).toContain('operator')
    const channel = page.locator('#channels tr[data-channel="lot:P1:parking"]')
    await channel.waitFor({ timeout: 10_000 })
    await expect.poll(() => channel.locator('td.num').textContent()).toBe('2')
    await expect
      .poll(() => page.locator('#problems').textContent(), { timeout: 10_000 })
      .toContain('UNAUTHENTICATED')

    // Published events move the counters through the subscription, with no reload.
    const service = await serviceToken()
    const before = await page.locator('#stat-events-total').textContent()
    await raiseAlert(server.url, service, 'P1', 'seen on the admin page')
    await raiseAlert(server.url, service, 'P2', 'and another')
    await expect
      .poll(() => page.locator('#stat-events-total').textContent(), { timeout: 10_000 })
      .not.toBe(before)
    await expect
      .poll(() => page.locator('#stat-events').textContent(), { timeout: 10_000 })
      .not.toBe('0')

    // The token lives in this tab's sessionStorage only.
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('switchboard.adminToken'),
      local: localStorage.length,
    }))
    expect(stored.session).toMatch(/^ey/)
    expect(stored.local).toBe(0)

    await mkdir('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/admin.png', fullPage: true })

    // The filter narrows the list; disconnect asks for a second click.
    await page.locator('#filter').fill('page-user')
    await expect.poll(() => page.locator('#connections tbody tr').count()).toBe(1)
    const closed = nextClose(target)
    const button = row.getByRole('button', { name: 'Disconnect' })
    await button.click()
    await row.getByRole('button', { name: 'Confirm' }).click()
    await row.waitFor({ state: 'detached', timeout: 10_000 })
    const { code, reason } = await within(closed, 5_000, 'the close')
    expect(code).toBe(OPERATOR_CLOSE_CODE)
    expect(reason).toContain('Disconnected from the admin page')
    await expect.poll(() => channel.locator('td.num').textContent(), { timeout: 10_000 }).toBe('1')

    expect(failedRequests).toEqual([])
    expect(consoleErrors).toEqual([])
    await page.close()
  })

  it('refuses a token without role admin', async () => {
    const page = await browser.newPage()
    await page.goto(`${server.origin}/admin`)
    await page.locator('#token').fill(await serviceToken())
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect
      .poll(() => page.locator('#login-error').textContent(), { timeout: 10_000 })
      .toContain('role admin')
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    await page.close()
  })
})
