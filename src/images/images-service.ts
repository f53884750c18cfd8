/**
 * The rules of images, with Docker's semantics: how a reference finds an image, what deleting a name
 * or an image removes, how a pulled image is recorded. Blobs no image references any more are removed
 * from the store; deletes and pull commits serialize on one advisory lock so neither sees the other
 * half-done.
 */
import type pg from 'pg';
import { withTransaction, type Queryable } from '../db/pool.js';
import { BadRequestError, ConflictError, NotFoundError } from '../errors.js';
import { formatName, hasExplicitDomain, parseReference, type ImageReference } from '../registry/reference.js';
import type { ContentStore } from '../store/content-store.js';
import { BlobVanishedError } from '../store/errors.js';
import { decodeCursor, encodeCursor } from '../http/cursor.js';
import { configSummary } from './config-summary.js';
import { lockStoreGc, withStoreGcLock } from './blob-gc.js';
import {
  createImagesRepository,
  type ConfigSummary,
  type ImageRow,
  type ImagesRepository,
  type LayerRow,
  type ListFilter,
  type RepoDigestRow,
} from './images-repository.js';

export type { ConfigSummary, LayerRow, RepoDigestRow } from './images-repository.js';

/** An image as the API shows it. Dates are ISO 8601 strings. */
export interface ImageRecord {
  id: string;
  /** Fully qualified repo:tag names. */
  names: string[];
  /** repository@sha256:… references. */
  digests: string[];
  /** Config plus compressed layers, as stored. */
  size: number;
  os: string;
  architecture: string;
  variant?: string;
  created?: string;
  layers: LayerRow[];
  config: ConfigSummary;
  manifestDigest: string;
  manifestMediaType: string;
  pulledAt: string;
}

/** What a reference resolved to: the image, and whether it was named by ID, by name or by digest. */
export interface ImageMatch {
  id: string;
  by: 'id' | 'name' | 'digest';
  /** The full repo:tag, when `by` is 'name'. */
  name?: string;
}

/** A pulled image to record; every blob it lists must already be in the store. */
export interface PulledImage {
  image: {
    id: string;
    size: number;
    os: string;
    architecture: string;
    variant?: string;
    /** The config's `created`, ISO 8601. */
    created?: string;
    /** The image config JSON (or its summary): kept as configSummary() makes it. */
    config: unknown;
    configMediaType: string;
    manifestDigest: string;
    manifestMediaType: string;
  };
  layers: LayerRow[];
  /** Full repo:tag to point at this image. */
  name?: string;
  repoDigests: RepoDigestRow[];
  /** Runs last inside the recording transaction; throwing rolls the whole image back. */
  beforeCommit?: (client: Queryable) => Promise<void>;
}

/** Options of list(). */
export interface ListImagesOptions {
  /** 1..1000, default 100. */
  limit?: number;
  /** nextCursor of the previous page. */
  cursor?: string;
  /** A name (repo:tag), a repository (no tag: any tag of it) or name@digest, normalized like a pull. */
  name?: string;
}

/** What the images service needs. */
export interface ImagesServiceDeps {
  /** Reads outside transactions. */
  repository: ImagesRepository;
  /** Writes: each in its own transaction under the store GC lock. */
  pool: pg.Pool;
  store: Pick<ContentStore, 'has' | 'delete'>;
  /**
   * The fully qualified names a short name may mean, in search order (registries.conf aliases, then
   * unqualified-search-registries); without it a short name means docker.io, as in Docker.
   */
  shortNameCandidates?: (name: string) => ImageReference[];
}

const ID_OR_PREFIX = /^(sha256:)?([a-f0-9]{12,64})$/;
const IMAGE_ID = /^sha256:[a-f0-9]{64}$/;

/** A list filter from a parsed name: repo:tag → that name, repo → the repository, repo@digest → that digest. */
function nameFilter(ref: ImageReference): ListFilter {
  const repository = formatName(ref);
  if (ref.digest !== undefined) return { repoDigest: { repository, digest: ref.digest } };
  if (ref.tag !== undefined) return { name: `${repository}:${ref.tag}` };
  return { repository };
}

function parseCreated(created: string | undefined): Date | null {
  if (created === undefined) return null;
  const date = new Date(created);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Builds the images service. */
export function createImagesService({ repository, pool, store, shortNameCandidates }: ImagesServiceDeps) {
  /**
   * The fully qualified names `ref` may stand for: itself when it names a registry, else its short-name
   * candidates in pull order. With `defaultTag: false` a name given without tag stays without one.
   */
  function candidatesOf(ref: string, options: { defaultTag?: boolean } = {}): ImageReference[] {
    const candidates = shortNameCandidates && !hasExplicitDomain(ref) ? shortNameCandidates(ref) : [parseReference(ref, options)];
    const given = parseReference(ref, { defaultTag: false });
    if (options.defaultTag !== false || given.tag !== undefined || given.digest !== undefined) return candidates;
    return candidates.map(({ domain, path }) => ({ domain, path }));
  }

  /** Turns rows into records, loading names, digests and layers of the whole page in three queries. */
  async function records(repo: ImagesRepository, rows: ImageRow[]): Promise<ImageRecord[]> {
    const ids = rows.map((r) => r.id);
    if (ids.length === 0) return [];
    // One after another: `repo` may be bound to a single transaction client, which runs one query at a time.
    const names = await repo.namesOf(ids);
    const digests = await repo.digestsOf(ids);
    const layers = await repo.layersOf(ids);
    return rows.map((row) => ({
      id: row.id,
      names: names.get(row.id) ?? [],
      digests: (digests.get(row.id) ?? []).map((d) => `${d.repository}@${d.digest}`),
      size: row.size,
      os: row.os,
      architecture: row.architecture,
      ...(row.variant ? { variant: row.variant } : {}),
      ...(row.created ? { created: row.created.toISOString() } : {}),
      layers: layers.get(row.id) ?? [],
      config: row.config,
      manifestDigest: row.manifestDigest,
      manifestMediaType: row.manifestMediaType,
      pulledAt: row.pulledAt.toISOString(),
    }));
  }

  /**
   * Finds the image a reference means. Hex of 12-64 digits (with or without `sha256:`) is an image ID
   * or a unique prefix of one first, as Docker reads it; anything else, or hex that matches no ID, is
   * a name normalized like a pull (`alpine` → docker.io/library/alpine:latest, or each name of the
   * registries.conf search order until one is held) or name@digest.
   */
  async function resolve(ref: string): Promise<ImageMatch> {
    const id = ID_OR_PREFIX.exec(ref);
    if (id) {
      const hex = id[2]!;
      if (hex.length === 64) {
        const row = await repository.findById(`sha256:${hex}`);
        if (row) return { id: row.id, by: 'id' };
        throw new NotFoundError('IMAGE_NOT_FOUND', `No image with ID sha256:${hex}`);
      }
      const rows = await repository.findByIdPrefix(hex);
      if (rows.length > 1) {
        const candidates = rows.map((r) => r.id);
        throw new ConflictError(
          'AMBIGUOUS_IMAGE_ID',
          `Image ID prefix ${hex} matches more than one image (${candidates.join(', ')}, …); give more digits`,
          { candidates },
        );
      }
      if (rows[0]) return { id: rows[0].id, by: 'id' };
      if (id[1]) throw new NotFoundError('IMAGE_NOT_FOUND', `No image whose ID starts with sha256:${hex}`);
    }
    // A short name is looked up under each name a pull of it may have been recorded as, in the pull's order.
    const candidates = candidatesOf(ref);
    const tried: string[] = [];
    for (const parsed of candidates) {
      const repo = formatName(parsed);
      if (parsed.digest !== undefined) {
        const row = await repository.findByRepoDigest(repo, parsed.digest);
        if (row) return { id: row.id, by: 'digest' };
        tried.push(`${repo}@${parsed.digest}`);
        continue;
      }
      const name = `${repo}:${parsed.tag ?? 'latest'}`;
      const row = await repository.findByName(name);
      if (row) return { id: row.id, by: 'name', name };
      tried.push(name);
    }
    if (tried.length > 1) throw new NotFoundError('IMAGE_NOT_FOUND', `No image named "${ref}" (looked for ${tried.join(', ')})`);
    const only = tried[0]!;
    if (only.includes('@')) throw new NotFoundError('IMAGE_NOT_FOUND', `No image pulled as ${only}`);
    throw new NotFoundError('IMAGE_NOT_FOUND', `No image named ${only}${only === ref ? '' : ` (from "${ref}")`}`);
  }

  /** Inspects an image by any reference resolve() accepts. */
  async function get(ref: string): Promise<ImageRecord> {
    const { id } = await resolve(ref);
    const row = await repository.findById(id);
    if (!row) throw new NotFoundError('IMAGE_NOT_FOUND', `Image ${id} was just deleted`);
    return (await records(repository, [row]))[0]!;
  }

  /** A page of images, most recently pulled first, optionally only those of one name or repository. */
  async function list(options: ListImagesOptions = {}): Promise<{ images: ImageRecord[]; nextCursor?: string }> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new BadRequestError('INVALID_LIMIT', `limit must be a whole number from 1 to 1000, got ${limit}`);
    }
    const position = options.cursor === undefined ? undefined : decodeCursor(options.cursor, (id) => IMAGE_ID.test(id));
    const after = position && { pulledAt: position.at, id: position.id };
    // A short name lists what any of its candidates names (aliases, then the search registries), as `podman images` does.
    const filter = options.name === undefined ? undefined : candidatesOf(options.name, { defaultTag: false }).map(nameFilter);
    // One row more than asked tells whether another page follows.
    const rows = await repository.list({ limit: limit + 1, after, filter });
    const page = rows.slice(0, limit);
    const images = await records(repository, page);
    const last = page.at(-1);
    return rows.length > limit && last ? { images, nextCursor: encodeCursor({ at: last.pulledAt, id: last.id }) } : { images };
  }

  /**
   * Removes a name, or an image. By repo:tag: that name goes, and the image with it once no name is
   * left (its repo digests do not keep it, as in Docker). By ID or name@digest: the image and all its
   * names. Blobs that no remaining image references are then removed from the store.
   */
  async function remove(ref: string): Promise<{ untagged: string[]; deleted: string[] }> {
    const target = await resolve(ref);
    return withStoreGcLock(pool, async (client) => {
      const { result, garbage } = await withTransaction(client, async () => {
        const repo = createImagesRepository(client);
        if (target.by === 'name' && target.name !== undefined) {
          const imageId = await repo.removeName(target.name);
          if (imageId === undefined) throw new NotFoundError('IMAGE_NOT_FOUND', `No image named ${target.name}`);
          if ((await repo.countNamesOf(imageId)) > 0) return { result: { untagged: [target.name], deleted: [] }, garbage: [] };
          return deleteImage(repo, imageId, [target.name]);
        }
        return deleteImage(repo, target.id, []);
      });
      for (const digest of garbage) await store.delete(digest);
      return result;
    });
  }

  async function deleteImage(repo: ImagesRepository, id: string, untagged: string[]) {
    const candidates = await repo.blobsReferencedBy([id]);
    const gone = await repo.deleteImage(id);
    if (!gone) throw new NotFoundError('IMAGE_NOT_FOUND', `No image with ID ${id}`);
    const garbage = await repo.unreferencedBlobs(candidates);
    const refs = [...gone.names, ...gone.digests.map((d) => `${d.repository}@${d.digest}`)];
    return { result: { untagged: [...untagged, ...refs], deleted: [id] }, garbage };
  }

  /**
   * Records a pulled image in one transaction under the store GC lock: checks that its config and
   * layers are still stored (BlobVanishedError, temporary, when a concurrent delete removed one), keeps
   * an existing row (only pulled_at moves), points `name` at it and adds its repo digests. The image
   * the name pointed at before keeps its other names and digests, dangling if none is left, as in Docker.
   */
  async function commitPulledImage(input: PulledImage): Promise<{ image: ImageRecord; movedFrom?: string }> {
    const { image } = input;
    return withTransaction(pool, async (client) => {
      await lockStoreGc(client);
      const needed = [image.id, image.manifestDigest, ...input.layers.map((l) => l.digest)];
      const present = await Promise.all(needed.map((d) => store.has(d)));
      const missing = needed.find((_, i) => !present[i]);
      if (missing !== undefined) throw new BlobVanishedError(missing);

      const repo = createImagesRepository(client);
      const saved = await repo.upsertImage({
        id: image.id,
        size: image.size,
        os: image.os,
        architecture: image.architecture,
        variant: image.variant || null,
        created: parseCreated(image.created),
        config: configSummary(image.config),
        configMediaType: image.configMediaType,
        manifestDigest: image.manifestDigest,
        manifestMediaType: image.manifestMediaType,
      });
      await repo.insertLayers(saved.id, input.layers);
      const previous = input.name === undefined ? undefined : await repo.setName(input.name, saved.id);
      for (const d of input.repoDigests) await repo.addRepoDigest(saved.id, d.repository, d.digest);
      // The caller's last word inside the same transaction (the pull marks itself succeeded): if it
      // throws, nothing of the image is recorded.
      await input.beforeCommit?.(client);
      const record = (await records(repo, [saved]))[0]!;
      return previous !== undefined && previous !== saved.id ? { image: record, movedFrom: previous } : { image: record };
    });
  }

  return { resolve, get, list, remove, commitPulledImage };
}

/** The images service's functions. */
export type ImagesService = ReturnType<typeof createImagesService>;
