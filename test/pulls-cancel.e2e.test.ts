/**
 * DELETE /v1/pulls/{id} cancels a pull in flight: a running one stops (its partial download goes), a
 * queued one leaves the queue, an ended one answers 409, and the image can be pulled anew afterwards.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PULL_QUEUE_NAME } from '../src/pulls/pull-queue.js';
import { api, pullAndWait } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { testRedisUrl } from './helpers/env.js';
import { pushImage, randomLayer, type PushedImage } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

let registry: TestRegistry;
let image: PushedImage;
let berth: TestBerth;
let idle: TestBerth;

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushImage({ url: registry.url }, 'cancel/app', '1', { layers: [randomLayer(1024 * 1024, { seed: 'cancel', compression: 'none' })] });
  [berth, idle] = await Promise.all([startBerth(), startBerth({}, { noWorker: true })]);
});

afterAll(async () => {
  await Promise.all([berth?.close(), idle?.close()]);
  await registry?.stop();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 10): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cancelling a pull', () => {
  it('stops a running pull: it fails as CANCELED, its partial download goes, no image appears', async () => {
    const layer = image.layers[0]!;
    // The registry holds the layer back long enough for the cancel to land mid-download.
    registry.intercept((req) => (req.method === 'GET' && req.url.endsWith(`/blobs/${layer.digest}`) ? { forward: true, delayMs: 8000 } : undefined));
    try {
      const started = await api(berth.url, 'POST', '/v1/pulls', { image: `${registry.host}/cancel/app:1` });
      await until('the pull to run', async () => ((await api(berth.url, 'GET', `/v1/pulls/${started.body.id}`)).body.state === 'running' ? true : undefined));
      const tmp = path.join(berth.dataDir, 'content', 'tmp');
      await until('the download to start', async () => ((await readdir(tmp)).length > 0 ? true : undefined));

      const canceled = await api(berth.url, 'DELETE', `/v1/pulls/${started.body.id}`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ state: 'failed', error: { code: 'CANCELED' } });

      // The worker notices within a progress write (well before the registry's 8 s) and cleans up.
      await until('the partial download to go', async () => ((await readdir(tmp)).length === 0 ? true : undefined), 4);
      expect((await api(berth.url, 'GET', `/v1/images/${image.configDigest}`)).status).toBe(404);
      expect((await api(berth.url, 'GET', `/v1/pulls/${started.body.id}`)).body.error.code).toBe('CANCELED');
    } finally {
      registry.intercept(null);
    }
    // The reference is free again: a new pull starts and succeeds.
    const again = await pullAndWait(berth.url, { image: `${registry.host}/cancel/app:1` });
    expect(again).toMatchObject({ state: 'succeeded', imageId: image.configDigest });
  });

  it('takes a queued pull off the queue', async () => {
    const started = await api(idle.url, 'POST', '/v1/pulls', { image: `${registry.host}/cancel/app:1` });
    const connection = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue(PULL_QUEUE_NAME, { connection, prefix: idle.config.queuePrefix });
    try {
      expect(await queue.getJob(started.body.id)).toBeDefined();
      const canceled = await api(idle.url, 'DELETE', `/v1/pulls/${started.body.id}`);
      expect(canceled.body).toMatchObject({ state: 'failed', error: { code: 'CANCELED' } });
      expect(await queue.getJob(started.body.id)).toBeUndefined();
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('answers 409 for a pull that already ended, and 404 for an unknown one', async () => {
    const done = await pullAndWait(berth.url, { image: `${registry.host}/cancel/app:1` });
    const res = await api(berth.url, 'DELETE', `/v1/pulls/${done.id}`);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('PULL_ENDED');
    expect((await api(berth.url, 'DELETE', '/v1/pulls/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });
});
