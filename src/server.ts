/** `berth api`: the HTTP API alone, for scaling out. Needs DATABASE_URL; REDIS_URL defaults to local. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { loadRegistrySettings } from './registries/registry-settings.js';
import { runProcess } from './runtime/process.js';
import { createApi, createCore, openDatabase, openRedis } from './services.js';

runProcess('berth api', async (onShutdown) => {
  const config = loadConfig();
  if (!config.databaseUrl) throw new ConfigError('DATABASE_URL is required for `berth api` (only `npm start` embeds Postgres)');
  const log = createLogger(config.logLevel, 'berth-api');
  const registrySettings = await loadRegistrySettings(config, log);
  const pool = await openDatabase(config, config.databaseUrl);
  onShutdown(() => pool.end());
  const core = await createCore(config, pool, registrySettings);
  const redis = openRedis(config.redisUrl ?? 'redis://127.0.0.1:6379', 'api', log);
  onShutdown(() => redis.quit());
  const app = await createApi(config, core, pool, redis, log);
  onShutdown(() => app.close());
  await app.listen({ port: config.port, host: config.host });
  return log;
});
