/**
 * Accepting, finding and waiting for pulls. Two requests for the same normalized reference and
 * platform while one is in flight share one pull (a partial unique index in Postgres decides).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, NotFoundError } from '../errors.js';
import { decodeCursor, encodeCursor, type KeysetPosition } from '../http/cursor.js';
import { parseCriAuth } from '../registry/credentials.js';
import { formatPlatform, normalizePlatform, parsePlatform } from '../registry/platform.js';
import { formatReference, parseReference } from '../registry/reference.js';
import type { SecretBox } from './job-secrets.js';
import type { EnqueuePull } from './pull-queue.js';
import type { PullRow, PullsRepository, PullState } from './pulls-repository.js';

/** A pull as the API shows it. */
export interface PullView {
  id: string;
  image: string;
  reference: string;
  platform: string;
  state: PullState;
  progress: { bytesDone: number; bytesTotal: number; layersDone: number; layersTotal: number };
  imageId?: string;
  source?: string;
  error?: { code: string; message: string; attempts?: { source: string; error: { code: string; message: string } }[] };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** A pull request's body, before validation of its parts. */
export interface PullRequest {
  image: string;
  platform?: string;
  auth?: unknown;
}

/** What the pulls service needs. */
export interface PullsServiceDeps {
  repository: Pick<PullsRepository, 'insertUnlessInFlight' | 'findInFlight' | 'findById' | 'list' | 'delete' | 'markFailed' | 'cancel'>;
  enqueue: EnqueuePull;
  /** Whether the queue still holds the job of a pull (false once Redis lost it). */
  jobExists?: (pullId: string) => Promise<boolean>;
  /** Takes a waiting job off the queue (a running one is stopped by its worker instead). */
  removeJob?: (pullId: string) => Promise<void>;
  secrets: SecretBox;
  defaultPlatform: string;
  /** Normalizes what the user asked for into the reference a pull is keyed by. */
  normalizeReference?: (image: string) => string;
  pollIntervalMs?: number;
}

const LOST_JOB_GRACE_MS = 30_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The API view of a pull row. */
export function toPullView(row: PullRow): PullView {
  const view: PullView = {
    id: row.id,
    image: row.image,
    reference: row.reference,
    platform: row.platform,
    state: row.state,
    progress: { bytesDone: row.bytesDone, bytesTotal: row.bytesTotal, layersDone: row.layersDone, layersTotal: row.layersTotal },
    createdAt: row.createdAt.toISOString(),
  };
  if (row.imageId) view.imageId = row.imageId;
  if (row.source) view.source = row.source;
  if (row.error) view.error = row.error;
  if (row.startedAt) view.startedAt = row.startedAt.toISOString();
  if (row.finishedAt) view.finishedAt = row.finishedAt.toISOString();
  return view;
}

const ended = (state: PullState): boolean => state === 'succeeded' || state === 'failed';

const toBefore = (p: KeysetPosition) => ({ createdAt: p.at.toISOString(), id: p.id });

/** Builds the pulls service. */
export function createPullsService(deps: PullsServiceDeps) {
  const normalize = deps.normalizeReference ?? ((image: string) => formatReference(parseReference(image)));
  const pollMs = deps.pollIntervalMs ?? 250;

  /**
   * A pull in flight whose job Redis no longer holds would hold its reference forever: every later
   * request would join it. Young pulls are left alone: their job may be being queued right now.
   */
  async function jobLost(pull: PullRow): Promise<boolean> {
    if (!deps.jobExists || Date.now() - pull.createdAt.getTime() < LOST_JOB_GRACE_MS) return false;
    return !(await deps.jobExists(pull.id));
  }

  async function find(id: string): Promise<PullRow> {
    const row = UUID.test(id) ? await deps.repository.findById(id) : null;
    if (!row) throw new NotFoundError('PULL_NOT_FOUND', `no pull with id ${id}`);
    return row;
  }

  async function waitFor(row: PullRow, seconds: number): Promise<PullRow> {
    const deadline = Date.now() + seconds * 1000;
    let current = row;
    // Short pulls (blobs already held) end within tens of milliseconds: look early, then back off.
    for (let delay = 20; !ended(current.state) && Date.now() < deadline; delay = Math.min(delay * 2, pollMs)) {
      await sleep(Math.min(delay, deadline - Date.now()));
      current = (await deps.repository.findById(current.id)) ?? current;
    }
    return current;
  }

  return {
    /** Starts a pull, or joins the one in flight for the same reference and platform. */
    async create(request: PullRequest): Promise<{ pull: PullRow; joined: boolean }> {
      const reference = normalize(request.image);
      const platform = formatPlatform(normalizePlatform(parsePlatform(request.platform ?? deps.defaultPlatform)));
      const credentials = request.auth === undefined ? undefined : parseCriAuth(request.auth);
      const dedupeKey = `${reference}|${platform}`;
      for (let attempt = 0; attempt < 5; attempt++) {
        const created = await deps.repository.insertUnlessInFlight({ image: request.image, reference, platform, dedupeKey });
        if (created) {
          try {
            await deps.enqueue({
              pullId: created.id,
              ...(credentials ? { sealedCredentials: deps.secrets.seal(credentials) } : {}),
            });
          } catch (err) {
            // Nothing half-written: a pull that no worker will ever see must not stay "queued".
            await deps.repository.delete(created.id).catch(() => undefined);
            throw err;
          }
          return { pull: created, joined: false };
        }
        const inFlight = await deps.repository.findInFlight(dedupeKey);
        if (inFlight && (await jobLost(inFlight))) {
          await deps.repository.markFailed(inFlight.id, {
            code: 'JOB_LOST',
            message: 'the pull job vanished from Redis (flushed, or restarted without persistence) before it ended; a new pull was started',
          });
          continue;
        }
        if (inFlight) return { pull: inFlight, joined: true };
        // The pull in flight ended between our insert and our look-up; try again.
      }
      throw new Error('could not start or join a pull after 5 tries');
    },

    /** A pull by ID; 404 when unknown. */
    get: find,

    /**
     * Cancels a pull in flight: it ends as failed with code CANCELED. A queued job leaves the queue; a
     * running one is stopped by its worker at its next progress write. 409 when the pull already ended.
     */
    async cancel(id: string): Promise<PullRow> {
      const pull = await find(id);
      const canceled = ended(pull.state)
        ? null
        : await deps.repository.cancel(pull.id, { code: 'CANCELED', message: `canceled by DELETE /v1/pulls/${pull.id}` });
      if (!canceled) {
        const now = (await deps.repository.findById(pull.id)) ?? pull;
        throw new ConflictError('PULL_ENDED', `pull ${pull.id} already ${now.state}; there is nothing to cancel`);
      }
      await deps.removeJob?.(pull.id).catch(() => undefined);
      return canceled;
    },

    /** Holds until the pull ends or `seconds` pass, then answers its current state. */
    async wait(row: PullRow, seconds: number): Promise<PullRow> {
      return seconds > 0 ? waitFor(row, seconds) : row;
    },

    /** Pulls, newest first. */
    async list(opts: { limit: number; state?: PullState; cursor?: string }): Promise<{ pulls: PullRow[]; nextCursor?: string }> {
      const rows = await deps.repository.list({
        limit: opts.limit + 1,
        ...(opts.state ? { state: opts.state } : {}),
        ...(opts.cursor ? { before: toBefore(decodeCursor(opts.cursor, (id) => UUID.test(id))) } : {}),
      });
      const page = rows.slice(0, opts.limit);
      const last = page.at(-1);
      return rows.length > opts.limit && last ? { pulls: page, nextCursor: encodeCursor({ at: last.createdAt, id: last.id }) } : { pulls: page };
    },
  };
}

/** The pulls service's interface. */
export type PullsService = ReturnType<typeof createPullsService>;
