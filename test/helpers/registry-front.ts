/**
 * A thin HTTP(S) front for a test registry: it forwards every request unchanged to the registry
 * process, records what came in (method, path, status, which kind of Authorization, whose) and can
 * inject faults. Distribution 2.8 never logs request headers, so its own log cannot tell whether
 * credentials reached it; the front can. TLS, when asked for, ends here (the registry speaks plain
 * HTTP behind it and builds https Location URLs from X-Forwarded-Proto).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request as the front saw it. Never holds a secret: only the scheme and the user name. */
export interface LoggedRequest {
  /** Milliseconds since the epoch when the response headers were sent. */
  at: number;
  method: string;
  /** Path without the query, e.g. `/v2/multi/layers/manifests/1`. */
  path: string;
  /** The raw query string without `?` ('' if none). */
  query: string;
  status: number;
  /** Which Authorization header the client sent. */
  authorization: 'none' | 'basic' | 'bearer' | 'other';
  /** The Basic user name, or the `sub` claim of a Bearer JWT, when there is one. */
  user?: string;
  /** The `Accept` header as sent ('' if none). */
  accept: string;
  /** The `Range` header as sent, if any. */
  range?: string;
  /** User-Agent as sent ('' if none). */
  userAgent: string;
  /** True when the answer came from an interceptor rather than the registry. */
  injected: boolean;
}

/** What an interceptor may do with a request. `undefined` forwards it unchanged. */
export type Interception =
  | undefined
  /** Answer with this instead of asking the registry. */
  | { status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Destroy the client's connection without answering (a reset). */
  | 'reset'
  /** Forward, but wait first, and/or cut the response body after this many bytes (then reset). */
  | { forward: true; delayMs?: number; truncateAfter?: number };

/** Decides per request; sees method, path (with query) and headers. May be async. */
export type Interceptor = (req: {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}) => Interception | Promise<Interception>;

/** A running front. */
export interface RegistryFront {
  port: number;
  log: LoggedRequest[];
  interceptor: Interceptor | null;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function describeAuthorization(header: string | undefined): Pick<LoggedRequest, 'authorization' | 'user'> {
  if (header === undefined || header === '') return { authorization: 'none' };
  const [scheme = '', credential = ''] = header.split(/\s+/, 2);
  if (/^basic$/i.test(scheme)) {
    const user = Buffer.from(credential, 'base64').toString('utf8').split(':', 1)[0];
    return user === undefined ? { authorization: 'basic' } : { authorization: 'basic', user };
  }
  if (/^bearer$/i.test(scheme)) {
    try {
      const payload = JSON.parse(Buffer.from(credential.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
        sub?: unknown;
      };
      if (typeof payload.sub === 'string' && payload.sub !== '') return { authorization: 'bearer', user: payload.sub };
    } catch {
      // not a JWT: still a bearer token
    }
    return { authorization: 'bearer' };
  }
  return { authorization: 'other' };
}

/** Starts a front on 127.0.0.1:0 forwarding to the registry at 127.0.0.1:backendPort. */
export async function startFront(opts: {
  backendPort: number;
  tls?: { certPem: string; keyPem: string };
}): Promise<RegistryFront> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const front: RegistryFront = { port: 0, log: [], interceptor: null, close: async () => {} };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const header = (name: string): string => {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(', ') : (value ?? '');
    };
    const entry = (status: number, injected: boolean): LoggedRequest => ({
      at: Date.now(),
      method: req.method ?? 'GET',
      path: queryAt < 0 ? url : url.slice(0, queryAt),
      query: queryAt < 0 ? '' : url.slice(queryAt + 1),
      status,
      ...describeAuthorization(req.headers.authorization),
      accept: header('accept'),
      ...(req.headers.range === undefined ? {} : { range: req.headers.range }),
      userAgent: header('user-agent'),
      injected,
    });

    const decision = front.interceptor
      ? await front.interceptor({ method: req.method ?? 'GET', url, headers: req.headers })
      : undefined;
    if (decision === 'reset') {
      front.log.push(entry(0, true));
      req.socket.destroy();
      return;
    }
    if (decision !== undefined && !('forward' in decision)) {
      const body = decision.body ?? '';
      front.log.push(entry(decision.status, true));
      res.writeHead(decision.status, { 'content-length': Buffer.byteLength(body), ...decision.headers });
      res.end(body);
      req.resume();
      return;
    }
    if (decision?.delayMs) await new Promise((r) => setTimeout(r, decision.delayMs));

    const headers = forwardable(req.headers);
    if (opts.tls) {
      headers['x-forwarded-proto'] = 'https';
      headers['x-forwarded-host'] = req.headers.host ?? '';
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: opts.backendPort, method: req.method, path: url, headers, agent },
      (up) => {
        // Logged before the client sees a byte, so a test that just got its answer finds it here.
        front.log.push(entry(up.statusCode ?? 0, false));
        res.writeHead(up.statusCode ?? 502, forwardable(up.headers));
        const limit = decision?.truncateAfter;
        if (limit === undefined) {
          up.pipe(res);
          return;
        }
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.length;
          res.write(part);
          if (sent >= limit) {
            up.destroy();
            // Let the partial body reach the client, then cut the connection mid-response.
            setImmediate(() => res.socket?.destroy());
          }
        });
        up.on('end', () => res.end());
      },
    );
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.socket?.destroy();
        return;
      }
      front.log.push(entry(502, true));
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front: registry unreachable: ${err.message}`);
    });
    req.pipe(upstream);
  };

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, listener)
    : http.createServer(listener);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  front.port = (server.address() as AddressInfo).port;
  front.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    });
  return front;
}
