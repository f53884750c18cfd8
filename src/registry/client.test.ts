/** RegistryClient: tag pagination and ping against a real node:http server on 127.0.0.1. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { testTls } from '../../test/helpers/tls.js';
import { nextLink, RegistryClient } from './client.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Listens on a free loopback port; the server and a client for it are closed after the test. */
async function listen(server: Server): Promise<{ client: RegistryClient; host: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new RegistryClient({ retryBaseDelayMs: 5 });
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  cleanups.push(() => client.close());
  return { client, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function setup(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ client: RegistryClient; host: string; urls: string[] }> {
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    handler(req, res);
  });
  return { ...(await listen(server)), urls };
}

describe('listTags', () => {
  const all = ['a', 'b', 'c', 'd', 'e'];
  /** tags/list as distribution paginates it: n and last, with a relative Link to the next page. */
  const paginated = (linkFor: (next: string, host: string) => string) => (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/v2/') return void res.end('{}');
    const url = new URL(req.url ?? '', 'http://x');
    const n = Number(url.searchParams.get('n') ?? 100);
    const last = url.searchParams.get('last');
    const start = last === null ? 0 : all.indexOf(last) + 1;
    const page = all.slice(start, start + n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (start + n < all.length) headers.link = linkFor(`/v2/repo/tags/list?n=${n}&last=${page.at(-1)}`, req.headers.host ?? '');
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: 'repo', tags: page }));
  };

  it('follows absolute Link pages of an insecure registry that turns out to speak TLS', async () => {
    // Loopback is insecure: the first request finds out the scheme (https, unverified), and the pages
    // that follow on https://127.0.0.1:PORT are the same registry.
    const tls = await testTls();
    const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, paginated((next, host) => `<https://${host}${next}>; rel="next"`));
    const { client, host } = await listen(server);
    expect(await client.listTags({ registry: host, repository: 'repo' }, { pageSize: 2 })).toEqual(all);
  });

  it('follows Link rel="next" pages', async () => {
    const { client, host, urls } = await setup(paginated((next) => `<${next}>; rel="next"`));
    expect(await client.listTags({ registry: host, repository: 'repo' }, { pageSize: 2 })).toEqual(all);
    expect(urls.filter((u) => u !== '/v2/')).toEqual(['/v2/repo/tags/list?n=2', '/v2/repo/tags/list?n=2&last=b', '/v2/repo/tags/list?n=2&last=d']);
    expect(await client.listTags({ registry: host, repository: 'repo' }, { pageSize: 2, maxTags: 3 })).toEqual(['a', 'b', 'c']);
  });

  it('refuses a next page on another host, and stops on a loop', async () => {
    const elsewhere = await setup(paginated((next) => `<http://127.0.0.2:1${next}>; rel="next"`));
    await expect(elsewhere.client.listTags({ registry: elsewhere.host, repository: 'repo' }, { pageSize: 2 })).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    const loop = await setup((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { link: '</v2/repo/tags/list?n=1>; rel="next"' });
      res.end(JSON.stringify({ name: 'repo', tags: ['x'] }));
    });
    expect(await loop.client.listTags({ registry: loop.host, repository: 'repo' }, { pageSize: 1 })).toEqual(['x']);
  });

  it('reads "tags": null as no tags, and refuses malformed pages', async () => {
    let body = '{"name":"repo","tags":null}';
    const { client, host } = await setup((req, res) => res.end(req.url === '/v2/' ? '{}' : body));
    expect(await client.listTags({ registry: host, repository: 'repo' })).toEqual([]);
    body = '{"tags":[1]}';
    await expect(client.listTags({ registry: host, repository: 'repo' })).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    body = 'nope';
    await expect(client.listTags({ registry: host, repository: 'repo' })).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
  });
});

describe('ping', () => {
  it('reports the challenge and API version, fresh each time', async () => {
    let auth = true;
    const { client, host, urls } = await setup((_req, res) => {
      res.writeHead(auth ? 401 : 200, { 'docker-distribution-api-version': 'registry/2.0', ...(auth ? { 'www-authenticate': 'Basic realm="x"' } : {}) });
      res.end('{}');
    });
    expect(await client.ping(host)).toEqual({ status: 401, challenges: [{ scheme: 'basic', params: { realm: 'x' } }], apiVersion: 'registry/2.0' });
    auth = false;
    expect((await client.ping(host)).status).toBe(200);
    expect(urls).toEqual(['/v2/', '/v2/']);
  });

  it('fails on anything but 200 or 401', async () => {
    const { client, host } = await setup((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    await expect(client.ping(host)).rejects.toMatchObject({ code: 'NAME_UNKNOWN', message: expect.stringMatching(/^ping of 127/) });
  });
});

describe('nextLink', () => {
  it('finds rel="next" among links (RFC 8288)', () => {
    expect(nextLink('</v2/r/tags/list?n=2&last=b>; rel="next"')).toBe('/v2/r/tags/list?n=2&last=b');
    expect(nextLink('<https://a/prev>; rel="prev", <https://a/next>; rel=next')).toBe('https://a/next');
    expect(nextLink('<https://a/x>; title="a, b"; rel="last next"')).toBe('https://a/x');
    expect(nextLink('<https://a/prev>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
});
