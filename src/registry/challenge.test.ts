import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './challenge.js';

describe('parseWwwAuthenticate (RFC 7235)', () => {
  it('reads the Bearer challenge of a token-auth registry', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
  });

  it('reads Basic, lowercasing scheme and parameter names', () => {
    expect(parseWwwAuthenticate('BASIC Realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  });

  it('keeps commas and spaces inside quoted values (multi-scope)', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://a/token", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"');
    expect(c?.params).toEqual({ realm: 'https://a/token', scope: 'repository:a:pull,push repository:b:pull', error: 'insufficient_scope' });
  });

  it('unescapes quoted-pairs', () => {
    const [c] = parseWwwAuthenticate('Basic realm="say \\"hi\\" \\\\ there"');
    expect(c?.params.realm).toBe('say "hi" \\ there');
  });

  it('splits several challenges in one header, and across headers', () => {
    const list = parseWwwAuthenticate(['Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"', 'Bearer realm="x"']);
    expect(list.map((c) => c.scheme)).toEqual(['newauth', 'basic', 'bearer']);
    expect(list[0]?.params).toEqual({ realm: 'apps', type: '1', title: 'Login to "apps"' });
    expect(list[1]?.params).toEqual({ realm: 'simple' });
  });

  it('accepts token68 and parameterless challenges', () => {
    expect(parseWwwAuthenticate('Negotiate abc+/==, Basic')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
      { scheme: 'basic', params: {} },
    ]);
  });

  it('is lenient with unquoted URLs, spaces around "=", and junk', () => {
    expect(parseWwwAuthenticate('Bearer realm = https://h/token , service=reg')).toEqual([{ scheme: 'bearer', params: { realm: 'https://h/token', service: 'reg' } }]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('  ,, ')).toEqual([]);
    expect(() => parseWwwAuthenticate('"@@ = ,;;"')).not.toThrow();
  });
});
