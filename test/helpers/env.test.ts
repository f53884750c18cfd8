import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { testDatabaseUrl, uniqueName } from './env.js';

describe('test environment', () => {
  it('gives this run its own reachable database', async () => {
    const client = new pg.Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    const { rows } = await client.query<{ db: string }>('select current_database() as db');
    await client.end();
    expect(rows[0]?.db).toMatch(/^berth_test_/);
  });

  it('makes names that differ on every call', () => {
    expect(uniqueName('x')).not.toEqual(uniqueName('x'));
  });
});
