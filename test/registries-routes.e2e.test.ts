/**
 * Remote look-ups without pulling (like skopeo inspect and list-tags) and the effective registry
 * configuration, against real registries configured through registries.conf and auth.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { layer, pushImage, pushStandardFixtures, type StandardFixtures } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

const PASSWORD = 's3cret-in-auth-json';

let primary: TestRegistry;
let mirror: TestRegistry;
let basic: TestRegistry;
let fixtures: StandardFixtures;
let berth: TestBerth;
let dir: string;

beforeAll(async () => {
  [primary, mirror, basic] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: { kind: 'basic', users: { bob: PASSWORD } } }),
  ]);
  fixtures = await pushStandardFixtures({ url: primary.url });
  // The mirror holds one image only, under another tag, so tests can tell who answered.
  await pushImage({ url: mirror.url }, 'mirrored/only', 'm', { layers: [layer({ mirror: 'yes\n' })] });
  await pushImage({ url: basic.url, credentials: basic.credentials }, 'private/app', '1', { layers: [layer({ p: '1\n' })] });

  dir = await mkdtemp(path.join(tmpdir(), 'berth-registries-'));
  const conf = path.join(dir, 'registries.conf');
  await writeFile(
    conf,
    `unqualified-search-registries = ["${primary.host}"]

[[registry]]
location = "${primary.host}"
[[registry.mirror]]
location = "${mirror.host}"

[[registry]]
location = "127.0.0.1:9"
blocked = true

[aliases]
"layered" = "${primary.host}/multi/layers"
`,
  );
  const auth = path.join(dir, 'auth.json');
  await writeFile(auth, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from(`bob:${PASSWORD}`).toString('base64') } } }));
  berth = await startBerth({ REGISTRIES_CONF: conf, AUTH_FILE: auth });
});

afterAll(async () => {
  await berth?.close();
  await Promise.all([primary?.stop(), mirror?.stop(), basic?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('GET /v1/registries/inspect', () => {
  it('describes what a pull of a three-platform index for linux/arm64 would get', async () => {
    const arm64 = fixtures.multiPlatform.children.find((c) => c.platform.architecture === 'arm64')!;
    const res = await api(berth.url, 'GET', `/v1/registries/inspect?image=${primary.host}/multi/platform:1&platform=linux/arm64`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: `${primary.host}/multi/platform:1`,
      source: `${primary.host}/multi/platform`,
      digest: fixtures.multiPlatform.indexDigest,
      manifestDigest: arm64.manifestDigest,
      id: arm64.configDigest,
      platform: 'linux/arm64/v8',
      platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'],
      size: arm64.configSize + arm64.layersSize,
      labels: { platform: 'linux/arm64/v8' },
      layers: arm64.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    });
  });

  it('resolves a short name and an alias like a pull, through the configured search list', async () => {
    const short = await api(berth.url, 'GET', '/v1/registries/inspect?image=multi/layers:1');
    expect(short.status).toBe(200);
    expect(short.body).toMatchObject({ name: `${primary.host}/multi/layers:1`, id: fixtures.multiLayers.configDigest });
    const alias = await api(berth.url, 'GET', '/v1/registries/inspect?image=layered:1');
    expect(alias.body).toMatchObject({ name: `${primary.host}/multi/layers:1`, id: fixtures.multiLayers.configDigest });
  });

  it('answers from the mirror when the mirror holds the image', async () => {
    const res = await api(berth.url, 'GET', `/v1/registries/inspect?image=${primary.host}/mirrored/only:m`);
    expect(res.status).toBe(200);
    expect(res.body.source).toBe(`${mirror.host}/mirrored/only`);
  });

  it('uses the credentials of auth.json for the registry they are meant for', async () => {
    const res = await api(berth.url, 'GET', `/v1/registries/inspect?image=${basic.host}/private/app:1`);
    expect(res.status).toBe(200);
    expect(basic.requestLog().some((r) => r.authorization === 'basic' && r.user === 'bob')).toBe(true);
  });

  it('answers 502 listing every source tried, the primary first in the message', async () => {
    const res = await api(berth.url, 'GET', `/v1/registries/inspect?image=${primary.host}/multi/layers:nope`);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('MANIFEST_UNKNOWN');
    expect(res.body.detail).toMatch(new RegExp(`^${primary.host}/multi/layers: .*\\(Mirrors also failed: \\[${mirror.host}/multi/layers: `));
    expect(res.body.attempts.map((a: { source: string }) => a.source)).toEqual([`${mirror.host}/multi/layers`, `${primary.host}/multi/layers`]);
  });

  it('refuses a blocked registry with 403 before sending anything', async () => {
    const res = await api(berth.url, 'GET', '/v1/registries/inspect?image=127.0.0.1:9/any/thing:1');
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('REGISTRY_BLOCKED');
  });
});

describe('GET /v1/registries/tags', () => {
  it('lists the tags of a repository', async () => {
    await pushImage({ url: primary.url }, 'multi/platform', '2', { layers: [layer({ two: '2\n' })] });
    const res = await api(berth.url, 'GET', `/v1/registries/tags?repository=${primary.host}/multi/platform`);
    expect(res.status).toBe(200);
    expect(res.body.repository).toBe(`${primary.host}/multi/platform`);
    expect([...res.body.tags].sort()).toEqual(['1', '2']);
  });

  it('answers 400 for a repository that is not a valid name', async () => {
    const res = await api(berth.url, 'GET', '/v1/registries/tags?repository=NOT//valid');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_REFERENCE');
  });
});

describe('GET /v1/registries', () => {
  it('shows the effective configuration and never a secret', async () => {
    const res = await api(berth.url, 'GET', '/v1/registries');
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    expect(text).toContain(primary.host);
    expect(text).toContain(mirror.host);
    expect(text).toContain(basic.host); // the host that has credentials…
    expect(text).not.toContain(PASSWORD); // …but never the credentials
    expect(text).not.toContain(Buffer.from(`bob:${PASSWORD}`).toString('base64'));
  });
});
