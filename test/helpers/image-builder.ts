/**
 * Builds image parts in memory, deterministically (fixed mtimes, owners and order), so that the same
 * call gives the same digests in every run: layers (gzip or plain tar), image configs, media types.
 * Pushing them is fixtures.ts's job.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32, gzipSync } from 'node:zlib';

/** Media types of the OCI image spec and of Docker's image manifest v2 schema 2. */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** `sha256:<hex>` of some bytes. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A file-system entry of a layer; a string or Buffer is a regular file with mode 0644. */
export type LayerEntry =
  | string
  | Buffer
  | {
      type?: 'file' | 'directory' | 'symlink' | 'hardlink';
      content?: string | Buffer;
      mode?: number;
      /** Target of a symlink or hardlink. */
      linkname?: string;
      uid?: number;
      gid?: number;
    };

/** A layer blob ready to push. */
export interface Layer {
  /** Digest and size of the blob as pushed (compressed when gzip). */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (`rootfs.diff_ids`). */
  diffID: string;
  compression: 'gzip' | 'none';
  /** Overrides the media type derived from format and compression. */
  mediaType?: string;
  /** The blob bytes, when held in memory (layer(); randomLayer() below its streaming threshold). */
  data?: Buffer;
  /** The blob bytes as a fresh stream (always available; regenerated for big random layers). */
  open(): Readable;
}

/** Options of {@link layer}. */
export interface LayerOptions {
  compression?: 'gzip' | 'none';
  /** Seconds since the epoch for every entry. Default 946684800 (2000-01-01). */
  mtime?: number;
  mediaType?: string;
}

const DEFAULT_MTIME = 946_684_800;

function octal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** A ustar header block (POSIX.1-1988), names up to 255 bytes via the prefix field. */
function tarHeader(entry: {
  name: string;
  size: number;
  mode: number;
  typeflag: string;
  linkname?: string;
  mtime: number;
  uid?: number;
  gid?: number;
}): Buffer {
  const header = Buffer.alloc(512);
  let name = entry.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155)
      throw new Error(`tar path too long for ustar: ${entry.name}`);
  }
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, entry.mode);
  octal(header, 108, 8, entry.uid ?? 0);
  octal(header, 116, 8, entry.gid ?? 0);
  octal(header, 124, 12, entry.size);
  octal(header, 136, 12, entry.mtime);
  header.fill(' ', 148, 156);
  header.write(entry.typeflag, 156, 1, 'ascii');
  header.write(entry.linkname ?? '', 157, 100, 'utf8');
  header.write('ustar\0' + '00', 257, 8, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

const padding = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512);

/** The uncompressed tar of some entries: parents added as directories, everything sorted by path. */
export function tarball(files: Record<string, LayerEntry>, mtime = DEFAULT_MTIME): Buffer {
  const entries = new Map<string, Exclude<LayerEntry, string | Buffer>>();
  for (const [rawPath, value] of Object.entries(files)) {
    const path = rawPath.replace(/^\/+/, '').replace(/\/+$/, '');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!entries.has(parent)) entries.set(parent, { type: 'directory' });
    }
    entries.set(path, typeof value === 'string' || Buffer.isBuffer(value) ? { content: value } : value);
  }
  const blocks: Buffer[] = [];
  for (const path of [...entries.keys()].sort()) {
    const entry = entries.get(path)!;
    const type = entry.type ?? 'file';
    const content = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    const typeflag = { file: '0', hardlink: '1', symlink: '2', directory: '5' }[type];
    blocks.push(
      tarHeader({
        name: type === 'directory' ? `${path}/` : path,
        size: content.length,
        mode: entry.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
        typeflag,
        ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
        mtime,
        ...(entry.uid === undefined ? {} : { uid: entry.uid }),
        ...(entry.gid === undefined ? {} : { gid: entry.gid }),
      }),
      content,
      padding(content.length),
    );
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A layer holding these files, e.g. `layer({ 'etc/hello': 'hi\n' })`. Deterministic. */
export function layer(files: Record<string, LayerEntry>, opts: LayerOptions = {}): Layer {
  const tar = tarball(files, opts.mtime);
  const compression = opts.compression ?? 'gzip';
  // gzipSync writes mtime 0 and a fixed OS byte, so the same tar always compresses to the same bytes.
  const data = compression === 'gzip' ? gzipSync(tar, { level: 6 }) : tar;
  return {
    digest: sha256(data),
    size: data.length,
    diffID: sha256(tar),
    compression,
    ...(opts.mediaType === undefined ? {} : { mediaType: opts.mediaType }),
    data,
    open: () => Readable.from([data]),
  };
}

/** Options of {@link randomLayer}. */
export interface RandomLayerOptions {
  /** Same seed, same bytes. Default 'berth'. */
  seed?: string;
  compression?: 'gzip' | 'none';
  /** Path of the one file in the layer. Default 'random.bin'. */
  path?: string;
  mediaType?: string;
  /** Above this many bytes the blob is not kept in memory but regenerated on open(). Default 64 MiB. */
  inMemoryLimit?: number;
}

const CHUNK = 1 << 20;
const STORED_MAX = 65_535;

/** The tar of one file of `bytes` pseudo-random bytes (AES-128-CTR keystream of a seed: fast, seeded). */
function* randomTarChunks(bytes: number, seed: string, path: string): Generator<Buffer> {
  yield tarHeader({ name: path, size: bytes, mode: 0o644, typeflag: '0', mtime: DEFAULT_MTIME });
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = bytes; left > 0; left -= CHUNK) yield cipher.update(zeros.subarray(0, Math.min(CHUNK, left)));
  yield Buffer.concat([padding(bytes), Buffer.alloc(1024)]);
}

/**
 * gzip (RFC 1952) of a byte sequence using only stored deflate blocks (RFC 1951 §3.2.4): valid for
 * every gunzip, cheap to make, and the right choice for data that does not compress anyway.
 */
function* storedGzip(chunks: Iterable<Buffer>): Generator<Buffer> {
  yield Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  let crc = 0;
  let length = 0;
  for (const chunk of chunks) {
    crc = crc32(chunk, crc);
    length = (length + chunk.length) % 2 ** 32;
    for (let at = 0; at < chunk.length; at += STORED_MAX) {
      const piece = chunk.subarray(at, at + STORED_MAX);
      const head = Buffer.alloc(5);
      head.writeUInt16LE(piece.length, 1);
      head.writeUInt16LE(~piece.length & 0xffff, 3);
      yield head;
      yield piece;
    }
  }
  const tail = Buffer.alloc(13);
  tail.set([1, 0, 0, 0xff, 0xff]);
  tail.writeUInt32LE(crc >>> 0, 5);
  tail.writeUInt32LE(length, 9);
  yield tail;
}

/**
 * A layer of one file of `bytes` seeded pseudo-random (incompressible) bytes. Big ones (above
 * `inMemoryLimit`) are never held in memory: digests are computed in one pass and open() streams
 * the same bytes again.
 */
export function randomLayer(bytes: number, opts: RandomLayerOptions = {}): Layer {
  const seed = opts.seed ?? 'berth';
  const path = opts.path ?? 'random.bin';
  const compression = opts.compression ?? 'gzip';
  const tar = () => randomTarChunks(bytes, seed, path);
  const blob = () => (compression === 'gzip' ? storedGzip(tar()) : tar());
  const diff = createHash('sha256');
  for (const chunk of tar()) diff.update(chunk);
  const keep = bytes <= (opts.inMemoryLimit ?? 64 * CHUNK);
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let size = 0;
  for (const chunk of blob()) {
    hash.update(chunk);
    size += chunk.length;
    if (keep) kept.push(chunk);
  }
  const data = keep ? Buffer.concat(kept) : undefined;
  return {
    digest: `sha256:${hash.digest('hex')}`,
    size,
    diffID: `sha256:${diff.digest('hex')}`,
    compression,
    ...(opts.mediaType === undefined ? {} : { mediaType: opts.mediaType }),
    ...(data === undefined ? {} : { data }),
    open: () => (data ? Readable.from([data]) : Readable.from(blob())),
  };
}

/** os/architecture/variant of an image, as in an index entry's `platform`. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

/** What {@link imageConfig} puts into the config; everything but `layers` optional. */
export interface ImageConfigOptions {
  layers: Layer[];
  os?: string;
  architecture?: string;
  variant?: string;
  osVersion?: string;
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** e.g. ['80/tcp', '53/udp'] */
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
  /** RFC 3339. Default 2000-01-01T00:00:00Z (fixed, for stable digests). */
  created?: string;
  author?: string;
}

/** An image config blob. */
export interface ConfigBlob {
  json: Record<string, unknown>;
  bytes: Buffer;
  digest: string;
  size: number;
  platform: Platform;
}

const toSet = (items: string[] | undefined): Record<string, object> | undefined =>
  items === undefined ? undefined : Object.fromEntries(items.map((item) => [item, {}]));

/** An image config (OCI image-spec config.md; the Docker v1 image JSON has the same fields). */
export function imageConfig(opts: ImageConfigOptions): ConfigBlob {
  const created = opts.created ?? '2000-01-01T00:00:00Z';
  const platform: Platform = {
    os: opts.os ?? 'linux',
    architecture: opts.architecture ?? 'amd64',
    ...(opts.variant === undefined ? {} : { variant: opts.variant }),
    ...(opts.osVersion === undefined ? {} : { 'os.version': opts.osVersion }),
  };
  const runtime = Object.fromEntries(
    Object.entries({
      User: opts.user,
      ExposedPorts: toSet(opts.exposedPorts),
      Env: opts.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Entrypoint: opts.entrypoint,
      Cmd: opts.cmd,
      Volumes: toSet(opts.volumes),
      WorkingDir: opts.workingDir,
      Labels: opts.labels,
      StopSignal: opts.stopSignal,
    }).filter(([, value]) => value !== undefined),
  );
  const json: Record<string, unknown> = {
    created,
    ...(opts.author === undefined ? {} : { author: opts.author }),
    architecture: platform.architecture,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    os: platform.os,
    ...(platform['os.version'] === undefined ? {} : { 'os.version': platform['os.version'] }),
    config: runtime,
    rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffID) },
    history: opts.layers.map((l, i) => ({ created, created_by: `berth-fixture layer ${i} ${l.diffID.slice(7, 19)}` })),
  };
  const bytes = Buffer.from(JSON.stringify(json));
  return { json, bytes, digest: sha256(bytes), size: bytes.length, platform };
}
