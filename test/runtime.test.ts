/**
 * The embedded defaults of `berth start`: a Postgres and a Redis that berth starts itself. Every test
 * starts its own servers in a temporary directory and never touches the shared ones.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/runtime/embedded-postgres.js';
import { freePort, type RuntimeLog } from '../src/runtime/local-server.js';
import { ensureRedis, ping } from '../src/runtime/redis.js';
import { testRedisUrl } from './helpers/env.js';

let dataDir: string;
const lines: string[] = [];
const log: RuntimeLog = { info: (line) => lines.push(line), warn: (line) => lines.push(line) };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'berth-runtime-'));
  // As root, Postgres runs as the postgres user, which must be able to reach the data directory.
  await chmod(dataDir, 0o755);
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('startEmbeddedPostgres', () => {
  it('starts, serves database berth, stops, and restarts on the same data', async () => {
    const first = await startEmbeddedPostgres({ dataDir, log });
    try {
      expect(new URL(first.url).pathname).toBe('/berth');
      await query(first.url, 'CREATE TABLE kept (value text); INSERT INTO kept VALUES ($$still here$$)');
      await expect(startEmbeddedPostgres({ dataDir, log })).rejects.toThrow(/in use by Postgres pid \d+/);
    } finally {
      await first.stop();
    }
    await expect(query(first.url, 'SELECT 1')).rejects.toThrow();

    const second = await startEmbeddedPostgres({ dataDir, log });
    try {
      expect(second.url).toBe(first.url); // the same port, from the state file
      const { rows } = await query(second.url, 'SELECT value FROM kept');
      expect(rows).toEqual([{ value: 'still here' }]);
    } finally {
      await second.stop();
    }
    const started = lines.filter((line) => line.startsWith('embedded Postgres running on 127.0.0.1:'));
    expect(started).toHaveLength(2);
    const password = decodeURIComponent(new URL(first.url).password);
    expect(lines.join('\n')).not.toContain(password);
  });
});

describe('ensureRedis', () => {
  it('uses an explicit REDIS_URL that answers, and stop() leaves it running', async () => {
    const redis = await ensureRedis({ redisUrl: testRedisUrl(), dataDir, log });
    expect(redis.url).toBe(testRedisUrl());
    await redis.stop();
    expect(await ping(testRedisUrl())).toBeUndefined(); // undefined: it answered PONG
  });

  it('fails in one line when an explicit REDIS_URL does not answer', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    await expect(ensureRedis({ redisUrl: url, dataDir, log })).rejects.toThrow(/^Redis at .* does not answer PING: [^\n]*$/);
  });

  it('starts its own redis-server when nothing answers at the probed address', async () => {
    const probeUrl = `redis://127.0.0.1:${await freePort()}`;
    const redis = await ensureRedis({ dataDir, log, probeUrl });
    try {
      expect(redis.url).toBe(probeUrl); // the probed port was free, so the server took it
      expect(await ping(redis.url)).toBeUndefined();
    } finally {
      await redis.stop();
    }
    expect(await ping(redis.url)).toMatch(/ECONNREFUSED/);
  });

  it('says in one line how to get Redis when redis-server is not on PATH', async () => {
    const probeUrl = `redis://127.0.0.1:${await freePort()}`;
    const attempt = ensureRedis({ dataDir, log, probeUrl, searchPath: path.join(dataDir, 'no-bin') });
    await expect(attempt).rejects.toThrow(/^[^\n]*apt-get install redis-server[^\n]*REDIS_URL[^\n]*$/);
  });
});
