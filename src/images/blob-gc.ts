/**
 * Garbage collection of the content store: the lock that keeps deletes and pull commits apart, and a
 * sweep of blobs no image references (left by a crash between a delete's COMMIT and its unlinks, or by
 * a re-pull of an image through another manifest).
 */
import type pg from 'pg';
import type { ContentStore } from '../store/content-store.js';
import { createImagesRepository } from './images-repository.js';
import type { Queryable } from '../db/pool.js';

/**
 * The advisory-lock key of the content store's garbage collection, per schema (one schema is one
 * berth, with one store). Image deletes hold it while they decide which blobs to remove and remove
 * them; pull commits hold it while they check their blobs are present and record the image.
 */
export const STORE_GC_LOCK_KEY_SQL = `hashtextextended('berth:store-gc:' || current_schema(), 0)`;

/** Takes the store GC lock until the end of the current transaction. */
export async function lockStoreGc(client: Queryable): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(${STORE_GC_LOCK_KEY_SQL})`);
}

/**
 * Runs `fn` holding the store GC lock at session level: still held after a COMMIT inside `fn`, while
 * files are unlinked, so that a pull commit never records an image whose blob is about to go.
 */
export async function withStoreGcLock<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(`SELECT pg_advisory_lock(${STORE_GC_LOCK_KEY_SQL})`);
    try {
      return await fn(client);
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${STORE_GC_LOCK_KEY_SQL})`).catch((err: Error) => {
        broken = err;
      });
    }
  } finally {
    client.release(broken);
  }
}

/** What a sweep needs. */
export interface BlobSweepDeps {
  pool: pg.Pool;
  store: Pick<ContentStore, 'list' | 'stat' | 'delete'>;
}

/**
 * Removes blobs that no image references and that are older than `olderThanMs`. Younger ones may
 * belong to a pull still downloading; should a very long pull lose one all the same, its commit finds
 * the blob gone and the pull is retried.
 */
export async function sweepOrphanBlobs({ pool, store }: BlobSweepDeps, olderThanMs: number): Promise<string[]> {
  const cutoff = Date.now() - olderThanMs;
  const old: string[] = [];
  for await (const digest of store.list()) {
    const stat = await store.stat(digest);
    if (stat && stat.modifiedAt.getTime() < cutoff) old.push(digest);
  }
  if (old.length === 0) return [];
  return withStoreGcLock(pool, async (client) => {
    const orphans = await createImagesRepository(client).unreferencedBlobs(old);
    const removed: string[] = [];
    for (const digest of orphans) {
      // A pull may have reused it since the listing (ContentStore.reuse refreshes the time): keep it.
      const stat = await store.stat(digest);
      if (!stat || stat.modifiedAt.getTime() >= cutoff) continue;
      await store.delete(digest);
      removed.push(digest);
    }
    return removed;
  });
}
