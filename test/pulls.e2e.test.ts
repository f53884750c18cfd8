/**
 * The whole loop against a real Distribution registry, real Postgres and real Redis:
 * pull → store → inspect → list → delete, with every answer checked against what the registry holds.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, pullAndWait } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { layer, moveTag, pushImage, pushStandardFixtures, type StandardFixtures } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

let registry: TestRegistry;
let fixtures: StandardFixtures;
let berth: TestBerth;

beforeAll(async () => {
  registry = await startRegistry();
  fixtures = await pushStandardFixtures({ url: registry.url });
  berth = await startBerth();
});

afterAll(async () => {
  await berth?.close();
  await registry?.stop();
});

async function storedBlobs(): Promise<string[]> {
  const dir = path.join(berth.dataDir, 'content', 'blobs', 'sha256');
  return (await readdir(dir)).map((hex) => `sha256:${hex}`).sort();
}

describe('pulling an image', () => {
  it('pulls the linux/arm64 image of a three-platform index and records it as the registry holds it', async () => {
    const arm64 = fixtures.multiPlatform.children.find((c) => c.platform.architecture === 'arm64')!;
    const pull = await pullAndWait(berth.url, { image: `${registry.host}/multi/platform:1`, platform: 'linux/arm64' });
    expect(pull).toMatchObject({
      state: 'succeeded',
      reference: `${registry.host}/multi/platform:1`,
      platform: 'linux/arm64',
      imageId: arm64.configDigest,
      progress: { layersDone: 1, layersTotal: 1, bytesDone: arm64.layersSize, bytesTotal: arm64.layersSize },
    });

    const shortId = arm64.configDigest.slice('sha256:'.length, 'sha256:'.length + 12);
    const { status, body: image } = await api(berth.url, 'GET', `/v1/images/${shortId}`);
    expect(status).toBe(200);
    expect(image).toMatchObject({
      id: arm64.configDigest,
      names: [`${registry.host}/multi/platform:1`],
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8', // as the index declares it, the way `docker inspect` shows it
      size: arm64.configSize + arm64.layersSize,
      manifestDigest: arm64.manifestDigest,
      layers: arm64.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    });
    expect(image.digests).toContain(`${registry.host}/multi/platform@${fixtures.multiPlatform.indexDigest}`);
  });

  it('pulls an OCI image with several layers and keeps its config', async () => {
    const pull = await pullAndWait(berth.url, { image: `${registry.host}/multi/layers:1` });
    expect(pull.state).toBe('succeeded');
    const { body: image } = await api(berth.url, 'GET', `/v1/images/${encodeURIComponent(`${registry.host}/multi/layers:1`)}`);
    expect(image.layers).toHaveLength(4);
    expect(image.config).toMatchObject({
      env: ['PATH=/usr/bin:/bin', 'APP_MODE=test'],
      entrypoint: ['/app/main.js'],
      cmd: ['--serve'],
      workingDir: '/app',
      user: '1000:1000',
      labels: { 'org.opencontainers.image.title': 'multi-layers' },
      exposedPorts: ['8080/tcp'],
      volumes: ['/data'],
    });
    const blobs = await storedBlobs();
    for (const l of fixtures.multiLayers.layers) expect(blobs).toContain(l.digest);
    expect(blobs).toContain(fixtures.multiLayers.configDigest);
  });

  it('pulls a Docker schema 2 image, found with raw slashes in the URL', async () => {
    const pull = await pullAndWait(berth.url, { image: `${registry.host}/docker/v2s2:1` });
    expect(pull.state).toBe('succeeded');
    const { status, body } = await api(berth.url, 'GET', `/v1/images/${registry.host}/docker/v2s2:1`);
    expect(status).toBe(200);
    expect(body.manifestMediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(body.id).toBe(fixtures.dockerV2s2.configDigest);
  });

  it('shares one pull between two requests for the same reference and platform', async () => {
    const body = { image: `${registry.host}/shared/one:1` };
    const [a, b] = await Promise.all([api(berth.url, 'POST', '/v1/pulls', body), api(berth.url, 'POST', '/v1/pulls', body)]);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(a.body.id).toBe(b.body.id);
    const done = await api(berth.url, 'GET', `/v1/pulls/${a.body.id}?wait=30`);
    expect(done.body.state).toBe('succeeded');
  });

  it('fails a pull of a tag the registry does not have, with the registry’s own code', async () => {
    const pull = await pullAndWait(berth.url, { image: `${registry.host}/multi/layers:nope` });
    expect(pull.state).toBe('failed');
    expect(pull.error.code).toBe('MANIFEST_UNKNOWN');
    expect(pull.error.message).toContain(registry.host);
  });
});

describe('a tag that moves', () => {
  it('moves the name to the new image and leaves the old one dangling, still found by ID and digest', async () => {
    const first = await pushImage({ url: registry.url }, 'moving/app', 'stable', { layers: [layer({ 'v': '1\n' })] });
    await pullAndWait(berth.url, { image: `${registry.host}/moving/app:stable` });
    const second = await moveTag({ url: registry.url }, 'moving/app', 'stable', { layers: [layer({ 'v': '2\n' })] });
    const pull = await pullAndWait(berth.url, { image: `${registry.host}/moving/app:stable` });
    expect(pull.imageId).toBe((second as { configDigest: string }).configDigest);

    const old = await api(berth.url, 'GET', `/v1/images/${first.configDigest}`);
    expect(old.status).toBe(200);
    expect(old.body.names).toEqual([]);
    const byDigest = await api(berth.url, 'GET', `/v1/images/${registry.host}/moving/app@${first.manifestDigest}`);
    expect(byDigest.body.id).toBe(first.configDigest);
    const byName = await api(berth.url, 'GET', `/v1/images/${registry.host}/moving/app:stable`);
    expect(byName.body.id).toBe(pull.imageId);
  });
});

describe('listing', () => {
  it('pages through every image exactly once and filters by repository', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api(berth.url, 'GET', `/v1/images?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.images.map((i: { id: string }) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(5);

    const filtered = await api(berth.url, 'GET', `/v1/images?name=${encodeURIComponent(`${registry.host}/multi/layers`)}`);
    expect(filtered.body.images.map((i: { id: string }) => i.id)).toEqual([fixtures.multiLayers.configDigest]);
  });
});

describe('metrics', () => {
  it('count pulls by state, failures by code, and the images held, as Prometheus text', async () => {
    const res = await fetch(`${berth.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text)?.[1]);
    const listed = (await api(berth.url, 'GET', '/v1/images?limit=1000')).body.images.length as number;
    expect(value('berth_images')).toBe(listed);
    expect(value('berth_images_dangling')).toBe(1); // the image the moved tag left behind
    expect(value('berth_pulls{state="succeeded"}')).toBeGreaterThanOrEqual(6);
    expect(value('berth_pull_failures{code="MANIFEST_UNKNOWN"}')).toBe(1);
    expect(value('berth_image_content_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^berth_process_resident_memory_bytes \d+/m);
  });
});

describe('deleting', () => {
  it('keeps a shared layer until its last image is gone, and leaves no orphan blobs', async () => {
    const shared = fixtures.sharedLayer.digest;
    registry.clearRequestLog();
    await pullAndWait(berth.url, { image: `${registry.host}/shared/two:1` });
    // shared/one (pulled earlier) brought the shared layer: it is not downloaded again.
    const blobGets = registry.requestLog().filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    expect(blobGets.some((r) => r.path.endsWith(shared))).toBe(false);
    expect(blobGets.some((r) => r.path.endsWith(fixtures.sharedTwo.layers[1]!.digest))).toBe(true);

    const byName = await api(berth.url, 'DELETE', `/v1/images/${registry.host}/shared/one:1`);
    expect(byName.status).toBe(200);
    expect(byName.body.untagged).toContain(`${registry.host}/shared/one:1`);
    expect(byName.body.deleted).toEqual([fixtures.sharedOne.configDigest]);
    expect(await storedBlobs()).toContain(shared);

    const byId = await api(berth.url, 'DELETE', `/v1/images/${fixtures.sharedTwo.configDigest}`);
    expect(byId.body.deleted).toEqual([fixtures.sharedTwo.configDigest]);
    expect(await storedBlobs()).toContain(shared); // multi/layers and docker/v2s2 still use it

    // Remove everything; the store must end up empty.
    let page = await api(berth.url, 'GET', '/v1/images?limit=1000');
    for (const image of page.body.images) {
      const res = await api(berth.url, 'DELETE', `/v1/images/${image.id}`);
      expect(res.status).toBe(200);
    }
    page = await api(berth.url, 'GET', '/v1/images');
    expect(page.body.images).toEqual([]);
    expect(await storedBlobs()).toEqual([]);
  });

  it('answers 404 with a problem document for an image it does not hold', async () => {
    const res = await api(berth.url, 'GET', `/v1/images/${registry.host}/nothing/here:1`);
    expect(res.status).toBe(404);
    expect(res.contentType).toContain('application/problem+json');
    expect(res.body.code).toBe('IMAGE_NOT_FOUND');
  });
});

describe('bad input', () => {
  it.each([
    [{ image: 'Alpine' }, 'INVALID_REFERENCE'],
    [{ image: 'alpine', platform: 'linux' }, 'INVALID_PLATFORM'],
    [{ image: 'alpine', auth: { auth: 'not base64 !!' } }, 'INVALID_CREDENTIALS'],
    [{ image: 'alpine', typo: 1 }, 'VALIDATION_FAILED'],
    [{}, 'VALIDATION_FAILED'],
  ])('answers 400 for %j', async (body, code) => {
    const res = await api(berth.url, 'POST', '/v1/pulls', body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(code);
    expect(res.body.detail).toBeTruthy();
  });

  it('answers 404 for an unknown pull', async () => {
    const res = await api(berth.url, 'GET', '/v1/pulls/00000000-0000-4000-8000-000000000000');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('PULL_NOT_FOUND');
  });
});
