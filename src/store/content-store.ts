/**
 * The content store: blobs on disk by digest, laid out like an OCI image layout (`blobs/sha256/<hex>`).
 * A blob is written to a unique temp file while its SHA-256 is computed, checked against the expected
 * digest and size, fsynced and renamed into place, so a blob path either holds verified bytes or does
 * not exist (as containerd's content store does with its ingest directory).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequestError, NotFoundError } from '../errors.js';
import { BlobWriter, type Chunk } from './blob-writer.js';

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const HEX = /^[a-f0-9]{64}$/;
/** Temp files older than this are left over from a crash and removed by init(). */
const STALE_TEMP_MS = 60 * 60 * 1000;

export type { Chunk } from './blob-writer.js';

/** What stat() tells about a stored blob. */
export interface BlobStat {
  size: number;
  modifiedAt: Date;
}

/** Options of write(). */
export interface WriteOptions {
  /** Called after each chunk reached the temp file, with its length. */
  onProgress?(deltaBytes: number): void;
}

/** What write() did. */
export interface WriteResult {
  /** Size of the stored blob. */
  size: number;
  /** The blob was already stored; `source` was left unread (the caller should destroy it). */
  alreadyPresent: boolean;
}

function isMissing(err: unknown): boolean {
  return (err as { code?: string }).code === 'ENOENT';
}

/** Returns the hex of a `sha256:<64 lowercase hex>` digest; anything else (`../x`) is refused. */
function hexOf(digest: string): string {
  const match = typeof digest === 'string' ? DIGEST.exec(digest) : null;
  if (!match) throw new BadRequestError('INVALID_DIGEST', `${JSON.stringify(digest)} is not a sha256:<64 lowercase hex> digest`);
  return match[1]!;
}

/** Blobs by digest under one root directory. */
export class ContentStore {
  private readonly blobsDir: string;
  private readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs', 'sha256');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Creates the directories and removes temp files a crash left behind (older than an hour). */
  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const now = Date.now();
    for (const entry of await readdir(this.tmpDir)) {
      const file = path.join(this.tmpDir, entry);
      try {
        if (now - (await stat(file)).mtimeMs > STALE_TEMP_MS) await rm(file, { force: true });
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
  }

  /** Where the blob lives (or would live). Throws BadRequestError INVALID_DIGEST for anything but sha256. */
  path(digest: string): string {
    return path.join(this.blobsDir, hexOf(digest));
  }

  /** True when the blob is stored. */
  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /**
   * Whether the blob is stored, refreshing its modification time when it is: the sweep only takes
   * blobs untouched for an hour, so a blob a pull is about to record stays.
   */
  async reuse(digest: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.path(digest), now, now);
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** Size and modification time of a stored blob, or undefined. */
  async stat(digest: string): Promise<BlobStat | undefined> {
    try {
      const s = await stat(this.path(digest));
      return s.isFile() ? { size: s.size, modifiedAt: s.mtime } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /**
   * Streams `source` into the store as `digest`, never holding more than one chunk in memory. Stops
   * reading as soon as more than `expectedSize` bytes arrive. Throws ContentVerificationError
   * (SIZE_MISMATCH, DIGEST_MISMATCH) and keeps nothing when the bytes are not the promised ones.
   * When the blob is already stored, returns at once without reading `source`.
   */
  async write(
    digest: string,
    expectedSize: number,
    source: AsyncIterable<Chunk> | Iterable<Chunk> | Readable,
    options: WriteOptions = {},
  ): Promise<WriteResult> {
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      throw new RangeError(`expectedSize must be a non-negative integer, got ${expectedSize}`);
    }
    const existing = await this.stat(digest);
    if (existing) {
      await this.reuse(digest);
      return { size: existing.size, alreadyPresent: true };
    }

    const writer = await this.createWriter(digest, expectedSize);
    try {
      await writer.append(source, options.onProgress);
      return await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  /**
   * A writer for a blob that may come from several sources (a download resumed after a cut): the
   * caller appends, then commits (verified) or aborts. Checks nothing about whether it is stored.
   */
  async createWriter(digest: string, expectedSize: number): Promise<BlobWriter> {
    const target = this.path(digest);
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      throw new RangeError(`expectedSize must be a non-negative integer, got ${expectedSize}`);
    }
    const temp = path.join(this.tmpDir, `${hexOf(digest)}.${randomBytes(8).toString('hex')}.partial`);
    return BlobWriter.open({ digest, expectedSize, temp, path: target, dir: this.blobsDir });
  }

  /** Stores bytes held in memory (manifests, configs), verified like write(). */
  async writeBytes(digest: string, bytes: Uint8Array): Promise<WriteResult> {
    return this.write(digest, bytes.length, [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
  }

  /** A stream of the blob. Throws NotFoundError BLOB_NOT_FOUND when it is not stored. */
  async read(digest: string): Promise<Readable> {
    const file = this.path(digest);
    try {
      const handle = await open(file, 'r');
      return handle.createReadStream();
    } catch (err) {
      if (isMissing(err)) throw new NotFoundError('BLOB_NOT_FOUND', `Blob ${digest} is not in the store`);
      throw err;
    }
  }

  /** The blob's bytes. Throws NotFoundError BLOB_NOT_FOUND when it is not stored. */
  async readBytes(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (err) {
      if (isMissing(err)) throw new NotFoundError('BLOB_NOT_FOUND', `Blob ${digest} is not in the store`);
      throw err;
    }
  }

  /** Removes the blob; true when it was there, false when it already was not. */
  async delete(digest: string): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** Digests of every stored blob, in no particular order. */
  async *list(): AsyncGenerator<string> {
    let entries: string[];
    try {
      entries = await readdir(this.blobsDir);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for (const entry of entries) if (HEX.test(entry)) yield `sha256:${entry}`;
  }
}
