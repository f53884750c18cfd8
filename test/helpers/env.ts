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
