import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findRegistry, refMatchingPrefix, RegistriesConfError, rewriteName } from './registries-conf.js';
import { loadRegistriesConf, parseRegistriesConf } from './registries-conf-load.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/registries/${name}`, import.meta.url));
const DIGEST = `sha256:${'a'.repeat(64)}`;

/** The error parseRegistriesConf throws for `text`. */
function confError(text: string): RegistriesConfError {
  try {
    parseRegistriesConf(text, 'test.conf');
  } catch (err) {
    expect(err).toBeInstanceOf(RegistriesConfError);
    return err as RegistriesConfError;
  }
  throw new Error('expected a RegistriesConfError');
}

describe('refMatchingPrefix (sysregistriesv2 TestRefMatchingPrefix)', () => {
  it.each([
    ['docker.io', 'docker.io', 9],
    ['docker.io', 'example.com', -1],
    ['example.com:5000', 'example.com:5000', 16],
    ['example.com:50000', 'example.com:5000', -1],
    ['example.com:5000', 'example.com', 11], // unintended upstream, kept for compatibility
    ['example.com/foo', 'example.com', 11],
    ['example.com/foo/bar:baz', 'example.com', 11],
    [`example.com/foo/bar@${DIGEST}`, 'example.com', 11],
    ['docker.io', 'docker.io/library', -1],
    ['docker.io/library', 'docker.io/library', 17],
    ['docker.io/libraryy', 'docker.io/library', -1],
    ['docker.io/library/busybox', 'docker.io/library', 17],
    ['docker.io/library/busybox2', 'docker.io/library/busybox', -1],
    ['example.com/foobar', 'example.com/foo', -1],
    ['example.com/foo/bar', 'example.com/foo', 15],
    ['example.com/foo', '*', -1],
  ])('%s vs %s → %d', (ref, prefix, expected) => {
    expect(refMatchingPrefix(ref, prefix)).toBe(expected);
  });
});

describe('wildcard prefixes (sysregistriesv2 TestRefMatchingSubdomainPrefix)', () => {
  it.each([
    ['docker.io', '*.io', 'docker.io'.length],
    ['docker.io/foo', '*.com', -1],
    ['example.com/foo', '*.co', -1],
    ['example.com/foo', '*.example.com', -1], // subdomains only, never the domain itself
    ['example.com/foo', '*.com', 'example.com'.length],
    ['example.com/foo/bar:baz', '*.com', 'example.com'.length],
    ['yet.another.example.com/foo/bar', '*.another.example.com', 'yet.another.example.com'.length],
    ['another.example.com/namespace.com/foo/bar/bbq:baz', '*.example.com', 'another.example.com'.length],
    ['example.net/namespace-ends-in.com/foo/bar/bbq:baz', '*.com', -1],
    ['another.example.com/namespace.com/foo/bar/bbq:baz', '*.namespace.com', -1],
    ['sub.example.com/foo/bar', '*.com', 'sub.example.com'.length],
    ['another.sub.example.com/foo/bar/bbq:baz', '*.sub.example.com', 'another.sub.example.com'.length],
    [`yet.another.example.com/foo/bar@${DIGEST}`, '*.example.com', 'yet.another.example.com'.length],
  ])('%s vs %s → %d', (ref, prefix, expected) => {
    expect(refMatchingPrefix(ref, prefix)).toBe(expected);
  });
});

describe('findRegistry (sysregistriesv2 TestFindRegistry)', async () => {
  const conf = await loadRegistriesConf(fixture('find-registry.conf'));
  const location = (ref: string): string | undefined => findRegistry(conf, ref)?.location;

  it('matches plain prefixes on component boundaries', () => {
    expect(findRegistry(conf, 'simple-prefix.com/foo/bar')?.prefix).toBe('simple-prefix.com');
    expect(location('simple-prefix.com/foo/bar')).toBe('registry.com:5000');
    expect(location('simple-prefix.com')).toBe('registry.com:5000');
    expect(location('simple-prefix.comx')).toBeUndefined();
    expect(findRegistry(conf, 'complex-prefix.com:4000/with/path/and/beyond')?.prefix).toBe('complex-prefix.com:4000/with/path');
    expect(location('complex-prefix.com:4000/with/pathology')).toBeUndefined();
  });

  it('defaults the prefix to the location, also for an empty prefix', () => {
    expect(findRegistry(conf, 'no-prefix.com/foo')).toMatchObject({ prefix: 'no-prefix.com', location: 'no-prefix.com' });
    expect(findRegistry(conf, 'empty-prefix.com/foo')).toMatchObject({ prefix: 'empty-prefix.com', location: 'empty-prefix.com' });
  });

  it('matches wildcards on subdomains, the longest prefix winning', () => {
    expect(location('not.so.simple-prefix.com/x')).toBe('subdomain-prefix.com');
    expect(location('not.quite.simple-prefix.com/x')).toBe('subdomain-prefix-2.com');
    expect(location('not.quite.simple-prefix.com:5000/with/path/and/beyond')).toBe('subdomain-prefix-2.com');
    expect(location('really.not.quite.simple-prefix.com:5000/with/path')).toBe('subdomain-prefix-1.com');
    expect(location('foo.docker.io:5000/omg/wtf/bbq')).toBe('subdomain-prefix-3.com');
    expect(location('foo.bar.docker.io:5000/omg/wtf/bbq')).toBe('subdomain-prefix-4.com');
    expect(location('docker.io/library/alpine')).toBeUndefined();
  });

  it('prefers a longer exact prefix over a wildcard', () => {
    expect(location('foo.bar.example.com:5000/omg')).toBe('exact-host.com');
    expect(location('foo.bar.example.com/omg')).toBe('subdomain-prefix-5.com');
  });

  it('keeps the first prefix in sorted order when lengths tie, as sysregistriesv2 does', () => {
    const tie = parseRegistriesConf('[[registry]]\nlocation = "a.b.com"\n[[registry]]\nprefix = "*.b.com"\nlocation = "wild.com"\n', 't');
    expect(findRegistry(tie, 'a.b.com/x')?.location).toBe('wild.com');
  });

  it('accepts a wildcard prefix without location', () => {
    expect(findRegistry(conf, 'a.internal.example.net/x')).toMatchObject({ prefix: '*.internal.example.net', location: '', insecure: true });
  });
});

describe('rewriteName (sysregistriesv2 TestRewriteReferenceSuccess)', () => {
  it.each([
    ['example.com/image', 'example.com', 'example.com', 'example.com/image'],
    ['example.com/foo/image', 'example.com/foo', 'example.com', 'example.com/image'],
    ['example.com/foo/image', 'example.com/foo', 'example.com/path', 'example.com/path/image'],
    ['docker.io/library/image', 'docker.io/library', 'example.com', 'example.com/image'],
    ['docker.io/library/image', 'docker.io', 'example.com', 'example.com/library/image'],
    ['docker.io/namespace/image', '*.io', 'example.com', 'example.com/namespace/image'],
    ['another.sub.example.io:5000/library/prefix/image', '*.sub.example.io', 'example.com', 'example.com:5000/library/prefix/image'],
    ['foo.bar.io/ns1/ns2', '*.bar.io', 'omg.bbq.com/roflmao', 'omg.bbq.com/roflmao/ns1/ns2'],
    ['abc.internal.registry.com/foo', '*.internal.registry.com', '', 'abc.internal.registry.com/foo'],
  ])('%s with %s → %s gives %s', (name, prefix, location, expected) => {
    expect(rewriteName(name, prefix, location)).toBe(expected);
  });

  it('refuses a prefix that does not match', () => {
    expect(() => rewriteName('docker.io/library/image', 'example.com', 'example.com')).toThrow(/invalid prefix/);
  });
});

describe('parseRegistriesConf', () => {
  it('reads search registries, registries, mirrors and aliases', async () => {
    const conf = parseRegistriesConf(
      [
        'unqualified-search-registries = ["example.com", "docker.io/"]',
        'short-name-mode = "enforcing"',
        '[[registry]]',
        'prefix = "example.com/foo"',
        'location = "internal.example.com/bar/"',
        'mirror-by-digest-only = true',
        '[[registry.mirror]]',
        'location = "mirror.example.com"',
        'insecure = true',
        '[aliases]',
        '"alpine" = "docker.io/alpine"',
        '"ns/app" = "quay.io/ns/app"',
      ].join('\n'),
      'x.conf',
    );
    expect(conf.unqualifiedSearchRegistries).toEqual(['example.com', 'docker.io']);
    expect(conf.shortNameMode).toBe('enforcing');
    expect(conf.registries).toEqual([
      {
        prefix: 'example.com/foo',
        location: 'internal.example.com/bar',
        insecure: false,
        blocked: false,
        mirrorByDigestOnly: true,
        mirrors: [{ location: 'mirror.example.com', insecure: true, pullFromMirror: 'digest-only' }],
        file: 'x.conf',
      },
    ]);
    expect(conf.aliases.get('alpine')?.value).toBe('docker.io/library/alpine');
    expect(conf.aliases.get('ns/app')?.value).toBe('quay.io/ns/app');
    expect(conf.credentialHelpers).toEqual(['containers-auth.json']);
  });

  it('defaults: permissive, search list unset, no registries', () => {
    const conf = parseRegistriesConf('# nothing\n', 'empty.conf');
    expect(conf).toMatchObject({ shortNameMode: 'permissive', unqualifiedSearchRegistries: undefined, registries: [] });
  });

  it('keeps the first of several tables with one prefix', () => {
    const conf = parseRegistriesConf('[[registry]]\nlocation = "a.com"\n[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\nlocation = "m.com"\n', 't');
    expect(conf.registries).toHaveLength(1);
    expect(conf.registries[0]!.mirrors).toEqual([]);
  });

  it('parses credential-helpers and proxy but warns that berth ignores them', () => {
    const conf = parseRegistriesConf('credential-helpers = ["pass"]\n[[registry]]\nlocation = "a.com"\nproxy = "http://p:3128"\nfuture = 1\n', 't.conf');
    expect(conf.credentialHelpers).toEqual(['pass']);
    expect(conf.warnings).toEqual([
      't.conf:1: credential helpers are not run by berth; credentials come from AUTH_FILE only',
      "t.conf:5: unknown key 'future' in [[registry]] is ignored",
      "t.conf:4: proxy of 'a.com' is not supported by berth and is ignored",
    ]);
  });
});

describe('errors name the file, the line and the reason', () => {
  it('reports TOML syntax errors with line and column', () => {
    const err = confError('unqualified-search-registries = ["a.com"]\n[[registry]]\nlocation = \n');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/^test\.conf:3:\d+: invalid TOML: invalid value/);
  });

  it('rejects the v1 format and says to use v2', () => {
    const err = confError('# old\n[registries.search]\nregistries = ["a.com"]\n');
    expect(err.line).toBe(2);
    expect(err.message).toMatch(/v1 format .* is not supported; use the v2 format/);
  });

  it('rejects the v1 fixture as loaded from disk', async () => {
    await expect(loadRegistriesConf(fixture('v1.conf'))).rejects.toThrow(/v1\.conf:2: the v1 format/);
  });

  it('points at the key of the Nth [[registry]]', () => {
    const err = confError('[[registry]]\nlocation = "a.com"\n\n[[registry]]\nprefix = "b.com"\nlocation = "https://b.com"\n');
    expect(err.message).toBe("test.conf:6: invalid location 'https://b.com': URI schemes are not supported");
  });

  it.each([
    ['prefix = "example.*.com"\nlocation = "a.com"', 1, /wildcard is only allowed as a leading/],
    ['prefix = "*.example.com/foo"\nlocation = "a.com"', 1, /should be in the format \*\.example\.com/],
    ['prefix = "*.example.com:5000"\nlocation = "a.com"', 1, /should be in the format/],
    ['prefix = "a.com/foo:tag"\nlocation = "a.com"', 1, /must not contain a tag/],
    [`prefix = "a.com/foo@${DIGEST}"\nlocation = "a.com"`, 1, /must not contain a digest/],
    ['location = "a.com/Upper"', 1, /expected host\[:port\]/],
    ['location = "nohost/foo"', 1, /must start with a registry host/],
    ['insecure = true', 0, /both location and prefix are unset/],
    ['prefix = "a.com"', 1, /location is unset and prefix is not in the format/],
    ['location = "a.com"\ninsecure = "yes"', 2, /'insecure' must be a boolean/],
    ['location = "a.com"\npull-from-mirror = "all"', 2, /pull-from-mirror must not be set for a non-mirror registry 'a.com'/],
  ])('[[registry]] %s', (body, keyLine, reason) => {
    const err = confError(`# comment\n[[registry]]\n${body}\n`);
    expect(err.line).toBe(2 + keyLine);
    expect(err.reason).toMatch(reason);
  });

  it.each([
    ['# all', 'insecure = true', 6, /mirror location is unset/],
    ['# all', 'location = "m.com"\npull-from-mirror = "sometimes"', 8, /unsupported pull-from-mirror value 'sometimes'/],
    ['mirror-by-digest-only = true', 'location = "m.com"\npull-from-mirror = "all"', 8, /cannot set mirror usage mirror-by-digest-only/],
  ])('[[registry]] %s, [[registry.mirror]] %s', (registry, mirror, line, reason) => {
    const err = confError(`[[registry]]\nlocation = "a.com"\n${registry}\n[[registry.mirror]]\nlocation = "ok.com"\n[[registry.mirror]]\n${mirror}\n`);
    expect(err.line).toBe(line);
    expect(err.reason).toMatch(reason);
  });

  it('rejects conflicting insecure settings for one location', () => {
    const err = confError('[[registry]]\nprefix = "a.com/x"\nlocation = "a.com"\n[[registry]]\nprefix = "a.com/y"\nlocation = "a.com"\ninsecure = true\n');
    expect(err.message).toBe("test.conf:7: registry 'a.com' is defined multiple times with conflicting 'insecure' setting");
  });

  it.each([
    ['unqualified-search-registries = ["https://a.com"]', 1, /URI schemes are not supported/],
    ['unqualified-search-registries = ["a.com/ns"]', 1, /invalid unqualified-search-registries entry 'a.com\/ns'/],
    ['unqualified-search-registries = "a.com"', 1, /must be an array of strings/],
    ['short-name-mode = "strict"', 1, /invalid short-name-mode 'strict'/],
    ['[aliases]\n"quay.io/app" = "quay.io/app"', 2, /must not contain registry/],
    ['[aliases]\n"app:1" = "quay.io/app"', 2, /must not contain tag/],
    ['[aliases]\n"app" = "quay.io/app:1"', 2, /invalid alias 'quay.io\/app:1': must not contain tag/],
    [`[aliases]\n"app" = "quay.io/app@${DIGEST}"`, 2, /must not contain digest/],
    ['[aliases]\n"app" = "app"', 2, /must contain registry and repository/],
    ['[aliases]\n"a" = "x.io/a"\n"app" = 3', 3, /alias 'app' must be a string/],
  ])('%s', (text, line, reason) => {
    const err = confError(text);
    expect(err.line).toBe(line);
    expect(err.reason).toMatch(reason);
  });

  it('names a file that cannot be read', async () => {
    await expect(loadRegistriesConf(fixture('missing.conf'))).rejects.toThrow(/missing\.conf: cannot read: ENOENT/);
  });
});

describe('loadRegistriesConf with registries.conf.d drop-ins', () => {
  it('merges *.conf files in alphabetical order, later files overriding what they set', async () => {
    const conf = await loadRegistriesConf(fixture('registries.conf'));
    expect(conf.files.map((f) => f.split('/fixtures/registries/')[1])).toEqual([
      'registries.conf',
      'registries.conf.d/10-search.conf',
      'registries.conf.d/20-aliases.conf',
    ]);
    expect(conf.unqualifiedSearchRegistries).toEqual(['quay.io']);
    expect(conf.unqualifiedSearchRegistriesOrigin).toMatch(/10-search\.conf$/);
    expect(conf.registries.map((r) => r.prefix)).toEqual(['blocked.example.com', 'docker.io', 'example.com/foo']);
    expect(findRegistry(conf, 'example.com/foo/app')?.location).toBe('dropin-location.example.com/foo');
    expect([...conf.aliases.keys()].sort()).toEqual(['fedora', 'hub-alpine', 'ubi']);
    expect(conf.aliases.get('ubi')?.file).toMatch(/20-aliases\.conf$/);
    expect(conf.shortNameMode).toBe('permissive');
  });

  it('lets a drop-in reset credential helpers to the default and set the short-name mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-conf-'));
    try {
      writeFileSync(join(dir, 'registries.conf'), 'credential-helpers = ["pass"]\nshort-name-mode = "disabled"\n');
      mkdirSync(join(dir, 'registries.conf.d'));
      writeFileSync(join(dir, 'registries.conf.d', 'a.conf'), 'credential-helpers = []\nshort-name-mode = "enforcing"\n');
      writeFileSync(join(dir, 'registries.conf.d', 'b.conf'), '[registries.search]\nregistries = []\n');
      await expect(loadRegistriesConf(join(dir, 'registries.conf'))).rejects.toThrow(/b\.conf:1: the v1 format/);
      rmSync(join(dir, 'registries.conf.d', 'b.conf'));
      const conf = await loadRegistriesConf(join(dir, 'registries.conf'));
      expect(conf).toMatchObject({ credentialHelpers: ['containers-auth.json'], shortNameMode: 'enforcing' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets a drop-in empty the search list', async () => {
    const dropIn = parseRegistriesConf('unqualified-search-registries = []\n', 'd.conf');
    expect(dropIn.unqualifiedSearchRegistries).toEqual([]);
  });
});
