import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPullsRepository, markPullSucceeded, type PullsRepository } from '../src/pulls/pulls-repository.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let db: TestDatabase;
let pulls: PullsRepository;

beforeAll(async () => {
  db = await createTestDatabase('pulls');
  pulls = createPullsRepository(db.pool);
});

afterAll(async () => {
  await db?.close();
});

const DAY = 24 * 3600_000;

async function pull(key: string) {
  const row = await pulls.insertUnlessInFlight({ image: key, reference: key, platform: 'linux/amd64', dedupeKey: key });
  if (!row) throw new Error('not inserted');
  return row;
}

async function endedDaysAgo(id: string, state: 'succeeded' | 'failed', days: number): Promise<void> {
  await db.pool.query(`UPDATE pulls SET state = $2, finished_at = now() - make_interval(days => $3) WHERE id = $1`, [id, state, days]);
}

describe('pulls repository', () => {
  it('lets one pull per key be in flight, and a new one once it ended', async () => {
    const first = await pull('r.test/a:1|linux/amd64');
    expect(await pulls.insertUnlessInFlight({ image: 'a', reference: 'a', platform: 'p', dedupeKey: 'r.test/a:1|linux/amd64' })).toBeNull();
    expect((await pulls.findInFlight('r.test/a:1|linux/amd64'))?.id).toBe(first.id);
    await endedDaysAgo(first.id, 'succeeded', 0);
    expect(await pulls.findInFlight('r.test/a:1|linux/amd64')).toBeNull();
    expect((await pull('r.test/a:1|linux/amd64')).id).not.toBe(first.id);
  });

  it('deletes only the records of pulls that ended before the retention limit', async () => {
    const oldSucceeded = await pull('old-ok');
    const oldFailed = await pull('old-failed');
    const recent = await pull('recent');
    const stillQueued = await pull('queued');
    await endedDaysAgo(oldSucceeded.id, 'succeeded', 40);
    await endedDaysAgo(oldFailed.id, 'failed', 31);
    await endedDaysAgo(recent.id, 'succeeded', 1);
    await db.pool.query(`UPDATE pulls SET created_at = date_trunc('milliseconds', now() - interval '40 days') WHERE id = $1`, [stillQueued.id]);

    expect(await pulls.deleteEndedBefore(new Date(Date.now() - 30 * DAY))).toBe(2);
    expect(await pulls.findById(oldSucceeded.id)).toBeNull();
    expect(await pulls.findById(oldFailed.id)).toBeNull();
    expect(await pulls.findById(recent.id)).not.toBeNull();
    expect(await pulls.findById(stillQueued.id)).not.toBeNull();
  });
});

describe('the pulls list', () => {
  it('pages through pulls created in the same millisecond without skipping one', async () => {
    await db.pool.query('DELETE FROM pulls');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await pull(`same-ms-${i}`)).id);
    // Stored in whole milliseconds, as the cursor carries them: nothing finer is lost between pages.
    const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pulls WHERE created_at <> date_trunc('milliseconds', created_at)`);
    expect(rows[0]!.n).toBe(0);
    await db.pool.query(`UPDATE pulls SET created_at = date_trunc('milliseconds', now())`);
    const seen: string[] = [];
    let before: { createdAt: string; id: string } | undefined;
    for (;;) {
      const page = await pulls.list({ limit: 2, ...(before ? { before } : {}) });
      if (page.length === 0) break;
      seen.push(...page.map((p) => p.id));
      const last = page.at(-1)!;
      before = { createdAt: last.createdAt.toISOString(), id: last.id };
    }
    expect(seen.sort()).toEqual(ids.sort());
  });
});

describe('a canceled pull', () => {
  const progress = { bytesDone: 1, bytesTotal: 1, layersDone: 1, layersTotal: 1 };

  it('keeps CANCELED when its worker fails or succeeds afterwards', async () => {
    const row = await pull('canceled-then-failed');
    expect(await pulls.cancel(row.id, { code: 'CANCELED', message: 'canceled' })).not.toBeNull();
    await pulls.markFailed(row.id, { code: 'DIGEST_MISMATCH', message: 'late failure' });
    expect(await markPullSucceeded(db.pool, row.id, { imageId: `sha256:${'a'.repeat(64)}`, source: 's', reference: 'r', progress })).toBe(false);
    expect((await pulls.findById(row.id))).toMatchObject({ state: 'failed', error: { code: 'CANCELED' } });
  });

  it('cannot be canceled twice, nor once it ended', async () => {
    const row = await pull('cancel-twice');
    expect(await pulls.cancel(row.id, { code: 'CANCELED', message: 'canceled' })).not.toBeNull();
    expect(await pulls.cancel(row.id, { code: 'CANCELED', message: 'again' })).toBeNull();
  });
});
