import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import { formatReference, parseReference } from './reference.js';
import { loadRegistriesConf, parseRegistriesConf } from './registries-conf-load.js';
import { describeConf, pullSources, shortNameCandidates } from './sources.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/registries/${name}`, import.meta.url));
const fixtureConf = (name: string) => parseRegistriesConf(readFileSync(fixture(name), 'utf8'), name);
const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('pullSources', () => {
  it('without registries.conf asks the registry itself, Docker Hub at registry-1.docker.io', () => {
    expect(pullSources(undefined, parseReference('alpine:3'))).toEqual({
      blocked: false,
      sources: [
        { endpoint: 'registry-1.docker.io', repository: 'library/alpine', reference: '3', insecure: false, mirror: false, display: 'docker.io/library/alpine' },
      ],
    });
  });

  it('tries mirrors in order, then the primary; digest-only mirrors only for digests', () => {
    const conf = fixtureConf('registries.conf');
    const byTag = pullSources(conf, parseReference('docker.io/library/alpine:latest'));
    expect(byTag.registryPrefix).toBe('docker.io');
    expect(byTag.sources).toEqual([
      { endpoint: 'mirror.local:5000', repository: 'library/alpine', reference: 'latest', insecure: true, mirror: true, display: 'mirror.local:5000/library/alpine' },
      { endpoint: 'registry-1.docker.io', repository: 'library/alpine', reference: 'latest', insecure: false, mirror: false, display: 'docker.io/library/alpine' },
    ]);
    const byDigest = pullSources(conf, parseReference(`alpine:3@${DIGEST}`));
    expect(byDigest.sources.map((s) => [s.endpoint, s.repository, s.reference])).toEqual([
      ['mirror.local:5000', 'library/alpine', DIGEST],
      ['digests.mirror.local', 'hub/library/alpine', DIGEST],
      ['registry-1.docker.io', 'library/alpine', DIGEST],
    ]);
  });

  it('rewrites the prefix to the location', () => {
    const { sources } = pullSources(fixtureConf('registries.conf'), parseReference('example.com/foo/team/app:1'));
    expect(sources).toEqual([
      { endpoint: 'internal-registry-for-example.com', repository: 'bar/team/app', reference: '1', insecure: false, mirror: false, display: 'internal-registry-for-example.com/bar/team/app' },
    ]);
  });

  it('reports a blocked registry and offers no source', () => {
    expect(pullSources(fixtureConf('registries.conf'), parseReference('blocked.example.com/x/y'))).toEqual({
      blocked: true,
      registryPrefix: 'blocked.example.com',
      sources: [],
    });
  });

  it('leaves names under a wildcard prefix without location as they are, with its settings', async () => {
    const conf = await loadRegistriesConf(fixture('find-registry.conf'));
    expect(pullSources(conf, parseReference('a.internal.example.net:5000/x')).sources).toEqual([
      { endpoint: 'a.internal.example.net:5000', repository: 'x', reference: 'latest', insecure: true, mirror: false, display: 'a.internal.example.net:5000/x' },
    ]);
  });

  it('normalizes a rewrite onto Docker Hub and rejects one that yields no repository', () => {
    const conf = parseRegistriesConf('[[registry]]\nprefix = "quay.io/hub"\nlocation = "docker.io"\n[[registry]]\nprefix = "example.com/foo"\nlocation = "example.com"\n', 't');
    expect(pullSources(conf, parseReference('quay.io/hub/alpine')).sources[0]).toMatchObject({ endpoint: 'registry-1.docker.io', repository: 'library/alpine' });
    expect(() => pullSources(conf, parseReference('example.com/foo'))).toThrow(/rewrites "example.com\/foo" .* not a valid repository name/);
  });

  // The matrix of containers/image's TestPullSourcesFromReference.
  it.each([
    ['registry-a.com/foo', ['mirror-1.registry-a.com', 'mirror-2.registry-a.com', 'registry-a.com/bar'], [false, true, false], ['mirror-1.registry-a.com', 'mirror-2.registry-a.com', 'registry-a.com/bar'], [false, true, false]],
    ['registry-a.com/baz', ['mirror-1.registry-a.com', 'mirror-2.registry-a.com', 'registry-a.com/bar'], [false, true, false], ['mirror-1.registry-a.com', 'mirror-2.registry-a.com', 'registry-a.com/bar'], [false, true, false]],
    ['registry-b.com/foo', ['mirror-1.registry-b.com', 'mirror-2.registry-b.com', 'registry-b.com/bar'], [false, false, false], ['registry-b.com/bar'], [false]],
    ['registry-c.com/baz', ['mirror-1.registry-c.com', 'mirror-2.registry-c.com', 'registry-c.com/bar'], [false, false, false], ['mirror-1.registry-c.com', 'registry-c.com/bar'], [false, false]],
    ['registry-e.com/baz', ['registry-e.com/bar'], [false], ['mirror-1.registry-e.com', 'mirror-2.registry-e.com', 'registry-e.com/bar'], [false, false, false]],
    [
      'registry-g.com/baz',
      ['mirror-1.registry-g.com', 'mirror-3.registry-g.com', 'mirror-4.registry-g.com', 'registry-g.com/bar'],
      [false, false, false, false],
      ['mirror-2.registry-g.com', 'mirror-3.registry-g.com', 'mirror-4.registry-g.com', 'registry-g.com/bar'],
      [false, false, false, false],
    ],
  ])('%s: pull-from-mirror and mirror-by-digest-only', (prefix, digestLocations, digestInsecure, tagLocations, tagInsecure) => {
    const conf = fixtureConf('pull-sources.conf');
    const digested = pullSources(conf, parseReference(`${prefix}/image@${DIGEST}`)).sources;
    expect(digested.map((s) => s.display)).toEqual(digestLocations.map((l) => `${l}/image`));
    expect(digested.map((s) => s.insecure)).toEqual(digestInsecure);
    expect(digested.map((s) => s.mirror)).toEqual(digestLocations.map((_, i) => i < digestLocations.length - 1));
    const tagged = pullSources(conf, parseReference(`${prefix}/image:aaa`)).sources;
    expect(tagged.map((s) => s.display)).toEqual(tagLocations.map((l) => `${l}/image`));
    expect(tagged.map((s) => s.insecure)).toEqual(tagInsecure);
    expect(tagged.every((s) => s.reference === 'aaa')).toBe(true);
  });
});

describe('shortNameCandidates', () => {
  const names = (conf: Parameters<typeof shortNameCandidates>[0], input: string) => shortNameCandidates(conf, input).candidates.map(formatReference);
  const conf = fixtureConf('registries.conf');

  it('without registries.conf resolves short names on docker.io, as Docker does', () => {
    expect(names(undefined, 'alpine')).toEqual(['docker.io/library/alpine:latest']);
    expect(names(undefined, 'user/app:1')).toEqual(['docker.io/user/app:1']);
  });

  it('never searches a name with an explicit domain', () => {
    expect(shortNameCandidates(conf, 'quay.io/fedora:39')).toEqual({ candidates: [parseReference('quay.io/fedora:39')] });
    expect(names(conf, 'localhost:5000/fedora')).toEqual(['localhost:5000/fedora:latest']);
  });

  it('tries each unqualified-search registry in order, docker.io with library/', () => {
    expect(names(conf, 'alpine:3')).toEqual(['registry.fedoraproject.org/alpine:3', 'docker.io/library/alpine:3']);
    expect(names(conf, `ns/app@${DIGEST}`)).toEqual([`registry.fedoraproject.org/ns/app@${DIGEST}`, `docker.io/ns/app@${DIGEST}`]);
  });

  it('prefers an alias, keeping the tag or digest of the input', () => {
    expect(shortNameCandidates(conf, 'fedora:39')).toEqual({ candidates: [parseReference('registry.fedoraproject.org/fedora:39')], alias: true });
    expect(names(conf, 'fedora')).toEqual(['registry.fedoraproject.org/fedora:latest']);
    expect(names(conf, `hub-alpine@${DIGEST}`)).toEqual([`docker.io/library/alpine@${DIGEST}`]);
  });

  it('fails when the search list is explicitly empty, naming the file', () => {
    const empty = parseRegistriesConf('unqualified-search-registries = []\n', '/etc/containers/registries.conf');
    const fail = () => shortNameCandidates(empty, 'alpine');
    expect(fail).toThrow(RegistryError);
    expect(fail).toThrow(/short name "alpine" cannot be resolved: .*unqualified-search-registries is empty in \/etc\/containers\/registries.conf; use a fully qualified name/);
  });

  it('searches docker.io when a registries.conf does not set the list', () => {
    expect(names(parseRegistriesConf('', 'x.conf'), 'alpine')).toEqual(['docker.io/library/alpine:latest']);
    expect(describeConf(parseRegistriesConf('', 'x.conf'))).toMatchObject({ unqualifiedSearchRegistries: ['docker.io'] });
  });

  it('in enforcing mode fails on ambiguity, since berth cannot prompt', () => {
    const ambiguous = parseRegistriesConf('short-name-mode = "enforcing"\nunqualified-search-registries = ["a.io", "b.io"]\n[aliases]\n"x" = "c.io/x"\n', 't');
    expect(() => shortNameCandidates(ambiguous, 'app')).toThrow(/ambiguous: short-name-mode is "enforcing"/);
    expect(names(ambiguous, 'x')).toEqual(['c.io/x:latest']);
    const single = parseRegistriesConf('short-name-mode = "enforcing"\nunqualified-search-registries = ["a.io"]\n', 't');
    expect(names(single, 'app')).toEqual(['a.io/app:latest']);
  });

  it('rejects invalid input with INVALID_REFERENCE', () => {
    expect(() => shortNameCandidates(conf, 'Alpine!')).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE' }));
  });
});

describe('describeConf', () => {
  it('gives a JSON-safe effective view', async () => {
    const view = describeConf(await loadRegistriesConf(fixture('registries.conf')));
    expect(JSON.parse(JSON.stringify(view))).toEqual(view);
    expect(view).toMatchObject({
      configured: true,
      unqualifiedSearchRegistries: ['quay.io'],
      shortNameMode: 'permissive',
      aliases: { fedora: 'registry.fedoraproject.org/fedora', 'hub-alpine': 'docker.io/library/alpine', ubi: 'registry.access.redhat.com/ubi9/ubi' },
    });
    expect((view.registries as unknown[])[1]).toEqual({
      prefix: 'docker.io',
      location: 'docker.io',
      insecure: false,
      blocked: false,
      mirrorByDigestOnly: false,
      mirrors: [
        { location: 'mirror.local:5000', insecure: true, pullFromMirror: 'all' },
        { location: 'digests.mirror.local/hub', insecure: false, pullFromMirror: 'digest-only' },
      ],
    });
  });

  it('describes the default without registries.conf', () => {
    expect(describeConf(undefined)).toMatchObject({ configured: false, unqualifiedSearchRegistries: ['docker.io'] });
  });
});
