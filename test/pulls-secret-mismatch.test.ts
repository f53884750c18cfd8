/**
 * A worker that cannot open a pull's sealed credentials (another BERTH_SECRET than the API's) fails
 * the pull at once with a code that says why, instead of leaving it "running" forever.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createPool } from '../src/db/pool.js';
import { closeWorker, createCore, createWorker, openRedis } from '../src/services.js';
import { api } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { testRedisUrl } from './helpers/env.js';

let berth: TestBerth;

beforeAll(async () => {
  berth = await startBerth({ BERTH_SECRET: 'the-api-secret' }, { noWorker: true });
});

afterAll(async () => {
  await berth?.close();
});

describe('a worker with another BERTH_SECRET', () => {
  it('fails a pull with credentials as CREDENTIALS_UNREADABLE', async () => {
    const config = loadConfig({
      DATABASE_URL: berth.config.databaseUrl!,
      BERTH_DB_SCHEMA: berth.config.databaseSchema,
      BERTH_QUEUE_PREFIX: berth.config.queuePrefix,
      BERTH_DATA_DIR: berth.dataDir,
      BERTH_SECRET: 'another-secret',
    });
    const pool = await createPool({ connectionString: config.databaseUrl!, schema: config.databaseSchema });
    const redis = openRedis(testRedisUrl(), 'worker');
    const worker = createWorker(config, await createCore(config, pool), redis, pino({ level: 'silent' }));
    try {
      // Never contacted: the pull ends before any registry is asked.
      const started = await api(berth.url, 'POST', '/v1/pulls', { image: '127.0.0.1:9/never/asked:1', auth: { username: 'u', password: 'p' } });
      const done = await api(berth.url, 'GET', `/v1/pulls/${started.body.id}?wait=20`);
      expect(done.body).toMatchObject({ state: 'failed', error: { code: 'CREDENTIALS_UNREADABLE' } });
      expect(done.body.error.message).toContain('BERTH_SECRET');
    } finally {
      await closeWorker(worker, redis, 2000);
      redis.disconnect();
      await pool.end();
    }
  });
});
