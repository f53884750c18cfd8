/**
 * berth's configuration: read from the environment once at start-up, validated, frozen and passed down.
 * Nothing else in berth reads process.env.
 */
import path from 'node:path';

/** The parsed, frozen configuration. */
export interface Config {
  /** HTTP port of the API (PORT, default 8080). */
  port: number;
  /** Address the API listens on (HOST, default 0.0.0.0). */
  host: string;
  /** Root of the content store and embedded databases (BERTH_DATA_DIR, default ./data). */
  dataDir: string;
  /** Postgres connection string; absent means "start an embedded Postgres" (DATABASE_URL). */
  databaseUrl: string | undefined;
  /** Postgres schema berth's tables live in (BERTH_DB_SCHEMA, default public). */
  databaseSchema: string;
  /** Redis URL; absent means 127.0.0.1:6379, started from PATH when nothing answers (REDIS_URL). */
  redisUrl: string | undefined;
  /** Prefix of every BullMQ key in Redis (BERTH_QUEUE_PREFIX, default berth). */
  queuePrefix: string;
  /** Pull jobs one worker runs at once (BERTH_PULL_CONCURRENCY, default 4). */
  pullConcurrency: number;
  /** Blobs of one image downloaded at once (BERTH_LAYER_CONCURRENCY, default 4). */
  layerConcurrency: number;
  /** Attempts of a pull job before it fails, temporary failures only (BERTH_PULL_ATTEMPTS, default 3). */
  pullAttempts: number;
  /** Days ended pull records are kept (BERTH_PULL_RETENTION_DAYS, default 30). */
  pullRetentionDays: number;
  /** Longest `?wait=` a request may ask for, in seconds (BERTH_MAX_WAIT_SECONDS, default 300). */
  maxWaitSeconds: number;
  /** Platform pulled when a request names none (BERTH_DEFAULT_PLATFORM, default linux/amd64). */
  defaultPlatform: string;
  /** Key material for encrypting job secrets (BERTH_SECRET); absent means a key file in dataDir. */
  secret: string | undefined;
  /** containers-registries.conf(5) v2 file (REGISTRIES_CONF). */
  registriesConf: string | undefined;
  /** auth.json / Docker config.json with registry credentials (AUTH_FILE). */
  authFile: string | undefined;
  /** Extra insecure registries: CIDRs and host[:port], comma separated (INSECURE_REGISTRIES). */
  insecureRegistries: string[];
  /** Per-registry CA certificates, `<dir>/<host:port>/*.crt` (REGISTRY_CA_DIR). */
  registryCaDir: string | undefined;
  /** pino level (LOG_LEVEL, default info). */
  logLevel: string;
}

/** A configuration value that cannot be used; the message names the variable and what to fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}=${raw} is not a whole number`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name}=${raw} must be between ${min} and ${max}`);
  return value;
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Parses the environment into a frozen Config, or throws ConfigError saying what to fix. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const logLevel = text(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`LOG_LEVEL=${logLevel} is not one of ${[...LOG_LEVELS].join(', ')}`);
  const schema = text(env, 'BERTH_DB_SCHEMA') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(`BERTH_DB_SCHEMA=${schema} must be a lowercase SQL identifier`);
  }
  const platform = text(env, 'BERTH_DEFAULT_PLATFORM') ?? 'linux/amd64';
  if (!/^[a-z0-9_-]+\/[a-z0-9_-]+(\/[a-z0-9_.-]+)?$/.test(platform)) {
    throw new ConfigError(`BERTH_DEFAULT_PLATFORM=${platform} must look like os/arch[/variant]`);
  }
  const prefix = text(env, 'BERTH_QUEUE_PREFIX') ?? 'berth';
  if (/[\s{}]/.test(prefix)) throw new ConfigError(`BERTH_QUEUE_PREFIX=${prefix} must not contain spaces or braces`);
  return Object.freeze({
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: text(env, 'HOST') ?? '0.0.0.0',
    dataDir: path.resolve(text(env, 'BERTH_DATA_DIR') ?? './data'),
    databaseUrl: text(env, 'DATABASE_URL'),
    databaseSchema: schema,
    redisUrl: text(env, 'REDIS_URL'),
    queuePrefix: prefix,
    pullConcurrency: integer(env, 'BERTH_PULL_CONCURRENCY', 4, 1, 256),
    layerConcurrency: integer(env, 'BERTH_LAYER_CONCURRENCY', 4, 1, 64),
    pullAttempts: integer(env, 'BERTH_PULL_ATTEMPTS', 3, 1, 20),
    pullRetentionDays: integer(env, 'BERTH_PULL_RETENTION_DAYS', 30, 1, 3650),
    maxWaitSeconds: integer(env, 'BERTH_MAX_WAIT_SECONDS', 300, 0, 3600),
    defaultPlatform: platform,
    secret: text(env, 'BERTH_SECRET'),
    registriesConf: text(env, 'REGISTRIES_CONF'),
    authFile: text(env, 'AUTH_FILE'),
    insecureRegistries: (text(env, 'INSECURE_REGISTRIES') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    registryCaDir: text(env, 'REGISTRY_CA_DIR'),
    logLevel,
  });
}
