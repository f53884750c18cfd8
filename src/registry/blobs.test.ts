/** Blob streaming against a real node:http server on 127.0.0.1: ranges, size guards, faults, redirects. */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { digestOf, fetchBlob, fetchBlobBytes } from './blobs.js';
import { RegistryError } from './errors.js';
import type { Descriptor, RepositoryTarget } from './manifests.js';
import { OCI_LAYER_GZIP } from './media-types.js';
import { RegistryTransport } from './transport.js';
import { failure } from '../../test/helpers/registry-failure.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => (req.url === '/v2/' ? res.end('{}') : handler(req, res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function setup(host: string, credentials?: RepositoryTarget['credentials']): { t: RegistryTransport; target: RepositoryTarget } {
  const t = new RegistryTransport({ retryBaseDelayMs: 5 });
  cleanups.push(() => t.close());
  return { t, target: { registry: host, repository: 'repo', ...(credentials ? { credentials } : {}) } };
}

const content = Buffer.from('0123456789abcdefghij'.repeat(1000));
const descriptor: Descriptor = { mediaType: OCI_LAYER_GZIP, digest: digestOf(content), size: content.length };

/** Serves `body` for the blob, honouring Range unless told not to. */
function blobServer(body: Buffer, opts: { ignoreRange?: boolean; contentRange?: string } = {}) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !opts.ignoreRange) {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-range': opts.contentRange ?? `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
      return void res.end(body.subarray(start));
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  };
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('fetchBlob', () => {
  it('streams the whole blob', async () => {
    const { t, target } = setup(await serve(blobServer(content)));
    const blob = await fetchBlob(t, target, descriptor);
    expect([blob.size, blob.offset]).toEqual([content.length, 0]);
    expect((await collect(blob.body)).equals(content)).toBe(true);
  });

  it('resumes from an offset with Range (206)', async () => {
    const { t, target } = setup(await serve(blobServer(content)));
    const blob = await fetchBlob(t, target, descriptor, { offset: 12_345 });
    expect(blob.offset).toBe(12_345);
    expect((await collect(blob.body)).equals(content.subarray(12_345))).toBe(true);
  });

  it('reports offset 0 when the registry ignores Range (200)', async () => {
    const { t, target } = setup(await serve(blobServer(content, { ignoreRange: true })));
    const blob = await fetchBlob(t, target, descriptor, { offset: 100 });
    expect(blob.offset).toBe(0);
    expect((await collect(blob.body)).equals(content)).toBe(true);
  });

  it('refuses a 206 that starts elsewhere, and a total that disagrees with the descriptor', async () => {
    const wrongStart = setup(await serve(blobServer(content, { contentRange: `bytes 0-${content.length - 1}/${content.length}` })));
    expect((await failure(fetchBlob(wrongStart.t, wrongStart.target, descriptor, { offset: 10 }))).code).toBe('PROTOCOL_ERROR');
    const wrongTotal = setup(await serve(blobServer(content, { contentRange: `bytes 10-${content.length - 1}/99` })));
    expect((await failure(fetchBlob(wrongTotal.t, wrongTotal.target, descriptor, { offset: 10 }))).code).toBe('SIZE_MISMATCH');
  });

  it('checks Content-Length against the descriptor before streaming', async () => {
    const { t, target } = setup(await serve(blobServer(Buffer.concat([content, Buffer.from('x')]))));
    const err = await failure(fetchBlob(t, target, descriptor));
    expect(err.code).toBe('SIZE_MISMATCH');
    expect(err.message).toMatch(/Content-Length 20001 but 20000/);
  });

  it('fails the stream when a chunked body is longer or shorter than the descriptor', async () => {
    const chunked = (body: Buffer) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200);
      res.write(body.subarray(0, 100));
      res.end(body.subarray(100));
    };
    const longer = setup(await serve(chunked(Buffer.concat([content, content]))));
    const long = await fetchBlob(longer.t, longer.target, descriptor);
    expect((await failure(collect(long.body))).message).toMatch(/more than the 20000 bytes/);
    const shorter = setup(await serve(chunked(content.subarray(0, 5000))));
    const short = await fetchBlob(shorter.t, shorter.target, descriptor);
    expect((await failure(collect(short.body))).message).toMatch(/ended after 5000 of 20000 bytes/);
  });

  it('turns a connection dropped mid-body into a temporary error, so the caller can resume', async () => {
    const { t, target } = setup(await serve((_req, res) => {
      res.writeHead(200, { 'content-length': content.length });
      res.write(content.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 20));
    }));
    const blob = await fetchBlob(t, target, descriptor);
    const err = await failure(collect(blob.body));
    expect([err.code, err.temporary]).toEqual(['REGISTRY_UNAVAILABLE', true]);
  });

  it('classifies 404 as BLOB_UNKNOWN', async () => {
    const { t, target } = setup(await serve((_req, res) => {
      res.writeHead(404);
      res.end();
    }));
    const err = await failure(fetchBlob(t, target, descriptor));
    expect(err.code).toBe('BLOB_UNKNOWN');
    expect(err.message).toContain(descriptor.digest);
  });

  it('stops the download when the consumer destroys the body', async () => {
    let closed = false;
    const { t, target } = setup(await serve((_req, res) => {
      res.writeHead(200, { 'content-length': content.length });
      res.on('close', () => (closed = true));
      res.write(content.subarray(0, 100)); // and never finish
    }));
    const blob = await fetchBlob(t, target, descriptor);
    blob.body.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(true);
  });

  it('follows a redirect to blob storage without the registry credentials', async () => {
    const seen: (string | undefined)[] = [];
    const storage = await serve((req, res) => {
      seen.push(req.headers.authorization);
      blobServer(content)(req, res);
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
        return void res.end();
      }
      res.writeHead(307, { location: `http://${storage}/s3/blob` });
      res.end();
    });
    const { t, target } = setup(registry, { username: 'u', password: 'p' });
    const blob = await fetchBlob(t, target, descriptor, { offset: 10 });
    expect(blob.offset).toBe(10);
    expect((await collect(blob.body)).equals(content.subarray(10))).toBe(true);
    expect(seen).toEqual([undefined]);
  });

  it('returns an empty body at the end of the blob, and refuses offsets outside it', async () => {
    const { t, target } = setup(await serve(blobServer(content)));
    const blob = await fetchBlob(t, target, descriptor, { offset: content.length });
    expect((await collect(blob.body)).length).toBe(0);
    await expect(fetchBlob(t, target, descriptor, { offset: content.length + 1 })).rejects.toThrow(RangeError);
    await expect(fetchBlob(t, target, { ...descriptor, digest: 'sha256:bad' })).rejects.toThrow(/invalid digest/);
  });
});

describe('fetchBlobBytes', () => {
  it('returns verified bytes and refuses a digest mismatch or an oversize blob', async () => {
    const { t, target } = setup(await serve(blobServer(content)));
    expect((await fetchBlobBytes(t, target, descriptor, { maxBytes: 1 << 20 })).equals(content)).toBe(true);
    const wrong = { ...descriptor, digest: `sha256:${createHash('sha256').update('other').digest('hex')}` };
    expect((await failure(fetchBlobBytes(t, target, wrong, { maxBytes: 1 << 20 }))).code).toBe('DIGEST_MISMATCH');
    expect((await failure(fetchBlobBytes(t, target, descriptor, { maxBytes: 100, what: 'image config' }))).message).toMatch(/^image config .* more than the 100 allowed/);
  });
});
