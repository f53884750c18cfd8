/**
 * Pulls from registries behind HTTP Basic and token auth, in the three credential forms the CRI
 * accepts, and proof that the credentials reach neither Redis, Postgres nor a log line in plain text.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, pullAndWait } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { testRedisUrl } from './helpers/env.js';
import { layer, pushImage, type PushedImage } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

const USER = 'alice';
const PASSWORD = 'correct-horse-battery-staple';

let basic: TestRegistry;
let token: TestRegistry;
let basicImage: PushedImage;
let tokenImage: PushedImage;
let berth: TestBerth;

beforeAll(async () => {
  [basic, token] = await Promise.all([
    startRegistry({ auth: { kind: 'basic', users: { [USER]: PASSWORD } } }),
    startRegistry({ auth: { kind: 'token', users: { [USER]: PASSWORD } } }),
  ]);
  [basicImage, tokenImage] = await Promise.all([
    pushImage({ url: basic.url, credentials: basic.credentials }, 'private/app', '1', { layers: [layer({ secret: 'basic\n' })] }),
    pushImage({ url: token.url, credentials: token.credentials }, 'private/app', '1', { layers: [layer({ secret: 'token\n' })] }),
  ]);
  berth = await startBerth({}, { captureLogs: true });
});

afterAll(async () => {
  await berth?.close();
  await Promise.all([basic?.stop(), token?.stop()]);
});

describe('pulling from a registry with HTTP Basic auth', () => {
  it('fails without credentials, saying the registry refused them', async () => {
    const pull = await pullAndWait(berth.url, { image: `${basic.host}/private/app:1` });
    expect(pull.state).toBe('failed');
    expect(pull.error.code).toBe('UNAUTHORIZED');
  });

  it('succeeds with { username, password }', async () => {
    const pull = await pullAndWait(berth.url, {
      image: `${basic.host}/private/app:1`,
      auth: { username: USER, password: PASSWORD },
    });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: basicImage.configDigest });
    expect(basic.requestLog().some((r) => r.authorization === 'basic' && r.user === USER)).toBe(true);
  });

  it('fails with a wrong password and keeps the registry’s message', async () => {
    const pull = await pullAndWait(berth.url, {
      image: `${basic.host}/private/app:1`,
      platform: 'linux/arm64', // another platform: not joined to an earlier pull
      auth: { username: USER, password: 'wrong' },
    });
    expect(pull.state).toBe('failed');
    expect(pull.error.code).toBe('UNAUTHORIZED');
  });
});

describe('pulling from a registry with token auth', () => {
  it('succeeds with { auth: base64(user:pass) } and fetches a token for the repository', async () => {
    const pull = await pullAndWait(berth.url, {
      image: `${token.host}/private/app:1`,
      auth: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') },
    });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: tokenImage.configDigest });
    const grants = token.tokenServer!.requests().filter((r) => r.user === USER);
    expect(grants.some((g) => g.scopes.some((s) => s.includes('repository:private/app:pull')))).toBe(true);
  });
});

describe('credentials at rest', () => {
  it('never sit in Redis, Postgres or the logs in plain text', async () => {
    // Hold the registry's answers so that the job is still in Redis while we look.
    token.intercept(() => ({ forward: true, delayMs: 1500 }));
    const started = await api(berth.url, 'POST', '/v1/pulls', {
      image: `${token.host}/private/app:1`,
      platform: 'linux/arm/v7',
      auth: { username: USER, password: PASSWORD },
    });
    expect(started.status).toBe(202);

    const redis = new Redis(testRedisUrl());
    try {
      const keys = await redis.keys(`${berth.config.queuePrefix}:*`);
      expect(keys.length).toBeGreaterThan(0);
      let dump = '';
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
        else if (type === 'string') dump += await redis.get(key);
        else if (type === 'list') dump += JSON.stringify(await redis.lrange(key, 0, -1));
        else if (type === 'zset') dump += JSON.stringify(await redis.zrange(key, "0", "-1"));
        else if (type === 'stream') dump += JSON.stringify(await redis.xrange(key, '-', '+'));
      }
      expect(dump).toContain(started.body.id); // the job is there…
      expect(dump).not.toContain(PASSWORD); // …without the password
      expect(dump).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
    } finally {
      redis.disconnect();
      token.intercept(null);
    }
    await api(berth.url, 'GET', `/v1/pulls/${started.body.id}?wait=30`);

    const rows = await (await import('pg')).default;
    const client = new rows.Client({ connectionString: berth.config.databaseUrl, options: `-c search_path=${berth.config.databaseSchema}` });
    await client.connect();
    try {
      const { rows: all } = await client.query<{ t: string }>('SELECT row_to_json(p)::text AS t FROM pulls p');
      expect(all.length).toBeGreaterThan(0);
      for (const { t } of all) expect(t).not.toContain(PASSWORD);
    } finally {
      await client.end();
    }

    const logs = berth.logs.join('');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
  });
});
