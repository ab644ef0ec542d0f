import { readFileSync } from 'node:fs'

/** The package version, read once from package.json (two levels up from src/ops and dist/ops). */
export const VERSION: string = (() => {
  for (const path of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'switchboard' && pkg.version) return pkg.version
    } catch {
      // try the next location
    }
  }
  return '0.0.0'
})()
