/**
 * A pull whose job Redis lost (flushed, or restarted without persistence) must not hold its reference
 * forever: the next request for it fails the old pull with JOB_LOST and starts a new one.
 * The berth here runs no worker, so the queued job stays queued until the test removes it.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PULL_QUEUE_NAME } from '../src/pulls/pull-queue.js';
import { api } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { testRedisUrl } from './helpers/env.js';

let berth: TestBerth;

beforeAll(async () => {
  berth = await startBerth({}, { noWorker: true });
});

afterAll(async () => {
  await berth?.close();
});

async function sql(text: string, values: unknown[]): Promise<void> {
  const client = new pg.Client({ connectionString: berth.config.databaseUrl, options: `-c search_path=${berth.config.databaseSchema}` });
  await client.connect();
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

describe('a pull whose job Redis lost', () => {
  const body = { image: '127.0.0.1:9/lost/job:1' };

  it('is still joined while it is young: its job may be being queued right now', async () => {
    const first = await api(berth.url, 'POST', '/v1/pulls', body);
    const second = await api(berth.url, 'POST', '/v1/pulls', body);
    expect(second.body.id).toBe(first.body.id);
  });

  it('is failed with JOB_LOST once older, and a new pull takes its place', async () => {
    const first = await api(berth.url, 'POST', '/v1/pulls', body);
    const connection = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue(PULL_QUEUE_NAME, { connection, prefix: berth.config.queuePrefix });
    try {
      expect(await queue.getJob(first.body.id)).toBeDefined();
      await queue.obliterate({ force: true }); // what a FLUSHALL would do to berth's keys
    } finally {
      await queue.close();
      connection.disconnect();
    }
    await sql(`UPDATE pulls SET created_at = date_trunc('milliseconds', now() - interval '1 minute') WHERE id = $1`, [first.body.id]);

    const second = await api(berth.url, 'POST', '/v1/pulls', body);
    expect(second.status).toBe(202);
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.state).toBe('queued');
    const old = await api(berth.url, 'GET', `/v1/pulls/${first.body.id}`);
    expect(old.body).toMatchObject({ state: 'failed', error: { code: 'JOB_LOST' } });
  });
});
