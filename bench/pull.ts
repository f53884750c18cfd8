/**
 * `npm run bench`: how fast berth pulls, and how much memory it holds while doing it, against a real
 * Distribution registry on loopback — beside skopeo copying the same image (the reference peer).
 *
 * Scenarios: many layers (5 × 20 MiB) and one big layer (256 MiB). Each is pulled cold (nothing
 * held) and, for berth, warm (every blob already held: only manifests and the record). Reported:
 * wall time, MiB/s, and the rise of the process's peak RSS (berth runs in this process).
 * Uses the machine's Postgres and Redis with a schema and key prefix of its own, dropped at the end.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { createPool } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import { closeWorker, createApi, createCore, createWorker, openRedis } from '../src/services.js';
import { pushImage, randomLayer } from '../test/helpers/fixtures.js';
import { startRegistry } from '../test/helpers/registry-server.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const scenarios = [
  { name: '5 layers x 20 MiB', layers: Array.from({ length: 5 }, (_, i) => randomLayer(20 * MiB, { seed: `many-${i}`, compression: 'none' })) },
  { name: '1 layer x 256 MiB', layers: [randomLayer(256 * MiB, { seed: 'big', compression: 'none' })] },
];

const id = randomBytes(4).toString('hex');
const schema = `bench_${id}`;
const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-bench-'));
const registry = await startRegistry();
const pool = await createPool({ connectionString: DATABASE_URL, schema });
await migrate(pool);
const config = loadConfig({
  BERTH_DATA_DIR: dataDir,
  DATABASE_URL,
  BERTH_DB_SCHEMA: schema,
  REDIS_URL,
  BERTH_QUEUE_PREFIX: `bench_${id}`,
  BERTH_SECRET: 'bench',
  LOG_LEVEL: 'silent',
});
const log = pino({ level: 'silent' });
const core = await createCore(config, pool);
const workerRedis = openRedis(REDIS_URL, 'worker');
const worker = createWorker(config, core, workerRedis, log);
const apiRedis = openRedis(REDIS_URL, 'api');
const app = await createApi(config, core, pool, apiRedis, log);
const base = await app.listen({ port: 0, host: '127.0.0.1' });

async function pull(image: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/pulls?wait=600`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image }),
  });
  const body = (await res.json()) as { state: string; error?: unknown };
  if (body.state !== 'succeeded') throw new Error(`pull of ${image} ended ${body.state}: ${JSON.stringify(body.error)}`);
  return performance.now() - started;
}

const rows: string[][] = [['scenario', 'who', 'seconds', 'MiB/s', 'peak RSS rise (MiB)']];
try {
  for (const scenario of scenarios) {
    const repo = `bench/${scenario.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    const pushed = await pushImage({ url: registry.url }, repo, '1', { layers: scenario.layers });
    const image = `${registry.host}/${repo}:1`;
    const mib = pushed.totalSize / MiB;

    const skopeoDir = await mkdtemp(path.join(tmpdir(), 'berth-bench-skopeo-'));
    const s0 = performance.now();
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `oci:${skopeoDir}:1`]);
    const skopeoMs = performance.now() - s0;
    await rm(skopeoDir, { recursive: true, force: true });
    rows.push([scenario.name, 'skopeo copy', (skopeoMs / 1000).toFixed(2), (mib / (skopeoMs / 1000)).toFixed(0), '-']);

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const coldMs = await pull(image);
    clearInterval(sampler);
    rows.push([scenario.name, 'berth cold', (coldMs / 1000).toFixed(2), (mib / (coldMs / 1000)).toFixed(0), ((peak - rssBefore) / MiB).toFixed(0)]);

    const warmMs = await pull(image);
    rows.push([scenario.name, 'berth warm', (warmMs / 1000).toFixed(2), '-', '-']);
  }
} finally {
  await app.close();
  await closeWorker(worker, workerRedis);
  const keys = await apiRedis.keys(`bench_${id}:*`);
  if (keys.length > 0) await apiRedis.del(...keys);
  apiRedis.disconnect();
  workerRedis.disconnect();
  await pool.end();
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  await registry.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
process.exit(0);
