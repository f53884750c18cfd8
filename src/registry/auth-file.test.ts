import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AuthFileError, credentialsFor, describeAuthFile, loadAuthFile, parseAuthFile } from './auth-file.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/registries/${name}`, import.meta.url));
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('credentialsFor with a containers-auth.json', async () => {
  const file = await loadAuthFile(fixture('auth.json'));

  it('prefers the most specific key: host/ns/repo, then host/ns, then host', () => {
    expect(credentialsFor(file, 'quay.io', 'team/app')).toEqual({ username: 'app-user', password: 'app:pass:with:colons' });
    expect(credentialsFor(file, 'quay.io', 'team/app/sub')).toEqual({ username: 'app-user', password: 'app:pass:with:colons' });
    expect(credentialsFor(file, 'quay.io', 'team/other')).toEqual({ username: 'team-user', password: 'team-pass' });
    expect(credentialsFor(file, 'quay.io', 'someone/else')).toEqual({ username: 'quay-user', password: 'quay-pass' });
  });

  it('matches on path components, not string prefixes', () => {
    expect(credentialsFor(file, 'quay.io', 'teamster/app')).toEqual({ username: 'quay-user', password: 'quay-pass' });
  });

  it('reads username/password fields, identity tokens, and host:port keys', () => {
    expect(credentialsFor(file, '127.0.0.1:5000', 'library/alpine')).toEqual({ username: 'local', password: 'secret' });
    expect(credentialsFor(file, 'ghcr.io', 'org/tool')).toEqual({ identityToken: 'refresh-token-value' });
    expect(credentialsFor(file, '127.0.0.1:5001', 'library/alpine')).toBeUndefined();
  });

  it('treats an empty entry (a credential-helper marker) as no credentials', () => {
    expect(credentialsFor(file, 'helper.example.com', 'x')).toBeUndefined();
  });

  it('finds Docker Hub under docker.io', () => {
    expect(credentialsFor(file, 'docker.io', 'library/alpine')).toEqual({ username: 'hub-user', password: 'hub-pass' });
  });

  it('describes host names only, and never serializes a secret', () => {
    expect(describeAuthFile(file)).toEqual({
      configured: true,
      file: fixture('auth.json'),
      hosts: ['127.0.0.1:5000', 'docker.io', 'ghcr.io', 'quay.io'],
      warnings: [],
    });
    for (const shown of [JSON.stringify(file), inspect(file, { showHidden: true, depth: 5 }), JSON.stringify(describeAuthFile(file))]) {
      expect(shown).not.toMatch(/pass|secret|refresh-token|cXVhe/);
    }
  });
});

describe('credentialsFor with a Docker config.json', async () => {
  const file = await loadAuthFile(fixture('docker-config.json'));

  it('normalizes legacy URL keys: scheme and path stripped, index.docker.io is docker.io', () => {
    expect(credentialsFor(file, 'docker.io', 'library/alpine')).toEqual({ username: 'legacy-user', password: 'legacy-pass' });
    expect(credentialsFor(file, 'registry-1.docker.io', 'library/alpine')).toEqual({ username: 'legacy-user', password: 'legacy-pass' });
    expect(credentialsFor(file, 'registry.example.com', 'ns/app')).toEqual({ username: 'url-user', password: 'url-pass' });
  });

  it('warns that credential helpers are not run', () => {
    expect(file.hosts).toEqual(['docker.io', 'registry.example.com']);
    expect(file.warnings).toEqual([
      'credHelpers entry "123456789.dkr.ecr.us-east-1.amazonaws.com" is ignored: berth runs no credential helper',
      'credsStore is ignored: berth runs no credential helper',
    ]);
  });
});

describe('parseAuthFile', () => {
  it('prefers an exact key over a normalized legacy one', () => {
    const file = parseAuthFile(JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('old:1') }, 'docker.io': { auth: b64('new:2') } } }));
    expect(credentialsFor(file, 'docker.io', 'library/alpine')).toEqual({ username: 'new', password: '2' });
  });

  it('reads registry tokens, trims NULs from passwords, skips auth without a colon', () => {
    const file = parseAuthFile(
      JSON.stringify({ auths: { 'a.io': { registrytoken: 'tok' }, 'b.io': { auth: b64('u:p\0\0') }, 'c.io': { auth: b64('nocolon') } } }),
      'x.json',
    );
    expect(credentialsFor(file, 'a.io', 'r')).toEqual({ registryToken: 'tok' });
    expect(credentialsFor(file, 'b.io', 'r')).toEqual({ username: 'u', password: 'p' });
    expect(credentialsFor(file, 'c.io', 'r')).toBeUndefined();
    expect(file.warnings).toEqual(['entry "c.io": "auth" does not decode to username:password and is ignored']);
  });

  it('accepts a file without auths', () => {
    expect(parseAuthFile('{}').hosts).toEqual([]);
  });

  it.each([
    ['{"auths": {"a.io": {"auth": "user:pass"}}', /is not valid JSON/],
    ['{"auths": {"a.io": {"auth": "not base64!"}}}', /"auth" of entry "a.io" is not valid base64/],
    ['{"auths": {"a.io": {"username": 5}}}', /"username" of entry "a.io" must be a string/],
    ['{"auths": {"a.io": "x"}}', /entry "a.io" must be an object/],
    ['{"auths": []}', /"auths" must be an object/],
    ['[]', /must be a JSON object/],
  ])('rejects %s without echoing it', (text, reason) => {
    const fail = () => parseAuthFile(text, 'auth.json');
    expect(fail).toThrow(AuthFileError);
    expect(fail).toThrow(reason);
    try {
      fail();
    } catch (err) {
      expect((err as Error).message).not.toMatch(/user:pass|not base64!/);
    }
  });

  it('gives the position of a JSON syntax error', () => {
    expect(() => parseAuthFile('{\n  "auths": {,}\n}', 'auth.json')).toThrow(/auth\.json: is not valid JSON \(line 2, column 13\)/);
  });

  it('names a file that cannot be read', async () => {
    await expect(loadAuthFile(fixture('missing.json'))).rejects.toThrow(/missing\.json: cannot read: ENOENT/);
  });
});
