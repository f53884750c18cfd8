/**
 * Blob downloads (distribution spec, "Pulling blobs"): streamed, never buffered, resumable with Range,
 * and bounded by the descriptor's size so a misbehaving registry cannot send more than it promised.
 * Redirects to blob storage are followed by the transport, without the registry's Authorization.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { RegistryError } from './errors.js';
import type { Descriptor, RepositoryTarget } from './manifests.js';
import { parseDigest } from './reference.js';
import { repositoryApiPath, type RegistryTransport } from './transport.js';
import { classifyNetworkError } from './transport-errors.js';
import { discardBody, headerValue, readCapped } from './transport-response.js';

/** Options of fetchBlob. */
export interface FetchBlobOptions {
  /** Resume from this byte (sends `Range: bytes=offset-`). */
  offset?: number;
  signal?: AbortSignal;
}

/** A blob being downloaded. The caller consumes `body` (or destroys it) and verifies the digest. */
export interface BlobDownload {
  /** The bytes from `offset` to the end; errors are RegistryErrors (temporary for network faults). */
  body: Readable;
  /** Total size of the blob (the descriptor's). */
  size: number;
  /** Where `body` starts: the requested offset on 206, 0 when the registry ignored Range (200). */
  offset: number;
}

/** `algorithm:hex` digest of bytes, for the algorithms registries use (sha256, sha384, sha512). */
export function digestOf(bytes: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

const CONTENT_RANGE_RE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** Passes bytes through, failing with SIZE_MISMATCH when the body is longer or shorter than promised. */
function sizeGuard(expected: number, what: string, registry: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      seen += chunk.length;
      if (seen > expected) callback(new RegistryError('SIZE_MISMATCH', `${what}: the registry sent more than the ${expected} bytes expected`, { registry }));
      else callback(null, chunk);
    },
    flush(callback: TransformCallback): void {
      if (seen < expected) callback(new RegistryError('SIZE_MISMATCH', `${what}: the body ended after ${seen} of ${expected} bytes`, { registry }));
      else callback();
    },
  });
}

/**
 * Starts downloading a blob. With `offset`, asks for the rest only; a 206 must start exactly there, and
 * a 200 (Range ignored) is reported as offset 0 so the caller restarts. The content length is checked
 * against the descriptor before any byte is handed over.
 */
export async function fetchBlob(transport: RegistryTransport, target: RepositoryTarget, descriptor: Descriptor, options: FetchBlobOptions = {}): Promise<BlobDownload> {
  const digest = parseDigest(descriptor.digest);
  const size = descriptor.size;
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) throw new RangeError(`offset ${offset} is outside the blob (size ${size})`);
  if (offset === size) return { body: Readable.from([]), size, offset };
  const what = `blob ${digest} of ${target.repository}`;
  const registry = target.registry;
  const res = await transport.request(target, 'GET', repositoryApiPath(target.repository, `blobs/${digest}`), {
    ...(offset > 0 ? { range: { start: offset } } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    what,
    notFound: 'BLOB_UNKNOWN',
  });
  const fail = (err: RegistryError): never => {
    discardBody(res.body);
    throw err;
  };
  let start = 0;
  if (res.status === 206) {
    const m = CONTENT_RANGE_RE.exec(headerValue(res.headers, 'content-range') ?? '');
    if (m === null || Number(m[1]) !== offset) fail(new RegistryError('PROTOCOL_ERROR', `${what}: asked for bytes from ${offset}, got Content-Range "${headerValue(res.headers, 'content-range') ?? ''}"`, { registry }));
    if (m !== null && m[3] !== '*' && Number(m[3]) !== size) fail(new RegistryError('SIZE_MISMATCH', `${what}: the registry says the blob has ${m[3]} bytes, the manifest says ${size}`, { registry }));
    start = offset;
  } else if (res.status !== 200) {
    fail(new RegistryError('PROTOCOL_ERROR', `${what}: unexpected HTTP ${res.status}`, { registry, status: res.status }));
  }
  const expected = size - start;
  const length = headerValue(res.headers, 'content-length');
  if (length !== undefined && Number(length) !== expected) {
    fail(new RegistryError('SIZE_MISMATCH', `${what}: Content-Length ${length} but ${expected} bytes were expected`, { registry }));
  }
  const guard = sizeGuard(expected, what, registry);
  // Network faults surface as classified errors, so the caller knows a resume is worth trying.
  res.body.on('error', (err: Error) => guard.destroy(options.signal?.aborted ? err : classifyNetworkError(err, registry, what, res.url.host)));
  // A consumer that gives up (destroys the body it was given) stops the download.
  guard.on('close', () => {
    if (!res.body.destroyed) res.body.destroy();
  });
  res.body.pipe(guard);
  return { body: guard, size, offset: start };
}

/** Options of fetchBlobBytes. */
export interface FetchBlobBytesOptions {
  /** Refuse blobs larger than this (MANIFEST_TOO_LARGE, since such blobs are metadata). */
  maxBytes: number;
  signal?: AbortSignal;
  /** What the blob is, for messages ("image config"). */
  what?: string;
}

/** Downloads a small blob (an image config) into memory, verified against the descriptor's digest and size. */
export async function fetchBlobBytes(transport: RegistryTransport, target: RepositoryTarget, descriptor: Descriptor, options: FetchBlobBytesOptions): Promise<Buffer> {
  const what = `${options.what ?? 'blob'} ${descriptor.digest} of ${target.repository}`;
  if (descriptor.size > options.maxBytes) {
    throw new RegistryError('MANIFEST_TOO_LARGE', `${what} has ${descriptor.size} bytes, more than the ${options.maxBytes} allowed`, { registry: target.registry });
  }
  const blob = await fetchBlob(transport, target, descriptor, options.signal ? { signal: options.signal } : {});
  const { bytes } = await readCapped(blob.body, options.maxBytes);
  const algorithm = descriptor.digest.slice(0, descriptor.digest.indexOf(':'));
  const actual = digestOf(bytes, algorithm);
  if (actual !== descriptor.digest) {
    throw new RegistryError('DIGEST_MISMATCH', `${what}: the content's digest is ${actual}`, { registry: target.registry });
  }
  return bytes;
}
