/**
 * Runs a berth process: start it, and on SIGTERM/SIGINT close what it opened, in reverse order.
 * A configuration error ends the process with one line saying what to fix.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { withTimeout } from '../util/with-timeout.js';

const CLOSE_TIMEOUT_MS = 10_000;

/** Something to close at shutdown. */
export type Closer = () => Promise<unknown> | unknown;

/** Starts `main`; it registers closers and resolves once the process is serving. */
export function runProcess(name: string, main: (onShutdown: (closer: Closer) => void) => Promise<Logger>): void {
  const closers: Closer[] = [];
  let log: Logger | undefined;
  let stopping = false;

  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    for (const close of closers.reverse()) {
      try {
        // A closer waiting on a dependency that is gone (a worker on a dead Redis) must not hold
        // the process forever: the orchestrator would SIGKILL it and skip the closers after it.
        await withTimeout(Promise.resolve(close()), CLOSE_TIMEOUT_MS, `gave up after ${CLOSE_TIMEOUT_MS / 1000} s`);
      } catch (err) {
        log?.warn({ err }, 'error while shutting down');
      }
    }
    log?.info(`${name} stopped`);
    process.exit(code);
  }

  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));
  main((closer) => closers.push(closer))
    .then((logger) => {
      log = logger;
    })
    .catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ConfigError) console.error(`berth: configuration: ${message}`);
      else console.error(`berth: ${name} failed to start: ${message}`);
      void shutdown(1);
    });
}
