/** `npm run migrate`: applies pending migrations to DATABASE_URL's BERTH_DB_SCHEMA, then exits. */
import { loadConfig } from '../config.js';
import { migrate } from './migrate.js';
import { createPool } from './pool.js';

async function main(): Promise<number> {
  const config = loadConfig();
  if (!config.databaseUrl) {
    console.error('DATABASE_URL is not set: set it to the Postgres to migrate (npm start migrates its embedded Postgres itself)');
    return 1;
  }
  const pool = await createPool({ connectionString: config.databaseUrl, schema: config.databaseSchema, max: 1 });
  try {
    const { schema, applied } = await migrate(pool);
    console.log(applied.length === 0 ? `Schema ${schema} is up to date` : `Schema ${schema}: applied ${applied.join(', ')}`);
    return 0;
  } finally {
    await pool.end();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
