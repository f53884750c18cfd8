/** Where this test run's Postgres and Redis live, and names that no other file or run will use. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

/** URL of the database created for this test run (see test/global-setup.ts). */
export function testDatabaseUrl(): string {
  return inject('databaseUrl');
}

/** URL of the shared Redis server; isolate with uniqueName() as the key prefix. */
export function testRedisUrl(): string {
  return inject('redisUrl');
}

/** A lowercase identifier unique to this run and call, usable as a schema name or Redis prefix. */
export function uniqueName(label: string): string {
  return `${label}_${inject('runId')}_${randomBytes(3).toString('hex')}`.toLowerCase();
}

/** Deletes every key under `prefix:` from this run's Redis (a test's queue, once it is done). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  try {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
