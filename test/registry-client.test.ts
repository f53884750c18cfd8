/**
 * The registry client against real registries (Distribution's docker-registry on 127.0.0.1, pushed
 * with the fixture images): anonymous, Basic and token auth, TLS with a private CA, OCI index platform
 * resolution, Docker schema 2, blob streaming and resume, tag lists, and faults injected by the front.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
  parsePlatform,
  formatPlatform,
  RegistryClient,
  RegistryError,
  type RepositoryTarget,
  type RetryEvent,
} from '../src/registry/index.js';
import { moveTag, pushSchema1, pushStandardFixtures, type StandardFixtures } from './helpers/fixtures.js';
import { startRegistry, stopAll, type TestRegistry } from './helpers/registry-server.js';
import { failure } from './helpers/registry-failure.js';

const users = { alice: 'wonderland' };
const alice = { username: 'alice', password: 'wonderland' };
let anon: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;
let secure: TestRegistry;
const fixtures = new Map<TestRegistry, StandardFixtures>();
const retries: RetryEvent[] = [];
let client: RegistryClient;

beforeAll(async () => {
  [anon, basic, token, secure] = await Promise.all([
    startRegistry({ schema1: true }),
    startRegistry({ auth: { kind: 'basic', users } }),
    startRegistry({ auth: { kind: 'token', users, token: { anonymousPull: ['multi/platform'], refreshTokens: { 'identity-of-alice': 'alice' } } } }),
    startRegistry({ tls: true }),
  ]);
  await Promise.all([anon, basic, token, secure].map(async (r) => fixtures.set(r, await pushStandardFixtures(r))));
  client = new RegistryClient({
    userAgent: 'berth-test',
    retryBaseDelayMs: 10,
    onRetry: (e) => retries.push(e),
    tlsOptionsFor: (host) => (host === secure.host ? { ca: [secure.caCertPem!] } : undefined),
  });
});

afterAll(async () => {
  await client?.close();
  await stopAll();
});

const target = (r: TestRegistry, repository: string, extra: Partial<RepositoryTarget> = {}): RepositoryTarget => ({ registry: r.host, repository, ...extra });

async function sha256Of(body: Readable): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    chunks.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  return { digest: `sha256:${hash.digest('hex')}`, size: bytes.length, bytes };
}

describe('anonymous registry', () => {
  it('resolves the OCI index to each of its 3 platforms', async () => {
    const index = fixtures.get(anon)!.multiPlatform;
    const declared = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'];
    for (const [i, name] of ['linux/amd64', 'linux/arm64', 'linux/arm/v7'].entries()) {
      const child = index.children[i]!;
      const r = await client.resolveImage(target(anon, 'multi/platform'), '1', parsePlatform(name));
      expect(r).toMatchObject({ topDigest: index.indexDigest, topMediaType: OCI_INDEX, manifestDigest: child.manifestDigest, manifestMediaType: OCI_MANIFEST });
      // Matched as containerd matches; reported as the image declares itself (arm64 keeps v8).
      expect(formatPlatform(r.platform)).toBe(declared[i]);
      expect(r.manifestBytes.equals(child.manifestBytes)).toBe(true);
      expect(r.configBytes.equals(child.configBytes)).toBe(true);
      expect(r.layers.map((l) => [l.digest, l.size, l.mediaType])).toEqual(child.layers.map((l) => [l.digest, l.size, l.mediaType]));
    }
    const r = await client.resolveImage(target(anon, 'multi/platform'), index.indexDigest, parsePlatform('linux/arm64/v8'));
    expect(r.manifestDigest).toBe(index.children[1]!.manifestDigest);
  });

  it('says which platforms an index offers when the wanted one is missing', async () => {
    const err = await failure(client.resolveImage(target(anon, 'multi/platform'), '1', parsePlatform('linux/s390x')));
    expect(err.code).toBe('PLATFORM_NOT_FOUND');
    expect(err.message).toMatch(/available: linux\/amd64, linux\/arm64, linux\/arm\/v7$/);
  });

  it('reads Docker schema 2 manifests and manifest lists', async () => {
    const f = fixtures.get(anon)!;
    const single = await client.resolveImage(target(anon, 'docker/v2s2'), '1', parsePlatform('linux/amd64'));
    expect(single).toMatchObject({ topDigest: f.dockerV2s2.manifestDigest, manifestDigest: f.dockerV2s2.manifestDigest, manifestMediaType: DOCKER_MANIFEST });
    expect(single.configDescriptor.mediaType).toBe(DOCKER_CONFIG);
    const list = await client.resolveImage(target(anon, 'docker/list'), '1', parsePlatform('linux/arm64'));
    expect(list).toMatchObject({ topDigest: f.dockerList.indexDigest, topMediaType: DOCKER_MANIFEST_LIST, manifestDigest: f.dockerList.children[1]!.manifestDigest });
  });

  it('streams every layer with the right digest, and resumes with Range', async () => {
    const image = fixtures.get(anon)!.multiLayers;
    const r = await client.resolveImage(target(anon, 'multi/layers'), '1', parsePlatform('linux/amd64'));
    for (const layer of r.layers) {
      const blob = await client.getBlob(target(anon, 'multi/layers'), layer);
      expect(await sha256Of(blob.body)).toMatchObject({ digest: layer.digest, size: layer.size });
    }
    const layer = r.layers.reduce((a, b) => (b.size > a.size ? b : a));
    const whole = (await sha256Of((await client.getBlob(target(anon, 'multi/layers'), layer)).body)).bytes;
    anon.clearRequestLog();
    const half = Math.floor(layer.size / 2);
    const rest = await client.getBlob(target(anon, 'multi/layers'), layer, { offset: half });
    expect(rest.offset).toBe(half);
    expect((await sha256Of(rest.body)).bytes.equals(whole.subarray(half))).toBe(true);
    expect(anon.requestLog().find((l) => l.path.endsWith(layer.digest))).toMatchObject({ range: `bytes=${half}-`, status: 206, userAgent: 'berth-test' });
    expect(image.layers.map((l) => l.digest)).toContain(layer.digest);
  });

  it('reports unknown tags and repositories with the registry codes', async () => {
    const tag = await failure(client.getManifest(target(anon, 'multi/layers'), 'nope'));
    expect([tag.code, tag.status, tag.temporary]).toEqual(['MANIFEST_UNKNOWN', 404, false]);
    expect(tag.message).toMatch(new RegExp(`manifest unknown.*${anon.host}`));
    // Distribution 2.8 answers MANIFEST_UNKNOWN for a manifest of an unknown repository; tags/list says NAME_UNKNOWN.
    expect((await failure(client.getManifest(target(anon, 'no/such'), '1'))).code).toBe('MANIFEST_UNKNOWN');
    expect((await failure(client.listTags(target(anon, 'no/such')))).code).toBe('NAME_UNKNOWN');
    const blob = await failure(client.getBlob(target(anon, 'multi/layers'), { mediaType: OCI_MANIFEST, digest: `sha256:${'0'.repeat(64)}`, size: 1 }));
    expect(blob.code).toBe('BLOB_UNKNOWN');
  });

  it('refuses schema 1 manifests', async () => {
    const old = await pushSchema1(anon, fixtures.get(anon)!.dockerV2s2, 'legacy/schema1', 'old');
    const err = await failure(client.getManifest(target(anon, 'legacy/schema1'), 'old'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(err.message).toMatch(/schema 1/);
    expect(old.manifestDigest).toMatch(/^sha256:/);
  });

  it('lists tags, asking for pages of the given size', async () => {
    const f = fixtures.get(anon)!;
    await Promise.all(['2', '3', '4', '5'].map((t) => moveTag(anon, 'multi/layers', t, f.multiLayers)));
    anon.clearRequestLog();
    expect((await client.listTags(target(anon, 'multi/layers'), { pageSize: 2 })).sort()).toEqual(['1', '2', '3', '4', '5']);
    // Distribution 2.8 ignores `n` and answers everything at once; Link pagination is proven in client.test.ts.
    expect(anon.requestLog().find((l) => l.path.endsWith('/tags/list'))?.query).toBe('n=2');
  });

  it('retries faults the front injects: 429 with Retry-After, 503, and a reset', async () => {
    const faults = ['429', '503', 'reset'];
    anon.intercept(({ url }) => {
      if (!url.includes('/manifests/')) return undefined;
      const fault = faults.shift();
      if (fault === 'reset') return 'reset';
      if (fault === '429') return { status: 429, headers: { 'retry-after': '0' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' };
      if (fault === '503') return { status: 503, body: 'busy' };
      return undefined;
    });
    retries.length = 0;
    const client4 = new RegistryClient({ retryBaseDelayMs: 10, maxTries: 4, onRetry: (e) => retries.push(e) });
    try {
      const m = await client4.getManifest(target(anon, 'docker/v2s2'), '1');
      expect(m.digest).toBe(fixtures.get(anon)!.dockerV2s2.manifestDigest);
      expect(retries.map((e) => e.reason)).toEqual(['HTTP 429', 'HTTP 503', expect.stringMatching(/ECONNRESET|socket|closed/i)]);
    } finally {
      anon.intercept(null);
      await client4.close();
    }
  });

  it('fails a blob cut mid-body as temporary, and resumes it', async () => {
    const layer = fixtures.get(anon)!.multiLayers.layers[1]!;
    const descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    anon.intercept(({ url }) => (url.includes('/blobs/') ? { forward: true, truncateAfter: 100 } : undefined));
    let received: Buffer;
    try {
      const blob = await client.getBlob(target(anon, 'multi/layers'), descriptor);
      const chunks: Buffer[] = [];
      const err = await failure((async () => {
        for await (const c of blob.body) chunks.push(c as Buffer);
      })());
      expect([err.code, err.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
      received = Buffer.concat(chunks);
    } finally {
      anon.intercept(null);
    }
    const rest = await client.getBlob(target(anon, 'multi/layers'), descriptor, { offset: received.length });
    const all = Buffer.concat([received, (await sha256Of(rest.body)).bytes]);
    expect(`sha256:${createHash('sha256').update(all).digest('hex')}`).toBe(layer.digest);
  });
});

describe('Basic auth registry', () => {
  it('pulls with the user and password, sent only as Basic', async () => {
    basic.clearRequestLog();
    const r = await client.resolveImage(target(basic, 'multi/platform', { credentials: alice }), '1', parsePlatform('linux/arm64'));
    expect(r.manifestDigest).toBe(fixtures.get(basic)!.multiPlatform.children[1]!.manifestDigest);
    const authorized = basic.requestLog().filter((l) => l.path !== '/v2/');
    expect(authorized.every((l) => l.authorization === 'basic' && l.user === 'alice')).toBe(true);
  });

  it('refuses missing or wrong credentials as UNAUTHORIZED, without echoing them', async () => {
    const none = await failure(client.getManifest(target(basic, 'multi/layers'), '1'));
    expect([none.code, none.temporary]).toEqual(['UNAUTHORIZED', false]);
    expect(none.message).toMatch(/no credentials were given/);
    const wrong = await failure(client.getManifest(target(basic, 'multi/layers', { credentials: { username: 'alice', password: 'rabbit-hole' } }), '1'));
    expect(wrong.code).toBe('UNAUTHORIZED');
    expect(`${wrong.message} ${JSON.stringify(wrong.errors)}`).not.toContain('rabbit-hole');
  });
});

describe('token auth registry', () => {
  it('gets one token per repository with Basic credentials and reuses it for every blob', async () => {
    token.tokenServer!.clearRequests();
    const t = target(token, 'multi/layers', { credentials: alice });
    const r = await client.resolveImage(t, '1', parsePlatform('linux/amd64'));
    await Promise.all(r.layers.map(async (l) => sha256Of((await client.getBlob(t, l)).body)));
    const requests = token.tokenServer!.requests();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: 'GET', grant: 'basic', user: 'alice', scopes: ['repository:multi/layers:pull'], status: 200 });
  });

  it('pulls anonymously where the token server allows it, and is refused elsewhere', async () => {
    const r = await client.resolveImage(target(token, 'multi/platform'), '1', parsePlatform('linux/arm/v7'));
    expect(r.manifestDigest).toBe(fixtures.get(token)!.multiPlatform.children[2]!.manifestDigest);
    expect((await failure(client.getManifest(target(token, 'docker/v2s2'), '1'))).code).toBe('UNAUTHORIZED');
  });

  it('exchanges an identity token with the OAuth2 refresh_token grant', async () => {
    token.tokenServer!.clearRequests();
    const m = await client.getManifest(target(token, 'docker/v2s2', { credentials: { identityToken: 'identity-of-alice' } }), '1');
    expect(m.mediaType).toBe(DOCKER_MANIFEST);
    expect(token.tokenServer!.requests()[0]).toMatchObject({ method: 'POST', grant: 'refresh_token', user: 'alice', clientId: 'berth' });
  });

  it('refuses wrong credentials at the token server', async () => {
    const err = await failure(client.getManifest(target(token, 'docker/v2s2', { credentials: { username: 'alice', password: 'nope' } }), '1'));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/token for repository:docker\/v2s2:pull/);
  });
});

describe('TLS registry', () => {
  it('trusts a registry whose CA is configured for its host', async () => {
    const m = await client.getManifest(target(secure, 'docker/v2s2', { insecure: false }), '1');
    expect(m.digest).toBe(fixtures.get(secure)!.dockerV2s2.manifestDigest);
  });

  it('refuses an unknown CA as a permanent failure that says what to do', async () => {
    const plain = new RegistryClient();
    try {
      const err = await failure(plain.getManifest(target(secure, 'docker/v2s2', { insecure: false }), '1'));
      expect([err.code, err.temporary]).toEqual(['REGISTRY_UNAVAILABLE', false]);
      expect(err.message).toMatch(/TLS verification .* failed.*CA/);
    } finally {
      await plain.close();
    }
  });
});
