/**
 * A whole berth in the test process: API (listening on a free loopback port, for real HTTP) and
 * worker, on this run's Postgres (a schema of its own), Redis (a key prefix of its own) and a temp
 * data dir. What `npm start` runs, minus the embedded databases.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createApi, createCore, createWorker, openRedis } from '../../src/services.js';
import { createTestDatabase } from './db.js';
import { testRedisUrl, uniqueName } from './env.js';

/** A running berth. */
export interface TestBerth {
  app: FastifyInstance;
  /** Base URL of the listening API, e.g. http://127.0.0.1:PORT */
  url: string;
  config: Config;
  dataDir: string;
  /** Every log line written so far (only when started with `captureLogs`). */
  logs: string[];
  close(): Promise<void>;
}

/** Options of startBerth beyond its environment. */
export interface StartBerthOptions {
  /** Log at debug level into `logs` instead of staying silent. */
  captureLogs?: boolean;
}

/** Starts a berth; `env` adds or overrides environment variables of its configuration. */
export async function startBerth(env: Record<string, string> = {}, options: StartBerthOptions = {}): Promise<TestBerth> {
  const db = await createTestDatabase('berth');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-test-'));
  const config = loadConfig({
    BERTH_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    BERTH_DB_SCHEMA: db.schema,
    REDIS_URL: testRedisUrl(),
    BERTH_QUEUE_PREFIX: uniqueName('q'),
    BERTH_SECRET: 'test-secret',
    BERTH_PULL_ATTEMPTS: '2',
    LOG_LEVEL: options.captureLogs ? 'debug' : (process.env.BERTH_TEST_LOG ?? 'silent'),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const log = options.captureLogs ? createLogger(config.logLevel, 'berth-test', sink) : pino({ level: config.logLevel });
  const core = await createCore(config, db.pool);
  const workerRedis = openRedis(testRedisUrl(), 'worker');
  const worker = createWorker(config, core, workerRedis, log);
  const apiRedis = openRedis(testRedisUrl(), 'api');
  const app = await createApi(config, core, db.pool, apiRedis, log);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    url,
    config,
    dataDir,
    logs,
    async close() {
      await app.close();
      await worker.close();
      await Promise.all([apiRedis.quit(), workerRedis.quit()]);
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
