/**
 * The auth handshake of the transport: from a registry's challenge to an Authorization header. Basic
 * sends the credentials; Bearer fetches a token from the challenge's realm (distribution's token spec,
 * or its OAuth2 refresh-token grant for identity tokens), cached per registry, scope and identity.
 */
import type { Dispatcher } from 'undici';
import type { Challenge } from './challenge.js';
import { basicAuthorization, credentialsFingerprint, credentialsKind, type Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { parseTokenResponse, TokenCache } from './token-cache.js';
import type { PingResult, RegistryEndpoint } from './transport.js';
import { errorFromResponse } from './transport-errors.js';
import { readCapped } from './transport-response.js';

const TOKEN_BODY_CAP = 1024 * 1024;

/** One request to a token server, sent by the transport (with its retries) on behalf of an endpoint. */
export interface TokenRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  what: string;
}

/** What the handshake uses of the transport. */
export interface AuthorizerOptions {
  tokens: TokenCache;
  /** The registry's challenge: its `/v2/` ping, cached by the transport. */
  ping: (endpoint: RegistryEndpoint) => Promise<PingResult>;
  send: (endpoint: RegistryEndpoint, request: TokenRequest) => Promise<Dispatcher.ResponseData>;
  /** The headers every request carries (User-Agent). */
  headers: () => Record<string, string>;
}

/** Turns an endpoint's credentials and its registry's challenge into an Authorization header. */
export class Authorizer {
  readonly #options: AuthorizerOptions;
  readonly #pendingTokens = new Map<string, Promise<string>>();

  constructor(options: AuthorizerOptions) {
    this.#options = options;
  }

  /** The Authorization header for an endpoint, or undefined to go anonymous; `fresh` skips the cached token. */
  async authorization(endpoint: RegistryEndpoint, fresh: boolean): Promise<string | undefined> {
    const creds = endpoint.credentials;
    // A CRI registry_token is already a bearer token for this registry: no handshake.
    if (creds !== undefined && 'registryToken' in creds) return `Bearer ${creds.registryToken}`;
    // Ping and token fetches are shared by concurrent requests, so one caller's abort must not fail them all.
    const { challenges } = await this.#options.ping(endpoint);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer !== undefined) return `Bearer ${await this.#bearerToken(endpoint, bearer, fresh)}`;
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic !== undefined && creds !== undefined && 'username' in creds) return basicAuthorization(creds.username, creds.password);
    return undefined;
  }

  #bearerToken(endpoint: RegistryEndpoint, challenge: Challenge, fresh: boolean): Promise<string> {
    const { tokens } = this.#options;
    const scope = endpoint.repository === undefined ? '' : `repository:${endpoint.repository}:pull`;
    const key = TokenCache.key(endpoint.registry, scope, credentialsFingerprint(endpoint.credentials));
    if (fresh) tokens.delete(key);
    const cached = tokens.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    // Concurrent requests of one pull share a single token fetch.
    let pending = this.#pendingTokens.get(key);
    if (pending === undefined) {
      pending = this.#fetchToken(endpoint, challenge, scope, key).finally(() => this.#pendingTokens.delete(key));
      this.#pendingTokens.set(key, pending);
    }
    return pending;
  }

  async #fetchToken(endpoint: RegistryEndpoint, challenge: Challenge, scope: string, key: string): Promise<string> {
    const { registry, credentials: creds } = endpoint;
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new RegistryError('TOKEN_FAILED', `${registry} sent a Bearer challenge without a usable realm URL`, { registry });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryError('TOKEN_FAILED', `${registry} names a token realm that is not http(s)`, { registry });
    }
    const service = challenge.params.service;
    const what = `token for ${scope || 'registry access'} from ${url.host}`;
    const headers = this.#options.headers();
    let res: Dispatcher.ResponseData;
    if (creds !== undefined && 'identityToken' in creds) {
      // OAuth2 refresh-token grant (distribution docs/spec/auth/oauth.md), as docker does for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth' });
      if (service !== undefined) form.set('service', service);
      if (scope !== '') form.set('scope', scope);
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await this.#options.send(endpoint, { url, method: 'POST', headers, body: form.toString(), what });
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      if (scope !== '') url.searchParams.append('scope', scope);
      if (creds !== undefined && 'username' in creds) headers.authorization = basicAuthorization(creds.username, creds.password);
      res = await this.#options.send(endpoint, { url, method: 'GET', headers, what });
    }
    const body = await readCapped(res.body, TOKEN_BODY_CAP);
    if (res.statusCode !== 200) {
      const denied = res.statusCode === 401 || res.statusCode === 403;
      const err = errorFromResponse(res.statusCode, body.bytes, registry, `${what} failed`, { hint: denied ? unauthorizedHint(creds) : undefined });
      if (denied || err.temporary) throw err;
      throw new RegistryError('TOKEN_FAILED', err.message, { registry, status: res.statusCode, errors: err.errors });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.bytes.toString('utf8'));
    } catch {
      throw new RegistryError('TOKEN_FAILED', `${what}: the token server answered something that is not JSON`, { registry });
    }
    const grant = parseTokenResponse(parsed);
    this.#options.tokens.set(key, grant);
    return grant.token;
  }
}

/** What a 401 most likely means, by the kind of credentials that were sent. */
export function unauthorizedHint(creds: Credentials | undefined): string {
  const kind = credentialsKind(creds);
  return kind === 'anonymous'
    ? 'no credentials were given; the repository may be private or may not exist'
    : `the ${kind} credentials were refused or do not grant pull access`;
}
