import { describe, expect, it } from 'vitest';
import { parseTokenResponse, TokenCache } from './token-cache.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');

describe('parseTokenResponse', () => {
  it('accepts token or access_token, default lifetime 60 s', () => {
    expect(parseTokenResponse({ token: 'a' }, NOW)).toEqual({ token: 'a', expiresAt: NOW + 60_000 });
    expect(parseTokenResponse({ access_token: 'b', expires_in: 300 }, NOW)).toEqual({ token: 'b', expiresAt: NOW + 300_000 });
    expect(parseTokenResponse({ token: 'a', access_token: 'b' }, NOW).token).toBe('a');
    expect(parseTokenResponse({ token: 'a', refresh_token: 'r' }, NOW).refreshToken).toBe('r');
  });

  it('counts from issued_at, but never from the future', () => {
    expect(parseTokenResponse({ token: 'a', expires_in: 300, issued_at: '2024-05-01T11:58:00Z' }, NOW).expiresAt).toBe(NOW + 180_000);
    expect(parseTokenResponse({ token: 'a', expires_in: 300, issued_at: '2024-05-01T13:00:00Z' }, NOW).expiresAt).toBe(NOW + 300_000);
    expect(parseTokenResponse({ token: 'a', issued_at: 'garbage' }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('refuses answers without a token', () => {
    expect(() => parseTokenResponse({ expires_in: 60 }, NOW)).toThrow(expect.objectContaining({ code: 'TOKEN_FAILED' }));
    expect(() => parseTokenResponse('token', NOW)).toThrow(expect.objectContaining({ code: 'TOKEN_FAILED' }));
    expect(() => parseTokenResponse({ token: '' }, NOW)).toThrow(/neither/);
  });
});

describe('TokenCache', () => {
  it('hands a token out until the margin before expiry', () => {
    let now = NOW;
    const cache = new TokenCache({ now: () => now, marginMs: 10_000 });
    const key = TokenCache.key('reg', 'repository:a:pull', 'fp');
    cache.set(key, { token: 't', expiresAt: NOW + 60_000 });
    expect(cache.get(key)).toBe('t');
    expect(cache.get(TokenCache.key('reg', 'repository:b:pull', 'fp'))).toBeUndefined();
    expect(cache.get(TokenCache.key('reg', 'repository:a:pull', 'other'))).toBeUndefined();
    now = NOW + 49_999;
    expect(cache.get(key)).toBe('t');
    now = NOW + 50_000;
    expect(cache.get(key)).toBeUndefined();
  });

  it('uses at most half the lifetime as margin for short tokens, and skips expired grants', () => {
    const cache = new TokenCache({ now: () => NOW, marginMs: 10_000 });
    cache.set('short', { token: 's', expiresAt: NOW + 4_000 });
    expect(cache.get('short')).toBe('s');
    cache.set('old', { token: 'o', expiresAt: NOW - 1 });
    expect(cache.get('old')).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('forgets on delete and drops the oldest beyond maxEntries', () => {
    const cache = new TokenCache({ now: () => NOW, maxEntries: 2 });
    for (const k of ['a', 'b', 'c']) cache.set(k, { token: k, expiresAt: NOW + 60_000 });
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 'b', 'c']);
    cache.delete('b');
    expect(cache.get('b')).toBeUndefined();
  });
});
