/**
 * The Postgres pool. berth's tables live in one schema, chosen per connection by search_path, so that
 * several berths (or test files) can share one database without seeing each other's rows.
 */
import pg from 'pg';

/** Anything that runs a query: the pool itself or a client checked out of it (inside a transaction). */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** What createPool needs. */
export interface PoolOptions {
  connectionString: string;
  /** Schema the tables live in; created if missing. A lowercase SQL identifier. */
  schema: string;
  /** Most connections the pool opens (pg's default is 10). */
  max?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Quotes a schema name after checking it is a plain lowercase identifier. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`Schema name ${JSON.stringify(schema)} must be a lowercase SQL identifier`);
  return `"${schema}"`;
}

/**
 * Opens a pool whose every connection has `search_path=<schema>` (set with the startup `options`
 * parameter, so even a fresh connection never sees another schema) and creates the schema if missing.
 */
export async function createPool(options: PoolOptions): Promise<pg.Pool> {
  const quoted = quoteSchema(options.schema);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    options: `-c search_path=${options.schema}`,
    max: options.max,
  });
  // An idle client losing its connection (Postgres restarting) must not crash the process;
  // the next query gets a fresh connection or a clear error.
  pool.on('error', () => {});
  try {
    const { rowCount } = await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [options.schema]);
    if (rowCount === 0) {
      try {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      } catch (err) {
        // Two processes creating it at once: IF NOT EXISTS still races in the catalog (23505/42P06).
        const code = (err as { code?: string }).code;
        if (code !== '23505' && code !== '42P06') throw err;
      }
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return pool;
}

/**
 * Runs `fn` in a transaction: COMMIT when it resolves, ROLLBACK when it throws. Given the pool, it
 * checks a client out for the transaction (destroyed rather than returned when ROLLBACK failed); given
 * a client (one holding a session-level lock, say), it runs on that client and leaves releasing to the caller.
 */
export async function withTransaction<T>(
  db: pg.Pool | pg.PoolClient,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  if ('release' in db) return inTransaction(db, fn);
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    return await inTransaction(client, fn, (err) => {
      broken = err;
    });
  } finally {
    client.release(broken);
  }
}

async function inTransaction<T>(
  client: pg.PoolClient,
  fn: (client: pg.PoolClient) => Promise<T>,
  onBroken: (err: Error) => void = () => {},
): Promise<T> {
  try {
    await client.query('BEGIN');
  } catch (err) {
    onBroken(err as Error);
    throw err;
  }
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => onBroken(rollbackErr));
    throw err;
  }
}
