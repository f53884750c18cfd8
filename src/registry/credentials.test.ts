import { describe, expect, it } from 'vitest';
import { basicAuthorization, credentialsFingerprint, credentialsKind, parseCriAuth } from './credentials.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('parseCriAuth', () => {
  it('accepts the CRI AuthConfig forms', () => {
    expect(parseCriAuth({ username: 'u', password: 'p' })).toEqual({ username: 'u', password: 'p' });
    expect(parseCriAuth({ auth: b64('user:pa:ss') })).toEqual({ username: 'user', password: 'pa:ss' });
    expect(parseCriAuth({ identityToken: 'refresh' })).toEqual({ identityToken: 'refresh' });
    expect(parseCriAuth({ identity_token: 'refresh' })).toEqual({ identityToken: 'refresh' });
    expect(parseCriAuth({ registryToken: 'bearer' })).toEqual({ registryToken: 'bearer' });
    expect(parseCriAuth({ username: 'u', password: 'p', serverAddress: 'https://index.docker.io/v1/' })).toEqual({ username: 'u', password: 'p' });
    expect(parseCriAuth({ auth: b64('ü:ß') })).toEqual({ username: 'ü', password: 'ß' });
    expect(parseCriAuth({ username: 'u', password: '' })).toEqual({ username: 'u', password: '' });
  });

  it('reads absent or empty input as anonymous', () => {
    expect(parseCriAuth(undefined)).toBeUndefined();
    expect(parseCriAuth(null)).toBeUndefined();
    expect(parseCriAuth({})).toBeUndefined();
    expect(parseCriAuth({ serverAddress: 'x', username: '', password: null })).toBeUndefined();
  });

  it.each<[unknown, RegExp]>([
    ['user:pass', /expected an object/],
    [[], /expected an object/],
    [{ username: 'u' }, /without "password"/],
    [{ password: 'p' }, /without "username"/],
    [{ username: 'u', password: 'p', auth: b64('u:p') }, /one form.*username\/password and auth/],
    [{ auth: b64('u:p'), identityToken: 't' }, /one form/],
    [{ identityToken: 't', registryToken: 'r' }, /one form/],
    [{ auth: 'not base64!' }, /not valid base64/],
    [{ auth: 'dXNlcg' }, /not valid base64/],
    [{ auth: b64('nocolon') }, /no ":"/],
    [{ auth: b64(':pass') }, /username in "auth" is empty/],
    [{ auth: Buffer.from([0xff, 0x3a, 0x61]).toString('base64') }, /UTF-8/],
    [{ username: 1, password: 'p' }, /"username" must be a string/],
    [{ passwd: 'p' }, /unknown field "passwd"/],
    [{ identityToken: 'a', identity_token: 'b' }, /given twice/],
  ])('refuses %j', (body, message) => {
    expect(() => parseCriAuth(body)).toThrow(expect.objectContaining({ code: 'INVALID_CREDENTIALS', message: expect.stringMatching(message) }));
  });

  it('never puts a secret in its error messages', () => {
    try {
      parseCriAuth({ username: 'alice', password: 's3cr3t', identityToken: 'tok3n' });
    } catch (err) {
      expect(String(err)).not.toMatch(/s3cr3t|tok3n|alice/);
    }
  });
});

describe('fingerprints and headers', () => {
  it('fingerprints by identity without revealing it', () => {
    const a = credentialsFingerprint({ username: 'u', password: 'p' });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).toBe(credentialsFingerprint({ username: 'u', password: 'p' }));
    expect(a).not.toBe(credentialsFingerprint({ username: 'u', password: 'q' }));
    expect(credentialsFingerprint({ username: 'u:p', password: '' })).not.toBe(credentialsFingerprint({ username: 'u', password: 'p:' }));
    expect(credentialsFingerprint({ identityToken: 'x' })).not.toBe(credentialsFingerprint({ registryToken: 'x' }));
    expect(credentialsFingerprint(undefined)).toBe('anonymous');
  });

  it('names the kind and builds Basic headers', () => {
    expect(credentialsKind(undefined)).toBe('anonymous');
    expect(credentialsKind({ identityToken: 'x' })).toBe('identity-token');
    expect(basicAuthorization('aladdin', 'opensesame')).toBe('Basic YWxhZGRpbjpvcGVuc2VzYW1l');
  });
});
