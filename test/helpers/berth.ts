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
import { closeWorker, createApi, createCore, createWorker, openRedis } from '../../src/services.js';
import { migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { createTestDatabase } from './db.js';
import { deleteRedisKeys, testRedisUrl, uniqueName } from './env.js';

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
  /** Run no worker: pulls are queued and never run (no registry is ever contacted). */
  noWorker?: boolean;
}

/** Starts a berth; `env` adds or overrides environment variables of its configuration. */
export async function startBerth(env: Record<string, string> = {}, options: StartBerthOptions = {}): Promise<TestBerth> {
  // A test that stops its own Postgres passes DATABASE_URL; the rest share this run's database.
  const db = env.DATABASE_URL ? await ownDatabase(env.DATABASE_URL) : await createTestDatabase('berth');
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
  const redisUrl = config.redisUrl ?? testRedisUrl();
  const workerRedis = openRedis(redisUrl, 'worker');
  const worker = options.noWorker ? undefined : createWorker(config, core, workerRedis, log);
  const apiRedis = openRedis(redisUrl, 'api');
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
      if (worker) await closeWorker(worker, workerRedis, 2000);
      apiRedis.disconnect();
      workerRedis.disconnect();
      // Leave nothing of this berth in the shared Redis (a test that stopped its own has nothing to clean).
      if (config.redisUrl === testRedisUrl()) await deleteRedisKeys(config.queuePrefix).catch(() => undefined);
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A migrated `public` schema on a database of the test's own (left in place: the test owns the server). */
async function ownDatabase(url: string): Promise<{ pool: import('pg').Pool; schema: string; url: string; close(): Promise<void> }> {
  const pool = await createPool({ connectionString: url, schema: 'public' });
  await migrate(pool);
  return { pool, schema: 'public', url, close: () => pool.end().catch(() => undefined) };
}
