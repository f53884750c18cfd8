/**
 * Bearer tokens from a registry's token server (distribution's docs/spec/auth/token.md), cached per
 * registry, scope and identity so that every blob of a pull reuses one token instead of asking again.
 */
import { RegistryError } from './errors.js';

/** A token server's answer, reduced to what the client needs. */
export interface TokenGrant {
  token: string;
  /** Epoch milliseconds after which the token must not be used. */
  expiresAt: number;
  /** A new refresh token, when an OAuth2 token endpoint rotates it. */
  refreshToken?: string;
}

/** Lifetime the token spec prescribes when `expires_in` is absent. */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

/**
 * Reads a token response: `token` or `access_token` (the spec asks clients to accept both; OAuth2
 * endpoints send only `access_token`), `expires_in` (default 60 s) counted from `issued_at` when given.
 * Throws TOKEN_FAILED when no token is present.
 */
export function parseTokenResponse(body: unknown, now: number = Date.now()): TokenGrant {
  if (typeof body !== 'object' || body === null) throw new RegistryError('TOKEN_FAILED', 'token response is not a JSON object');
  const b = body as Record<string, unknown>;
  const token = typeof b.token === 'string' && b.token !== '' ? b.token : typeof b.access_token === 'string' ? b.access_token : '';
  if (token === '') throw new RegistryError('TOKEN_FAILED', 'token response has neither "token" nor "access_token"');
  const expiresIn = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) && b.expires_in > 0 ? b.expires_in : DEFAULT_TOKEN_LIFETIME_S;
  let issuedAt = now;
  if (typeof b.issued_at === 'string') {
    const t = Date.parse(b.issued_at);
    // A server clock ahead of ours would stretch the lifetime; never count from the future.
    if (Number.isFinite(t) && t < now) issuedAt = t;
  }
  const grant: TokenGrant = { token, expiresAt: issuedAt + expiresIn * 1000 };
  if (typeof b.refresh_token === 'string' && b.refresh_token !== '') grant.refreshToken = b.refresh_token;
  return grant;
}

/** Options of TokenCache. */
export interface TokenCacheOptions {
  /** Renew this long before expiry, so a token does not lapse mid-request (default 10 s, at most half the lifetime). */
  marginMs?: number;
  /** Most entries kept; the oldest is dropped first (default 1000). */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Entry {
  token: string;
  /** When to stop handing the token out (expiry minus the margin). */
  useUntil: number;
}

/** Bearer tokens keyed by registry, scope and credentials fingerprint, each kept until shortly before it expires. */
export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #marginMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: TokenCacheOptions = {}) {
    this.#marginMs = options.marginMs ?? 10_000;
    this.#maxEntries = options.maxEntries ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** The cache key of a (registry, scope, credentials fingerprint) triple. */
  static key(registry: string, scope: string, fingerprint: string): string {
    return JSON.stringify([registry, scope, fingerprint]);
  }

  /** A still-fresh token for the key, or undefined. */
  get(key: string): string | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#now() >= entry.useUntil) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** Stores a grant; one that is already (nearly) expired is not stored. */
  set(key: string, grant: TokenGrant): void {
    const now = this.#now();
    const lifetime = grant.expiresAt - now;
    const useUntil = grant.expiresAt - Math.min(this.#marginMs, lifetime / 2);
    this.#entries.delete(key);
    if (useUntil <= now) return;
    this.#entries.set(key, { token: grant.token, useUntil });
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** Forgets a token, e.g. after the registry refused it with 401. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Number of entries held (fresh or not yet swept). */
  get size(): number {
    return this.#entries.size;
  }
}
