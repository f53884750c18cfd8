import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSecret } from './secret-key.js';

describe('loadSecret', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses BERTH_SECRET when it is set, and writes no key file', async () => {
    expect(await loadSecret('from-env', dir)).toBe('from-env');
    await expect(stat(path.join(dir, 'secret.key'))).rejects.toThrow();
  });

  it('creates a random key file readable by its owner only, and reads the same key back', async () => {
    const data = path.join(dir, 'data');
    const first = await loadSecret(undefined, data);
    expect(first.length).toBeGreaterThanOrEqual(40);
    const file = path.join(data, 'secret.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).trim()).toBe(first);
    expect(await loadSecret(undefined, data)).toBe(first);
  });

  it('gives two processes starting at once the same key', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadSecret(undefined, dir)));
    expect(new Set(keys).size).toBe(1);
  });
});
