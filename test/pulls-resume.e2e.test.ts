/**
 * A layer download that breaks off mid-body is resumed with Range from the last byte written, within
 * the same pull, rather than started over — proven with the registry's own request log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullAndWait } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { pushImage, randomLayer, type PushedImage } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

const MiB = 1024 * 1024;
let registry: TestRegistry;
let image: PushedImage;
let berth: TestBerth;

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushImage({ url: registry.url }, 'resume/app', '1', { layers: [randomLayer(4 * MiB, { seed: 'resume', compression: 'none' })] });
  berth = await startBerth({ BERTH_PULL_ATTEMPTS: '1' }); // one attempt: only a resume can save the pull
});

afterAll(async () => {
  await berth?.close();
  await registry?.stop();
});

describe('a layer download cut mid-body', () => {
  it('is resumed from where it broke off, and the layer stored is verified', async () => {
    const layer = image.layers[0]!;
    let cut = false;
    registry.intercept((req) => {
      if (cut || req.method !== 'GET' || !req.url.endsWith(`/blobs/${layer.digest}`)) return undefined;
      cut = true;
      return { forward: true, truncateAfter: 1 * MiB };
    });
    try {
      const pull = await pullAndWait(berth.url, { image: `${registry.host}/resume/app:1` });
      expect(pull).toMatchObject({ state: 'succeeded', imageId: image.configDigest, progress: { bytesDone: layer.size, bytesTotal: layer.size } });
    } finally {
      registry.intercept(null);
    }
    const gets = registry.requestLog().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`));
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0); // what arrived before the cut was kept…
    expect(from).toBeLessThanOrEqual(1 * MiB); // …and nothing past it was invented
  });
});

describe('a registry that refuses the resume', () => {
  it('gets the layer downloaded again from the start, once', async () => {
    const pushed = await pushImage({ url: registry.url }, 'resume/refused', '1', { layers: [randomLayer(2 * MiB, { seed: 'refused', compression: 'none' })] });
    const layer = pushed.layers[0]!;
    let gets = 0;
    registry.intercept((req) => {
      if (req.method !== 'GET' || !req.url.endsWith(`/blobs/${layer.digest}`)) return undefined;
      gets++;
      if (gets === 1) return { forward: true, truncateAfter: MiB / 2 }; // cut mid-body
      if (gets === 2) return { status: 416, body: 'range not satisfiable' }; // the resume is refused
      return undefined; // the fresh start goes through
    });
    try {
      const pull = await pullAndWait(berth.url, { image: `${registry.host}/resume/refused:1` });
      expect(pull).toMatchObject({ state: 'succeeded', imageId: pushed.configDigest, progress: { bytesDone: layer.size } });
    } finally {
      registry.intercept(null);
    }
    const ranges = registry.requestLog().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`)).map((r) => r.range);
    expect(ranges).toHaveLength(3);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(ranges[2]).toBeUndefined();
  });
});
