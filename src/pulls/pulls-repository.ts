/** SQL for pull records. No rules here: the service decides, this file only reads and writes rows. */
import type pg from 'pg';
import type { Queryable } from '../db/pool.js';

/** States a pull goes through; queued and running are "in flight". */
export type PullState = 'queued' | 'running' | 'succeeded' | 'failed';

/** One source tried by a pull and why it failed. */
export interface PullAttempt {
  source: string;
  error: { code: string; message: string };
}

/** The failure recorded on a failed pull. */
export interface PullError {
  code: string;
  message: string;
  attempts?: PullAttempt[];
}

/** A pull row as the service sees it. */
export interface PullRow {
  id: string;
  image: string;
  reference: string;
  platform: string;
  state: PullState;
  bytesDone: number;
  bytesTotal: number;
  layersDone: number;
  layersTotal: number;
  imageId: string | null;
  source: string | null;
  error: PullError | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface DbRow {
  id: string;
  image: string;
  reference: string;
  platform: string;
  state: PullState;
  bytes_done: string;
  bytes_total: string;
  layers_done: number;
  layers_total: number;
  image_id: string | null;
  source: string | null;
  error: PullError | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

function toRow(r: DbRow): PullRow {
  return {
    id: r.id,
    image: r.image,
    reference: r.reference,
    platform: r.platform,
    state: r.state,
    bytesDone: Number(r.bytes_done),
    bytesTotal: Number(r.bytes_total),
    layersDone: r.layers_done,
    layersTotal: r.layers_total,
    imageId: r.image_id,
    source: r.source,
    error: r.error,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** What a new pull needs. */
export interface NewPull {
  image: string;
  reference: string;
  platform: string;
  dedupeKey: string;
}

/** Progress counters written while a pull runs. */
export interface PullProgress {
  bytesDone: number;
  bytesTotal: number;
  layersDone: number;
  layersTotal: number;
}

/** What a succeeded pull records. */
export interface PullSuccess {
  imageId: string;
  source: string;
  reference: string;
  progress: PullProgress;
}

/**
 * Marks a pull in flight succeeded, on `db` (a pool, or the client of the transaction that records
 * the image, so that a pull canceled meanwhile records nothing). False when it was no longer in flight.
 */
export async function markPullSucceeded(db: Queryable, id: string, result: PullSuccess): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE pulls SET state = 'succeeded', image_id = $2, source = $3, reference = $4,
       bytes_done = $5, bytes_total = $6, layers_done = $7, layers_total = $8, error = NULL, finished_at = now()
     WHERE id = $1 AND state IN ('queued', 'running')`,
    [id, result.imageId, result.source, result.reference, result.progress.bytesDone, result.progress.bytesTotal, result.progress.layersDone, result.progress.layersTotal],
  );
  return rowCount === 1;
}

/** Builds the pulls repository over a pool. */
export function createPullsRepository(pool: pg.Pool) {
  return {
    /** Inserts a queued pull unless one with the same dedupe key is in flight; null when one is. */
    async insertUnlessInFlight(pull: NewPull): Promise<PullRow | null> {
      const { rows } = await pool.query<DbRow>(
        `INSERT INTO pulls (id, image, reference, platform, state, dedupe_key)
         VALUES (gen_random_uuid(), $1, $2, $3, 'queued', $4)
         ON CONFLICT (dedupe_key) WHERE state IN ('queued', 'running') DO NOTHING
         RETURNING *`,
        [pull.image, pull.reference, pull.platform, pull.dedupeKey],
      );
      return rows[0] ? toRow(rows[0]) : null;
    },

    /** The in-flight pull with this dedupe key, if any. */
    async findInFlight(dedupeKey: string): Promise<PullRow | null> {
      const { rows } = await pool.query<DbRow>(
        `SELECT * FROM pulls WHERE dedupe_key = $1 AND state IN ('queued', 'running')`,
        [dedupeKey],
      );
      return rows[0] ? toRow(rows[0]) : null;
    },

    async findById(id: string): Promise<PullRow | null> {
      const { rows } = await pool.query<DbRow>('SELECT * FROM pulls WHERE id = $1', [id]);
      return rows[0] ? toRow(rows[0]) : null;
    },

    /** Newest first, optionally only one state; keyset-paginated by (created_at, id). */
    async list(opts: { limit: number; state?: PullState; before?: { createdAt: string; id: string } }): Promise<PullRow[]> {
      const { rows } = await pool.query<DbRow>(
        `SELECT * FROM pulls
         WHERE ($1::text IS NULL OR state = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
         ORDER BY created_at DESC, id DESC LIMIT $4`,
        [opts.state ?? null, opts.before?.createdAt ?? null, opts.before?.id ?? null, opts.limit],
      );
      return rows.map(toRow);
    },

    async delete(id: string): Promise<void> {
      await pool.query('DELETE FROM pulls WHERE id = $1', [id]);
    },

    /** Marks a pull running (again, on a retry); returns false when it already ended. */
    async markRunning(id: string): Promise<boolean> {
      const { rowCount } = await pool.query(
        `UPDATE pulls SET state = 'running', started_at = COALESCE(started_at, now())
         WHERE id = $1 AND state IN ('queued', 'running')`,
        [id],
      );
      return rowCount === 1;
    },

    /** Writes progress; false when the pull is no longer running (canceled): the worker should stop. */
    async updateProgress(id: string, p: PullProgress): Promise<boolean> {
      const { rowCount } = await pool.query(
        `UPDATE pulls SET bytes_done = $2, bytes_total = $3, layers_done = $4, layers_total = $5
         WHERE id = $1 AND state = 'running'`,
        [id, p.bytesDone, p.bytesTotal, p.layersDone, p.layersTotal],
      );
      return rowCount === 1;
    },

    /** Ends a pull in flight as failed with `error`; null when it had already ended. */
    async cancel(id: string, error: PullError): Promise<PullRow | null> {
      const { rows } = await pool.query<DbRow>(
        `UPDATE pulls SET state = 'failed', error = $2, finished_at = now()
         WHERE id = $1 AND state IN ('queued', 'running') RETURNING *`,
        [id, JSON.stringify(error)],
      );
      return rows[0] ? toRow(rows[0]) : null;
    },

    /** Deletes the records of pulls that ended before `before`; returns how many went. */
    async deleteEndedBefore(before: Date): Promise<number> {
      const { rowCount } = await pool.query(`DELETE FROM pulls WHERE state IN ('succeeded', 'failed') AND finished_at < $1`, [before]);
      return rowCount ?? 0;
    },

    async markFailed(id: string, error: PullError): Promise<void> {
      await pool.query(
        // Only a pull in flight: a canceled (or otherwise ended) pull keeps the outcome it was given.
        `UPDATE pulls SET state = 'failed', error = $2, finished_at = now() WHERE id = $1 AND state IN ('queued', 'running')`,
        [id, JSON.stringify(error)],
      );
    },
  };
}

/** The pulls repository's interface. */
export type PullsRepository = ReturnType<typeof createPullsRepository>;
