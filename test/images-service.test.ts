/**
 * The images service against a real Postgres (a schema of its own) and a content store in a temp dir:
 * resolving every form of reference, paging, filters, tag moves and Docker's delete semantics, and the
 * blobs a delete leaves or removes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrate } from '../src/db/migrate.js';
import { createPool, quoteSchema, withTransaction } from '../src/db/pool.js';
import { createImagesRepository, type ImagesRepository } from '../src/images/images-repository.js';
import { configSummary } from '../src/images/config-summary.js';
import {
  createImagesService,
  type ImagesService,
  type PulledImage,
} from '../src/images/images-service.js';
import { lockStoreGc, sweepOrphanBlobs } from '../src/images/blob-gc.js';
import { ContentStore } from '../src/store/content-store.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { testDatabaseUrl, uniqueName } from './helpers/env.js';

const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

let db: TestDatabase;
let storeRoot: string;
let store: ContentStore;
let repository: ImagesRepository;
let images: ImagesService;

beforeAll(async () => {
  db = await createTestDatabase('images');
  storeRoot = await mkdtemp(path.join(tmpdir(), 'berth-images-'));
  store = new ContentStore(storeRoot);
  await store.init();
  repository = createImagesRepository(db.pool);
  images = createImagesService({ repository, pool: db.pool, store });
});

afterAll(async () => {
  await db?.close();
  if (storeRoot) await rm(storeRoot, { recursive: true, force: true });
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE images CASCADE');
  await rm(storeRoot, { recursive: true, force: true });
  await store.init();
});

/** A fresh layer blob, stored. */
async function layer(): Promise<{ digest: string; size: number; mediaType: string }> {
  const bytes = randomBytes(1024);
  const digest = digestOf(bytes);
  await store.writeBytes(digest, bytes);
  return { digest, size: bytes.length, mediaType: LAYER_TYPE };
}

/**
 * Stores a new image's config, manifest and layers (fresh ones unless given) and returns the input
 * commitPulledImage takes for it, named `name` (a full repo:tag) if given.
 */
async function pulled(opts: { name?: string; layers?: Awaited<ReturnType<typeof layer>>[]; repository?: string } = {}): Promise<PulledImage> {
  const layers = opts.layers ?? [await layer(), await layer()];
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8',
      created: '2024-05-01T12:00:00.123456789Z',
      config: {
        Env: ['PATH=/usr/bin'],
        Cmd: ['sh'],
        WorkingDir: '/app',
        Labels: { nonce: randomBytes(8).toString('hex') },
        ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
        Volumes: { '/data': {} },
      },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, config: digestOf(configBytes), layers }));
  const id = digestOf(configBytes);
  const manifestDigest = digestOf(manifestBytes);
  await store.writeBytes(id, configBytes);
  await store.writeBytes(manifestDigest, manifestBytes);
  const repo = opts.repository ?? opts.name?.replace(/:[^:/]+$/, '');
  return {
    image: {
      id,
      size: configBytes.length + layers.reduce((s, l) => s + l.size, 0),
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      created: '2024-05-01T12:00:00.123456789Z',
      config: JSON.parse(configBytes.toString()),
      configMediaType: 'application/vnd.oci.image.config.v1+json',
      manifestDigest,
      manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
    },
    layers,
    ...(opts.name ? { name: opts.name } : {}),
    repoDigests: repo ? [{ repository: repo, digest: manifestDigest }] : [],
  };
}

async function commit(opts: Parameters<typeof pulled>[0] = {}): Promise<PulledImage> {
  const input = await pulled(opts);
  await images.commitPulledImage(input);
  return input;
}

async function blobsOf(input: PulledImage): Promise<boolean[]> {
  return Promise.all([input.image.id, input.image.manifestDigest, ...input.layers.map((l) => l.digest)].map((d) => store.has(d)));
}

describe('resolve and get', () => {
  it('finds an image by ID, bare hex, ID prefix, name, familiar name and name@digest', async () => {
    const alpine = await commit({ name: 'docker.io/library/alpine:latest' });
    const id = alpine.image.id;
    const hex = id.slice(7);
    const digest = alpine.image.manifestDigest;
    for (const ref of [id, hex, hex.slice(0, 12), `sha256:${hex.slice(0, 20)}`]) {
      expect(await images.resolve(ref)).toEqual({ id, by: 'id' });
    }
    for (const ref of ['alpine', 'alpine:latest', 'library/alpine', 'docker.io/alpine', 'index.docker.io/library/alpine:latest']) {
      expect(await images.resolve(ref)).toEqual({ id, by: 'name', name: 'docker.io/library/alpine:latest' });
    }
    expect(await images.resolve(`alpine@${digest}`)).toEqual({ id, by: 'digest' });
    expect(await images.resolve(`docker.io/library/alpine:whatever@${digest}`)).toEqual({ id, by: 'digest' });

    const local = await commit({ name: 'localhost:5000/team/app:1' });
    expect(await images.resolve('localhost:5000/team/app:1')).toMatchObject({ id: local.image.id, by: 'name' });
  });

  it('says IMAGE_NOT_FOUND for unknown IDs, names and digests', async () => {
    await commit({ name: 'docker.io/library/alpine:latest' });
    for (const ref of [`sha256:${'0'.repeat(64)}`, '0'.repeat(64), `sha256:${'0'.repeat(12)}`, 'busybox', 'alpine:3', `alpine@sha256:${'1'.repeat(64)}`]) {
      await expect(images.get(ref)).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', statusCode: 404 });
    }
  });

  it('reads hex too short for an ID, or matching no ID, as a name', async () => {
    const short = await commit({ name: 'docker.io/library/abc123:latest' });
    expect(await images.resolve('abc123')).toMatchObject({ id: short.image.id, by: 'name' });
    const hexName = await commit({ name: 'docker.io/library/deadbeefcafe:latest' });
    expect(await images.resolve('deadbeefcafe')).toMatchObject({ id: hexName.image.id, by: 'name' });
  });

  it('refuses an ambiguous ID prefix with AMBIGUOUS_IMAGE_ID listing candidates', async () => {
    const base = { size: 1, os: 'linux', architecture: 'amd64', variant: null, created: null, config: configSummary({}) };
    const row = { ...base, configMediaType: 'c', manifestDigest: 'sha256:m', manifestMediaType: 'm' };
    const a = `sha256:${'ab'.repeat(6)}${'1'.repeat(52)}`;
    const b = `sha256:${'ab'.repeat(6)}${'2'.repeat(52)}`;
    await repository.upsertImage({ ...row, id: a });
    await repository.upsertImage({ ...row, id: b });
    const err = await images.resolve('ab'.repeat(6)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AMBIGUOUS_IMAGE_ID', statusCode: 409, extra: { candidates: [a, b] } });
    expect(await images.resolve(`${'ab'.repeat(6)}1`)).toEqual({ id: a, by: 'id' });
  });

  it('rejects a malformed reference as INVALID_REFERENCE', async () => {
    await expect(images.get('Not/Valid')).rejects.toMatchObject({ code: 'INVALID_REFERENCE' });
  });

  it('returns the whole record', async () => {
    const input = await commit({ name: 'docker.io/library/alpine:3' });
    const record = await images.get('alpine:3');
    expect(record).toEqual({
      id: input.image.id,
      names: ['docker.io/library/alpine:3'],
      digests: [`docker.io/library/alpine@${input.image.manifestDigest}`],
      size: input.image.size,
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      created: '2024-05-01T12:00:00.123Z',
      layers: input.layers,
      config: {
        env: ['PATH=/usr/bin'],
        cmd: ['sh'],
        entrypoint: [],
        workingDir: '/app',
        user: '',
        labels: { nonce: expect.any(String) },
        exposedPorts: ['443/tcp', '80/tcp'],
        volumes: ['/data'],
      },
      manifestDigest: input.image.manifestDigest,
      manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
      pulledAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });
});

describe('list', () => {
  it('pages through every image once, newest first, ties broken by ID', async () => {
    const all: string[] = [];
    for (let i = 0; i < 8; i++) all.push((await commit({ name: `docker.io/library/app:${i}` })).image.id);
    // Five of them pulled in the same millisecond: the cursor must still neither repeat nor skip.
    await db.pool.query(`UPDATE images SET pulled_at = '2025-01-01T00:00:00.000Z' WHERE id = ANY($1)`, [all.slice(0, 5)]);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await images.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.images.map((i) => i.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);
    expect(seen.slice(0, 3)).toEqual([...all.slice(5)].reverse());
    expect(seen.slice(3)).toEqual([...all.slice(0, 5)].sort().reverse());
    const whole = await images.list({ limit: 8 });
    expect(whole.nextCursor).toBeUndefined();
    expect(whole.images[0]?.names).toEqual(['docker.io/library/app:7']);
    expect(whole.images[0]?.layers).toHaveLength(2);
  });

  it('refuses malformed cursors and limits', async () => {
    for (const cursor of ['not json', Buffer.from('{"pulledAt":"x","id":"y"}').toString('base64url'), Buffer.from('[]').toString('base64url'), '']) {
      await expect(images.list({ cursor })).rejects.toMatchObject({ code: 'INVALID_CURSOR', statusCode: 400 });
    }
    for (const limit of [0, 1001, 1.5]) await expect(images.list({ limit })).rejects.toMatchObject({ code: 'INVALID_LIMIT' });
  });

  it('filters by name, by repository (no :latest added) and by name@digest', async () => {
    const a3 = await commit({ name: 'docker.io/library/alpine:3' });
    const aLatest = await commit({ name: 'docker.io/library/alpine:latest' });
    await commit({ name: 'docker.io/library/alpine2:latest' });
    const underscored = await commit({ name: 'docker.io/library/a_b:1' });
    await commit({ name: 'docker.io/library/axb:1' });
    const ids = async (name: string) => (await images.list({ name })).images.map((i) => i.id).sort();
    expect(await ids('alpine')).toEqual([a3.image.id, aLatest.image.id].sort());
    expect(await ids('alpine:3')).toEqual([a3.image.id]);
    expect(await ids('docker.io/library/alpine:latest')).toEqual([aLatest.image.id]);
    expect(await ids(`alpine@${a3.image.manifestDigest}`)).toEqual([a3.image.id]);
    expect(await ids('a_b')).toEqual([underscored.image.id]);
    expect(await ids('nothing')).toEqual([]);
    await expect(images.list({ name: 'Bad Name' })).rejects.toMatchObject({ code: 'INVALID_REFERENCE' });
  });
});

describe('commitPulledImage', () => {
  it('moves a tag to the new image and leaves the old one dangling with its digests', async () => {
    const old = await commit({ name: 'docker.io/library/app:1' });
    const { image, movedFrom } = await images.commitPulledImage(await pulled({ name: 'docker.io/library/app:1' }));
    expect(movedFrom).toBe(old.image.id);
    expect(image.names).toEqual(['docker.io/library/app:1']);
    const dangling = await images.get(old.image.id);
    expect(dangling.names).toEqual([]);
    expect(dangling.digests).toEqual([`docker.io/library/app@${old.image.manifestDigest}`]);
    expect(await images.resolve(`app@${old.image.manifestDigest}`)).toEqual({ id: old.image.id, by: 'digest' });
    expect(await blobsOf(old)).toEqual([true, true, true, true]);
    expect((await images.list()).images.map((i) => i.id)).toEqual([image.id, old.image.id]);
    // A dangling image goes by ID like any other.
    expect(await images.remove(old.image.id)).toEqual({
      untagged: [`docker.io/library/app@${old.image.manifestDigest}`],
      deleted: [old.image.id],
    });
  });

  it('moving one tag leaves the old image its other names', async () => {
    const old = await commit({ name: 'docker.io/library/app:1' });
    await images.commitPulledImage({ ...old, name: 'docker.io/library/app:2' });
    const { movedFrom } = await images.commitPulledImage(await pulled({ name: 'docker.io/library/app:2' }));
    expect(movedFrom).toBe(old.image.id);
    expect((await images.get(old.image.id)).names).toEqual(['docker.io/library/app:1']);
  });

  it('keeps the row of an image pulled again and only moves pulled_at', async () => {
    const input = await commit({ name: 'docker.io/library/app:1' });
    const first = await images.get(input.image.id);
    await new Promise((r) => setTimeout(r, 5));
    const again = await images.commitPulledImage(input);
    expect(again.movedFrom).toBeUndefined();
    expect(again.image.pulledAt > first.pulledAt).toBe(true);
    expect({ ...again.image, pulledAt: first.pulledAt }).toEqual(first);
  });

  it('throws BLOB_VANISHED, recording nothing, when a blob is no longer stored', async () => {
    const input = await pulled({ name: 'docker.io/library/app:1' });
    await store.delete(input.layers[1]!.digest);
    await expect(images.commitPulledImage(input)).rejects.toMatchObject({ code: 'BLOB_VANISHED', temporary: true });
    await expect(images.get('app:1')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });
});

describe('remove', () => {
  it('by a tag removes the name only while other names are left', async () => {
    const input = await commit({ name: 'docker.io/library/app:1' });
    await images.commitPulledImage({ ...input, name: 'docker.io/library/app:2' });
    expect(await images.remove('app:1')).toEqual({ untagged: ['docker.io/library/app:1'], deleted: [] });
    expect(await blobsOf(input)).toEqual([true, true, true, true]);
    expect(await images.remove('app:2')).toEqual({
      untagged: ['docker.io/library/app:2', `docker.io/library/app@${input.image.manifestDigest}`],
      deleted: [input.image.id],
    });
    expect(await blobsOf(input)).toEqual([false, false, false, false]);
    await expect(images.remove('app:2')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  it('by ID or name@digest deletes the image with all its names', async () => {
    const a = await commit({ name: 'docker.io/library/app:1' });
    await images.commitPulledImage({ ...a, name: 'docker.io/library/app:2' });
    const byId = await images.remove(a.image.id.slice(7, 19));
    expect(byId.deleted).toEqual([a.image.id]);
    expect(byId.untagged.sort()).toEqual(['docker.io/library/app:1', 'docker.io/library/app:2', `docker.io/library/app@${a.image.manifestDigest}`].sort());

    const b = await commit({ name: 'docker.io/library/app:3' });
    expect(await images.remove(`app@${b.image.manifestDigest}`)).toEqual({
      untagged: ['docker.io/library/app:3', `docker.io/library/app@${b.image.manifestDigest}`],
      deleted: [b.image.id],
    });
    expect((await images.list()).images).toEqual([]);
    expect(await blobsOf(b)).toEqual([false, false, false, false]);
  });

  it('keeps a shared layer until the last image using it is deleted', async () => {
    const shared = await layer();
    const one = await commit({ name: 'docker.io/library/one:1', layers: [shared, await layer()] });
    const two = await commit({ name: 'docker.io/library/two:1', layers: [shared, await layer()] });
    await images.remove('one:1');
    expect(await blobsOf(one)).toEqual([false, false, true, false]);
    expect(await store.has(shared.digest)).toBe(true);
    await images.remove(two.image.id);
    expect(await store.has(shared.digest)).toBe(false);
    const left: string[] = [];
    for await (const d of store.list()) left.push(d);
    expect(left).toEqual([]);
  });

  it('waits for a pull commit holding the store GC lock', async () => {
    const input = await commit({ name: 'docker.io/library/app:1' });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const lockTaken = new Promise<void>((r) => (locked = r));
    const holder = withTransaction(db.pool, async (client) => {
      await lockStoreGc(client);
      locked();
      await held;
    });
    await lockTaken;
    let done = false;
    const removal = images.remove('app:1').then((r) => ((done = true), r));
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(false);
    release();
    await holder;
    expect((await removal).deleted).toEqual([input.image.id]);
  });
});

describe('configSummary', () => {
  it('maps an OCI config and tolerates missing or odd fields', () => {
    expect(configSummary({ config: { Entrypoint: ['/bin/app'], User: '1000', Labels: { a: 'b', n: 1 }, ExposedPorts: null } })).toEqual({
      env: [],
      cmd: [],
      entrypoint: ['/bin/app'],
      workingDir: '',
      user: '1000',
      labels: { a: 'b' },
      exposedPorts: [],
      volumes: [],
    });
    expect(configSummary(null)).toEqual(configSummary({}));
  });
});

describe('migrate', () => {
  it('is safe when two instances migrate one schema at once', async () => {
    const schema = uniqueName('migrate');
    const [p1, p2] = await Promise.all([
      createPool({ connectionString: testDatabaseUrl(), schema }),
      createPool({ connectionString: testDatabaseUrl(), schema }),
    ]);
    try {
      const results = await Promise.all([migrate(p1), migrate(p2)]);
      const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
      // One instance applied every file, the other found nothing left to do.
      expect(results.map((r) => r.applied).sort()).toEqual([[], files]);
      expect((await migrate(p1)).applied).toEqual([]);
      const { rows } = await p1.query('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(files.length);
    } finally {
      await p1.end();
      await p2.end();
      await db.pool.query(`DROP SCHEMA ${quoteSchema(schema)} CASCADE`);
    }
  });

  it('refuses to start when an applied migration was changed, naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-migrations-'));
    const schema = uniqueName('migrate');
    const pool = await createPool({ connectionString: testDatabaseUrl(), schema });
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true });
      await migrate(pool, { dir });
      const file = path.join(dir, '0001_initial.sql');
      await writeFile(file, `${await readFile(file, 'utf8')}\n-- edited\n`);
      await expect(migrate(pool, { dir })).rejects.toThrow(/0001_initial\.sql was changed/);
    } finally {
      await pool.end();
      await db.pool.query(`DROP SCHEMA ${quoteSchema(schema)} CASCADE`);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('commitPulledImage with beforeCommit', () => {
  it('records nothing of the image when beforeCommit throws (a pull canceled meanwhile)', async () => {
    const input = await pulled({ name: 'registry.test/canceled/app:1' });
    await expect(images.commitPulledImage({ ...input, beforeCommit: async () => Promise.reject(new Error('canceled')) })).rejects.toThrow('canceled');
    expect(await repository.findById(input.image.id)).toBeUndefined();
    expect(await repository.findByName('registry.test/canceled/app:1')).toBeUndefined();
  });

  it('refuses to record an image whose manifest blob is gone', async () => {
    const input = await pulled({ name: 'registry.test/nomanifest/app:1' });
    await store.delete(input.image.manifestDigest);
    await expect(images.commitPulledImage(input)).rejects.toMatchObject({ code: 'BLOB_VANISHED' });
  });
});

describe('sweepOrphanBlobs', () => {
  const HOUR = 3600_000;
  const age = async (digest: string, ms: number) => {
    const when = new Date(Date.now() - ms);
    await utimes(store.path(digest), when, when);
  };

  it('removes old blobs no image references, and keeps referenced and young ones', async () => {
    const kept = await commit({ name: 'registry.test/kept/app:1' });
    for (const d of [kept.image.id, kept.image.manifestDigest, ...kept.layers.map((l) => l.digest)]) await age(d, 2 * HOUR);
    const oldOrphan = await layer();
    await age(oldOrphan.digest, 2 * HOUR);
    const youngOrphan = await layer(); // may belong to a pull still downloading

    const removed = await sweepOrphanBlobs({ pool: db.pool, store }, HOUR);

    expect(removed).toEqual([oldOrphan.digest]);
    expect(await store.has(oldOrphan.digest)).toBe(false);
    expect(await store.has(youngOrphan.digest)).toBe(true);
    expect(await blobsOf(kept)).toEqual([true, true, true, true]);
  });

  it('waits for a pull commit that holds the GC lock', async () => {
    const orphan = await layer();
    await age(orphan.digest, 2 * HOUR);
    const client = await db.pool.connect();
    let swept = false;
    try {
      await client.query('BEGIN');
      await lockStoreGc(client);
      const sweeping = sweepOrphanBlobs({ pool: db.pool, store }, HOUR).then(() => (swept = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(swept).toBe(false);
      await client.query('COMMIT');
      await sweeping;
    } finally {
      client.release();
    }
    expect(await store.has(orphan.digest)).toBe(false);
  });
});

describe('a blob a pull reuses', () => {
  it('is left by the sweep: reuse() makes it young again', async () => {
    const orphan = await layer();
    const when = new Date(Date.now() - 2 * 3600_000);
    await utimes(store.path(orphan.digest), when, when);
    expect(await store.reuse(orphan.digest)).toBe(true); // a pull found it and will record it
    expect(await sweepOrphanBlobs({ pool: db.pool, store }, 3600_000)).toEqual([]);
    expect(await store.has(orphan.digest)).toBe(true);
    expect(await store.reuse(`sha256:${'0'.repeat(64)}`)).toBe(false);
  });
});
