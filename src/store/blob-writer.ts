/**
 * A blob being written into the store: bytes are appended to a temp file from one source or several
 * (a download resumed with Range after the connection broke) while SHA-256 runs over them; commit()
 * checks size and digest, fsyncs and renames into place. Nothing unverified is ever at a blob path.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ContentVerificationError } from './errors.js';

/** A piece of a blob as a source yields it. */
export type Chunk = Buffer | Uint8Array;

/** Where a writer writes and what it must end up holding. */
export interface BlobWriterTarget {
  digest: string;
  expectedSize: number;
  /** The temp file (created, must not exist). */
  temp: string;
  /** The blob's final path, and the directory to fsync after the rename. */
  path: string;
  dir: string;
}

/** Writes all of `buf` at `position` (explicit positions: restart() truncates under the writer). */
async function writeAll(file: FileHandle, buf: Buffer, position: number): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await file.write(buf, offset, buf.length - offset, position + offset);
    offset += bytesWritten;
  }
}

/** Makes a rename durable: fsync the directory that holds the new entry. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Appends, verifies and commits one blob; abort() when giving up. */
export class BlobWriter {
  #hash: Hash = createHash('sha256');
  #size = 0;
  #broken: Error | undefined;
  #closed = false;

  private constructor(
    private readonly file: FileHandle,
    private readonly target: BlobWriterTarget,
  ) {}

  /** Creates the temp file and a writer for it. */
  static async open(target: BlobWriterTarget): Promise<BlobWriter> {
    return new BlobWriter(await open(target.temp, 'wx'), target);
  }

  /** Bytes written so far: where a resumed download must start. */
  get written(): number {
    return this.#size;
  }

  /**
   * Appends everything `source` yields. If the source fails, what it yielded before stays written
   * (resume from `written`); more bytes than the blob has is SIZE_MISMATCH, and the source is cut off.
   */
  async append(source: AsyncIterable<Chunk> | Iterable<Chunk> | Readable, onProgress?: (deltaBytes: number) => void): Promise<void> {
    if (this.#broken) throw this.#broken;
    const { digest, expectedSize } = this.target;
    // Breaking out of for-await calls return() on the iterator: a Readable is destroyed, so a
    // registry sending an endless body is cut off here rather than filling the disk.
    for await (const chunk of source as AsyncIterable<Chunk>) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (this.#size + buf.length > expectedSize) {
        throw new ContentVerificationError('SIZE_MISMATCH', `Blob ${digest} is larger than the expected ${expectedSize} bytes`, { digest, expectedSize });
      }
      try {
        await writeAll(this.file, buf, this.#size);
      } catch (err) {
        // The file may now hold part of this chunk: it can no longer be resumed.
        this.#broken = err as Error;
        throw err;
      }
      this.#hash.update(buf);
      this.#size += buf.length;
      onProgress?.(buf.length);
    }
  }

  /** Starts over from byte 0 (a registry that ignored Range sends the whole blob again). */
  async restart(): Promise<void> {
    if (this.#broken) throw this.#broken;
    await this.file.truncate(0);
    this.#hash = createHash('sha256');
    this.#size = 0;
  }

  /** Verifies size and digest, then moves the blob into place. Throws ContentVerificationError. */
  async commit(): Promise<{ size: number; alreadyPresent: false }> {
    const { digest, expectedSize } = this.target;
    if (this.#size !== expectedSize) {
      throw new ContentVerificationError('SIZE_MISMATCH', `Blob ${digest} has ${this.#size} bytes, expected ${expectedSize}`, {
        digest,
        expectedSize,
        actualSize: this.#size,
      });
    }
    const actual = `sha256:${this.#hash.digest('hex')}`;
    if (actual !== digest) {
      throw new ContentVerificationError('DIGEST_MISMATCH', `Blob expected to be ${digest} has digest ${actual}`, { digest, actualDigest: actual });
    }
    await this.file.sync();
    await this.close();
    // Writers racing on one blob each rename identical, verified bytes: whichever lands last wins.
    await rename(this.target.temp, this.target.path);
    await syncDir(this.target.dir);
    return { size: this.#size, alreadyPresent: false };
  }

  /** Gives up: the temp file goes. Safe to call after a failed commit. */
  async abort(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.target.temp, { force: true }).catch(() => undefined);
  }

  private async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.file.close();
  }
}
