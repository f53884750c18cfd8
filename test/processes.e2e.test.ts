/**
 * berth's processes as an operator runs them: `npm start` (src/main.ts) on its embedded Postgres,
 * `berth api` and `berth worker` as separate processes sharing Postgres, Redis and the content store,
 * a clean exit on SIGTERM, and start-up errors in one line that says what to fix.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/runtime/local-server.js';
import { api, pullAndWait } from './helpers/api.js';
import { deleteRedisKeys, testDatabaseUrl, testRedisUrl, uniqueName } from './helpers/env.js';
import { layer, pushImage } from './helpers/fixtures.js';
import { startRegistry, type TestRegistry } from './helpers/registry-server.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string>): Running {
  const child = spawn(args[0]!, args.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitReady(base: string, proc: Running, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`exited early:\n${proc.output()}`);
    const ready = await api(base, 'GET', '/readyz').catch(() => undefined);
    if (ready?.status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not ready after ${seconds} s:\n${proc.output()}`);
}

async function stop(proc: Running): Promise<number | null> {
  if (proc.child.exitCode === null) proc.child.kill('SIGTERM');
  return proc.exited;
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-proc-'));
  await chmod(dir, 0o755); // the embedded Postgres runs as the postgres user when we are root
  dirs.push(dir);
  return dir;
}

let registry: TestRegistry;

beforeAll(async () => {
  registry = await startRegistry();
  await pushImage({ url: registry.url }, 'proc/app', '1', { layers: [layer({ proc: '1\n' })] });
});

afterAll(async () => {
  await registry?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('runs API and worker on an embedded Postgres, pulls, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const prefix = uniqueName('proc');
    const berth = run([TSX, 'src/main.ts'], {
      PORT: String(port),
      HOST: '127.0.0.1',
      BERTH_DATA_DIR: await tempDir(),
      REDIS_URL: testRedisUrl(),
      BERTH_QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'info',
    });
    try {
      await waitReady(base, berth);
      expect(berth.output()).toMatch(/embedded Postgres running on 127\.0\.0\.1:\d+/);
      const pull = await pullAndWait(base, { image: `${registry.host}/proc/app:1` });
      expect(pull.state).toBe('succeeded');
    } finally {
      expect(await stop(berth)).toBe(0);
      await deleteRedisKeys(prefix);
    }
    expect(berth.output()).toContain('berth stopped');
  }, 120_000);
});

describe('berth api and berth worker, scaled out', () => {
  it('share the work through Postgres, Redis and one content store', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      DATABASE_URL: testDatabaseUrl(),
      BERTH_DB_SCHEMA: uniqueName('proc'),
      REDIS_URL: testRedisUrl(),
      BERTH_QUEUE_PREFIX: uniqueName('proc'),
      BERTH_SECRET: 'shared-between-api-and-worker',
      BERTH_DATA_DIR: await tempDir(),
      LOG_LEVEL: 'info',
    };
    const apiProcess = run(['node', 'bin/berth.js', 'api'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
    const workerProcess = run(['node', 'bin/berth.js', 'worker'], env);
    try {
      await waitReady(base, apiProcess);
      const pull = await pullAndWait(base, { image: `${registry.host}/proc/app:1`, auth: { username: 'u', password: 'p' } });
      expect(pull.state).toBe('succeeded');
      expect(workerProcess.output()).toContain('pull succeeded');
      const image = await api(base, 'GET', `/v1/images/${pull.imageId}`);
      expect(image.body.names).toEqual([`${registry.host}/proc/app:1`]);
    } finally {
      expect(await stop(apiProcess)).toBe(0);
      expect(await stop(workerProcess)).toBe(0);
      const admin = new pg.Client({ connectionString: testDatabaseUrl() });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${env.BERTH_DB_SCHEMA} CASCADE`);
      await admin.end();
      await deleteRedisKeys(env.BERTH_QUEUE_PREFIX);
    }
  }, 60_000);
});

describe('start-up errors', () => {
  async function failure(args: string[], env: Record<string, string>): Promise<string> {
    const proc = run(args, env);
    expect(await proc.exited).toBe(1);
    return proc.output().trim();
  }

  it('a bad variable stops the process with one line naming it', async () => {
    expect(await failure([TSX, 'src/main.ts'], { PORT: 'eighty' })).toBe('berth: configuration: PORT=eighty is not a whole number');
  });

  it('berth api without DATABASE_URL says it needs one', async () => {
    expect(await failure(['node', 'bin/berth.js', 'api'], {})).toMatch(/^berth: configuration: DATABASE_URL is required for `berth api`/);
  });

  it('a malformed registries.conf stops start-up with its file, line and reason', async () => {
    const conf = path.join(await tempDir(), 'registries.conf');
    await writeFile(conf, 'unqualified-search-registries = ["a.example"]\n\n[[registry]]\nlocation = "b.example"\nblocked = "yes"\n');
    const out = await failure(['node', 'bin/berth.js', 'worker'], { DATABASE_URL: testDatabaseUrl(), REGISTRIES_CONF: conf });
    expect(out.split('\n')).toHaveLength(1);
    expect(out).toContain(`${conf}:5`);
    expect(out).toMatch(/blocked/);
  });
});
