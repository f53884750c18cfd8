/**
 * SQL for images, names, repo digests and layers: rows in, rows out, no rules (those live in
 * images-service.ts). Built over the pool for reads, or over a transaction's client for writes.
 */
import type { Queryable } from '../db/pool.js';

/** The summary of an image config's `config` section that berth keeps and shows. */
export interface ConfigSummary {
  env: string[];
  cmd: string[];
  entrypoint: string[];
  workingDir: string;
  user: string;
  labels: Record<string, string>;
  exposedPorts: string[];
  volumes: string[];
}

/** One row of `images`. */
export interface ImageRow {
  id: string;
  size: number;
  os: string;
  architecture: string;
  variant: string | null;
  created: Date | null;
  config: ConfigSummary;
  configMediaType: string;
  manifestDigest: string;
  manifestMediaType: string;
  pulledAt: Date;
}

/** An image's row as inserted (pulled_at is set by the database). */
export type NewImageRow = Omit<ImageRow, 'pulledAt'>;

/** One layer of an image, in manifest order. */
export interface LayerRow {
  digest: string;
  size: number;
  mediaType: string;
}

/** A repository@digest reference of an image. */
export interface RepoDigestRow {
  repository: string;
  digest: string;
}

/** Position in the list order (pulled_at desc, id desc) after which a page starts. */
export interface ListPosition {
  pulledAt: Date;
  id: string;
}

/** One thing list() can filter by; one field is used per filter. */
export interface ListFilter {
  /** Exactly this full repo:tag name. */
  name?: string;
  /** Any name in this repository (domain/path), or a repo digest of it. */
  repository?: string;
  /** This repository@digest. */
  repoDigest?: RepoDigestRow;
}

/** Options of list(). */
export interface ListOptions {
  limit: number;
  after?: ListPosition;
  /** An image matches when it matches any of these; none means every image. */
  filter?: ListFilter | ListFilter[];
}

interface RawImage {
  id: string;
  size: string;
  os: string;
  architecture: string;
  variant: string | null;
  created: Date | null;
  config: ConfigSummary;
  config_media_type: string;
  manifest_digest: string;
  manifest_media_type: string;
  pulled_at: Date;
}

const IMAGE_COLUMNS = `i.id, i.size, i.os, i.architecture, i.variant, i.created, i.config, i.config_media_type,
  i.manifest_digest, i.manifest_media_type, i.pulled_at`;

function toImage(r: RawImage): ImageRow {
  return {
    id: r.id,
    size: Number(r.size),
    os: r.os,
    architecture: r.architecture,
    variant: r.variant,
    created: r.created,
    config: r.config,
    configMediaType: r.config_media_type,
    manifestDigest: r.manifest_digest,
    manifestMediaType: r.manifest_media_type,
    pulledAt: r.pulled_at,
  };
}

/** Escapes LIKE's wildcards (`_` is common in repository names). */
function likePrefix(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Groups per-image rows by image ID, with an entry (maybe empty) for every ID asked for. */
function group<R extends { image_id: string }, V>(ids: string[], rows: R[], map: (row: R) => V): Map<string, V[]> {
  const out = new Map<string, V[]>(ids.map((id) => [id, []]));
  for (const row of rows) out.get(row.image_id)?.push(map(row));
  return out;
}

/** The SQL condition of one list filter; `param` adds a parameter and returns its placeholder. */
function filterClause(filter: ListFilter, param: (v: unknown) => string): string | undefined {
  if (filter.name !== undefined) {
    return `EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id AND n.name = ${param(filter.name)})`;
  }
  if (filter.repository !== undefined) {
    const repo = param(filter.repository);
    return `(EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id AND n.name LIKE ${param(`${likePrefix(filter.repository)}:%`)})
      OR EXISTS (SELECT 1 FROM repo_digests d WHERE d.image_id = i.id AND d.repository = ${repo}))`;
  }
  if (filter.repoDigest !== undefined) {
    return `EXISTS (SELECT 1 FROM repo_digests d WHERE d.image_id = i.id
      AND d.repository = ${param(filter.repoDigest.repository)} AND d.digest = ${param(filter.repoDigest.digest)})`;
  }
  return undefined;
}

/** Builds the images repository over a pool or a transaction's client. */
export function createImagesRepository(db: Queryable) {
  async function one(sql: string, params: unknown[]): Promise<ImageRow | undefined> {
    const { rows } = await db.query<RawImage>(sql, params);
    return rows[0] ? toImage(rows[0]) : undefined;
  }

  return {
    /** The image with this ID (`sha256:<hex>`). */
    findById(id: string): Promise<ImageRow | undefined> {
      return one(`SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.id = $1`, [id]);
    },

    /** Up to two images whose ID starts with `sha256:<hexPrefix>`: two means the prefix is ambiguous. */
    async findByIdPrefix(hexPrefix: string): Promise<ImageRow[]> {
      const { rows } = await db.query<RawImage>(
        `SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.id LIKE $1 ORDER BY i.id LIMIT 2`,
        [`sha256:${likePrefix(hexPrefix)}%`],
      );
      return rows.map(toImage);
    },

    /** The image a full repo:tag name points at. */
    findByName(name: string): Promise<ImageRow | undefined> {
      return one(`SELECT ${IMAGE_COLUMNS} FROM images i JOIN names n ON n.image_id = i.id WHERE n.name = $1`, [name]);
    },

    /** The most recently pulled image with this repository@digest. */
    findByRepoDigest(repository: string, digest: string): Promise<ImageRow | undefined> {
      return one(
        `SELECT ${IMAGE_COLUMNS} FROM images i JOIN repo_digests d ON d.image_id = i.id
         WHERE d.repository = $1 AND d.digest = $2 ORDER BY i.pulled_at DESC, i.id DESC LIMIT 1`,
        [repository, digest],
      );
    },

    /** A page of images, most recently pulled first (ties by ID, descending), after `after`. */
    async list({ limit, after, filter = [] }: ListOptions): Promise<ImageRow[]> {
      const where: string[] = [];
      const params: unknown[] = [];
      const param = (v: unknown): string => `$${params.push(v)}`;
      if (after) where.push(`(i.pulled_at, i.id) < (${param(after.pulledAt)}::timestamptz, ${param(after.id)})`);
      // Several filters (a short name's candidates) match an image when any of them does.
      const anyOf = (Array.isArray(filter) ? filter : [filter]).map((f) => filterClause(f, param)).filter((c) => c !== undefined);
      if (anyOf.length > 0) where.push(`(${anyOf.join(' OR ')})`);
      const { rows } = await db.query<RawImage>(
        `SELECT ${IMAGE_COLUMNS} FROM images i ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY i.pulled_at DESC, i.id DESC LIMIT ${param(limit)}`,
        params,
      );
      return rows.map(toImage);
    },

    /** Full repo:tag names of each image, sorted; every ID asked for is a key. */
    async namesOf(ids: string[]): Promise<Map<string, string[]>> {
      const { rows } = await db.query<{ image_id: string; name: string }>(
        'SELECT image_id, name FROM names WHERE image_id = ANY($1::text[]) ORDER BY name',
        [ids],
      );
      return group(ids, rows, (r) => r.name);
    },

    /** Repo digests of each image, sorted; every ID asked for is a key. */
    async digestsOf(ids: string[]): Promise<Map<string, RepoDigestRow[]>> {
      const { rows } = await db.query<{ image_id: string; repository: string; digest: string }>(
        'SELECT image_id, repository, digest FROM repo_digests WHERE image_id = ANY($1::text[]) ORDER BY repository, digest',
        [ids],
      );
      return group(ids, rows, (r) => ({ repository: r.repository, digest: r.digest }));
    },

    /** Layers of each image in manifest order; every ID asked for is a key. */
    async layersOf(ids: string[]): Promise<Map<string, LayerRow[]>> {
      const { rows } = await db.query<{ image_id: string; digest: string; size: string; media_type: string }>(
        'SELECT image_id, digest, size, media_type FROM layers WHERE image_id = ANY($1::text[]) ORDER BY image_id, position',
        [ids],
      );
      return group(ids, rows, (r) => ({ digest: r.digest, size: Number(r.size), mediaType: r.media_type }));
    },

    /** Inserts the image, or keeps the existing row and only moves its pulled_at to now. */
    async upsertImage(image: NewImageRow): Promise<ImageRow> {
      const row = await one(
        `INSERT INTO images AS i (id, size, os, architecture, variant, created, config, config_media_type,
           manifest_digest, manifest_media_type, pulled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, date_trunc('milliseconds', clock_timestamp()))
         ON CONFLICT (id) DO UPDATE SET pulled_at = excluded.pulled_at
         RETURNING ${IMAGE_COLUMNS}`,
        [
          image.id,
          image.size,
          image.os,
          image.architecture,
          image.variant,
          image.created,
          JSON.stringify(image.config),
          image.configMediaType,
          image.manifestDigest,
          image.manifestMediaType,
        ],
      );
      return row!;
    },

    /** Records the image's layers unless it already has them. */
    async insertLayers(imageId: string, layers: LayerRow[]): Promise<void> {
      if (layers.length === 0) return;
      await db.query(
        `INSERT INTO layers (image_id, position, digest, size, media_type)
         SELECT $1, l.position - 1, l.digest, l.size, l.media_type
         FROM unnest($2::text[], $3::bigint[], $4::text[]) WITH ORDINALITY AS l(digest, size, media_type, position)
         ON CONFLICT (image_id, position) DO NOTHING`,
        [imageId, layers.map((l) => l.digest), layers.map((l) => l.size), layers.map((l) => l.mediaType)],
      );
    },

    /** Points a full repo:tag name at the image; returns the image it pointed at before, if any. */
    async setName(name: string, imageId: string): Promise<string | undefined> {
      const { rows } = await db.query<{ image_id: string }>('SELECT image_id FROM names WHERE name = $1 FOR UPDATE', [name]);
      await db.query(
        `INSERT INTO names (name, image_id) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id, tagged_at = excluded.tagged_at`,
        [name, imageId],
      );
      return rows[0]?.image_id;
    },

    /** Records a repository@digest reference of the image (no-op when it exists). */
    async addRepoDigest(imageId: string, repository: string, digest: string): Promise<void> {
      await db.query(
        'INSERT INTO repo_digests (image_id, repository, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [imageId, repository, digest],
      );
    },

    /** Removes a name; returns the image it pointed at, or undefined when there was no such name. */
    async removeName(name: string): Promise<string | undefined> {
      const { rows } = await db.query<{ image_id: string }>('DELETE FROM names WHERE name = $1 RETURNING image_id', [name]);
      return rows[0]?.image_id;
    },

    /** How many names point at the image. */
    async countNamesOf(imageId: string): Promise<number> {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM names WHERE image_id = $1', [imageId]);
      return rows[0]?.n ?? 0;
    },

    /**
     * Deletes the image (names, repo digests and layers go with it by cascade); returns the names and
     * repo digests it had, or undefined when there was no such image.
     */
    async deleteImage(id: string): Promise<{ names: string[]; digests: RepoDigestRow[] } | undefined> {
      // The SELECTs read the snapshot from before the DELETE, so they still see the cascaded rows.
      const { rows } = await db.query<{ deleted: number; names: string[]; digests: RepoDigestRow[] }>(
        `WITH gone AS (DELETE FROM images WHERE id = $1 RETURNING id)
         SELECT (SELECT count(*)::int FROM gone) AS deleted,
           ARRAY(SELECT name FROM names WHERE image_id = $1 ORDER BY name) AS names,
           COALESCE((SELECT json_agg(json_build_object('repository', repository, 'digest', digest) ORDER BY repository, digest)
             FROM repo_digests WHERE image_id = $1), '[]'::json) AS digests`,
        [id],
      );
      const row = rows[0];
      return row && row.deleted > 0 ? { names: row.names, digests: row.digests } : undefined;
    },

    /** Every blob digest the images reference: config, manifest, layers and repo digests (an index may be stored). */
    async blobsReferencedBy(ids: string[]): Promise<string[]> {
      const { rows } = await db.query<{ digest: string }>(
        `SELECT id AS digest FROM images WHERE id = ANY($1::text[])
         UNION SELECT manifest_digest FROM images WHERE id = ANY($1::text[])
         UNION SELECT digest FROM layers WHERE image_id = ANY($1::text[])
         UNION SELECT digest FROM repo_digests WHERE image_id = ANY($1::text[])`,
        [ids],
      );
      return rows.map((r) => r.digest).sort();
    },

    /** The candidates that no image references any more. */
    async unreferencedBlobs(candidates: string[]): Promise<string[]> {
      const { rows } = await db.query<{ digest: string }>(
        `SELECT c.digest FROM unnest($1::text[]) AS c(digest)
         WHERE NOT EXISTS (SELECT 1 FROM images WHERE id = c.digest)
           AND NOT EXISTS (SELECT 1 FROM images WHERE manifest_digest = c.digest)
           AND NOT EXISTS (SELECT 1 FROM layers WHERE digest = c.digest)
           AND NOT EXISTS (SELECT 1 FROM repo_digests WHERE digest = c.digest)
         ORDER BY c.digest`,
        [candidates],
      );
      return rows.map((r) => r.digest);
    },
  };
}

/** The images repository's functions. */
export type ImagesRepository = ReturnType<typeof createImagesRepository>;
