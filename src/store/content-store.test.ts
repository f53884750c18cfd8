import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentStore } from './content-store.js';
import { ContentVerificationError } from './errors.js';

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

let root: string;
let store: ContentStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-store-'));
  store = new ContentStore(root);
  await store.init();
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tempFiles(): Promise<string[]> {
  return readdir(path.join(root, 'tmp'));
}

describe('ContentStore', () => {
  it('stores verified bytes under blobs/sha256/<hex> and reads them back', async () => {
    const bytes = Buffer.from('hello, berth');
    const digest = digestOf(bytes);
    const progress: number[] = [];
    const result = await store.write(digest, bytes.length, Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]), {
      onProgress: (d) => progress.push(d),
    });
    expect(result).toEqual({ size: bytes.length, alreadyPresent: false });
    expect(progress).toEqual([5, bytes.length - 5]);
    expect(store.path(digest)).toBe(path.join(root, 'blobs', 'sha256', digest.slice(7)));
    expect(await store.has(digest)).toBe(true);
    expect((await store.stat(digest))?.size).toBe(bytes.length);
    expect(await store.readBytes(digest)).toEqual(bytes);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.read(digest)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(bytes);
    expect(await tempFiles()).toEqual([]);
  });

  it('returns at once, reading nothing, when the blob is already stored', async () => {
    const bytes = Buffer.from('already here');
    const digest = digestOf(bytes);
    await store.writeBytes(digest, bytes);
    let pulled = false;
    const source = (async function* () {
      pulled = true;
      yield bytes;
    })();
    expect(await store.write(digest, bytes.length, source)).toEqual({ size: bytes.length, alreadyPresent: true });
    expect(pulled).toBe(false);
  });

  it('keeps nothing when the digest does not match', async () => {
    const bytes = Buffer.from('the real bytes');
    const wrong = digestOf(Buffer.from('other bytes'));
    const err = await store.writeBytes(wrong, bytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentVerificationError);
    expect(err).toMatchObject({ code: 'DIGEST_MISMATCH', statusCode: 502 });
    expect(await store.has(wrong)).toBe(false);
    expect(await tempFiles()).toEqual([]);
  });

  it('keeps nothing when fewer bytes than expected arrive', async () => {
    const bytes = Buffer.from('short');
    const digest = digestOf(bytes);
    await expect(store.write(digest, bytes.length + 1, [bytes])).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(await store.has(digest)).toBe(false);
    expect(await tempFiles()).toEqual([]);
  });

  it('stops reading as soon as more bytes than expected arrive', async () => {
    const chunk = Buffer.alloc(1024, 1);
    let produced = 0;
    let finished = false;
    const endless = (async function* () {
      try {
        for (;;) {
          produced += 1;
          yield chunk;
        }
      } finally {
        finished = true;
      }
    })();
    await expect(store.write(digestOf(chunk), 4096, endless)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(produced).toBe(5);
    expect(finished).toBe(true);
    expect(await tempFiles()).toEqual([]);
  });

  it('lets concurrent writers of one blob all succeed with one intact copy', async () => {
    const bytes = Buffer.alloc(256 * 1024, 7);
    const digest = digestOf(bytes);
    const chunked = () => Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.write(digest, bytes.length, chunked())));
    for (const r of results) expect(r.size).toBe(bytes.length);
    expect(await store.readBytes(digest)).toEqual(bytes);
    expect(await tempFiles()).toEqual([]);
    const all: string[] = [];
    for await (const d of store.list()) all.push(d);
    expect(all).toEqual([digest]);
  });

  it('refuses anything but a sha256 digest, so no path leaves the store', async () => {
    for (const bad of ['../../etc/passwd', 'sha256:../../etc/passwd', `sha256:${'a'.repeat(63)}/`, `sha512:${'a'.repeat(128)}`, `sha256:${'A'.repeat(64)}`, '']) {
      expect(() => store.path(bad)).toThrow(expect.objectContaining({ code: 'INVALID_DIGEST', statusCode: 400 }));
      await expect(store.has(bad)).rejects.toMatchObject({ code: 'INVALID_DIGEST' });
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'INVALID_DIGEST' });
      await expect(store.writeBytes(bad, Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID_DIGEST' });
    }
  });

  it('streams a 50 MiB blob to disk chunk by chunk instead of buffering it', async () => {
    const chunkSize = 64 * 1024;
    const chunks = 800; // 50 MiB
    const chunk = Buffer.alloc(chunkSize);
    const hash = createHash('sha256');
    for (let i = 0; i < chunks; i++) {
      chunk.writeUInt32BE(i, 0);
      hash.update(chunk);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    let written = 0;
    let lagging = 0;
    const source = (async function* () {
      for (let i = 0; i < chunks; i++) {
        // Each chunk asked for must find the previous one already on disk: nothing piles up in memory.
        if (written < i * chunkSize) lagging += 1;
        const c = Buffer.alloc(chunkSize);
        c.writeUInt32BE(i, 0);
        yield c;
      }
    })();
    const result = await store.write(digest, chunks * chunkSize, source, { onProgress: (d) => (written += d) });
    expect(result).toEqual({ size: chunks * chunkSize, alreadyPresent: false });
    expect(lagging).toBe(0);
    expect((await store.stat(digest))?.size).toBe(chunks * chunkSize);
  });

  it('deletes blobs, missing ones included, and lists what is stored', async () => {
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    await store.writeBytes(digestOf(a), a);
    await store.writeBytes(digestOf(b), b);
    expect(await store.delete(digestOf(a))).toBe(true);
    expect(await store.delete(digestOf(a))).toBe(false);
    const all: string[] = [];
    for await (const d of store.list()) all.push(d);
    expect(all).toEqual([digestOf(b)]);
    await expect(store.readBytes(digestOf(a))).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND', statusCode: 404 });
    await expect(store.read(digestOf(a))).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
  });

  it('removes stale temp files on init and keeps fresh ones', async () => {
    const stale = path.join(root, 'tmp', 'stale.partial');
    const fresh = path.join(root, 'tmp', 'fresh.partial');
    await writeFile(stale, 'x');
    await writeFile(fresh, 'y');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);
    await store.init();
    expect(await tempFiles()).toEqual(['fresh.partial']);
  });
});

describe('createWriter (resumable writes)', () => {
  const bytes = randomBytes(10_000);
  const digest = digestOf(bytes);

  /** Yields `head`, then fails like a connection that broke off. */
  async function* cutAfter(head: Buffer): AsyncGenerator<Buffer> {
    yield head;
    throw new Error('connection reset');
  }

  it('keeps what a failed source delivered, so the rest can be appended and committed', async () => {
    const writer = await store.createWriter(digest, bytes.length);
    await expect(writer.append(cutAfter(bytes.subarray(0, 4000)))).rejects.toThrow('connection reset');
    expect(writer.written).toBe(4000);
    await writer.append([bytes.subarray(4000)]);
    await writer.commit();
    expect((await store.readBytes(digest)).equals(bytes)).toBe(true);
  });

  it('starts over on restart(), for a registry that ignored Range', async () => {
    const writer = await store.createWriter(digest, bytes.length);
    await writer.append(cutAfter(bytes.subarray(0, 3000))).catch(() => undefined);
    await writer.restart();
    expect(writer.written).toBe(0);
    await writer.append([bytes]);
    await writer.commit();
    // The file holds exactly the blob: no hole where the first try's bytes were.
    expect((await store.readBytes(digest)).equals(bytes)).toBe(true);
  });

  it('refuses to commit a blob pieced together wrongly, and abort() leaves nothing behind', async () => {
    const writer = await store.createWriter(digest, bytes.length);
    await writer.append([bytes.subarray(0, 5000), bytes.subarray(0, 5000)]);
    await expect(writer.commit()).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await writer.abort();
    expect(await store.has(digest)).toBe(false);
    expect(await readdir(path.join(root, 'tmp'))).toEqual([]);
  });
});
