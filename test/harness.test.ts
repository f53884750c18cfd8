/**
 * Proves the test harness itself against the reference peer, skopeo: what the fixtures say they
 * pushed is what a real client reads back, in every auth mode, over TLS, and through a pull-through
 * mirror; and the request log tells whether credentials reached a registry. Only 127.0.0.1 is used.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteManifest,
  layer,
  moveTag,
  pushImage,
  pushSchema1,
  pushStandardFixtures,
  randomLayer,
  sha256,
  type StandardFixtures,
  USER_AGENT,
} from './helpers/fixtures.js';
import { startRegistry, stopAll, type TestRegistry } from './helpers/registry-server.js';

const run = promisify(execFile);
const users = { alice: 'wonderland' };
const work = mkdtempSync(join(tmpdir(), 'berth-harness-'));
// Keep skopeo away from this machine's credentials and registry settings.
writeFileSync(join(work, 'auth.json'), '{}');
writeFileSync(join(work, 'registries.conf'), '');
const skopeoEnv = { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json'), CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf') };

/** Runs skopeo asynchronously (a sync child would block the registry fronts living in this process). */
async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { env: skopeoEnv, timeout: 20_000, maxBuffer: 16 << 20, encoding: 'utf8' });
  return stdout;
}

/** skopeo's error text for a call expected to fail. */
async function skopeoFails(args: string[]): Promise<string> {
  try {
    await skopeo(args);
  } catch (err) {
    return String((err as { stderr?: string }).stderr);
  }
  throw new Error(`skopeo ${args.join(' ')} succeeded`);
}

/** What `skopeo inspect` (1.9) prints, in part. For an index, Digest is the index's, the rest the chosen child's. */
interface Inspect {
  Digest: string;
  Os: string;
  Architecture: string;
  Created: string;
  Env: string[];
  Labels: Record<string, string> | null;
  Layers: string[];
}

const plain = ['--tls-verify=false'];
const platformName = (p: { os: string; architecture: string; variant?: string }) =>
  [p.os, p.architecture, p.variant].filter(Boolean).join('/');
const creds = ['--tls-verify=false', '--creds', 'alice:wonderland'];

let anon: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;
let secure: TestRegistry;
const fixtures = new Map<TestRegistry, StandardFixtures>();
const of = (r: TestRegistry): StandardFixtures => fixtures.get(r)!;

beforeAll(async () => {
  [anon, basic, token, secure] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: { kind: 'basic', users } }),
    startRegistry({ auth: { kind: 'token', users, token: { anonymousPull: ['public/*'] } } }),
    startRegistry({ tls: true }),
  ]);
  await Promise.all([anon, basic, token, secure].map(async (r) => fixtures.set(r, await pushStandardFixtures(r))));
});

afterAll(async () => {
  const pids = [anon, basic, token, secure].filter(Boolean).map((r) => r.pid);
  await stopAll();
  rmSync(work, { recursive: true, force: true });
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
});

describe('fixtures as skopeo reads them', () => {
  it('agree on manifest bytes, digests and layers (anonymous registry)', async () => {
    const f = of(anon);
    const [raw, inspect, config] = await Promise.all([
      skopeo(['inspect', ...plain, '--raw', `docker://${f.multiLayers.reference}`]),
      skopeo(['inspect', ...plain, `docker://${f.multiLayers.reference}`]),
      skopeo(['inspect', ...plain, '--config', '--raw', `docker://${f.multiLayers.reference}`]),
    ]);
    expect(Buffer.from(raw)).toEqual(f.multiLayers.manifestBytes);
    expect(sha256(raw)).toBe(f.multiLayers.manifestDigest);
    const parsed = JSON.parse(inspect) as Inspect;
    expect(parsed.Digest).toBe(f.multiLayers.manifestDigest);
    expect(parsed.Layers).toEqual(f.multiLayers.layers.map((l) => l.digest));
    expect([parsed.Os, parsed.Architecture, parsed.Created, parsed.Env]).toEqual(['linux', 'amd64', '2000-01-01T00:00:00Z', ['PATH=/usr/bin:/bin', 'APP_MODE=test']]);
    expect(parsed.Labels).toEqual({ 'org.opencontainers.image.title': 'multi-layers' });
    expect(f.multiLayers.layers.length).toBeGreaterThanOrEqual(3);
    expect(sha256(config)).toBe(f.multiLayers.configDigest);
  });

  it('agree on the OCI index and each platform', async () => {
    const index = of(anon).multiPlatform;
    const raw = await skopeo(['inspect', ...plain, '--raw', `docker://${index.reference}`]);
    expect(sha256(raw)).toBe(index.indexDigest);
    const children = await Promise.all(
      index.children.map((c) =>
        skopeo([
          '--override-arch', c.platform.architecture,
          ...(c.platform.variant ? ['--override-variant', c.platform.variant] : []),
          'inspect', ...plain, `docker://${index.reference}`,
        ]),
      ),
    );
    children.forEach((text, i) => {
      const child = JSON.parse(text) as Inspect;
      expect(child.Digest).toBe(index.indexDigest);
      expect(child.Architecture).toBe(index.children[i]!.platform.architecture);
      expect(child.Layers).toEqual(index.children[i]!.layers.map((l) => l.digest));
      expect(child.Labels).toEqual({ platform: platformName(index.children[i]!.platform) });
    });
    expect(new Set(index.children.map((c) => c.layers[0]!.digest)).size).toBe(3);
    expect(new Set(index.children.map((c) => c.configDigest)).size).toBe(3);
  });

  it('agree on the Docker v2s2 image, the manifest list and the shared layer', async () => {
    const f = of(anon);
    const [v2s2, list, one, two] = await Promise.all([
      skopeo(['inspect', ...plain, '--raw', `docker://${f.dockerV2s2.reference}`]),
      skopeo(['inspect', ...plain, '--raw', `docker://${f.dockerList.reference}`]),
      skopeo(['inspect', ...plain, `docker://${f.sharedOne.reference}`]),
      skopeo(['inspect', ...plain, `docker://${f.sharedTwo.reference}`]),
    ]);
    expect(sha256(v2s2)).toBe(f.dockerV2s2.manifestDigest);
    expect(JSON.parse(v2s2).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(sha256(list)).toBe(f.dockerList.indexDigest);
    const [layersOne, layersTwo] = [one, two].map((t) => (JSON.parse(t) as Inspect).Layers);
    expect(layersOne![0]).toBe(f.sharedLayer.digest);
    expect(layersTwo![0]).toBe(f.sharedLayer.digest);
    expect(layersOne![1]).not.toBe(layersTwo![1]);
  });

  it('copy with digest checks into an OCI layout, all platforms', async () => {
    const index = of(anon).multiPlatform;
    const dir = join(work, 'oci-all');
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${index.reference}`, `oci:${dir}:1`]);
    const layout = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(layout.manifests[0]!.digest).toBe(index.indexDigest);
    for (const child of index.children)
      for (const l of child.layers) expect(sha256(readFileSync(join(dir, 'blobs', l.digest.replace(':', '/'))))).toBe(l.digest);
  });

  it('the anonymous registry log shows no Authorization, and tells fixture traffic apart', () => {
    const log = anon.requestLog();
    expect(log.length).toBeGreaterThan(0);
    expect(log.every((e) => e.authorization === 'none')).toBe(true);
    expect(log.some((e) => e.userAgent === USER_AGENT && e.method === 'PUT')).toBe(true);
    expect(log.some((e) => e.userAgent.startsWith('skopeo') && e.path === '/v2/multi/layers/manifests/1')).toBe(true);
  });
});

describe('auth modes', () => {
  it('basic: skopeo needs --creds, and the log shows whose Basic credentials came', async () => {
    const f = of(basic);
    basic.clearRequestLog();
    expect(await skopeoFails(['inspect', ...plain, `docker://${f.multiLayers.reference}`])).toMatch(/unauthorized|authentication required/i);
    const inspect = JSON.parse(await skopeo(['inspect', ...creds, `docker://${f.multiLayers.reference}`])) as Inspect;
    expect(inspect.Digest).toBe(f.multiLayers.manifestDigest);
    const log = basic.requestLog();
    expect(log.some((e) => e.path === '/v2/' && e.authorization === 'none' && e.status === 401)).toBe(true);
    const manifestReads = log.filter((e) => e.path === '/v2/multi/layers/manifests/1');
    // skopeo 1.9 without --creds still answers the Basic challenge, with an empty user and password.
    expect(manifestReads.filter((e) => e.status === 401).map((e) => [e.authorization, e.user])).toEqual([['basic', '']]);
    expect(manifestReads.filter((e) => e.status === 200).map((e) => [e.authorization, e.user])).toEqual([['basic', 'alice']]);
  });

  it('token: users get tokens, anonymous callers only for allowlisted repos', async () => {
    const f = of(token);
    await pushImage(token, 'public/hello', '1', { layers: [layer({ hello: 'world\n' })] });
    token.tokenServer!.clearRequests();
    token.clearRequestLog();
    const [authed, anonymousPublic, denied] = await Promise.all([
      skopeo(['inspect', ...creds, `docker://${f.multiLayers.reference}`]),
      skopeo(['inspect', ...plain, `docker://${token.host}/public/hello:1`]),
      skopeoFails(['inspect', ...plain, `docker://${f.multiLayers.reference}`]),
    ]);
    expect((JSON.parse(authed) as Inspect).Digest).toBe(f.multiLayers.manifestDigest);
    expect((JSON.parse(anonymousPublic) as Inspect).Layers).toHaveLength(1);
    expect(denied).toMatch(/denied|unauthorized/i);
    const requests = token.tokenServer!.requests();
    expect(requests.some((r) => r.user === 'alice' && r.scopes.includes('repository:multi/layers:pull'))).toBe(true);
    expect(requests.some((r) => r.grant === 'anonymous' && r.granted.some((g) => g.name === 'public/hello'))).toBe(true);
    expect(requests.some((r) => r.grant === 'anonymous' && r.scopes.includes('repository:multi/layers:pull') && r.granted.length === 0)).toBe(true);
    expect(token.requestLog().some((e) => e.authorization === 'bearer' && e.user === 'alice' && e.status === 200)).toBe(true);
  });

  it('token: OAuth2 password grant hands out a refresh token that the refresh grant accepts', async () => {
    const ts = token.tokenServer!;
    const form = (fields: Record<string, string>) => ({
      method: 'POST' as const,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const scope = 'repository:multi/layers:pull';
    const first = await request(ts.realm, form({ grant_type: 'password', username: 'alice', password: 'wonderland', service: ts.service, scope, client_id: 'berth-test', access_type: 'offline' }));
    const { refresh_token } = (await first.body.json()) as { refresh_token: string };
    expect(first.statusCode).toBe(200);
    const second = await request(ts.realm, form({ grant_type: 'refresh_token', refresh_token, service: ts.service, scope, client_id: 'berth-test' }));
    const { access_token } = (await second.body.json()) as { access_token: string };
    const manifest = await request(`${token.url}/v2/multi/layers/manifests/1`, {
      headers: { authorization: `Bearer ${access_token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(sha256(Buffer.from(await manifest.body.arrayBuffer()))).toBe(of(token).multiLayers.manifestDigest);
    const bad = await request(ts.realm, form({ grant_type: 'password', username: 'alice', password: 'nope', service: ts.service, scope }));
    await bad.body.dump();
    expect(bad.statusCode).toBe(401);
    expect(JSON.stringify(ts.requests())).not.toMatch(/wonderland|nope|berth-refresh-/);
  });

  it('token: x5c key naming and access_token-only answers work for pushes and for skopeo', async () => {
    const r = await startRegistry({ auth: { kind: 'token', users, token: { keyId: 'x5c', response: 'access_token', expiresIn: 5 } } });
    const image = await pushImage(r, 'x5c/image', '1', { layers: [layer({ x: '5c\n' })], format: 'docker' });
    const inspect = JSON.parse(await skopeo(['inspect', ...creds, `docker://${image.reference}`])) as Inspect;
    expect(inspect.Digest).toBe(image.manifestDigest);
    await r.stop();
  });

  it('TLS: skopeo trusts the test CA from certDir and rejects the registry without it', async () => {
    const f = of(secure);
    expect(secure.url).toMatch(/^https:/);
    const [inspect, failure] = await Promise.all([
      skopeo(['inspect', '--cert-dir', secure.certDir!, `docker://${f.multiLayers.reference}`]),
      skopeoFails(['inspect', `docker://${f.multiLayers.reference}`]),
    ]);
    expect((JSON.parse(inspect) as Inspect).Digest).toBe(f.multiLayers.manifestDigest);
    expect(failure).toMatch(/x509|certificate/i);
  });
});

describe('pull-through mirror', () => {
  it('serves what only the token-auth primary holds, and the primary sees the mirror\'s credentials', async () => {
    const mirror = await startRegistry({ proxy: { remoteUrl: token.url, username: 'alice', password: 'wonderland' } });
    token.clearRequestLog();
    const image = of(token).dockerV2s2;
    const raw = await skopeo(['inspect', ...plain, '--raw', `docker://${mirror.host}/${image.repo}:${image.tag}`]);
    expect(sha256(raw)).toBe(image.manifestDigest);
    const fromMirror = token.requestLog().filter((e) => e.path === `/v2/${image.repo}/manifests/1`);
    expect(fromMirror.length).toBeGreaterThan(0);
    expect(fromMirror.every((e) => e.authorization === 'bearer' && e.user === 'alice')).toBe(true);
    expect(mirror.requestLog().every((e) => e.authorization === 'none')).toBe(true);
    await mirror.stop();
  });

  it('an anonymous mirror of an anonymous TLS primary sends no Authorization upstream', async () => {
    const mirror = await startRegistry({ proxy: { remoteUrl: secure.url, caCertPem: secure.caCertPem! } });
    secure.clearRequestLog();
    const image = of(secure).sharedTwo;
    const inspect = JSON.parse(await skopeo(['inspect', ...plain, `docker://${mirror.host}/${image.repo}:1`])) as Inspect;
    expect(inspect.Digest).toBe(image.manifestDigest);
    const upstream = secure.requestLog();
    expect(upstream.some((e) => e.path === `/v2/${image.repo}/manifests/1` && e.userAgent.startsWith('Go-http-client'))).toBe(true);
    expect(upstream.every((e) => e.authorization === 'none')).toBe(true);
    await mirror.stop();
  });
});

describe('builders and tag moves', () => {
  it('layers are deterministic tars that a standard parser reads back', async () => {
    const files = { 'etc/a.txt': 'a\n', 'bin/tool': { content: '#!/bin/sh\n', mode: 0o755 }, 'lnk': { type: 'symlink' as const, linkname: 'etc/a.txt' } };
    const a = layer(files);
    expect(layer(files).digest).toBe(a.digest);
    const entries: { name: string; mtime: number; mode: number; type: string }[] = [];
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      entries.push({ name: header.name, mtime: header.mtime!.getTime() / 1000, mode: header.mode!, type: header.type! });
      stream.resume();
      stream.on('end', next);
    });
    const done = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    Readable.from([gunzipSync(a.data!)]).pipe(extract);
    await done;
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['bin/', 'directory'], ['bin/tool', 'file'], ['etc/', 'directory'], ['etc/a.txt', 'file'], ['lnk', 'symlink'],
    ]);
    expect(entries.every((e) => e.mtime === 946_684_800)).toBe(true);
    expect(entries[1]!.mode).toBe(0o755);
  });

  it('random layers: seeded, streamed or in memory alike, and pulled intact by skopeo', async () => {
    const size = 3 * 1024 * 1024 + 17;
    const inMemory = randomLayer(size, { seed: 'harness' });
    const streamed = randomLayer(size, { seed: 'harness', inMemoryLimit: 0 });
    expect(streamed.data).toBeUndefined();
    expect([streamed.digest, streamed.size, streamed.diffID]).toEqual([inMemory.digest, inMemory.size, inMemory.diffID]);
    expect(randomLayer(size, { seed: 'other' }).digest).not.toBe(inMemory.digest);
    expect(gunzipSync(inMemory.data!).length).toBe(512 + size + ((512 - (size % 512)) % 512) + 1024);
    const image = await pushImage(anon, 'random/big', '1', { layers: [streamed] });
    await skopeo(['copy', '--src-tls-verify=false', `docker://${image.reference}`, `oci:${join(work, 'oci-random')}:1`]);
    expect(sha256(readFileSync(join(work, 'oci-random', 'blobs', 'sha256', streamed.digest.slice(7))))).toBe(streamed.digest);
  });

  it('moveTag re-points a tag, deleteManifest removes an image', async () => {
    const first = await pushImage(anon, 'move/me', '1', { layers: [layer({ v: '1\n' })] });
    const second = await moveTag(anon, 'move/me', '1', { layers: [layer({ v: '2\n' })] });
    const digestOf = async () => (JSON.parse(await skopeo(['inspect', ...plain, `docker://${first.reference}`])) as Inspect).Digest;
    expect(await digestOf()).toBe('manifestDigest' in second ? second.manifestDigest : '');
    await moveTag(anon, 'move/me', '1', first);
    expect(await digestOf()).toBe(first.manifestDigest);
    await deleteManifest(anon, 'move/me', first.manifestDigest);
    expect(await skopeoFails(['inspect', ...plain, '--raw', `docker://${first.digestReference}`])).toMatch(/manifest unknown/i);
  });

  it('schema 1: pushSchema1 gives the digest skopeo computes for the signed manifest', async () => {
    const r = await startRegistry({ schema1: true });
    const image = await pushImage(r, 'old/v2s2', '1', { layers: [layer({ old: 'school\n' })], format: 'docker' });
    const s1 = await pushSchema1(r, image, 'old/v2s1', '1');
    const file = join(work, 'schema1.json');
    writeFileSync(file, s1.manifestBytes);
    expect((await skopeo(['manifest-digest', file])).trim()).toBe(s1.manifestDigest);
    expect(sha256(s1.manifestBytes)).not.toBe(s1.manifestDigest);
    await r.stop();
  });
});

describe('front: faults and lifecycle', () => {
  it('injects answers, resets and truncated bodies, and logs them', async () => {
    const r = await startRegistry();
    const image = await pushImage(r, 'faults/x', '1', { layers: [randomLayer(200_000, { compression: 'none' })] });
    const blob = `${r.url}/v2/faults/x/blobs/${image.layers[0]!.digest}`;
    r.intercept(({ url }) => (url.includes('/manifests/') ? { status: 503, body: 'busy' } : undefined));
    const busy = await request(`${r.url}/v2/faults/x/manifests/1`);
    expect([busy.statusCode, await busy.body.text()]).toEqual([503, 'busy']);
    expect(r.requestLog().at(-1)).toMatchObject({ status: 503, injected: true });
    r.intercept(() => 'reset');
    await expect(request(blob).then((res) => res.body.dump())).rejects.toThrow();
    r.intercept(() => ({ forward: true, truncateAfter: 1000 }));
    await expect(request(blob).then((res) => res.body.arrayBuffer())).rejects.toThrow();
    r.intercept(null);
    const whole = await request(blob, { headers: { range: 'bytes=1000-' } });
    expect([whole.statusCode, (await whole.body.arrayBuffer()).byteLength]).toEqual([206, image.layers[0]!.size - 1000]);
    await r.stop();
    expect(() => process.kill(r.pid, 0)).toThrow();
    await expect(request(`${r.url}/v2/`)).rejects.toThrow();
  });
});
