import { mkdir } from 'node:fs/promises'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RaiseParkingAlertDocument, UpsertLotDocument } from './generated/graphql.js'
import { browserUnavailableReason, launchBrowser } from './utils/browser.js'
import { mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken } from './utils/tokens.js'

const skipReason = browserUnavailableReason()
if (skipReason) console.warn(`skipping GraphiQL browser test: ${skipReason}`)

describe.skipIf(skipReason !== undefined)('GraphiQL in Chromium', () => {
  let server: TestServer
  let browser: Browser

  beforeAll(async () => {
    server = await startTestServer()
    browser = await launchBrowser()
    await mustExecute(server.url, await serviceToken(), UpsertLotDocument, {
      input: { lotId: 'G1', name: 'Browser lot', spaces: ['A-1'] },
    })
  })

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('loads offline, runs a subscription and shows an event published meanwhile', async () => {
    const page = await browser.newPage()
    const failedRequests: string[] = []
    page.on('requestfailed', (request) => failedRequests.push(request.url()))
    const query =
      'subscription { parkingUpdated(lotId: "G1") { ... on ParkingAlert { seq message cursor } } }'
    const headers = JSON.stringify({ Authorization: `Bearer ${await adminToken()}` })
    await page.goto(`${server.url}?${new URLSearchParams({ query })}`)
    // Type the token into the Headers tab as a person would.
    await page.getByText('Headers', { exact: true }).click()
    await page.locator('.graphiql-editor-tool .monaco-editor').last().click()
    await page.keyboard.insertText(headers)
    await page.locator('.graphiql-execute-button').click()
    // The stream opens asynchronously after the click; publish until the page shows an event.
    const service = await serviceToken()
    await expect
      .poll(
        async () => {
          await mustExecute(server.url, service, RaiseParkingAlertDocument, {
            input: { lotId: 'G1', level: 'WARNING', message: 'seen-in-graphiql' },
          })
          return ((await page.locator('.graphiql-response').textContent()) ?? '').includes(
            'seen-in-graphiql',
          )
        },
        { timeout: 15_000, interval: 500 },
      )
      .toBe(true)
    // Monaco renders spaces as U+00A0.
    expect(await page.locator('.graphiql-response').textContent()).toMatch(
      /"cursor":[\s\u00a0]*"c1\./,
    )
    await mkdir('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/graphiql-subscription.png' })
    expect(failedRequests).toEqual([])
    await page.close()
  })
})
