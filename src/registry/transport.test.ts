/**
 * Transport fault behaviour against a real node:http server on 127.0.0.1 (port 0): auth handshakes,
 * retries, error classification, redirects. Only faults a real registry cannot be made to show are
 * staged here; the happy paths are also proven against docker-registry in test/registry-client.test.ts.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import { RegistryTransport, type RegistryEndpoint, type RetryEvent } from './transport.js';
import { parseRegistryErrors, retryAfterMs } from './transport-errors.js';
import { isLoopbackHost } from './transport-tls.js';
import { failure } from '../../test/helpers/registry-failure.js';
import { foreignCaPem, testTls } from '../../test/helpers/tls.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
type Handler = (req: Seen, res: ServerResponse) => void | Promise<void>;
interface TestServer {
  host: string;
  seen: Seen[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];
const transports: RegistryTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Listens on a free loopback port; the server is closed after the test. */
async function listen(server: Server, seen: Seen[]): Promise<TestServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const t: TestServer = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  servers.push(t);
  return t;
}

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(entry);
      Promise.resolve(handler(entry, res)).catch(() => res.destroy());
    });
  });
  return listen(server, seen);
}

function transport(options: ConstructorParameters<typeof RegistryTransport>[0] = {}): RegistryTransport {
  const t = new RegistryTransport({ retryBaseDelayMs: 5, ...options });
  transports.push(t);
  return t;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const registryError = (code: string, message: string) => ({ errors: [{ code, message, detail: null }] });

const text = async (t: RegistryTransport, endpoint: RegistryEndpoint, path: string): Promise<string> => {
  const res = await t.request(endpoint, 'GET', path);
  let out = '';
  for await (const chunk of res.body) out += String(chunk);
  return out;
};

describe('authentication', () => {
  it('goes anonymous when /v2/ answers 200, sending no Authorization', async () => {
    const s = await serve((req, res) => json(res, 200, { ok: req.url }));
    const t = transport();
    expect(await text(t, { registry: s.host, repository: 'a/b', credentials: { username: 'u', password: 'p' } }, '/v2/a/b/tags/list')).toContain('tags/list');
    expect(s.seen.map((r) => r.url)).toEqual(['/v2/', '/v2/a/b/tags/list']);
    expect(s.seen.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('answers a Basic challenge with the credentials, and reports refusal without leaking them', async () => {
    const good = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const s = await serve((req, res) => {
      if (req.headers.authorization === good) return json(res, 200, {});
      json(res, 401, registryError('UNAUTHORIZED', 'authentication required'), { 'www-authenticate': 'Basic realm="test"' });
    });
    const t = transport();
    await text(t, { registry: s.host, repository: 'a', credentials: { username: 'alice', password: 's3cret' } }, '/v2/a/tags/list');
    const err = await failure(text(t, { registry: s.host, repository: 'a', credentials: { username: 'alice', password: 'wr0ng' } }, '/v2/a/tags/list'));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.temporary).toBe(false);
    expect(err.message).toContain('authentication required');
    expect(err.message).toContain(s.host);
    expect(err.message).toMatch(/basic credentials were refused/);
    expect(JSON.stringify({ ...err, message: err.message })).not.toMatch(/wr0ng|s3cret/);
  });

  it('does the Bearer handshake with Basic credentials, once per scope', async () => {
    const auth = await serve((req, res) => json(res, 200, { token: `tok-for-${new URL(req.url, 'http://x').searchParams.get('scope')}`, expires_in: 300 }));
    const s = await serve((req, res) => {
      if (req.headers.authorization?.startsWith('Bearer tok-for-repository:')) return json(res, 200, {});
      json(res, 401, registryError('UNAUTHORIZED', 'authentication required'), { 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="test-svc"` });
    });
    const t = transport();
    const target = { registry: s.host, repository: 'team/app', credentials: { username: 'bob', password: 'pw' } };
    await Promise.all([text(t, target, '/v2/team/app/tags/list'), text(t, target, '/v2/team/app/manifests/x')]);
    await text(t, target, '/v2/team/app/manifests/y');
    expect(auth.seen).toHaveLength(1);
    const tokenUrl = new URL(auth.seen[0]!.url, 'http://x');
    expect(tokenUrl.searchParams.get('service')).toBe('test-svc');
    expect(tokenUrl.searchParams.get('scope')).toBe('repository:team/app:pull');
    expect(auth.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('bob:pw').toString('base64')}`);
    expect(s.seen.filter((r) => r.url !== '/v2/').map((r) => r.headers.authorization)).toEqual(Array(3).fill('Bearer tok-for-repository:team/app:pull'));
    await text(t, { ...target, repository: 'other' }, '/v2/other/tags/list');
    expect(auth.seen).toHaveLength(2);
  });

  it('asks for an anonymous token without credentials', async () => {
    const auth = await serve((_req, res) => json(res, 200, { access_token: 'anon' }));
    const s = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer anon') return json(res, 200, {});
      json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="svc",scope="repository:x:pull"` });
    });
    await text(transport(), { registry: s.host, repository: 'x' }, '/v2/x/tags/list');
    expect(auth.seen[0]!.headers.authorization).toBeUndefined();
  });

  it('exchanges an identity token with the OAuth2 refresh_token grant (POST)', async () => {
    const auth = await serve((req, res) => json(res, 200, req.method === 'POST' ? { access_token: 'oauth' } : {}));
    const s = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer oauth') return json(res, 200, {});
      json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="svc"` });
    });
    await text(transport(), { registry: s.host, repository: 'x', credentials: { identityToken: 'refresh-me' } }, '/v2/x/tags/list');
    expect(auth.seen[0]!.method).toBe('POST');
    expect(auth.seen[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(auth.seen[0]!.body))).toEqual({
      grant_type: 'refresh_token', refresh_token: 'refresh-me', client_id: 'berth', service: 'svc', scope: 'repository:x:pull',
    });
  });

  it('sends a registry token directly, without ping or handshake', async () => {
    const s = await serve((req, res) => json(res, req.headers.authorization === 'Bearer given' ? 200 : 401, {}));
    await text(transport(), { registry: s.host, repository: 'x', credentials: { registryToken: 'given' } }, '/v2/x/tags/list');
    expect(s.seen.map((r) => r.url)).toEqual(['/v2/x/tags/list']);
  });

  it('refreshes a refused cached token once, then gives up', async () => {
    let issued = 0;
    const auth = await serve((_req, res) => json(res, 200, { token: `t${++issued}`, expires_in: 300 }));
    let accepted = new Set(['t1']);
    const s = await serve((req, res) => {
      const token = req.headers.authorization?.slice('Bearer '.length);
      if (token !== undefined && accepted.has(token)) return json(res, 200, {});
      json(res, 401, registryError('UNAUTHORIZED', 'token expired'), { 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="svc"` });
    });
    const t = transport();
    const target = { registry: s.host, repository: 'x' };
    await text(t, target, '/v2/x/a');
    accepted = new Set(['t2']); // the registry now rejects t1 (revoked, clock skew…)
    await text(t, target, '/v2/x/b');
    expect(issued).toBe(2);
    accepted = new Set();
    const err = await failure(text(t, target, '/v2/x/c'));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/token expired.*no credentials were given/);
    expect(issued).toBe(3);
  });

  it('classifies token-server failures', async () => {
    let mode = 'deny';
    const auth = await serve((_req, res) => {
      if (mode === 'deny') return json(res, 401, registryError('UNAUTHORIZED', 'bad user'));
      if (mode === 'down') return json(res, 503, {});
      res.end('<html>');
    });
    const s = await serve((_req, res) => json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${auth.host}/token"` }));
    const t = transport({ maxTries: 2 });
    const target = { registry: s.host, repository: 'x', credentials: { username: 'u', password: 'p' } };
    const denied = await failure(text(t, target, '/v2/x/a'));
    expect([denied.code, denied.temporary]).toEqual(['UNAUTHORIZED', false]);
    expect(denied.message).toMatch(new RegExp(`token for repository:x:pull from ${auth.host}.*bad user`));
    mode = 'down';
    const down = await failure(text(t, target, '/v2/x/a'));
    expect([down.code, down.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
    mode = 'garbage';
    expect((await failure(text(t, target, '/v2/x/a'))).code).toBe('TOKEN_FAILED');
    const noRealm = await serve((_req, res) => json(res, 401, {}, { 'www-authenticate': 'Bearer service="x"' }));
    expect((await failure(text(t, { registry: noRealm.host, repository: 'x' }, '/v2/x/a'))).code).toBe('TOKEN_FAILED');
  });
});

describe('retries', () => {
  it('retries 500 then succeeds, reporting each retry', async () => {
    let calls = 0;
    const s = await serve((req, res) => (req.url === '/v2/' || ++calls > 1 ? json(res, 200, {}) : json(res, 500, {})));
    const events: RetryEvent[] = [];
    await text(transport({ onRetry: (e) => events.push(e) }), { registry: s.host }, '/v2/x/tags/list');
    expect(calls).toBe(2);
    expect(events).toEqual([expect.objectContaining({ registry: s.host, attempt: 1, reason: 'HTTP 500' })]);
  });

  it('honours Retry-After on 429', async () => {
    let calls = 0;
    const s = await serve((req, res) => (req.url === '/v2/' || ++calls > 1 ? json(res, 200, {}) : json(res, 429, registryError('TOOMANYREQUESTS', 'slow down'), { 'retry-after': '1' })));
    const started = Date.now();
    await text(transport(), { registry: s.host }, '/v2/x/tags/list');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once, as temporary, when Retry-After is longer than it will wait', async () => {
    const s = await serve((req, res) => (req.url === '/v2/' ? json(res, 200, {}) : json(res, 429, registryError('TOOMANYREQUESTS', 'pull rate limit'), { 'retry-after': '3600' })));
    const err = await failure(text(transport({ maxRetryDelayMs: 2000 }), { registry: s.host }, '/v2/x/tags/list'));
    expect([err.code, err.temporary, err.status]).toEqual(['TOO_MANY_REQUESTS', true, 429]);
    expect(err.message).toContain('pull rate limit');
    expect(s.seen).toHaveLength(2);
  });

  it('stops after maxTries on persistent 503, as temporary', async () => {
    const s = await serve((req, res) => (req.url === '/v2/' ? json(res, 200, {}) : json(res, 503, {})));
    const err = await failure(text(transport({ maxTries: 3 }), { registry: s.host }, '/v2/x/tags/list'));
    expect([err.code, err.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
    expect(s.seen.filter((r) => r.url !== '/v2/')).toHaveLength(3);
  });

  it('retries a connection reset', async () => {
    let calls = 0;
    const s = await serve((req, res) => {
      if (req.url !== '/v2/' && ++calls === 1) return void res.socket?.destroy();
      json(res, 200, {});
    });
    await text(transport(), { registry: s.host }, '/v2/x/tags/list');
    expect(calls).toBe(2);
  });

  it('classifies a refused connection and a headers timeout as temporary', async () => {
    const closed = await serve(() => undefined);
    await closed.close();
    const refused = await failure(text(transport({ maxTries: 2 }), { registry: closed.host }, '/v2/x'));
    expect([refused.code, refused.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
    expect(refused.message).toMatch(/ECONNREFUSED/);
    const silent = await serve(() => undefined);
    const timedOut = await failure(text(transport({ maxTries: 1, headersTimeoutMs: 200 }), { registry: silent.host }, '/v2/x'));
    expect([timedOut.code, timedOut.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
    expect(timedOut.message).toMatch(/UND_ERR_HEADERS_TIMEOUT/);
  });
});

describe('cancellation', () => {
  it('stops waiting for a retry when the caller aborts, with the abort reason', async () => {
    const s = await serve((req, res) => (req.url === '/v2/' ? json(res, 200, {}) : json(res, 503, {})));
    const controller = new AbortController();
    const started = Date.now();
    const pending = transport({ retryBaseDelayMs: 5_000 }).request({ registry: s.host }, 'GET', '/v2/x/tags/list', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('errors and redirects', () => {
  it.each<[number, unknown, string, boolean]>([
    [404, registryError('MANIFEST_UNKNOWN', 'manifest unknown'), 'MANIFEST_UNKNOWN', false],
    [404, registryError('NAME_UNKNOWN', 'repository name not known to registry'), 'NAME_UNKNOWN', false],
    [404, registryError('BLOB_UNKNOWN', 'blob unknown to registry'), 'BLOB_UNKNOWN', false],
    [404, 'not json', 'BLOB_UNKNOWN', false],
    [403, registryError('DENIED', 'requested access to the resource is denied'), 'DENIED', false],
    [400, registryError('NAME_INVALID', 'invalid repository name'), 'PROTOCOL_ERROR', false],
    [502, 'bad gateway', 'REGISTRY_UNAVAILABLE', true],
  ])('HTTP %i %j → %s', async (status, body, code, temporary) => {
    const s = await serve((req, res) => (req.url === '/v2/' ? json(res, 200, {}) : json(res, status, body)));
    const err = await failure(transport({ maxTries: 1 }).request({ registry: s.host }, 'GET', '/v2/x/blobs/y', { notFound: 'BLOB_UNKNOWN', what: 'blob y of x' }));
    expect([err.code, err.temporary, err.status, err.registry]).toEqual([code, temporary, status, s.host]);
    expect(err.message).toMatch(new RegExp(`^blob y of x: .*\\(HTTP ${status} from ${s.host}\\)$`));
    if (typeof body === 'object') expect(err.message).toContain((body as { errors: { message: string }[] }).errors[0]!.message);
  });

  it('reads at most 64 KiB of an error body', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/v2/') return json(res, 200, {});
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(registryError('NAME_UNKNOWN', 'x'.repeat(2_000_000))));
    });
    const err = await failure(transport().request({ registry: s.host }, 'GET', '/v2/x/tags/list'));
    // The body was cut, so it is not parseable: the status alone decides, and the message stays short.
    expect(err.code).toBe('NAME_UNKNOWN');
    expect(err.message.length).toBeLessThan(300);
  });

  it('follows a redirect to another host without the Authorization header', async () => {
    const storage = await serve((_req, res) => void res.end('blob-bytes'));
    const s = await serve((req, res) => {
      if (req.headers.authorization === undefined) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
      if (req.url.startsWith('/v2/x/blobs/')) {
        res.writeHead(307, { location: `http://${storage.host}/bucket/blob?sig=abc` });
        return void res.end();
      }
      res.writeHead(302, { location: '/v2/x/blobs/moved' });
      res.end();
    });
    const t = transport();
    const res = await t.request({ registry: s.host, repository: 'x', credentials: { username: 'u', password: 'p' } }, 'GET', '/v2/x/old', { range: { start: 3 } });
    let body = '';
    for await (const c of res.body) body += String(c);
    expect(body).toBe('blob-bytes');
    expect(res.url.href).toBe(`http://${storage.host}/bucket/blob?sig=abc`);
    expect(s.seen.find((r) => r.url === '/v2/x/blobs/moved')?.headers.authorization).toMatch(/^Basic /);
    expect(storage.seen[0]!.headers.authorization).toBeUndefined();
    expect(storage.seen[0]!.headers.range).toBe('bytes=3-');
  });

  it('stops after 5 redirects', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/v2/') return json(res, 200, {});
      res.writeHead(302, { location: `/v2/loop${s.seen.length}` });
      res.end();
    });
    expect((await failure(transport().request({ registry: s.host }, 'GET', '/v2/loop'))).code).toBe('PROTOCOL_ERROR');
  });
});

/** An HTTPS server on 127.0.0.1 with the test CA's certificate, answering /v2/ and one tag list. */
async function serveTls(): Promise<TestServer> {
  const tls = await testTls();
  const seen: Seen[] = [];
  const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
    json(res, 200, req.url === '/v2/' ? {} : { name: 'a', tags: ['1'] });
  });
  return listen(server, seen);
}

describe('insecure hosts (containers/image: HTTPS first, then plain HTTP)', () => {
  it('falls back to plain HTTP when the host does not speak TLS', async () => {
    const s = await serve((_req, res) => json(res, 200, { tags: [] }));
    const t = transport();
    await text(t, { registry: s.host, repository: 'a', insecure: true }, '/v2/a/tags/list');
    expect(t.baseUrl({ registry: s.host, insecure: true }).href).toBe(`http://${s.host}/`);
    expect(s.seen.map((r) => r.url)).toEqual(['/v2/', '/v2/a/tags/list']);
  });

  it('speaks TLS without verification to a host that serves it, and HTTPS only to a secure host', async () => {
    const s = await serveTls();
    const t = transport();
    expect(await text(t, { registry: s.host, repository: 'a', insecure: true }, '/v2/a/tags/list')).toContain('"1"');
    expect(t.baseUrl({ registry: s.host, insecure: true }).href).toBe(`https://${s.host}/`);
    // The probe's answer is the ping: one /v2/ only.
    expect(s.seen.map((r) => r.url)).toEqual(['/v2/', '/v2/a/tags/list']);
    const err = await failure(text(t, { registry: s.host, repository: 'a', insecure: false }, '/v2/a/tags/list'));
    expect(err.message).toMatch(/TLS verification of 127\.0\.0\.1:\d+ failed/);
  });

  it("verifies an insecure host against its own CA, and never downgrades past a certificate that CA rejects", async () => {
    const s = await serveTls();
    const { caCertPem } = await testTls();
    const trusted = transport({ tlsOptionsFor: (host) => (host === s.host ? { ca: [caCertPem] } : undefined) });
    expect(await text(trusted, { registry: s.host, repository: 'a', insecure: true }, '/v2/a/tags/list')).toContain('"1"');
    const other = await foreignCaPem();
    const wrong = transport({ tlsOptionsFor: () => ({ ca: [other] }) });
    const err = await failure(text(wrong, { registry: s.host, repository: 'a', insecure: true }, '/v2/a/tags/list'));
    expect(err.code).toBe('REGISTRY_UNAVAILABLE');
    expect(err.message).toMatch(/TLS verification of 127\.0\.0\.1:\d+ failed/);
  });
});

describe('helpers', () => {
  it('isLoopbackHost: 127.0.0.0/8, ::1 and localhost, with or without port', () => {
    for (const h of ['127.0.0.1:5000', '127.1.2.3', 'localhost', 'localhost:80', '[::1]:5000', '::1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['registry-1.docker.io', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com', '[::2]:5000']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('chooses http:// only for insecure hosts, with a per-endpoint override', () => {
    const t = transport();
    expect(t.baseUrl({ registry: '127.0.0.1:5000' }).href).toBe('http://127.0.0.1:5000/');
    expect(t.baseUrl({ registry: 'quay.io' }).href).toBe('https://quay.io/');
    expect(t.baseUrl({ registry: 'quay.io', insecure: true }).href).toBe('http://quay.io/');
    expect(t.baseUrl({ registry: '[::1]:5000', insecure: false }).href).toBe('https://[::1]:5000/');
  });

  it('retryAfterMs reads seconds and HTTP dates', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(retryAfterMs('2', now)).toBe(2000);
    expect(retryAfterMs('Mon, 01 Jan 2024 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Sun, 31 Dec 2023 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });

  it('parseRegistryErrors keeps code, message, detail, and strips control characters', () => {
    expect(parseRegistryErrors(Buffer.from(JSON.stringify({ errors: [{ code: 'DENIED', message: 'no\u001b[31m', detail: { a: 1 } }, 'junk'] })))).toEqual([
      { code: 'DENIED', message: 'no [31m', detail: { a: 1 } },
    ]);
    expect(parseRegistryErrors(Buffer.from('<html>'))).toEqual([]);
    expect(parseRegistryErrors(Buffer.from('null'))).toEqual([]);
  });
});
