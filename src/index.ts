import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './ops/logger.js'

async function main(): Promise<void> {
  const config = loadConfig()
  const logger = createLogger(config.logLevel)
  const app = await buildApp(config, logger)
  const { url } = await app.start()
  logger.info(
    { url, database: config.databaseUrl ? 'postgres' : config.dataDir },
    'switchboard listening',
  )
  if (app.devTokens) {
    process.stdout.write(
      [
        '',
        `Switchboard is running at ${url} (GraphiQL: open it in a browser).`,
        'Development mode: an ephemeral JWT secret signs these tokens (valid 24 h, until restart).',
        `  admin:   ${app.devTokens.admin}`,
        `  service: ${app.devTokens.service}`,
        'Send one as "Authorization: Bearer <token>", or { "token": "<token>" } in connection_init.',
        'GraphiQL is pre-filled with the admin token.',
        '',
      ].join('\n'),
    )
  }
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`switchboard: configuration error: ${err.message}\n`)
  } else {
    process.stderr.write(
      `switchboard: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
    )
  }
  process.exit(1)
})
