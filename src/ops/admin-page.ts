import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

interface Asset {
  readonly body: Buffer
  readonly type: string
}

// Everything comes from this server: the page loads no CDN, and runs no inline script.
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
}

/** The graphql-ws browser bundle (UMD, global `graphqlWs`) shipped in its npm package. */
function readGraphqlWsBundle(): Buffer {
  const entry = createRequire(import.meta.url).resolve('graphql-ws')
  return readFileSync(join(dirname(entry), '..', 'umd', 'graphql-ws.min.js'))
}

/** A file of `admin-page/`, next to this module in `src/` and, after the build, `dist/`. */
const readAsset = (name: string) => readFileSync(new URL(`./admin-page/${name}`, import.meta.url))

/**
 * `GET /admin`: the live operator page (plain HTML and JS, no build step) and its assets. The
 * page is public; everything it shows comes through the admin API, which needs an admin
 * token. Reads its files once, here: a missing asset fails start-up, not a request. Returns
 * a handler that answers those paths and returns false for any other.
 */
export function createAdminPageRoutes() {
  const html = { body: readAsset('index.html'), type: 'text/html; charset=utf-8' }
  const assets = new Map<string, Asset>([
    ['/admin', html],
    ['/admin/', html],
    ['/admin/admin.js', { body: readAsset('admin.js'), type: 'text/javascript; charset=utf-8' }],
    ['/admin/admin.css', { body: readAsset('admin.css'), type: 'text/css; charset=utf-8' }],
    [
      '/admin/graphql-ws.js',
      { body: readGraphqlWsBundle(), type: 'text/javascript; charset=utf-8' },
    ],
  ])
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const asset = assets.get((req.url ?? '/').split('?')[0] ?? '/')
    if (!asset) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end()
      return true
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': asset.type,
      'Content-Length': asset.body.length,
    })
    res.end(req.method === 'HEAD' ? undefined : asset.body)
    return true
  }
}
