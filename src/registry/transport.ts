/**
 * The HTTP layer of the registry client, shaped like go-containerregistry's transport: it pings
 * `/v2/` to learn the auth challenge, does the Basic or Bearer handshake (distribution's token and
 * OAuth2 specs), retries temporary failures of idempotent requests with backoff, follows redirects
 * without leaking Authorization to other hosts, and turns every failure into a classified RegistryError.
 */
import { rootCertificates } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { Agent, Pool, type Dispatcher } from 'undici';
import { parseWwwAuthenticate, type Challenge } from './challenge.js';
import { basicAuthorization, credentialsFingerprint, credentialsKind, type Credentials } from './credentials.js';
import { RegistryError, type RegistryErrorCode, type RegistryErrorDetail } from './errors.js';
import { isRepositoryPath } from './reference.js';
import { parseTokenResponse, TokenCache } from './token-cache.js';

/** Where a request goes: a registry host and, for repository APIs, the repository and identity to use. */
export interface RegistryEndpoint {
  /** host[:port] to contact, e.g. registry-1.docker.io or 127.0.0.1:5000. */
  registry: string;
  /** Repository the request is about; the Bearer scope is `repository:NAME:pull`. */
  repository?: string;
  credentials?: Credentials;
  /**
   * Overrides `isInsecure` for this endpoint. false: HTTPS with verification only. true: HTTPS
   * without verification (unless the host has its own CA), falling back to plain HTTP when the host
   * does not speak TLS, as containers/image treats an insecure registry.
   */
  insecure?: boolean;
}

/** Per-registry TLS settings: extra CA certificates (PEM, added to the system roots), a client certificate, or no verification. */
export interface TlsSettings {
  ca?: string[];
  /** Client certificate and key (PEM), for registries that require mutual TLS (certs.d `*.cert`/`*.key`). */
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** Reported before each retry, for logs and metrics; never carries credentials. */
export interface RetryEvent {
  registry: string;
  url: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** Options of RegistryTransport. */
export interface RegistryTransportOptions {
  userAgent?: string;
  /**
   * Whether a host may be spoken to over plain HTTP or unverified TLS (default: loopback addresses and
   * localhost, as Docker allows). Such a host is tried over HTTPS first, then over plain HTTP.
   */
  isInsecure?: (host: string) => boolean;
  /**
   * TLS settings per host[:port], e.g. a private registry's CA. A host with its own CA is verified
   * against it even when insecure: trust the operator gave for that host is not thrown away.
   */
  tlsOptionsFor?: (host: string) => TlsSettings | undefined;
  /** Replaces the internal undici Agent (tests, proxies); not closed by close(). */
  dispatcher?: Dispatcher;
  /** Attempts per idempotent request, first included (default 3). */
  maxTries?: number;
  /** First backoff delay, doubled each retry (default 500 ms). */
  retryBaseDelayMs?: number;
  /** Longest wait (backoff or Retry-After) spent in-process; longer ones fail as temporary (default 30 s). */
  maxRetryDelayMs?: number;
  /** Time allowed for response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Longest silence between body chunks (default 60 s). */
  bodyTimeoutMs?: number;
  tokenCache?: TokenCache;
  onRetry?: (event: RetryEvent) => void;
}

/** Per-request options. */
export interface RegistryRequestOptions {
  accept?: readonly string[];
  /** Byte range to ask for (`Range: bytes=start-[end]`). */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
  /** What is being fetched, for error messages ("manifest latest of library/alpine"). */
  what?: string;
  /** Code for a 404 whose body names no registry error code. */
  notFound?: Extract<RegistryErrorCode, 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'NAME_UNKNOWN'>;
}

/** A successful (2xx) response; the caller must consume or destroy `body`. */
export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** Final URL, after redirects. */
  url: URL;
}

/** What `/v2/` answered: whether auth is needed and how. */
export interface PingResult {
  status: number;
  challenges: Challenge[];
  /** The Docker-Distribution-API-Version header, when sent. */
  apiVersion?: string;
}

type RawResponse = Dispatcher.ResponseData;
interface SendRequest {
  registry: string;
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  what: string;
  /** Safe to send again (idempotent and no body consumed yet). */
  retry: boolean;
  /** TLS without verification (an insecure registry without a CA of its own). */
  insecure: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const TOKEN_BODY_CAP = 1024 * 1024;

/** Most bytes of an error body read; the rest is dropped (a registry error body is a few hundred bytes). */
export const ERROR_BODY_CAP = 64 * 1024;

/** Reads at most `cap` bytes of a body, then destroys the stream; `overflow` says whether more was sent. */
export async function readCapped(body: Readable, cap: number): Promise<{ bytes: Buffer; overflow: boolean }> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (total + chunk.length > cap) {
      chunks.push(chunk.subarray(0, cap - total));
      discardBody(body);
      return { bytes: Buffer.concat(chunks, cap), overflow: true };
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return { bytes: Buffer.concat(chunks, total), overflow: false };
}

/**
 * Stops reading a body and drops the connection. undici reports an unread body's destruction as an
 * 'error' event (RequestAbortedError), which would be unhandled, so it is swallowed here.
 */
export function discardBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** The `{"errors":[{code,message,detail}]}` body of the distribution spec, or [] when it is not one. */
export function parseRegistryErrors(body: Buffer): RegistryErrorDetail[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  const list = (parsed as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(list)) return [];
  return list.flatMap((e: unknown) => {
    if (typeof e !== 'object' || e === null) return [];
    const { code, message, detail } = e as Record<string, unknown>;
    // Registry text is untrusted: no control characters, bounded length.
    const clean = (v: unknown): string => (typeof v === 'string' ? v.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 500) : '');
    return [{ code: clean(code), message: clean(message), ...(detail === undefined ? {} : { detail }) }];
  });
}

const NOT_FOUND_CODES = new Set<string>(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN']);

/**
 * Classifies an error response: 401 UNAUTHORIZED, 403 DENIED, 404 by the body's code, 429 and 5xx
 * temporary, other statuses PROTOCOL_ERROR. The message carries the registry's own words and the host.
 */
export function errorFromResponse(
  status: number,
  body: Buffer,
  registry: string,
  what: string,
  opts: { notFound?: RegistryErrorCode; hint?: string | undefined } = {},
): RegistryError {
  const errors = parseRegistryErrors(body);
  const said = errors.map((e) => e.message || e.code).filter((m) => m !== '').join('; ');
  let code: RegistryErrorCode = 'PROTOCOL_ERROR';
  let temporary = false;
  if (status === 401) code = 'UNAUTHORIZED';
  else if (status === 403) code = 'DENIED';
  else if (status === 404) {
    const named = errors.find((e) => NOT_FOUND_CODES.has(e.code))?.code as RegistryErrorCode | undefined;
    code = named ?? opts.notFound ?? 'NAME_UNKNOWN';
  } else if (status === 429) [code, temporary] = ['TOO_MANY_REQUESTS', true];
  else if (status >= 500) [code, temporary] = ['REGISTRY_UNAVAILABLE', status !== 501 && status !== 505];
  const detail = [said || `HTTP ${status}`, opts.hint].filter(Boolean).join('; ');
  return new RegistryError(code, `${what}: ${detail} (HTTP ${status} from ${registry})`, { status, registry, errors, temporary });
}

const TEMPORARY_NET_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** Node's codes for a certificate that fails verification (expired, unknown issuer, wrong name…). */
const CERTIFICATE_CODE_RE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

function errorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown[] };
  const own = typeof e.code === 'string' ? e.code : undefined;
  if (own !== undefined && own !== 'UND_ERR_SOCKET') return own;
  // undici wraps socket faults (cause: ECONNRESET); Happy Eyeballs reports an AggregateError.
  const inner = e.cause !== err ? errorCode(e.cause, depth + 1) : undefined;
  return inner ?? (Array.isArray(e.errors) ? errorCode(e.errors[0], depth + 1) : undefined) ?? own;
}

/**
 * Turns a network or TLS failure into REGISTRY_UNAVAILABLE: temporary for resets, refusals and
 * timeouts; permanent for DNS names that do not exist and certificate problems, which retrying won't fix.
 */
export function classifyNetworkError(err: unknown, registry: string, what: string, host: string = registry): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = errorCode(err) ?? 'unknown error';
  const temporary = TEMPORARY_NET_CODES.has(code);
  let why = `cannot reach ${host} (${code})`;
  if (code === 'ENOTFOUND') why = `the host name ${host} does not resolve`;
  else if (CERTIFICATE_CODE_RE.test(code)) {
    why = `TLS verification of ${host} failed (${code}); configure the registry's CA or mark it insecure`;
  } else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') why = `TLS handshake with ${host} failed; is it plain HTTP? (${code})`;
  return new RegistryError('REGISTRY_UNAVAILABLE', `${what}: ${why}`, { registry, temporary, cause: err });
}

/** Milliseconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 10.2.3). */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** True when a TLS failure is about the certificate (so the server does speak TLS). */
export function isCertificateError(err: unknown): boolean {
  const cause = err instanceof RegistryError ? err.cause : err;
  return CERTIFICATE_CODE_RE.test(errorCode(cause) ?? '');
}

/** TLS options of a connection to one origin: a host's CA (added to the system roots), client certificate, verification. */
function connectOptions(tls: TlsSettings | undefined, insecure: boolean): Record<string, unknown> {
  const ownCa = tls?.ca !== undefined && tls.ca.length > 0;
  const rejectUnauthorized = tls?.rejectUnauthorized ?? (insecure ? ownCa : undefined);
  return {
    // Node's `ca` replaces the default roots; containers/image adds certs.d CAs to the system pool.
    ...(ownCa ? { ca: [...rootCertificates, ...tls.ca!] } : {}),
    ...(tls?.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
  };
}

/** Default for `isInsecure`: loopback (127.0.0.0/8, ::1) and localhost speak plain HTTP, as docker allows. */
export function isLoopbackHost(host: string): boolean {
  const colons = host.split(':').length - 1;
  const hostname = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : colons > 1 ? host : host.replace(/:\d+$/, '');
  return hostname === 'localhost' || hostname === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** `/v2/<name>/<rest>`, after checking that the repository name is one (so it cannot escape the path). */
export function repositoryApiPath(repository: string, rest: string): string {
  if (!isRepositoryPath(repository)) throw new RegistryError('INVALID_REFERENCE', `invalid repository name "${repository}"`);
  return `/v2/${repository}/${rest}`;
}

/** First value of a header that undici may report as an array. */
export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** HTTP client for the distribution API with auth, retries and error classification. */
export class RegistryTransport {
  readonly #dispatcher: Dispatcher;
  /** For insecure hosts: TLS verification off, unless the host has a CA of its own. */
  readonly #insecureDispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #userAgent: string;
  readonly #isInsecure: (host: string) => boolean;
  readonly #maxTries: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #headersTimeout: number;
  readonly #bodyTimeout: number;
  readonly #tokens: TokenCache;
  readonly #onRetry: ((e: RetryEvent) => void) | undefined;
  readonly #challenges = new Map<string, Promise<PingResult>>();
  /** Insecure hosts: the base URL found by probing (https:// when the host speaks TLS, else http://). */
  readonly #schemes = new Map<string, Promise<URL>>();
  readonly #probed = new Map<string, URL>();
  readonly #pendingTokens = new Map<string, Promise<string>>();

  constructor(options: RegistryTransportOptions = {}) {
    this.#userAgent = options.userAgent ?? 'berth/0.1';
    this.#isInsecure = options.isInsecure ?? isLoopbackHost;
    this.#maxTries = Math.max(1, options.maxTries ?? 3);
    this.#baseDelay = options.retryBaseDelayMs ?? 500;
    this.#maxDelay = options.maxRetryDelayMs ?? 30_000;
    this.#headersTimeout = options.headersTimeoutMs ?? 30_000;
    this.#bodyTimeout = options.bodyTimeoutMs ?? 60_000;
    this.#tokens = options.tokenCache ?? new TokenCache();
    this.#onRetry = options.onRetry;
    this.#ownsDispatcher = options.dispatcher === undefined;
    const tlsFor = options.tlsOptionsFor;
    // One pool per origin, so that each registry gets its own CA / verification settings.
    const agent = (insecure: boolean): Agent =>
      new Agent({
        factory: (origin, opts) => {
          const connect = connectOptions(tlsFor?.(new URL(String(origin)).host), insecure);
          return Object.keys(connect).length === 0 ? new Pool(origin, opts) : new Pool(origin, { ...(opts as Pool.Options), connect });
        },
      });
    this.#dispatcher = options.dispatcher ?? agent(false);
    this.#insecureDispatcher = options.dispatcher ?? agent(true);
  }

  /**
   * The base URL of a registry: https:// for secure hosts; for an insecure host, the scheme its probe
   * found (http:// until it has been probed).
   */
  baseUrl(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): URL {
    if (!this.#insecure(endpoint)) return new URL(`https://${endpoint.registry}/`);
    return this.#probed.get(endpoint.registry) ?? new URL(`http://${endpoint.registry}/`);
  }

  #insecure(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): boolean {
    return endpoint.insecure ?? this.#isInsecure(endpoint.registry);
  }

  /**
   * The base URL to use. An insecure host is probed once, as containers/image does: HTTPS first (an
   * answer of any status means it speaks TLS), plain HTTP when the TLS handshake fails, except on a
   * certificate its own CA rejects (that server speaks TLS; downgrading would defeat the CA).
   */
  async #base(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): Promise<URL> {
    if (!this.#insecure(endpoint)) return new URL(`https://${endpoint.registry}/`);
    const { registry } = endpoint;
    let pending = this.#schemes.get(registry);
    if (pending === undefined) {
      pending = this.#probe(registry).then((url) => {
        this.#probed.set(registry, url);
        return url;
      });
      this.#schemes.set(registry, pending);
      const mine = pending;
      mine.catch(() => {
        if (this.#schemes.get(registry) === mine) this.#schemes.delete(registry);
      });
    }
    return pending;
  }

  async #probe(registry: string): Promise<URL> {
    const https = new URL(`https://${registry}/`);
    try {
      const result = await this.#ping(registry, https, undefined, { insecure: true, retry: false });
      this.#challenges.set(https.href, Promise.resolve(result));
      return https;
    } catch (err) {
      if (isCertificateError(err)) throw err;
      // An HTTP status over TLS (a 404 at /v2/, say) still proves the host speaks TLS.
      if (err instanceof RegistryError && err.status !== undefined) return https;
      return new URL(`http://${registry}/`);
    }
  }

  /** GET /v2/ without credentials: 200 means open, 401 carries the challenge. Cached per base URL unless `fresh`. */
  async ping(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>, options: { signal?: AbortSignal | undefined; fresh?: boolean } = {}): Promise<PingResult> {
    const base = await this.#base(endpoint);
    let pending = options.fresh ? undefined : this.#challenges.get(base.href);
    if (pending === undefined) {
      pending = this.#ping(endpoint.registry, base, options.signal, { insecure: this.#insecure(endpoint), retry: true });
      this.#challenges.set(base.href, pending);
      // Failures are not cached: the next request pings again (and probes an insecure host again).
      const mine = pending;
      mine.catch(() => {
        if (this.#challenges.get(base.href) === mine) this.#challenges.delete(base.href);
        this.#schemes.delete(endpoint.registry);
        this.#probed.delete(endpoint.registry);
      });
    }
    return pending;
  }

  async #ping(registry: string, base: URL, signal: AbortSignal | undefined, opts: { insecure: boolean; retry: boolean }): Promise<PingResult> {
    const url = new URL('/v2/', base);
    const what = `ping of ${registry}`;
    const res = await this.#send({ registry, url, method: 'GET', headers: this.#headers(), signal, what, ...opts });
    const apiVersion = headerValue(res.headers, 'docker-distribution-api-version');
    const body = await readCapped(res.body, ERROR_BODY_CAP);
    if (res.statusCode === 401 || (res.statusCode >= 200 && res.statusCode < 300)) {
      const challenges = res.statusCode === 401 ? parseWwwAuthenticate(res.headers['www-authenticate']) : [];
      return { status: res.statusCode, challenges, ...(apiVersion === undefined ? {} : { apiVersion }) };
    }
    throw errorFromResponse(res.statusCode, body.bytes, registry, `${what} failed`, { notFound: 'NAME_UNKNOWN' });
  }

  /**
   * Sends a GET or HEAD to the registry (path relative to its base URL, query included) and returns the
   * 2xx response. Authenticates as the registry's challenge asks, refreshes once on 401, follows
   * redirects, retries temporary failures; anything else throws a classified RegistryError.
   */
  async request(endpoint: RegistryEndpoint, method: 'GET' | 'HEAD', path: string, options: RegistryRequestOptions = {}): Promise<RegistryResponse> {
    const base = await this.#base(endpoint);
    const insecure = this.#insecure(endpoint);
    const what = options.what ?? `${method} ${path}`;
    let auth = await this.#authorization(endpoint, false);
    let url = new URL(path, base);
    let authRetried = false;
    for (let hops = 0; ; ) {
      const sameOrigin = url.origin === base.origin;
      const headers = this.#headers();
      if (options.accept) headers.accept = options.accept.join(', ');
      if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end ?? ''}`;
      // Authorization stays with the registry: a redirect to blob storage gets none (as docker and crane do).
      if (auth !== undefined && sameOrigin) headers.authorization = auth;
      const res = await this.#send({ registry: endpoint.registry, url, method, headers, signal: options.signal, what, retry: true, insecure });
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { status, headers: res.headers, body: res.body, url };
      const location = headerValue(res.headers, 'location');
      if (REDIRECTS.has(status) && location !== undefined) {
        await res.body.dump();
        if (++hops > MAX_REDIRECTS) throw new RegistryError('PROTOCOL_ERROR', `${what}: more than ${MAX_REDIRECTS} redirects`, { registry: endpoint.registry });
        url = new URL(location, url);
        continue;
      }
      const body = await readCapped(res.body, ERROR_BODY_CAP);
      if (status === 401 && sameOrigin && !authRetried) {
        authRetried = true;
        // The endpoint may challenge where /v2/ did not, or our cached token may have expired early.
        const challenges = parseWwwAuthenticate(res.headers['www-authenticate']);
        if (challenges.length > 0) this.#challenges.set(base.href, Promise.resolve({ status, challenges }));
        const next = await this.#authorization(endpoint, true);
        if (next !== undefined && next !== auth) {
          auth = next;
          continue;
        }
      }
      throw errorFromResponse(status, body.bytes, endpoint.registry, what, {
        ...(options.notFound ? { notFound: options.notFound } : {}),
        hint: status === 401 ? unauthorizedHint(endpoint.credentials) : undefined,
      });
    }
  }

  /** Closes the internal connection pool (not an injected dispatcher). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await Promise.all([this.#dispatcher.close(), this.#insecureDispatcher.close()]);
  }

  #headers(): Record<string, string> {
    return { 'user-agent': this.#userAgent };
  }

  /** The Authorization header for an endpoint, or undefined to go anonymous. */
  async #authorization(endpoint: RegistryEndpoint, fresh: boolean): Promise<string | undefined> {
    const creds = endpoint.credentials;
    // A CRI registry_token is already a bearer token for this registry: no handshake.
    if (creds !== undefined && 'registryToken' in creds) return `Bearer ${creds.registryToken}`;
    // Ping and token fetches are shared by concurrent requests, so one caller's abort must not fail them all.
    const { challenges } = await this.ping(endpoint);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer !== undefined) return `Bearer ${await this.#bearerToken(endpoint, bearer, fresh)}`;
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic !== undefined && creds !== undefined && 'username' in creds) return basicAuthorization(creds.username, creds.password);
    return undefined;
  }

  #bearerToken(endpoint: RegistryEndpoint, challenge: Challenge, fresh: boolean): Promise<string> {
    const scope = endpoint.repository === undefined ? '' : `repository:${endpoint.repository}:pull`;
    const key = TokenCache.key(endpoint.registry, scope, credentialsFingerprint(endpoint.credentials));
    if (fresh) this.#tokens.delete(key);
    const cached = this.#tokens.get(key);
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
    const headers = this.#headers();
    let res: RawResponse;
    if (creds !== undefined && 'identityToken' in creds) {
      // OAuth2 refresh-token grant (distribution docs/spec/auth/oauth.md), as docker does for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth' });
      if (service !== undefined) form.set('service', service);
      if (scope !== '') form.set('scope', scope);
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await this.#send({ registry, url, method: 'POST', headers, body: form.toString(), what, retry: true, insecure: this.#insecure(endpoint) });
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      if (scope !== '') url.searchParams.append('scope', scope);
      if (creds !== undefined && 'username' in creds) headers.authorization = basicAuthorization(creds.username, creds.password);
      res = await this.#send({ registry, url, method: 'GET', headers, what, retry: true, insecure: this.#insecure(endpoint) });
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
    this.#tokens.set(key, grant);
    return grant.token;
  }

  /** One HTTP exchange, retried with backoff while the failure is temporary and `retry` allows it. */
  async #send(req: SendRequest): Promise<RawResponse> {
    for (let attempt = 1; ; attempt++) {
      const canRetry = req.retry && attempt < this.#maxTries;
      let res: RawResponse;
      try {
        res = await (req.insecure ? this.#insecureDispatcher : this.#dispatcher).request({
          origin: req.url.origin,
          path: req.url.pathname + req.url.search,
          method: req.method as Dispatcher.HttpMethod,
          headers: req.headers,
          body: req.body ?? null,
          signal: req.signal ?? null,
          headersTimeout: this.#headersTimeout,
          bodyTimeout: this.#bodyTimeout,
        });
      } catch (err) {
        if (req.signal?.aborted) throw err;
        const classified = classifyNetworkError(err, req.registry, req.what, req.url.host);
        if (!classified.temporary || !canRetry) throw classified;
        await this.#pause(req, attempt, this.#backoff(attempt), classified.message);
        continue;
      }
      const status = res.statusCode;
      const retryable = status === 429 || (status >= 500 && status !== 501 && status !== 505);
      if (canRetry && retryable) {
        const delay = status === 429 ? (retryAfterMs(headerValue(res.headers, 'retry-after')) ?? this.#backoff(attempt)) : this.#backoff(attempt);
        if (delay <= this.#maxDelay) {
          await res.body.dump();
          await this.#pause(req, attempt, delay, `HTTP ${status}`);
          continue;
        }
      }
      return res;
    }
  }

  #backoff(attempt: number): number {
    const delay = this.#baseDelay * 2 ** (attempt - 1);
    return Math.min(this.#maxDelay, Math.round(delay * (1 + Math.random() * 0.2)));
  }

  async #pause(req: SendRequest, attempt: number, delayMs: number, reason: string): Promise<void> {
    this.#onRetry?.({ registry: req.registry, url: req.url.origin + req.url.pathname, attempt, delayMs, reason });
    await sleep(delayMs, undefined, req.signal ? { signal: req.signal } : undefined);
  }
}

function unauthorizedHint(creds: Credentials | undefined): string {
  const kind = credentialsKind(creds);
  return kind === 'anonymous'
    ? 'no credentials were given; the repository may be private or may not exist'
    : `the ${kind} credentials were refused or do not grant pull access`;
}
