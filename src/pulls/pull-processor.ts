/**
 * Runs one pull job: resolve the manifest from the first source that serves it, store config and
 * layers (verified, concurrently, skipping blobs already held), then commit the image record in one
 * transaction. Temporary failures are retried by BullMQ; permanent ones end the pull at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { RegistryError } from '../registry/errors.js';
import { formatName, formatReference } from '../registry/reference.js';
import { parsePlatform } from '../registry/platform.js';
import type { Credentials } from '../registry/credentials.js';
import type { Descriptor, RegistryClient, ResolvedImage } from '../registry/index.js';
import { errorSummary, isTemporary, PullFailedError, resolveFromSources } from './resolve-sources.js';
import type { ContentStore } from '../store/content-store.js';
import type { ImagesService } from '../images/images-service.js';
import { mapLimit } from '../util/map-limit.js';
import type { SecretBox } from './job-secrets.js';
import type { PlannedSource, PlanPull } from './pull-plan.js';
import { markPullSucceeded, type PullError, type PullProgress, type PullRow, type PullsRepository } from './pulls-repository.js';
import type { PullJobData } from './pull-queue.js';

/** How often one layer's download is resumed after breaking off, within one attempt of the pull. */
const MAX_RESUMES = 3;

/** The pull was canceled through the API while it ran. */
class PullCanceled extends Error {}

/** What the processor needs, and nothing more. */
export interface PullProcessorDeps {
  pulls: Pick<PullsRepository, 'findById' | 'markRunning' | 'updateProgress' | 'markFailed'>;
  images: Pick<ImagesService, 'commitPulledImage'>;
  store: Pick<ContentStore, 'reuse' | 'createWriter' | 'writeBytes'>;
  registry: Pick<RegistryClient, 'resolveImage' | 'getBlob'>;
  planPull: PlanPull;
  secrets: SecretBox;
  layerConcurrency: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** How often progress is written to Postgres, in ms. */
  progressIntervalMs?: number;
}

/** Builds the BullMQ processor function for pull jobs. */
export function createPullProcessor(deps: PullProcessorDeps) {
  const interval = deps.progressIntervalMs ?? 300;

  /**
   * Downloads one layer into the store. A download that breaks off mid-body is resumed with Range
   * from the last byte written (a few times) rather than started over, as containerd's fetcher does.
   */
  async function downloadLayer(source: PlannedSource, layer: Descriptor, signal: AbortSignal, onProgress: (delta: number) => void): Promise<void> {
    const writer = await deps.store.createWriter(layer.digest, layer.size);
    try {
      let restarted = false;
      for (let resumes = 0; ; resumes++) {
        const from = writer.written;
        try {
          const blob = await deps.registry.getBlob(source.target, layer, { signal, offset: from });
          if (blob.offset !== writer.written) {
            // The registry ignored Range and sends the whole blob again.
            onProgress(-writer.written);
            await writer.restart();
          }
          await writer.append(blob.body, onProgress);
          break;
        } catch (err) {
          // A registry that mishandles Range (416, a wrong Content-Range) gets one fresh start from 0.
          if (err instanceof RegistryError && !err.temporary && from > 0 && !restarted && !signal.aborted) {
            restarted = true;
            onProgress(-writer.written);
            await writer.restart();
            deps.log.warn({ digest: layer.digest, err: errorSummary(err) }, 'resuming a layer download was refused; starting it over');
            continue;
          }
          // Only a network fault is resumed; bad content, a full disk or an abort end the download.
          const resumable = err instanceof RegistryError && err.temporary && !signal.aborted && resumes < MAX_RESUMES;
          if (!resumable) throw err;
          deps.log.warn({ digest: layer.digest, bytesWritten: writer.written, err: errorSummary(err) }, 'layer download broke off; resuming');
          await sleep(250 * (resumes + 1));
        }
      }
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  async function storeBlobs(
    pull: PullRow,
    source: PlannedSource,
    resolved: ResolvedImage,
    progress: PullProgress,
  ): Promise<void> {
    // A pull canceled through the API is no longer "running": the progress write says so.
    const canceled = new AbortController();
    const flush = async (): Promise<void> => {
      if (!(await deps.pulls.updateProgress(pull.id, { ...progress }))) canceled.abort();
    };
    // Written on every tick, moved or not: a download stalled before its first byte must still learn
    // that it was canceled.
    let ticking = false;
    const timer = setInterval(() => {
      // One write at a time: with Postgres slow, ticks must not queue up in the pool.
      if (ticking) return;
      ticking = true;
      void flush()
        .catch(() => undefined)
        .finally(() => (ticking = false));
    }, interval);
    try {
      await flush();
      await deps.store.writeBytes(resolved.manifestDigest, resolved.manifestBytes);
      await deps.store.writeBytes(resolved.configDescriptor.digest, resolved.configBytes);
      try {
        await mapLimit(resolved.layers, deps.layerConcurrency, async (layer: Descriptor, signal) => {
          const onProgress = (delta: number): void => {
            progress.bytesDone += delta;
          };
          if (await deps.store.reuse(layer.digest)) onProgress(layer.size);
          else await downloadLayer(source, layer, AbortSignal.any([signal, canceled.signal]), onProgress);
          progress.layersDone += 1;
        });
      } catch (err) {
        throw canceled.signal.aborted ? new PullCanceled() : err;
      }
      progress.bytesDone = progress.bytesTotal;
      await flush();
      if (canceled.signal.aborted) throw new PullCanceled();
    } finally {
      clearInterval(timer);
    }
  }

  async function run(pull: PullRow, credentials: Credentials | undefined): Promise<void> {
    const platform = parsePlatform(pull.platform);
    const candidates = await deps.planPull(pull.image, credentials);
    const { candidate, source, resolved } = await resolveFromSources(deps.registry, candidates, platform);
    const layersSize = resolved.layers.reduce((sum, l) => sum + l.size, 0);
    const progress: PullProgress = {
      bytesDone: 0,
      bytesTotal: layersSize,
      layersDone: 0,
      layersTotal: resolved.layers.length,
    };
    await storeBlobs(pull, source, resolved, progress);

    const name = candidate.name;
    const repository = formatName(name);
    const repoDigests = [{ repository, digest: resolved.topDigest }];
    if (resolved.manifestDigest !== resolved.topDigest) repoDigests.push({ repository, digest: resolved.manifestDigest });
    const { image } = await deps.images.commitPulledImage({
      image: {
        id: resolved.configDescriptor.digest,
        size: resolved.configDescriptor.size + layersSize,
        os: resolved.platform.os,
        architecture: resolved.platform.architecture,
        variant: resolved.platform.variant,
        created: typeof resolved.config.created === 'string' ? resolved.config.created : undefined,
        config: resolved.config,
        configMediaType: resolved.configDescriptor.mediaType,
        manifestDigest: resolved.manifestDigest,
        manifestMediaType: resolved.manifestMediaType,
      },
      layers: resolved.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      name: name.tag ? formatReference({ domain: name.domain, path: name.path, tag: name.tag }) : undefined,
      repoDigests,
      // In the image's own transaction: a pull canceled while it waited to be recorded records nothing.
      beforeCommit: async (client) => {
        const success = { imageId: resolved.configDescriptor.digest, source: source.display, reference: formatReference(name), progress };
        if (!(await markPullSucceeded(client, pull.id, success))) throw new PullCanceled();
      },
    });
    deps.log.info({ pullId: pull.id, imageId: image.id, source: source.display }, 'pull succeeded');
  }

  return async function processPull(job: Job<PullJobData>): Promise<void> {
    const pull = await deps.pulls.findById(job.data.pullId);
    if (!pull || !(await deps.pulls.markRunning(pull.id))) return;
    let credentials: Credentials | undefined;
    try {
      credentials = job.data.sealedCredentials ? deps.secrets.open<Credentials>(job.data.sealedCredentials) : undefined;
    } catch {
      // Another BERTH_SECRET than the API's (or a damaged payload): no retry can open them.
      const failure: PullError = {
        code: 'CREDENTIALS_UNREADABLE',
        message: 'the credentials of this pull cannot be decrypted: the API and the workers must share BERTH_SECRET',
      };
      await deps.pulls.markFailed(pull.id, failure);
      deps.log.warn({ pullId: pull.id, err: failure }, 'pull failed');
      throw new UnrecoverableError(failure.message);
    }
    try {
      await run(pull, credentials);
    } catch (err) {
      if (err instanceof PullCanceled) {
        // The API already recorded the cancellation; the job simply ends.
        deps.log.info({ pullId: pull.id }, 'pull canceled');
        return;
      }
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (isTemporary(err) && !lastAttempt) {
        deps.log.warn({ pullId: pull.id, attempt: job.attemptsMade + 1, err: errorSummary(err) }, 'pull failed, will retry');
        throw err;
      }
      const failure: PullError = errorSummary(err);
      if (err instanceof PullFailedError) failure.attempts = err.attempts;
      await deps.pulls.markFailed(pull.id, failure);
      deps.log.warn({ pullId: pull.id, err: failure }, 'pull failed');
      throw new UnrecoverableError(failure.message);
    }
  };
}
