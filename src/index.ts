import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createLogger, wantsPrettyLogs } from './ops/logger.js'

async function main(): Promise<void> {
  const config = loadConfig()
  const logger = createLogger(config.logLevel, { pretty: wantsPrettyLogs(config.production) })
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
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal (Ctrl-C twice) means "now": skip the rest of the drain.
      logger.warn({ signal }, 'second signal during shutdown; exiting now')
      process.exit(1)
    }
    stopping = true
    const startedAt = Date.now()
    logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: draining')
    // A stuck request or client must not keep a terminated instance alive: the orchestrator
    // would SIGKILL it anyway, without a log line saying why.
    const deadline = setTimeout(() => {
      logger.error(
        { drainTimeoutMs: config.drainTimeoutMs },
        'drain timed out; exiting with work still in flight',
      )
      process.exit(1)
    }, config.drainTimeoutMs)
    app.stop().then(
      () => {
        clearTimeout(deadline)
        logger.info({ durationMs: Date.now() - startedAt }, 'shut down cleanly')
        process.exit(0)
      },
      (err: unknown) => {
        clearTimeout(deadline)
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
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
