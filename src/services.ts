/**
 * The composition root: builds berth's services from the configuration and the infrastructure
 * (a Postgres pool, Redis connections). Processes (main, server, worker) call these and stay thin.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { createPool } from './db/pool.js';
import { migrate } from './db/migrate.js';
import { sweepOrphanBlobs } from './images/blob-gc.js';
import { createMetricsRegistry } from './metrics/metrics-registry.js';
import { createMetricsRepository } from './metrics/metrics-repository.js';
import { createImagesRepository } from './images/images-repository.js';
import { createImagesService } from './images/images-service.js';
import { RegistryClient } from './registry/client.js';
import { ContentStore } from './store/content-store.js';
import { createSecretBox } from './pulls/job-secrets.js';
import { createPullProcessor } from './pulls/pull-processor.js';
import { createPullQueue, pullEnqueuer, PULL_QUEUE_NAME, type PullJobData } from './pulls/pull-queue.js';
import { createPullsRepository } from './pulls/pulls-repository.js';
import { createPullsService } from './pulls/pulls-service.js';
import { createPullPlanner } from './registries/pull-planner.js';
import { createRegistriesService } from './registries/registries-service.js';
import { loadRegistrySettings, type RegistrySettings } from './registries/registry-settings.js';
import { shortNameCandidates } from './registry/sources.js';
import { loadSecret } from './runtime/secret-key.js';


/** Connects to Postgres (search_path = the configured schema) and applies pending migrations. */
export async function openDatabase(config: Config, url: string): Promise<pg.Pool> {
  const pool = await createPool({ connectionString: url, schema: config.databaseSchema });
  await migrate(pool);
  return pool;
}

/**
 * A Redis connection for BullMQ. Workers block on Redis and must retry forever (BullMQ requires
 * maxRetriesPerRequest: null); the API's connection fails fast so that a request gets a 503.
 */
export function openRedis(url: string, role: 'api' | 'worker', log?: Pick<Logger, 'warn'>): Redis {
  const redis =
    role === 'worker'
      ? new Redis(url, { maxRetriesPerRequest: null })
      : new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 });
  // ioredis reconnects by itself; without a listener every failed attempt would be an unhandled error.
  let reported = false;
  redis.on('error', (err: Error) => {
    if (!reported) log?.warn({ err: err.message }, `Redis connection (${role}) failed; reconnecting`);
    reported = true;
  });
  redis.on('ready', () => {
    reported = false;
  });
  return redis;
}

/**
 * The pieces both the API and the worker use. `registrySettings` may be loaded earlier by the process
 * (so that a bad registries.conf stops it before anything starts); otherwise they are loaded here.
 */
export async function createCore(config: Config, pool: pg.Pool, registrySettings?: RegistrySettings) {
  const settings = registrySettings ?? (await loadRegistrySettings(config));
  const planner = createPullPlanner(settings);
  const store = new ContentStore(path.join(config.dataDir, 'content'));
  await store.init();
  const images = createImagesService({
    repository: createImagesRepository(pool),
    store,
    pool,
    shortNameCandidates: (name) => shortNameCandidates(settings.conf, name).candidates,
  });
  const pullsRepository = createPullsRepository(pool);
  const secrets = createSecretBox(await loadSecret(config.secret, config.dataDir));
  return { pool, store, images, pullsRepository, secrets, registrySettings: settings, planner };
}

/** A registry client with the per-registry TLS material of the settings; close it on shutdown. */
export function createRegistryClient(settings: RegistrySettings): RegistryClient {
  // Insecure hosts come with each planned target (`insecure`), so the client's own default is not used for pulls.
  return new RegistryClient({ userAgent: 'berth/0.1', tlsOptionsFor: settings.tlsFor });
}

type Core = Awaited<ReturnType<typeof createCore>>;

/** The HTTP API over the core, with its queue; `close()` on the app closes the queue too. */
export async function createApi(config: Config, core: Core, pool: pg.Pool, redis: Redis, logger: Logger) {
  const queue = createPullQueue(redis, config.queuePrefix);
  const pulls = createPullsService({
    repository: core.pullsRepository,
    enqueue: pullEnqueuer(queue, { attempts: config.pullAttempts }),
    secrets: core.secrets,
    defaultPlatform: config.defaultPlatform,
    normalizeReference: core.planner.normalize,
    jobExists: async (pullId) => (await queue.getJob(pullId)) !== undefined,
    removeJob: async (pullId) => void (await queue.remove(pullId)),
  });
  const registry = createRegistryClient(core.registrySettings);
  const registries = createRegistriesService({
    settings: core.registrySettings,
    plan: core.planner.plan,
    registry,
    defaultPlatform: config.defaultPlatform,
  });
  const app = await buildApp({
    images: core.images,
    pulls,
    registries,
    maxWaitSeconds: config.maxWaitSeconds,
    logger,
    metrics: createMetricsRegistry(createMetricsRepository(pool)),
    checks: [
      { name: 'postgres', check: async () => void (await pool.query('SELECT 1')) },
      { name: 'redis', check: async () => void (await redis.ping()) },
    ],
  });
  app.addHook('onClose', async () => {
    // With Redis gone a graceful close waits for it forever; give up after a few seconds.
    const closed = await Promise.race([queue.close().then(() => true), sleep(3000, undefined, { ref: false }).then(() => false)]);
    if (!closed) await queue.disconnect().catch(() => undefined);
    await registry.close();
  });
  return app;
}

/** A BullMQ worker running pull jobs. */
export function createWorker(config: Config, core: Core, redis: Redis, logger: Logger): Worker<PullJobData> {
  const registry = createRegistryClient(core.registrySettings);
  const processor = createPullProcessor({
    pulls: core.pullsRepository,
    images: core.images,
    store: core.store,
    registry,
    planPull: core.planner.plan,
    secrets: core.secrets,
    layerConcurrency: config.layerConcurrency,
    log: logger,
  });
  const worker = new Worker<PullJobData>(PULL_QUEUE_NAME, processor, {
    connection: redis,
    prefix: config.queuePrefix,
    concurrency: config.pullConcurrency,
  });
  worker.on('error', (err) => logger.error({ err }, 'pull worker error'));
  const sweeps = scheduleMaintenance(core, config.pullRetentionDays, logger);
  worker.on('closed', () => sweeps.stop());
  worker.on('closed', () => registry.close());
  return worker;
}

/**
 * Closes a worker, waiting for its running jobs; when Redis is gone that wait never ends, so after
 * `graceMs` the worker's connection is cut instead (its jobs go back to the queue as stalled).
 */
export async function closeWorker(worker: Worker, redis: Redis, graceMs = 5000): Promise<void> {
  const closed = await Promise.race([worker.close().then(() => true), sleep(graceMs, undefined, { ref: false }).then(() => false)]);
  if (!closed) {
    redis.disconnect();
    await Promise.race([worker.close(true), sleep(1000, undefined, { ref: false })]).catch(() => undefined);
  }
}

const HOUR_MS = 3600_000;

/**
 * Hourly upkeep, first soon after start: sweeps the store for blobs no image references (blobs younger
 * than an hour are left alone: they may belong to a pull still downloading), and deletes the records
 * of pulls that ended more than `retentionDays` ago.
 */
function scheduleMaintenance(core: Pick<Core, 'pool' | 'store' | 'pullsRepository'>, retentionDays: number, logger: Logger): { stop(): void } {
  let running = false;
  const step = async (what: string, work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (err) {
      logger.warn({ err }, `hourly upkeep: ${what} failed; will try again in an hour`);
    }
  };
  // Each step on its own (a failed sweep must not stop retention), and never two runs at once.
  const run = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      await step('sweeping the store for unreferenced blobs', async () => {
        const removed = await sweepOrphanBlobs({ pool: core.pool, store: core.store }, HOUR_MS);
        if (removed.length > 0) logger.info({ count: removed.length }, 'removed blobs no image references from the store');
      });
      await step('deleting old pull records', async () => {
        const pruned = await core.pullsRepository.deleteEndedBefore(new Date(Date.now() - retentionDays * 24 * HOUR_MS));
        if (pruned > 0) logger.info({ count: pruned, retentionDays }, 'deleted the records of old pulls');
      });
    } finally {
      running = false;
    }
  };
  const first = setTimeout(() => void run(), 60_000).unref();
  const hourly = setInterval(() => void run(), HOUR_MS).unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(hourly);
    },
  };
}
