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

  /** Opens GraphiQL on `query`, types an admin token into the Headers tab and runs it. */
  async function runInGraphiql(query: string) {
    const page = await browser.newPage()
    const failedRequests: string[] = []
    page.on('requestfailed', (request) => failedRequests.push(request.url()))
    const headers = JSON.stringify({ Authorization: `Bearer ${await adminToken()}` })
    await page.goto(`${server.url}?${new URLSearchParams({ query })}`)
    await page.getByText('Headers', { exact: true }).click()
    await page.locator('.graphiql-editor-tool .monaco-editor').last().click()
    await page.keyboard.insertText(headers)
    await page.locator('.graphiql-execute-button').click()
    // Monaco renders spaces as U+00A0.
    const response = async () =>
      ((await page.locator('.graphiql-response').textContent()) ?? '').replaceAll('\u00a0', ' ')
    return { page, failedRequests, response }
  }

  it('loads offline and runs a query', async () => {
    const { page, failedRequests, response } = await runInGraphiql(
      '{ lot(lotId: "G1") { name spaces { number state } } }',
    )
    await expect.poll(response, { timeout: 15_000 }).toContain('Browser lot')
    expect(await response()).toContain('A-1')
    expect(failedRequests).toEqual([])
    await page.close()
  })

  it('runs a subscription and shows an event published meanwhile', async () => {
    const { page, failedRequests } = await runInGraphiql(
      'subscription { parkingUpdated(lotId: "G1") { ... on ParkingAlert { seq message cursor } } }',
    )
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
