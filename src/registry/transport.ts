/**
 * The HTTP layer of the registry client, shaped like go-containerregistry's transport: it pings
 * `/v2/` to learn the auth challenge, does the Basic or Bearer handshake (transport-auth.ts), retries
 * temporary failures of idempotent requests with backoff, follows redirects without leaking
 * Authorization to other hosts, and turns every failure into a classified RegistryError
 * (transport-errors.ts). How it reaches a host over TLS or plain HTTP is in transport-tls.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { parseWwwAuthenticate, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { RegistryError, type RegistryErrorCode } from './errors.js';
import { isRepositoryPath } from './reference.js';
import { TokenCache } from './token-cache.js';
import { Authorizer, unauthorizedHint } from './transport-auth.js';
import { classifyNetworkError, ERROR_BODY_CAP, errorFromResponse, retryAfterMs } from './transport-errors.js';
import { headerValue, readCapped } from './transport-response.js';
import { InsecureSchemes, isLoopbackHost, tlsAgent, type TlsSettings } from './transport-tls.js';

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

/** `/v2/<name>/<rest>`, after checking that the repository name is one (so it cannot escape the path). */
export function repositoryApiPath(repository: string, rest: string): string {
  if (!isRepositoryPath(repository)) throw new RegistryError('INVALID_REFERENCE', `invalid repository name "${repository}"`);
  return `/v2/${repository}/${rest}`;
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
  readonly #onRetry: ((e: RetryEvent) => void) | undefined;
  readonly #challenges = new Map<string, Promise<PingResult>>();
  /** Insecure hosts: the base URL found by probing (https:// when the host speaks TLS, else http://). */
  readonly #schemes: InsecureSchemes;
  readonly #auth: Authorizer;

  constructor(options: RegistryTransportOptions = {}) {
    this.#userAgent = options.userAgent ?? 'berth/0.1';
    this.#isInsecure = options.isInsecure ?? isLoopbackHost;
    this.#maxTries = Math.max(1, options.maxTries ?? 3);
    this.#baseDelay = options.retryBaseDelayMs ?? 500;
    this.#maxDelay = options.maxRetryDelayMs ?? 30_000;
    this.#headersTimeout = options.headersTimeoutMs ?? 30_000;
    this.#bodyTimeout = options.bodyTimeoutMs ?? 60_000;
    this.#onRetry = options.onRetry;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? tlsAgent(options.tlsOptionsFor, false);
    this.#insecureDispatcher = options.dispatcher ?? tlsAgent(options.tlsOptionsFor, true);
    this.#schemes = new InsecureSchemes(async (registry, https) => {
      const result = await this.#ping(registry, https, undefined, { insecure: true, retry: false });
      this.#challenges.set(https.href, Promise.resolve(result));
    });
    this.#auth = new Authorizer({
      tokens: options.tokenCache ?? new TokenCache(),
      ping: (endpoint) => this.ping(endpoint),
      send: (endpoint, request) => this.#send({ registry: endpoint.registry, ...request, retry: true, insecure: this.#insecure(endpoint) }),
      headers: () => this.#headers(),
    });
  }

  /**
   * The base URL of a registry: https:// for secure hosts; for an insecure host, the scheme its probe
   * found (http:// until it has been probed).
   */
  baseUrl(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): URL {
    if (!this.#insecure(endpoint)) return new URL(`https://${endpoint.registry}/`);
    return this.#schemes.known(endpoint.registry);
  }

  #insecure(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): boolean {
    return endpoint.insecure ?? this.#isInsecure(endpoint.registry);
  }

  /** The base URL to use: https:// for a secure host, the probed scheme for an insecure one. */
  async #base(endpoint: Pick<RegistryEndpoint, 'registry' | 'insecure'>): Promise<URL> {
    if (!this.#insecure(endpoint)) return new URL(`https://${endpoint.registry}/`);
    return this.#schemes.resolve(endpoint.registry);
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
        this.#schemes.forget(endpoint.registry);
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
    let auth = await this.#auth.authorization(endpoint, false);
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
        const next = await this.#auth.authorization(endpoint, true);
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
