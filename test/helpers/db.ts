/** A migrated schema of its own for a test file, on this run's database (see test/global-setup.ts). */
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { createPool, quoteSchema } from '../../src/db/pool.js';
import { testDatabaseUrl, uniqueName } from './env.js';

/** A migrated schema and a pool bound to it; close() ends the pool and drops the schema. */
export interface TestDatabase {
  /** Pool whose connections use `schema` as search_path. */
  pool: pg.Pool;
  /** The schema's name: pass it as BERTH_DB_SCHEMA / createPool's schema to share it. */
  schema: string;
  /** URL of this run's database (the schema is not part of it). */
  url: string;
  close(): Promise<void>;
}

/** Creates a unique schema (named after `label`), migrates it, and returns a pool bound to it. */
export async function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  const url = testDatabaseUrl();
  const schema = uniqueName(label);
  const pool = await createPool({ connectionString: url, schema });
  await migrate(pool);
  return {
    pool,
    schema,
    url,
    async close() {
      await pool.end();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}
