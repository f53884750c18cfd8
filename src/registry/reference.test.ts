import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import {
  formatName,
  formatReference,
  hasExplicitDomain,
  isDigest,
  parseDigest,
  parseReference,
  registryHost,
  type ImageReference,
} from './reference.js';

const SHA256 = `sha256:${'f'.repeat(64)}`;
const SHA512 = `sha512:${'f'.repeat(128)}`;

function errorOf(input: string): RegistryError {
  try {
    parseReference(input);
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe('INVALID_REFERENCE');
    return err as RegistryError;
  }
  throw new Error(`"${input}" was accepted`);
}

describe('parseReference: normalization (distribution normalize_test.go)', () => {
  it.each<[string, string, string]>([
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
    ['index.docker.io/library/ubuntu', 'docker.io', 'library/ubuntu'],
    ['index.docker.io/ubuntu', 'docker.io', 'library/ubuntu'],
    ['registry-1.docker.io/fooo/bar', 'docker.io', 'fooo/bar'],
    ['localhost/foo', 'localhost', 'foo'],
    ['localhost:5000/library/debian', 'localhost:5000', 'library/debian'],
    ['127.0.0.1:8000/privatebase', '127.0.0.1:8000', 'privatebase'],
    ['example.com:8000/private/moonbase', 'example.com:8000', 'private/moonbase'],
    ['Foo/bar', 'Foo', 'bar'],
    ['FOO/bar', 'FOO', 'bar'],
    ['[fc00::1]:5000/docker', '[fc00::1]:5000', 'docker'],
    ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', '[fc00:1:2:3:4:5:6:7]:5000', 'library/debian'],
    ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo'],
    ['docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'docker.io', 'library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'],
    ['thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'docker.io', 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev'],
    ['docker---rules/docker', 'docker.io', 'docker---rules/docker'],
    ['dock__er/docker', 'docker.io', 'dock__er/docker'],
    ['d/docker', 'docker.io', 'd/docker'],
  ])('%s → %s / %s', (input, domain, path) => {
    const ref = parseReference(input);
    expect(ref.domain).toBe(domain);
    expect(ref.path).toBe(path);
    expect(ref.tag).toBe('latest');
  });

  it('keeps tag and digest together, as distribution does', () => {
    const ref = parseReference(`busybox:latest@sha256:${'8'.repeat(64)}`);
    expect(ref).toEqual({ domain: 'docker.io', path: 'library/busybox', tag: 'latest', digest: `sha256:${'8'.repeat(64)}` });
    expect(formatReference(ref)).toBe(`docker.io/library/busybox:latest@sha256:${'8'.repeat(64)}`);
  });

  it('adds latest only when neither tag nor digest is given, unless told not to', () => {
    expect(parseReference(`alpine@${SHA256}`)).toEqual({ domain: 'docker.io', path: 'library/alpine', digest: SHA256 });
    expect(parseReference('alpine', { defaultTag: false })).toEqual({ domain: 'docker.io', path: 'library/alpine' });
    expect(parseReference('alpine:3.20').tag).toBe('3.20');
  });

  it('reads a single component with a colon as name:tag, not host:port (docker does the same)', () => {
    expect(parseReference('192.168.0.1:80')).toEqual({ domain: 'docker.io', path: 'library/192.168.0.1', tag: '80' });
    expect(parseReference('localhost:5000')).toEqual({ domain: 'docker.io', path: 'library/localhost', tag: '5000' });
    expect(parseReference('foo_bar.com:8080')).toEqual({ domain: 'docker.io', path: 'library/foo_bar.com', tag: '8080' });
  });

  it.each<[string, string | undefined, string | undefined]>([
    ['test:5000/repo:tag', 'tag', undefined],
    [`test:5000/repo@${SHA256}`, undefined, SHA256],
    [`test:5000/repo:tag@${SHA256}`, 'tag', SHA256],
    [`xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`, 'xn--7o8h.com', SHA512],
    ['lowercase:Uppercase', 'Uppercase', undefined],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'test.example.com', undefined],
    ['192.168.1.1:5000/repo:5050', '5050', undefined],
    [`[2001:db8::1]:5000/repo:tag@${SHA256}`, 'tag', SHA256],
    [`a:${'t'.repeat(128)}`, 't'.repeat(128), undefined],
  ])('%s has tag %s and digest %s', (input, tag, digest) => {
    const ref = parseReference(input);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
  });
});

describe('parseReference: rejections say what is wrong', () => {
  it.each<[string, RegExp]>([
    ['', /empty/],
    ['https://github.com/docker/docker', /scheme/],
    ['docker/Docker', /must be lowercase \(did you mean "docker\/docker"\?\)/],
    ['Uppercase:tag', /must be lowercase/],
    ['test:5000/Uppercase/lowercase:tag', /must be lowercase/],
    ['docker.io/docker/Docker', /must be lowercase/],
    ['-docker', /must start and end/],
    ['-docker/docker', /must start and end/],
    ['docker-/docker', /must start and end/],
    ['_docker/_docker', /must start and end/],
    ['____/____', /must start and end/],
    ['-docker.io/docker/docker', /not a valid registry host/],
    ['docker///docker', /empty path component/],
    ['docker.io/docker///docker', /empty path component/],
    ['docker/', /empty path component/],
    ['dock..er/docker', /"dock..er" is not a valid registry host.*names a registry/],
    ['dock_.er/docker', /not a valid registry host/],
    ['ns/dock..er', /invalid separator/],
    ['ns/dock_.er', /invalid separator/],
    ['ns/dock-.er', /invalid separator/],
    ['ns/dock___er', /invalid separator/],
    ['aa/asdf$$^/aa', /may only contain/],
    [':justtag', /repository name is missing/],
    [`@${SHA256}`, /repository name is missing/],
    ['[fc00::1]', /may only contain/],
    ['[fc00::1]:5000', /may only contain/],
    ['fc00::1:5000/debian', /not a valid registry host/],
    ['[fe80::1%eth0]:5000/debian', /not a valid registry host/],
    ['[2001:db8:3:4::192.0.2.33]:5000/debian', /not a valid registry host/],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', /64 hex characters, this one has 34/],
    [`validname@invaliddigest:${'f'.repeat(64)}`, /algorithm "invaliddigest" is not supported/],
    [`repo@sha256:${'F'.repeat(64)}`, /lowercase/],
    ['repo@notadigest', /not a digest/],
    ['repo:-tag', /tag "-tag"/],
    [`repo:${'t'.repeat(129)}`, /1-128 characters/],
    ['repo:a:b', /tag "a:b"/],
    ['1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', /looks like an image ID/],
    ['alpine latest', /whitespace/],
  ])('%s', (input, message) => {
    expect(errorOf(input).message).toMatch(message);
  });

  it('limits domain/path to 255 characters', () => {
    expect(parseReference(`example.com/${'a/'.repeat(120)}a`).path).toHaveLength(241);
    expect(errorOf(`${'a/'.repeat(128)}a:tag`).message).toMatch(/limit is 255/);
    // Valid for distribution's Parse, too long once normalized to docker.io/… (as ParseNormalizedNamed).
    expect(errorOf(`${'a/'.repeat(127)}a:tag-puts-this-over-max`).message).toMatch(/265 characters/);
    const long = `${Array(4).fill('this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255').join('_')}/docker`;
    expect(errorOf(long).message).toMatch(/limit is 255/);
  });
});

describe('helpers', () => {
  it('hasExplicitDomain follows docker: ".", ":", localhost or uppercase in the first component', () => {
    expect(hasExplicitDomain('example.com/foo')).toBe(true);
    expect(hasExplicitDomain('example:5000/foo')).toBe(true);
    expect(hasExplicitDomain('localhost/foo')).toBe(true);
    expect(hasExplicitDomain('Foo/bar')).toBe(true);
    expect(hasExplicitDomain('docker.io/alpine')).toBe(true);
    expect(hasExplicitDomain('foo/bar')).toBe(false);
    expect(hasExplicitDomain('alpine')).toBe(false);
    expect(hasExplicitDomain('example.com')).toBe(false);
  });

  it('formats names and maps Docker Hub to its API host', () => {
    const ref = parseReference('alpine');
    expect(formatName(ref)).toBe('docker.io/library/alpine');
    expect(formatReference(ref)).toBe('docker.io/library/alpine:latest');
    expect(registryHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });

  it('validates digests like go-digest', () => {
    expect(parseDigest(SHA256)).toBe(SHA256);
    expect(isDigest(SHA512)).toBe(true);
    expect(isDigest(`sha384:${'a'.repeat(96)}`)).toBe(true);
    expect(isDigest(`sha256:${'a'.repeat(63)}`)).toBe(false);
    expect(isDigest(`md5:${'a'.repeat(32)}`)).toBe(false);
    expect(() => parseDigest('sha256:xyz')).toThrow(/invalid digest/);
  });
});

describe('round trips (property-based)', () => {
  const alnum = fc.stringMatching(/^[a-z0-9]{1,8}$/);
  const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
  const component = fc
    .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
    .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
  const domain = fc.oneof(
    fc.constant('docker.io'),
    fc.constant('localhost'),
    fc.tuple(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/), fc.array(fc.stringMatching(/^[a-zA-Z0-9]{1,6}$/), { minLength: 1, maxLength: 3 })).map(
      ([a, rest]) => [a, ...rest].join('.'),
    ).filter((d) => d !== 'index.docker.io' && d !== 'registry-1.docker.io'),
    fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
    fc.tuple(fc.stringMatching(/^[0-9a-f]{1,4}$/), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `[${h}::1]:${p}`),
  );
  const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
  const digest = fc.oneof(fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`), fc.stringMatching(/^[a-f0-9]{128}$/).map((h) => `sha512:${h}`));
  const reference = fc
    .record({ domain, components: fc.array(component, { minLength: 1, maxLength: 4 }), tag: fc.option(tag, { nil: undefined }), digest: fc.option(digest, { nil: undefined }) })
    .map(({ domain, components, tag, digest }) => {
      const path = domain === 'docker.io' && components.length === 1 ? `library/${components[0]}` : components.join('/');
      const ref: ImageReference = { domain, path };
      if (tag !== undefined) ref.tag = tag;
      if (digest !== undefined) ref.digest = digest;
      return ref;
    })
    .filter((r) => formatName(r).length <= 255);

  it('parseReference(formatReference(r)) gives r back', () => {
    fc.assert(
      fc.property(reference, (ref) => {
        expect(parseReference(formatReference(ref), { defaultTag: false })).toEqual(ref);
      }),
    );
  });

  it('formatReference(parseReference(x)) is a fixed point', () => {
    fc.assert(
      fc.property(reference, (ref) => {
        const once = formatReference(parseReference(formatReference(ref)));
        expect(formatReference(parseReference(once))).toBe(once);
      }),
    );
  });

  it('never throws anything but INVALID_REFERENCE on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (input) => {
        try {
          parseReference(input);
        } catch (err) {
          expect(err).toBeInstanceOf(RegistryError);
          expect((err as RegistryError).code).toBe('INVALID_REFERENCE');
        }
      }),
    );
  });
});

describe('errors about references written with credentials', () => {
  it.each(['https://alice:s3cret@registry.example/app:1', 'alice:s3cret@registry.example/app:1'])('never repeat the password of %s', (input) => {
    let message = '';
    try {
      parseReference(input);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/invalid image reference/);
    expect(message).not.toContain('s3cret');
  });

  it('still quote a tag and digest reference as written', () => {
    const input = `Alpine:3@sha256:${'a'.repeat(64)}`;
    expect(() => parseReference(input)).toThrow(input);
  });
});
