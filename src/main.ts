/**
 * `npm start`: API and worker in one process, on embedded defaults — an embedded Postgres under
 * BERTH_DATA_DIR when DATABASE_URL is unset, and the local Redis (started from PATH if need be).
 */
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startEmbeddedPostgres } from './runtime/embedded-postgres.js';
import { runProcess } from './runtime/process.js';
import { ensureRedis } from './runtime/redis.js';
import { loadRegistrySettings } from './registries/registry-settings.js';
import { closeWorker, createApi, createCore, createWorker, openDatabase, openRedis } from './services.js';

runProcess('berth', async (onShutdown) => {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'berth');
  // Registry files first: a bad one stops start-up before any database is started.
  const registrySettings = await loadRegistrySettings(config, log);
  const postgres = config.databaseUrl
    ? { url: config.databaseUrl, stop: async () => undefined }
    : await startEmbeddedPostgres({ dataDir: config.dataDir, log });
  onShutdown(() => postgres.stop());
  const redis = await ensureRedis({ redisUrl: config.redisUrl, dataDir: config.dataDir, log });
  onShutdown(() => redis.stop());

  const pool = await openDatabase(config, postgres.url);
  onShutdown(() => pool.end());
  const core = await createCore(config, pool, registrySettings);

  const workerRedis = openRedis(redis.url, 'worker', log);
  onShutdown(() => workerRedis.quit());
  const worker = createWorker(config, core, workerRedis, log);
  onShutdown(() => closeWorker(worker, workerRedis));

  const apiRedis = openRedis(redis.url, 'api', log);
  onShutdown(() => apiRedis.quit());
  const app = await createApi(config, core, pool, apiRedis, log);
  onShutdown(() => app.close());
  await app.listen({ port: config.port, host: config.host });
  log.info({ dataDir: config.dataDir }, `berth is serving on port ${config.port}; API docs at /docs`);
  return log;
});
