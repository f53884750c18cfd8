/** `berth worker`: pull jobs alone, for scaling out. Needs DATABASE_URL; REDIS_URL defaults to local. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { loadRegistrySettings } from './registries/registry-settings.js';
import { runProcess } from './runtime/process.js';
import { closeWorker, createCore, createWorker, openDatabase, openRedis } from './services.js';

runProcess('berth worker', async (onShutdown) => {
  const config = loadConfig();
  if (!config.databaseUrl) throw new ConfigError('DATABASE_URL is required for `berth worker` (only `npm start` embeds Postgres)');
  const log = createLogger(config.logLevel, 'berth-worker');
  const registrySettings = await loadRegistrySettings(config, log);
  const pool = await openDatabase(config, config.databaseUrl);
  onShutdown(() => pool.end());
  const core = await createCore(config, pool, registrySettings);
  const redis = openRedis(config.redisUrl ?? 'redis://127.0.0.1:6379', 'worker', log);
  onShutdown(() => redis.quit());
  const worker = createWorker(config, core, redis, log);
  onShutdown(() => closeWorker(worker, redis));
  log.info({ concurrency: config.pullConcurrency }, 'berth worker is taking pull jobs');
  return log;
});
