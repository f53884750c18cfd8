/**
 * With Postgres or Redis gone, berth answers 503 problem documents (never a 500), /readyz says which
 * dependency is down, and a pull that could not be queued leaves no record behind. This file starts
 * and stops its own Postgres and Redis; the machine's shared ones are never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/runtime/embedded-postgres.js';
import { freePort } from '../src/runtime/local-server.js';
import { api } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';

async function startRedis(): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // the server may not be up yet: that is what we poll for
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { url, process: child };
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('when Redis is down', () => {
  let redis: { url: string; process: ChildProcess };
  let berth: TestBerth;

  beforeAll(async () => {
    redis = await startRedis();
    berth = await startBerth({ REDIS_URL: redis.url });
    await stopProcess(redis.process);
  });

  afterAll(async () => {
    await berth?.close();
    redis?.process.kill('SIGKILL');
  });

  it('answers a pull with 503 and keeps no half-made pull record', async () => {
    const res = await api(berth.url, 'POST', '/v1/pulls', { image: '127.0.0.1:1/some/app:1' });
    expect(res.status).toBe(503);
    expect(res.contentType).toContain('application/problem+json');
    expect(res.body.code).toBe('DEPENDENCY_UNAVAILABLE');
    const pulls = await api(berth.url, 'GET', '/v1/pulls');
    expect(pulls.status).toBe(200);
    expect(pulls.body.pulls).toEqual([]);
  });

  it('says in /readyz that Redis is the one down, while images still list', async () => {
    const ready = await api(berth.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'redis', ok: false }), expect.objectContaining({ name: 'postgres', ok: true })]),
    );
    expect((await api(berth.url, 'GET', '/v1/images')).status).toBe(200);
  });
});

describe('when Postgres is down', () => {
  let dir: string;
  let postgres: { url: string; stop(): Promise<void> };
  let berth: TestBerth;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pg-down-'));
    await chmod(dir, 0o755); // the embedded server runs as the postgres user when we are root
    postgres = await startEmbeddedPostgres({ dataDir: dir, log: { info: () => undefined, warn: () => undefined } });
    berth = await startBerth({ DATABASE_URL: postgres.url });
    await postgres.stop();
  }, 120_000);

  afterAll(async () => {
    await berth?.close();
    await postgres?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['GET', '/v1/images'],
    ['GET', '/v1/images/sha256:' + 'a'.repeat(64)],
    ['GET', '/v1/pulls/00000000-0000-4000-8000-000000000000'],
    ['POST', '/v1/pulls'],
    ['GET', '/metrics'],
  ])('answers %s %s with 503 DEPENDENCY_UNAVAILABLE', async (method, url) => {
    const res = await api(berth.url, method, url, method === 'POST' ? { image: '127.0.0.1:1/some/app:1' } : undefined);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('DEPENDENCY_UNAVAILABLE');
    expect(res.body.detail).toMatch(/Postgres or Redis/);
  });

  it('says in /readyz that Postgres is the one down', async () => {
    const ready = await api(berth.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'postgres', ok: false })]));
  });
});
