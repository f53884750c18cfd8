/**
 * Where a pull goes (issue 3), end to end against real Distribution registries on loopback, configured
 * the way operators do: registries.conf (mirrors, digest-only mirrors, blocked registries, search list,
 * aliases), auth.json, REGISTRY_CA_DIR and INSECURE_REGISTRIES. The registries' own request logs prove
 * who was asked for what, and with which credentials.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, pullAndWait } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';
import { layer, pushImage, type PushedImage } from './helpers/fixtures.js';
import { freePort } from './helpers/ports.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';
import { foreignCaPem } from './helpers/tls.js';

const ALICE = { username: 'alice', password: 'request-secret-alice' };
const BOB = { username: 'bob', password: 'file-secret-bob' };
const TOKEN_USER = { username: 'tina', password: 'file-secret-tina' };

let primary: TestRegistry; // holds everything below
let partial: TestRegistry; // a plain mirror holding only mirrored/one, and the first search registry
let proxy: TestRegistry; // a real pull-through mirror of the primary
let basic: TestRegistry; // Basic auth: alice (request) and bob (auth.json)
let foreign: TestRegistry; // the Basic registry's mirror on another host, with Basic auth of its own
let token: TestRegistry; // token auth: tina (auth.json)
let blocked: TestRegistry;
let tlsOwnCa: TestRegistry; // TLS, its CA in REGISTRY_CA_DIR
let tlsWrongCa: TestRegistry; // TLS, another CA in REGISTRY_CA_DIR
let tlsInsecure: TestRegistry; // TLS, no CA, in INSECURE_REGISTRIES
let down: string; // a mirror nobody listens on

const images: Record<string, PushedImage> = {};
let berth: TestBerth;
let emptySearch: TestBerth;
let dir: string;

const img = (name: string) => ({ layers: [layer({ [`${name}.txt`]: `${name}\n` })] });
const basicAuth = (c: { username: string; password: string }) => ({ auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') });
const manifestRequests = (r: TestRegistry, repo: string) => r.requestLog().filter((e) => e.path.startsWith(`/v2/${repo}/manifests/`));

beforeAll(async () => {
  primary = await startRegistry();
  [partial, proxy, basic, foreign, token, blocked, tlsOwnCa, tlsWrongCa, tlsInsecure] = await Promise.all([
    startRegistry(),
    startRegistry({ proxy: { remoteUrl: primary.url } }),
    startRegistry({ auth: { kind: 'basic', users: { [ALICE.username]: ALICE.password, [BOB.username]: BOB.password } } }),
    startRegistry({ auth: { kind: 'basic', users: { mirror: 'mirror-only' } } }),
    startRegistry({ auth: { kind: 'token', users: { [TOKEN_USER.username]: TOKEN_USER.password } } }),
    startRegistry(),
    startRegistry({ tls: true }),
    startRegistry({ tls: true }),
    startRegistry({ tls: true }),
  ]);
  down = `127.0.0.1:${await freePort()}`;
  const pushed = await Promise.all([
    pushImage(primary, 'mirrored/one', '1', img('mirrored-one')),
    pushImage(partial, 'mirrored/one', '1', img('mirrored-one')),
    pushImage(primary, 'mirrored/two', '1', img('mirrored-two')),
    pushImage(primary, 'proxied/app', '1', img('proxied')),
    pushImage(primary, 'digests/app', '1', img('digests')),
    pushImage(primary, 'short/app', '1', img('short')),
    pushImage(partial, 'short/first', '1', img('short-first')),
    pushImage(basic, 'private/app', '1', img('basic-request')),
    pushImage(basic, 'private/file', '1', img('basic-file')),
    pushImage(token, 'private/app', '1', img('token-file')),
    pushImage(blocked, 'any/app', '1', img('blocked')),
    pushImage(tlsOwnCa, 'tls/app', '1', img('tls-own-ca')),
    pushImage(tlsWrongCa, 'tls/app', '1', img('tls-wrong-ca')),
    pushImage(tlsInsecure, 'tls/app', '1', img('tls-insecure')),
  ]);
  for (const p of pushed) images[`${p.reference.slice(p.reference.indexOf('/') + 1)}@${p.reference.split('/')[0]}`] = p;
  for (const r of [primary, partial, proxy, basic, foreign, token, blocked, tlsOwnCa, tlsWrongCa, tlsInsecure]) r.clearRequestLog();

  dir = await mkdtemp(path.join(tmpdir(), 'berth-registries-pull-'));
  const P = primary.host;
  const conf = path.join(dir, 'registries.conf');
  await writeFile(
    conf,
    `# docker.io comes last and is never reached: every short name pulled here is found before it.
unqualified-search-registries = ["${partial.host}", "${P}", "docker.io"]

[[registry]]
prefix = "${P}/mirrored"
location = "${P}/mirrored"
[[registry.mirror]]
location = "${down}/mirrored"
[[registry.mirror]]
location = "${partial.host}/mirrored"

[[registry]]
prefix = "${P}/proxied"
location = "${P}/proxied"
[[registry.mirror]]
location = "${proxy.host}/proxied"

[[registry]]
prefix = "${P}/digests"
location = "${P}/digests"
[[registry.mirror]]
location = "${proxy.host}/digests"
pull-from-mirror = "digest-only"

[[registry]]
location = "${basic.host}"
[[registry.mirror]]
location = "${foreign.host}"

[[registry]]
location = "${blocked.host}"
blocked = true

[aliases]
"aliased" = "${P}/short/app"
`,
  );
  const auth = path.join(dir, 'auth.json');
  await writeFile(auth, JSON.stringify({ auths: { [basic.host]: basicAuth(BOB), [token.host]: basicAuth(TOKEN_USER) } }));
  const caDir = path.join(dir, 'certs.d');
  await mkdir(path.join(caDir, tlsOwnCa.host), { recursive: true });
  await mkdir(path.join(caDir, tlsWrongCa.host), { recursive: true });
  await writeFile(path.join(caDir, tlsOwnCa.host, 'ca.crt'), tlsOwnCa.caCertPem!);
  await writeFile(path.join(caDir, tlsWrongCa.host, 'ca.crt'), await foreignCaPem());
  const empty = path.join(dir, 'empty.conf');
  await writeFile(empty, 'unqualified-search-registries = []\n');

  [berth, emptySearch] = await Promise.all([
    startBerth({ REGISTRIES_CONF: conf, AUTH_FILE: auth, REGISTRY_CA_DIR: caDir, INSECURE_REGISTRIES: tlsInsecure.host }),
    startBerth({ REGISTRIES_CONF: empty }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([berth?.close(), emptySearch?.close()]);
  await Promise.all([primary, partial, proxy, basic, foreign, token, blocked, tlsOwnCa, tlsWrongCa, tlsInsecure].map((r) => r?.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const pushedAt = (registry: TestRegistry, repoTag: string): PushedImage => images[`${repoTag}@${registry.host}`]!;

describe('mirrors first, the primary last', () => {
  it('uses the first mirror that serves the manifest, past a mirror that is down', async () => {
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/mirrored/one:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(partial, 'mirrored/one:1').configDigest, source: `${partial.host}/mirrored/one` });
    expect(manifestRequests(partial, 'mirrored/one').map((r) => r.status)).toEqual([200]);
    expect(manifestRequests(primary, 'mirrored/one')).toEqual([]);
    // Every blob came from the mirror that served the manifest.
    expect(primary.requestLog().filter((r) => r.path.includes('/blobs/'))).toEqual([]);
  });

  it('falls through to the primary when no mirror holds the image', async () => {
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/mirrored/two:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(primary, 'mirrored/two:1').configDigest, source: `${primary.host}/mirrored/two` });
    expect(manifestRequests(partial, 'mirrored/two').map((r) => r.status)).toEqual([404]);
  });

  it('pulls through a real pull-through mirror', async () => {
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/proxied/app:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(primary, 'proxied/app:1').configDigest, source: `${proxy.host}/proxied/app` });
    expect(manifestRequests(proxy, 'proxied/app').map((r) => r.status)).toContain(200);
    // The mirror fetched it from the primary itself; berth never asked the primary.
    expect(manifestRequests(primary, 'proxied/app').every((r) => r.userAgent !== 'berth/0.1')).toBe(true);
  });

  it('lists every attempt in order when all fail, the primary’s error first in the message', async () => {
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/mirrored/none:1` });
    expect(pull.state).toBe('failed');
    expect(pull.error.attempts.map((a: { source: string }) => a.source)).toEqual([
      `${down}/mirrored/none`,
      `${partial.host}/mirrored/none`,
      `${primary.host}/mirrored/none`,
    ]);
    expect(pull.error.attempts.map((a: { error: { code: string } }) => a.error.code)).toEqual(['REGISTRY_UNAVAILABLE', 'MANIFEST_UNKNOWN', 'MANIFEST_UNKNOWN']);
    expect(pull.error.code).toBe('MANIFEST_UNKNOWN');
    expect(pull.error.message).toMatch(
      new RegExp(`^${primary.host}/mirrored/none: .* \\(Mirrors also failed: \\[${down}/mirrored/none: .*ECONNREFUSED.*, ${partial.host}/mirrored/none: .*\\]\\)$`),
    );
  });
});

describe('a digest-only mirror', () => {
  it('is skipped for a tag', async () => {
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/digests/app:1` });
    expect(pull).toMatchObject({ state: 'succeeded', source: `${primary.host}/digests/app` });
    expect(proxy.requestLog().filter((r) => r.path.startsWith('/v2/digests/'))).toEqual([]);
  });

  it('is used for a digest', async () => {
    const { manifestDigest, configDigest } = pushedAt(primary, 'digests/app:1');
    const pull = await pullAndWait(berth.url, { image: `${primary.host}/digests/app@${manifestDigest}`, platform: 'linux/arm64' });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: configDigest, source: `${proxy.host}/digests/app` });
    expect(manifestRequests(proxy, 'digests/app').map((r) => r.path)).toContain(`/v2/digests/app/manifests/${manifestDigest}`);
  });
});

describe('credentials', () => {
  it('sends request credentials to the primary, never to its mirror on another host', async () => {
    const pull = await pullAndWait(berth.url, { image: `${basic.host}/private/app:1`, auth: ALICE });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(basic, 'private/app:1').configDigest, source: `${basic.host}/private/app` });
    expect(basic.requestLog().some((r) => r.authorization === 'basic' && r.user === ALICE.username)).toBe(true);
    // The mirror asks for Basic auth too: had berth held credentials for it, it would have sent them.
    const mirrorLog = foreign.requestLog();
    expect(mirrorLog.some((r) => r.path === '/v2/private/app/manifests/1' && r.status === 401)).toBe(true);
    expect(mirrorLog.map((r) => r.authorization)).toEqual(mirrorLog.map(() => 'none'));
    expect(pull.error).toBeUndefined();
  });

  it('takes credentials from AUTH_FILE by registry host (Basic)', async () => {
    const pull = await pullAndWait(berth.url, { image: `${basic.host}/private/file:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(basic, 'private/file:1').configDigest });
    expect(basic.requestLog().filter((r) => r.path.startsWith('/v2/private/file/')).every((r) => r.user === BOB.username)).toBe(true);
    expect(foreign.requestLog().every((r) => r.authorization === 'none')).toBe(true);
  });

  it('takes credentials from AUTH_FILE by registry host (token)', async () => {
    const pull = await pullAndWait(berth.url, { image: `${token.host}/private/app:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(token, 'private/app:1').configDigest });
    const grants = token.tokenServer!.requests().filter((r) => r.user === TOKEN_USER.username);
    expect(grants.some((g) => g.scopes.some((s) => s.includes('repository:private/app:pull')))).toBe(true);
  });
});

describe('short names', () => {
  it('tries each search registry in order; the first that has it wins and names the image', async () => {
    const pull = await pullAndWait(berth.url, { image: 'short/app:1' });
    expect(pull).toMatchObject({
      state: 'succeeded',
      image: 'short/app:1',
      reference: `${primary.host}/short/app:1`,
      source: `${primary.host}/short/app`,
      imageId: pushedAt(primary, 'short/app:1').configDigest,
    });
    expect(manifestRequests(partial, 'short/app').map((r) => r.status)).toEqual([404]);
    const found = await api(berth.url, 'GET', '/v1/images/short/app:1');
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ id: pull.imageId, names: [`${primary.host}/short/app:1`] });
  });

  it('stops at the first search registry when it has the image', async () => {
    const pull = await pullAndWait(berth.url, { image: 'short/first:1' });
    expect(pull).toMatchObject({ state: 'succeeded', reference: `${partial.host}/short/first:1`, source: `${partial.host}/short/first` });
    expect(manifestRequests(primary, 'short/first')).toEqual([]);
    expect((await api(berth.url, 'GET', '/v1/images/short/first:1')).body.id).toBe(pull.imageId);
  });

  it('lists by short name what any search registry’s name holds, as podman images does', async () => {
    const app = await api(berth.url, 'GET', '/v1/images?name=short/app');
    expect(app.body.images.map((i: { names: string[] }) => i.names)).toEqual([[`${primary.host}/short/app:1`]]);
    const first = await api(berth.url, 'GET', '/v1/images?name=short/first:1');
    expect(first.body.images.map((i: { names: string[] }) => i.names)).toEqual([[`${partial.host}/short/first:1`]]);
    const none = await api(berth.url, 'GET', '/v1/images?name=short/app:2');
    expect(none.body.images).toEqual([]);
  });

  it('prefers an alias over the search list', async () => {
    const pull = await pullAndWait(berth.url, { image: 'aliased:1', platform: 'linux/arm64' });
    expect(pull).toMatchObject({ state: 'succeeded', reference: `${primary.host}/short/app:1`, source: `${primary.host}/short/app` });
    expect(manifestRequests(partial, 'aliased')).toEqual([]);
    expect((await api(berth.url, 'GET', '/v1/images/aliased:1')).body.id).toBe(pull.imageId);
  });

  it('is a 400 that says so when unqualified-search-registries is explicitly empty', async () => {
    const res = await api(emptySearch.url, 'POST', '/v1/pulls', { image: 'alpine' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'INVALID_REFERENCE', detail: expect.stringMatching(/short name "alpine" cannot be resolved: .*unqualified-search-registries is empty/) });
    expect((await api(emptySearch.url, 'GET', '/v1/images/alpine')).status).toBe(400);
    expect((await api(emptySearch.url, 'POST', '/v1/pulls?wait=30', { image: `${primary.host}/short/app:1` })).body.state).toBe('succeeded');
  });
});

describe('blocked and insecure registries, TLS', () => {
  it('refuses a blocked registry with 403 before sending it anything', async () => {
    const res = await api(berth.url, 'POST', '/v1/pulls', { image: `${blocked.host}/any/app:1` });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'REGISTRY_BLOCKED', detail: expect.stringContaining(`${blocked.host}/any/app`) });
    expect(blocked.requestLog()).toEqual([]);
  });

  it('verifies a TLS registry against its CA from REGISTRY_CA_DIR', async () => {
    const pull = await pullAndWait(berth.url, { image: `${tlsOwnCa.host}/tls/app:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(tlsOwnCa, 'tls/app:1').configDigest, source: `${tlsOwnCa.host}/tls/app` });
  });

  it('fails a TLS registry whose certificate the configured CA did not sign, without falling back to plain HTTP', async () => {
    const pull = await pullAndWait(berth.url, { image: `${tlsWrongCa.host}/tls/app:1` });
    expect(pull.state).toBe('failed');
    expect(pull.error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', message: expect.stringMatching(/TLS verification of .* failed/) });
    expect(tlsWrongCa.requestLog()).toEqual([]);
  });

  it('speaks TLS without verification to an insecure registry with no CA of its own', async () => {
    const pull = await pullAndWait(berth.url, { image: `${tlsInsecure.host}/tls/app:1` });
    expect(pull).toMatchObject({ state: 'succeeded', imageId: pushedAt(tlsInsecure, 'tls/app:1').configDigest });
  });
});
