/**
 * Gives each test run its own Postgres database and Redis key prefix, so that runs never collide
 * with each other or with a berth running on the same machine. Dropped again at the end of the run.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

const ADMIN_URL = process.env.BERTH_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const run = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const database = `berth_test_${run}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  project.provide('databaseUrl', url.toString());
  project.provide('redisUrl', process.env.BERTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  project.provide('runId', run);
  return async () => {
    const cleanup = new pg.Client({ connectionString: ADMIN_URL });
    await cleanup.connect();
    await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await cleanup.end();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
    runId: string;
  }
}
