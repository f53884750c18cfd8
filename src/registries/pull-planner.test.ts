/** The pull planner over hand-written registries.conf and auth.json: pure, no network. */
import { describe, expect, it } from 'vitest';
import { parseAuthFile } from '../registry/auth-file.js';
import type { Credentials } from '../registry/credentials.js';
import { createInsecureMatcher } from '../registry/insecure.js';
import { formatReference } from '../registry/reference.js';
import { parseRegistriesConf } from '../registry/registries-conf-load.js';
import { createPullPlanner } from './pull-planner.js';
import type { RegistrySettings } from './registry-settings.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const basic = (username: string, password: string) => ({ auth: Buffer.from(`${username}:${password}`).toString('base64') });

function settings(confText?: string, auths?: Record<string, unknown>, insecureHosts: string[] = []): RegistrySettings {
  const conf = confText === undefined ? undefined : parseRegistriesConf(confText, 'test.conf');
  return {
    conf,
    authFile: auths === undefined ? undefined : parseAuthFile(JSON.stringify({ auths }), 'auth.json'),
    insecure: createInsecureMatcher({ cidrsAndHosts: insecureHosts, ...(conf ? { conf } : {}) }),
    tlsFor: () => undefined,
    caHosts: [],
  };
}

const CONF = `
unqualified-search-registries = ["blocked.lan", "registry.lan", "docker.io"]

[[registry]]
location = "registry.lan"
[[registry.mirror]]
location = "mirror.lan:5000"
insecure = true
[[registry.mirror]]
location = "registry.lan/cache"
[[registry.mirror]]
location = "digests.lan"
pull-from-mirror = "digest-only"

[[registry]]
location = "blocked.lan"
blocked = true

[aliases]
"tool" = "registry.lan/tools/tool"
`;

describe('createPullPlanner', () => {
  it('without registries.conf pulls from the named registry only, short names from docker.io', async () => {
    const planner = createPullPlanner(settings());
    expect(planner.normalize('alpine')).toBe('docker.io/library/alpine:latest');
    const [candidate, ...rest] = await planner.plan('alpine:3', undefined);
    expect(rest).toEqual([]);
    expect(formatReference(candidate!.name)).toBe('docker.io/library/alpine:3');
    expect(candidate!.sources).toEqual([
      { target: { registry: 'registry-1.docker.io', repository: 'library/alpine', insecure: false }, reference: '3', display: 'docker.io/library/alpine', mirror: false },
    ]);
  });

  it('lists the mirrors that apply, then the primary; a digest-only mirror only for digests', async () => {
    const planner = createPullPlanner(settings(CONF));
    const [byTag] = await planner.plan('registry.lan/app:1', undefined);
    expect(byTag!.sources.map((s) => [s.display, s.mirror, s.target.insecure])).toEqual([
      ['mirror.lan:5000/app', true, true],
      ['registry.lan/cache/app', true, false],
      ['registry.lan/app', false, false],
    ]);
    const [byDigest] = await planner.plan(`registry.lan/app@${DIGEST}`, undefined);
    expect(byDigest!.sources.map((s) => s.display)).toEqual(['mirror.lan:5000/app', 'registry.lan/cache/app', 'digests.lan/app', 'registry.lan/app']);
    expect(byDigest!.sources.every((s) => s.reference === DIGEST)).toBe(true);
  });

  it('sends request credentials to the primary host only, never to a mirror on another host', async () => {
    const fromRequest: Credentials = { username: 'me', password: 'request-secret' };
    const planner = createPullPlanner(settings(CONF, { 'mirror.lan:5000': basic('mirror-user', 'm') }));
    const [candidate] = await planner.plan('registry.lan/app:1', fromRequest);
    expect(candidate!.sources.map((s) => [s.display, s.target.credentials])).toEqual([
      ['mirror.lan:5000/app', { username: 'mirror-user', password: 'm' }],
      ['registry.lan/cache/app', fromRequest],
      ['registry.lan/app', fromRequest],
    ]);
  });

  it('takes credentials from the auth file per source host, the most specific namespace first', async () => {
    const planner = createPullPlanner(
      settings(CONF, { 'registry.lan': basic('host-user', 'h'), 'registry.lan/team': basic('team-user', 't'), 'docker.io': basic('hub-user', 'd') }),
    );
    const [team] = await planner.plan('registry.lan/team/app:1', undefined);
    expect(team!.sources.map((s) => [s.display, (s.target.credentials as { username?: string } | undefined)?.username])).toEqual([
      ['mirror.lan:5000/team/app', undefined],
      ['registry.lan/cache/team/app', 'host-user'],
      ['registry.lan/team/app', 'team-user'],
    ]);
    const [hub] = await planner.plan('docker.io/library/alpine', undefined);
    expect(hub!.sources[0]!.target).toMatchObject({ registry: 'registry-1.docker.io', credentials: { username: 'hub-user' } });
  });

  it('resolves short names through aliases, then the search list, skipping blocked registries', async () => {
    const planner = createPullPlanner(settings(CONF));
    expect((await planner.plan('tool:2', undefined)).map((c) => formatReference(c.name))).toEqual(['registry.lan/tools/tool:2']);
    expect((await planner.plan('alpine', undefined)).map((c) => formatReference(c.name))).toEqual([
      'registry.lan/alpine:latest',
      'docker.io/library/alpine:latest',
    ]);
    // The dedupe key is the first candidate that may be pulled.
    expect(planner.normalize('alpine')).toBe('registry.lan/alpine:latest');
  });

  it('refuses a blocked registry before any request (403 REGISTRY_BLOCKED)', async () => {
    const planner = createPullPlanner(settings(CONF));
    const blocked = expect.objectContaining({ code: 'REGISTRY_BLOCKED', message: expect.stringMatching(/blocked.lan\/app.*blocked in registries.conf \(\[\[registry\]\] prefix "blocked.lan" in test.conf\)/) });
    expect(() => planner.normalize('blocked.lan/app:1')).toThrow(blocked);
    await expect(planner.plan('blocked.lan/app:1', undefined)).rejects.toThrow(blocked);
  });

  it('fails a short name when the search list is explicitly empty (400 INVALID_REFERENCE)', () => {
    const planner = createPullPlanner(settings('unqualified-search-registries = []\n'));
    expect(() => planner.normalize('alpine')).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE', message: expect.stringMatching(/unqualified-search-registries is empty in test.conf/) }));
    expect(createPullPlanner(settings('')).normalize('alpine')).toBe('docker.io/library/alpine:latest');
  });

  it('marks INSECURE_REGISTRIES hosts and loopback insecure, others not', async () => {
    const planner = createPullPlanner(settings(undefined, undefined, ['registry.lan']));
    const insecure = async (image: string) => (await planner.plan(image, undefined))[0]!.sources[0]!.target.insecure;
    expect(await insecure('registry.lan/app')).toBe(true);
    expect(await insecure('127.0.0.1:5000/app')).toBe(true);
    expect(await insecure('quay.io/app')).toBe(false);
  });
});
