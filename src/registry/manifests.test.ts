/**
 * Manifest fetching and image resolution against a fake registry on 127.0.0.1: the faults a real
 * registry will not produce (oversize, wrong digests, odd Content-Type, malformed content).
 */
import { createHash } from 'node:crypto';
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import { fetchManifest, resolveImage, selectPlatform, type Descriptor, type ImageIndex, type RepositoryTarget } from './manifests.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.js';
import { RegistryTransport } from './transport.js';
import { failure } from '../../test/helpers/registry-failure.js';

type Route = { status?: number; headers?: OutgoingHttpHeaders; body: Buffer | string } | ((res: ServerResponse) => void);
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let close: (() => Promise<void>) | undefined;
let transport: RegistryTransport | undefined;
afterEach(async () => {
  await transport?.close();
  await close?.();
  transport = undefined;
  close = undefined;
});

/** A registry serving `routes` (path → answer) under /v2/repo/, recording Accept headers. */
async function fakeRegistry(routes: Record<string, Route>): Promise<{ target: RepositoryTarget; accepts: string[]; t: RegistryTransport }> {
  const accepts: string[] = [];
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    accepts.push(req.headers.accept ?? '');
    const route = routes[(req.url ?? '').replace('/v2/repo/', '')];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    }
    if (typeof route === 'function') return route(res);
    res.writeHead(route.status ?? 200, route.headers ?? {});
    res.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  transport = new RegistryTransport({ retryBaseDelayMs: 5 });
  return { target: { registry: `127.0.0.1:${(server.address() as AddressInfo).port}`, repository: 'repo' }, accepts, t: transport };
}

const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', variant: 'v8', rootfs: { type: 'layers', diff_ids: [] } }));
const layer: Descriptor = { mediaType: OCI_LAYER_GZIP, digest: sha256('layer'), size: 5 };
const manifestOf = (cfg: Buffer, mediaType = OCI_MANIFEST, configType = OCI_CONFIG) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: { mediaType: configType, digest: sha256(cfg), size: cfg.length }, layers: [layer] }));
const manifest = manifestOf(config);
const ociHeaders = { 'content-type': OCI_MANIFEST };

describe('fetchManifest', () => {
  it('fetches by tag with the full Accept list, dropping Content-Type parameters', async () => {
    const { t, target, accepts } = await fakeRegistry({ 'manifests/v1': { headers: { 'content-type': `${OCI_MANIFEST}; charset=utf-8`, 'docker-content-digest': sha256(manifest) }, body: manifest } });
    const m = await fetchManifest(t, target, 'v1');
    expect(m).toMatchObject({ digest: sha256(manifest), mediaType: OCI_MANIFEST, size: manifest.length, kind: 'image' });
    expect(m.bytes.equals(manifest)).toBe(true);
    expect(accepts[0]?.split(', ')).toEqual([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);
  });

  it('falls back to the body mediaType, then to the shape, when Content-Type says nothing', async () => {
    const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const { t, target } = await fakeRegistry({
      'manifests/json': { headers: { 'content-type': 'application/json' }, body: manifestOf(config, DOCKER_MANIFEST) },
      'manifests/bare': { body: bare },
    });
    expect((await fetchManifest(t, target, 'json')).mediaType).toBe(DOCKER_MANIFEST);
    expect((await fetchManifest(t, target, 'bare')).mediaType).toBe(OCI_INDEX);
  });

  it('verifies the digest: by digest against the content, by tag against Docker-Content-Digest', async () => {
    const other = manifestOf(Buffer.from('{}'));
    const sha512 = `sha512:${createHash('sha512').update(manifest).digest('hex')}`;
    const { t, target } = await fakeRegistry({
      [`manifests/${sha256(manifest)}`]: { headers: ociHeaders, body: other },
      [`manifests/${sha512}`]: { headers: ociHeaders, body: manifest },
      'manifests/lying': { headers: { ...ociHeaders, 'docker-content-digest': sha256(other) }, body: manifest },
      'manifests/garbled': { headers: { ...ociHeaders, 'docker-content-digest': 'sha256:nope' }, body: manifest },
    });
    const byDigest = await failure(fetchManifest(t, target, sha256(manifest)));
    expect(byDigest.code).toBe('DIGEST_MISMATCH');
    expect(byDigest.message).toContain(sha256(other));
    expect((await fetchManifest(t, target, sha512)).digest).toBe(sha512);
    expect((await failure(fetchManifest(t, target, 'lying'))).code).toBe('DIGEST_MISMATCH');
    expect((await failure(fetchManifest(t, target, 'garbled'))).code).toBe('PROTOCOL_ERROR');
  });

  it('refuses more than 4 MiB, by Content-Length or while streaming, without reading it all', async () => {
    let written = 0;
    let aborted = false;
    const { t, target } = await fakeRegistry({
      'manifests/declared': { headers: { ...ociHeaders, 'content-length': String(5 * 1024 * 1024) }, body: Buffer.alloc(5 * 1024 * 1024, 32) },
      'manifests/streamed': (res) => {
        res.writeHead(200, ociHeaders);
        res.on('close', () => (aborted = !res.writableFinished));
        const chunk = Buffer.alloc(64 * 1024, 32);
        const pump = (): void => {
          while (written < 200 * 1024 * 1024 && !res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      },
    });
    expect((await failure(fetchManifest(t, target, 'declared'))).code).toBe('MANIFEST_TOO_LARGE');
    const err = await failure(fetchManifest(t, target, 'streamed'));
    expect(err.code).toBe('MANIFEST_TOO_LARGE');
    await new Promise((r) => setTimeout(r, 50));
    expect(aborted).toBe(true);
    expect(written).toBeLessThan(50 * 1024 * 1024);
  });

  it('refuses schema 1 and unknown media types, naming what is supported', async () => {
    const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'repo', tag: 'old', fsLayers: [], signatures: [] }));
    const { t, target } = await fakeRegistry({
      'manifests/signed': { headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'docker-content-digest': sha256('payload') }, body: schema1 },
      'manifests/guessed': { headers: { 'content-type': 'application/json' }, body: schema1 },
      'manifests/helm': { headers: { 'content-type': 'application/vnd.cncf.helm.chart.content.v1.tar+gzip' }, body: 'x' },
    });
    const signed = await failure(fetchManifest(t, target, 'signed'));
    expect(signed.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(signed.message).toMatch(/schema 1 .*prettyjws.*supported: application\/vnd\.oci\.image\.manifest\.v1\+json/);
    expect((await failure(fetchManifest(t, target, 'guessed'))).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect((await failure(fetchManifest(t, target, 'helm'))).message).toMatch(/helm.*not supported/);
  });

  it.each<[string, string, RegExp]>([
    ['not json', OCI_MANIFEST, /not valid JSON/],
    ['[]', OCI_MANIFEST, /not a JSON object/],
    [JSON.stringify({ schemaVersion: 1, config: {}, layers: [] }), OCI_MANIFEST, /schemaVersion is 1/],
    [JSON.stringify({ schemaVersion: 2, layers: [] }), OCI_MANIFEST, /"config" descriptor is missing/],
    [JSON.stringify({ schemaVersion: 2, config: layer }), OCI_MANIFEST, /"layers" list is missing/],
    [JSON.stringify({ schemaVersion: 2, config: layer, layers: [{ ...layer, digest: 'sha256:abc' }] }), OCI_MANIFEST, /layers\[0\]\.digest/],
    [JSON.stringify({ schemaVersion: 2, config: layer, layers: [{ ...layer, size: -1 }] }), OCI_MANIFEST, /layers\[0\]\.size/],
    [JSON.stringify({ schemaVersion: 2, manifests: [{ ...layer, platform: { os: 'linux' } }] }), OCI_INDEX, /manifests\[0\]\.platform/],
    [JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), OCI_MANIFEST, /Content-Type says .*manifest.* but the manifest says .*index/],
  ])('refuses %s as INVALID_MANIFEST', async (body, contentType, message) => {
    const { t, target } = await fakeRegistry({ 'manifests/bad': { headers: { 'content-type': contentType }, body } });
    const err = await failure(fetchManifest(t, target, 'bad'));
    expect(err.code).toBe('INVALID_MANIFEST');
    expect(err.message).toMatch(message);
  });

  it('rejects references that are neither tag nor digest, and classifies a missing tag', async () => {
    const { t, target } = await fakeRegistry({});
    expect((await failure(fetchManifest(t, target, '../etc'))).code).toBe('INVALID_REFERENCE');
    expect((await failure(fetchManifest(t, target, 'sha256:short'))).code).toBe('INVALID_REFERENCE');
    expect((await failure(fetchManifest(t, { ...target, repository: 'UP/../x' }, 'v1'))).code).toBe('INVALID_REFERENCE');
    const missing = await failure(fetchManifest(t, target, 'nope'));
    expect([missing.code, missing.message]).toEqual(['MANIFEST_UNKNOWN', expect.stringMatching(/^manifest nope of repo: manifest unknown \(HTTP 404 from 127\.0\.0\.1:\d+\)$/)]);
  });
});

const entry = (platform: Descriptor['platform'], digest = sha256(JSON.stringify(platform ?? null)), mediaType = OCI_MANIFEST): Descriptor => ({ mediaType, digest, size: 10, ...(platform ? { platform } : {}) });
const index: ImageIndex = {
  schemaVersion: 2,
  manifests: [
    entry({ os: 'linux', architecture: 'amd64' }),
    entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }),
    entry({ os: 'linux', architecture: 'arm', variant: 'v7' }),
    entry({ os: 'unknown', architecture: 'unknown' }),
    entry(undefined),
  ],
};

describe('selectPlatform', () => {
  it('picks the containerd match', () => {
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm64' })).toBe(index.manifests[1]);
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm' })).toBe(index.manifests[2]);
    expect(selectPlatform(index, { os: 'linux', architecture: 'x86_64' })).toBe(index.manifests[0]);
  });

  it('lists the platforms available when none matches, leaving out attestations', () => {
    expect(() => selectPlatform(index, { os: 'linux', architecture: 's390x' })).toThrow(
      expect.objectContaining({ code: 'PLATFORM_NOT_FOUND', message: 'no image for linux/s390x in the index; available: linux/amd64, linux/arm64, linux/arm/v7' }),
    );
    expect(() => selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' })).toThrow(/no image for linux\/arm\/v6/);
  });
});

describe('resolveImage', () => {
  const idx = (child: Buffer, extra: Partial<Descriptor> = {}, type = OCI_INDEX) =>
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: type, manifests: [
      { mediaType: OCI_MANIFEST, digest: sha256('x'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: OCI_MANIFEST, digest: sha256(child), size: child.length, platform: { os: 'linux', architecture: 'arm64' }, ...extra },
    ] }));

  it('walks index → platform manifest → config', async () => {
    const top = idx(manifest);
    const { t, target } = await fakeRegistry({
      'manifests/multi': { headers: { 'content-type': OCI_INDEX }, body: top },
      [`manifests/${sha256(manifest)}`]: { headers: ociHeaders, body: manifest },
      [`blobs/${sha256(config)}`]: { body: config },
    });
    const r = await resolveImage(t, target, 'multi', { os: 'linux', architecture: 'arm64' });
    expect(r).toMatchObject({ topDigest: sha256(top), topMediaType: OCI_INDEX, manifestDigest: sha256(manifest), manifestMediaType: OCI_MANIFEST, layers: [layer] });
    expect(r.configDescriptor.digest).toBe(sha256(config));
    expect(r.configBytes.equals(config)).toBe(true);
    expect(r.config).toMatchObject({ architecture: 'arm64' });
    // The config declares arm64 v8: the default variant is dropped for matching but kept in the record.
    expect(r.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(r.topBytes.equals(top)).toBe(true);
  });

  it('accepts a single manifest of another platform, reporting the real one (podman behaviour)', async () => {
    const { t, target } = await fakeRegistry({ 'manifests/one': { headers: ociHeaders, body: manifest }, [`blobs/${sha256(config)}`]: { body: config } });
    const r = await resolveImage(t, target, 'one', { os: 'linux', architecture: 'amd64' });
    expect([r.topDigest, r.manifestDigest]).toEqual([sha256(manifest), sha256(manifest)]);
    expect(r.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  });

  it('refuses a child whose size disagrees with the index, a nested index, and a corrupt config', async () => {
    const nested = idx(manifest, {}, DOCKER_MANIFEST_LIST);
    const badConfig = manifestOf(Buffer.from('{"os":"linux"}'));
    const notJsonConfig = manifestOf(Buffer.from('nope'));
    const { t, target } = await fakeRegistry({
      'manifests/sized': { headers: { 'content-type': OCI_INDEX }, body: idx(manifest, { size: manifest.length + 1 }) },
      [`manifests/${sha256(manifest)}`]: { headers: ociHeaders, body: manifest },
      'manifests/nested': { headers: { 'content-type': OCI_INDEX }, body: idx(nested, { mediaType: OCI_MANIFEST }) },
      [`manifests/${sha256(nested)}`]: { headers: { 'content-type': DOCKER_MANIFEST_LIST }, body: nested },
      'manifests/corrupt': { headers: ociHeaders, body: badConfig },
      [`blobs/${sha256('{"os":"linux"}')}`]: { body: '{"os":"LINUX"}' },
      'manifests/notjson': { headers: ociHeaders, body: notJsonConfig },
      [`blobs/${sha256('nope')}`]: { body: 'nope' },
    });
    const arm64 = { os: 'linux', architecture: 'arm64' };
    expect((await failure(resolveImage(t, target, 'sized', arm64))).code).toBe('SIZE_MISMATCH');
    expect((await failure(resolveImage(t, target, 'nested', arm64))).message).toMatch(/nested indexes are not supported/);
    expect((await failure(resolveImage(t, target, 'corrupt', arm64))).code).toBe('DIGEST_MISMATCH');
    expect((await failure(resolveImage(t, target, 'notjson', arm64))).code).toBe('INVALID_MANIFEST');
  });

  it('refuses a config larger than 8 MiB before downloading it', async () => {
    const huge = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: OCI_CONFIG, digest: sha256('x'), size: 9 * 1024 * 1024 }, layers: [] }));
    const { t, target } = await fakeRegistry({ 'manifests/huge': { headers: ociHeaders, body: huge } });
    const err = await failure(resolveImage(t, target, 'huge', { os: 'linux', architecture: 'amd64' }));
    expect(err.code).toBe('MANIFEST_TOO_LARGE');
    expect(err.message).toMatch(/image config/);
  });
});
