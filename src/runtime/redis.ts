/**
 * Finds the Redis berth's queue runs on: the configured one, else the usual local one, else a
 * `redis-server` from PATH that berth starts itself with its data under `<dataDir>/redis`.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, portIsFree, type RunningService, type RuntimeLog } from './local-server.js';

/** Options of ensureRedis. */
export interface EnsureRedisOptions {
  /** REDIS_URL: when given, it is used as is and must answer. */
  redisUrl?: string | undefined;
  /** berth's data directory; a Redis berth starts keeps its files in `<dataDir>/redis`. */
  dataDir: string;
  log: RuntimeLog;
  /** Where to look for a running Redis when no redisUrl is given (default redis://127.0.0.1:6379). */
  probeUrl?: string;
  /** The PATH searched for `redis-server` (default process.env.PATH). */
  searchPath?: string;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const PING_TIMEOUT_MS = 1_000;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Returns a Redis that answers PING. stop() shuts down only a redis-server this call started; for a
 * Redis found running it does nothing.
 */
export async function ensureRedis(options: EnsureRedisOptions): Promise<RunningService> {
  const { log } = options;
  const none = async (): Promise<void> => undefined;
  if (options.redisUrl !== undefined) {
    const failure = await ping(options.redisUrl);
    if (failure) throw new Error(`Redis at ${redact(options.redisUrl)} (REDIS_URL) does not answer PING: ${failure}`);
    return { url: options.redisUrl, stop: none };
  }
  const probeUrl = options.probeUrl ?? DEFAULT_URL;
  if ((await ping(probeUrl)) === undefined) {
    log.info(`using the Redis at ${redact(probeUrl)}`);
    return { url: probeUrl, stop: none };
  }
  const server = await findExecutable('redis-server', options.searchPath ?? process.env.PATH ?? '');
  if (!server) {
    throw new Error(`no Redis answers at ${redact(probeUrl)} and redis-server is not on PATH: install it (apt-get install redis-server) or set REDIS_URL`);
  }
  return startRedis(server, new URL(probeUrl), options.dataDir, log);
}

/** Starts redis-server on the probed port when free, else on a free one, and waits until it answers. */
async function startRedis(server: string, probe: URL, dataDir: string, log: RuntimeLog): Promise<RunningService> {
  const dir = path.join(path.resolve(dataDir), 'redis');
  await mkdir(dir, { recursive: true });
  const preferred = Number(probe.port || 6379);
  const port = (await portIsFree(preferred)) ? preferred : await freePort();
  const child = spawn(
    server,
    [
      '--bind', '127.0.0.1',
      '--port', String(port),
      '--dir', dir,
      // The queue survives a restart through the append-only file; BullMQ must never see keys evicted.
      '--appendonly', 'yes',
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no',
      '--logfile', '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8_192);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      const reason = spawnError?.message ?? lastLine(output) ?? `exit code ${child.exitCode}`;
      throw new Error(`redis-server (${server}) did not start on port ${port}: ${reason}`);
    }
    if ((await ping(url)) === undefined) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server (${server}) did not answer PING on port ${port} within ${START_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // A crash or process.exit() must not leave the server running; SIGTERM makes Redis flush and exit.
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  log.info(`started redis-server on 127.0.0.1:${port}, data in ${dir}`);
  let stopping: Promise<void> | undefined;
  return {
    url,
    stop: () => {
      stopping ??= (async () => {
        process.removeListener('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** PINGs a Redis once, without retries; undefined when it answered PONG, else why not. */
export async function ping(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PING_TIMEOUT_MS,
    commandTimeout: PING_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The 'error' event carries the cause (ECONNREFUSED…); the rejected connect() only says "closed".
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    const answer = await client.ping();
    return answer === 'PONG' ? undefined : `unexpected answer ${answer}`;
  } catch (error) {
    return (cause ?? (error instanceof Error ? error : new Error(String(error)))).message;
  } finally {
    client.disconnect();
  }
}

async function findExecutable(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The URL with its password replaced, fit for logs and error messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function lastLine(text: string): string | undefined {
  return text.trim().split('\n').at(-1)?.replace(/^\d+:[A-Z] .*?[#*.-] /, '') || undefined;
}
