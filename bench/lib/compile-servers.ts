/**
 * Compiles the repository with tsc into a directory of plain JavaScript, as `npm run build`
 * does for the image (`node dist/index.js`), so the servers are measured as they ship. Run
 * through tsx instead, every closure is wrapped by esbuild's `keepNames` (`__name(fn, …)`),
 * which gives each one a property array: ~5 KiB more heap per subscribed connection than the
 * compiled server holds, and an artifact of the bench, not of the server.
 */
import { spawn } from 'node:child_process'
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT } from './node-process.js'

/** Where the compiled tree goes, relative to the repository root (inside node_modules, so
 * that its imports resolve to the repository's packages; never committed). */
export const COMPILED_DIR = 'node_modules/.cache/switchboard-bench'

// Files the server reads at run time beside its code (the same as `npm run build` copies).
const ASSETS = ['src/db/migrations', 'src/ops/admin-page']

/** Compiles `src/` and `bench/` to `COMPILED_DIR`; resolves with it once done. */
export async function compileServers(): Promise<string> {
  const out = join(REPO_ROOT, COMPILED_DIR)
  await rm(out, { recursive: true, force: true })
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc')
  const args = ['-p', 'tsconfig.json', '--noEmit', 'false', '--outDir', out, '--sourceMap', 'false']
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, ...args], { cwd: REPO_ROOT, stdio: 'inherit' })
    child.once('error', reject)
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tsc exited with ${code}`)),
    )
  })
  for (const asset of ASSETS) {
    await cp(join(REPO_ROOT, asset), join(out, asset), { recursive: true })
  }
  return COMPILED_DIR
}

/** The compiled path of a TypeScript file of the repository (`src/index.ts` → `…/src/index.js`). */
export function compiledPath(dir: string, source: string): string {
  return join(dir, source.replace(/\.ts$/, '.js'))
}
