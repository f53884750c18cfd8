/** SQL behind the metrics: counts read at scrape time, so they cover every worker process. */
import type { Queryable } from '../db/pool.js';

/** Numbers the metrics report. */
export interface MetricsSnapshot {
  pullsByState: { state: string; count: number }[];
  failuresByCode: { code: string; count: number }[];
  images: number;
  danglingImages: number;
  storedBytes: number;
}

/** Builds the metrics repository. */
export function createMetricsRepository(db: Queryable) {
  return {
    /** Everything /metrics shows, in one round trip. */
    async snapshot(): Promise<MetricsSnapshot> {
      const { rows } = await db.query<{ pulls: MetricsSnapshot['pullsByState'] | null; failures: MetricsSnapshot['failuresByCode'] | null; images: string; dangling: string; bytes: string }>(
        `SELECT
           (SELECT json_agg(json_build_object('state', state, 'count', n)) FROM
              (SELECT state, count(*) AS n FROM pulls GROUP BY state) s) AS pulls,
           (SELECT json_agg(json_build_object('code', code, 'count', n)) FROM
              (SELECT error->>'code' AS code, count(*) AS n FROM pulls WHERE state = 'failed' GROUP BY 1) f) AS failures,
           (SELECT count(*) FROM images) AS images,
           (SELECT count(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id)) AS dangling,
           (SELECT COALESCE(sum(size), 0) FROM (
              SELECT DISTINCT digest, size FROM layers
              UNION SELECT i.id, i.size - COALESCE((SELECT sum(l.size) FROM layers l WHERE l.image_id = i.id), 0) FROM images i
            ) blobs) AS bytes`,
      );
      const row = rows[0]!;
      return {
        pullsByState: row.pulls ?? [],
        failuresByCode: (row.failures ?? []).map((f) => ({ code: f.code ?? 'UNKNOWN', count: f.count })),
        images: Number(row.images),
        danglingImages: Number(row.dangling),
        storedBytes: Number(row.bytes),
      };
    },
  };
}

/** The metrics repository's interface. */
export type MetricsRepository = ReturnType<typeof createMetricsRepository>;
