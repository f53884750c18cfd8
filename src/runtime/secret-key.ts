/**
 * The key material for sealing job secrets: BERTH_SECRET when set, else a random key kept in the data
 * dir (mode 0600), so that `npm start` works out of the box and restarts can still open queued jobs.
 * API and workers on different machines must share BERTH_SECRET.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Returns BERTH_SECRET, or the data dir's key file, creating it on first use. */
export async function loadSecret(secret: string | undefined, dataDir: string): Promise<string> {
  if (secret) return secret;
  const file = path.join(dataDir, 'secret.key');
  try {
    return await readWritten(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    // Another process (API and worker starting together) wrote it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readWritten(file);
    throw err;
  }
}

/** Reads a key file another process has just created, waiting until its content is there. */
async function readWritten(file: string): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const key = (await readFile(file, 'utf8')).trim();
    if (key) return key;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${file} stays empty; delete it or set BERTH_SECRET`);
}
