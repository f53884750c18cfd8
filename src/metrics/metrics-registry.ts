/**
 * The Prometheus registry of the API process: its own process metrics, and gauges of pulls and the
 * store read from Postgres at scrape time (workers may run elsewhere, without an HTTP port).
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { MetricsRepository } from './metrics-repository.js';

const PULL_STATES = ['queued', 'running', 'succeeded', 'failed'];
const SNAPSHOT_TTL_MS = 5000;

/** A registry whose gauges ask `repository` each time they are scraped. */
export function createMetricsRegistry(repository: Pick<MetricsRepository, 'snapshot'>): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_' });
  // One snapshot serves every gauge of a scrape and any scrape within SNAPSHOT_TTL_MS: the counts scan
  // the pulls table, and several Prometheus servers (or API replicas) may scrape at once.
  let current: Promise<Awaited<ReturnType<MetricsRepository['snapshot']>>> | undefined;
  const snapshot = () =>
    (current ??= repository.snapshot().then(
      (value) => {
        setTimeout(() => (current = undefined), SNAPSHOT_TTL_MS).unref();
        return value;
      },
      (err: unknown) => {
        current = undefined; // a failed snapshot (Postgres down) is not kept
        throw err;
      },
    ));

  new Gauge({
    name: 'berth_pulls',
    help: 'Pull records by state (queued and running are in flight)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { pullsByState } = await snapshot();
      for (const state of PULL_STATES) this.set({ state }, pullsByState.find((p) => p.state === state)?.count ?? 0);
    },
  });
  new Gauge({
    name: 'berth_pull_failures',
    help: 'Failed pulls by error code (UNAUTHORIZED, MANIFEST_UNKNOWN, REGISTRY_UNAVAILABLE, …)',
    labelNames: ['code'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { code, count } of (await snapshot()).failuresByCode) this.set({ code }, count);
    },
  });
  new Gauge({
    name: 'berth_images',
    help: 'Images held',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).images);
    },
  });
  new Gauge({
    name: 'berth_images_dangling',
    help: 'Images held with no name left (found by ID or repo digest only)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).danglingImages);
    },
  });
  new Gauge({
    name: 'berth_image_content_bytes',
    help: 'Bytes of the layers and configs the images reference, each blob counted once (manifests and blobs awaiting the sweep not included)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).storedBytes);
    },
  });
  return registry;
}
