/**
 * The migration runner: applies migrations/NNNN_<name>.sql in order, each in its own transaction,
 * and records it with a checksum in schema_migrations. Instances starting at once serialize on an
 * advisory lock derived from the schema name, so exactly one applies and the others then find nothing
 * to do. Migrations are append-only: an applied file whose content changed stops start-up, as Flyway does.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

/** The migrations/ folder of this checkout. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const FILE_NAME = /^(\d{4})_[A-Za-z0-9_-]+\.sql$/;

/** A migration that cannot be applied, or a database that does not match the migration files. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** What migrate() did. */
export interface MigrateResult {
  /** Schema migrated. */
  schema: string;
  /** Files applied by this call, in order (empty when the schema was up to date). */
  applied: string[];
}

interface MigrationFile {
  version: string;
  file: string;
  sql: string;
  checksum: string;
}

/** Advisory-lock key for migrating `schema`: the first 8 bytes of a SHA-256, as a signed bigint. */
export function migrationLockKey(schema: string): string {
  const hash = createHash('sha256').update(`berth:migrate:${schema}`).digest();
  return hash.readBigInt64BE(0).toString();
}

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Map<string, string>();
  const migrations: MigrationFile[] = [];
  for (const file of files) {
    const match = FILE_NAME.exec(file);
    if (!match) throw new MigrationError(`Migration file ${file} is not named NNNN_<name>.sql`);
    const version = match[1]!;
    const other = seen.get(version);
    if (other) throw new MigrationError(`Migrations ${other} and ${file} have the same number ${version}`);
    seen.set(version, file);
    const sql = await readFile(path.join(dir, file), 'utf8');
    migrations.push({ version, file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

/**
 * Brings the pool's schema (the first of its search_path, which must exist: createPool creates it) up
 * to date with the .sql files in `dir` (default: migrations/).
 */
export async function migrate(pool: pg.Pool, options: { dir?: string } = {}): Promise<MigrateResult> {
  const migrations = await readMigrations(options.dir ?? MIGRATIONS_DIR);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    const schema = rows[0]?.schema;
    if (!schema) throw new MigrationError('The schema in search_path does not exist; open the pool with createPool()');
    const key = migrationLockKey(schema);
    await client.query('SELECT pg_advisory_lock($1::bigint)', [key]);
    try {
      return { schema, applied: await applyPending(client, migrations, schema) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch((err: Error) => {
        broken = err; // a connection that may still hold the lock must not go back to the pool
      });
    }
  } finally {
    client.release(broken);
  }
}

async function applyPending(client: pg.PoolClient, migrations: MigrationFile[], schema: string): Promise<string[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    file       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const { rows } = await client.query<{ version: string; file: string; checksum: string }>(
    'SELECT version, file, checksum FROM schema_migrations ORDER BY version',
  );
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const row of rows) {
    const file = known.get(row.version);
    if (!file) {
      throw new MigrationError(
        `Schema ${schema} has migration ${row.file} applied, which this build of berth does not have; run a newer berth`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `Migration ${file.file} was changed after it was applied to schema ${schema}; migrations are append-only: restore it and add a new file`,
      );
    }
  }
  const done = new Set(rows.map((r) => r.version));
  const applied: string[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    await client.query('BEGIN');
    try {
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, file, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.file,
        migration.checksum,
      ]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new MigrationError(`Migration ${migration.file} failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(migration.file);
  }
  return applied;
}
