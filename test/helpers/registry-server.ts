/**
 * Real registries for integration tests: the Debian `docker-registry` (CNCF Distribution 2.8) on a free
 * loopback port with storage in a temp dir, optionally with Basic or token auth, TLS, schema 1, or as a
 * pull-through mirror of another test registry. Each sits behind a small front (registry-front.ts) that
 * records requests, because the registry itself never logs whether credentials reached it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { type Interceptor, type LoggedRequest, type RegistryFront, startFront } from './registry-front.js';
import { testTls } from './tls.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './token-server.js';

export type { Interception, Interceptor, LoggedRequest } from './registry-front.js';

/** How a test registry authenticates. Token mode starts a token server for it. */
export type RegistryAuth =
  | { kind: 'basic'; users: Record<string, string> }
  | { kind: 'token'; users: Record<string, string>; token?: Omit<TokenServerOptions, 'users'> };

/** Options of {@link startRegistry}; none means an anonymous read-write registry over plain HTTP. */
export interface StartRegistryOptions {
  auth?: RegistryAuth;
  /** Run as a read-only pull-through mirror of `remoteUrl` (e.g. another test registry's `url`). */
  proxy?: { remoteUrl: string; username?: string; password?: string; caCertPem?: string };
  /** Serve HTTPS with a certificate for 127.0.0.1 signed by the test CA (see tls.ts). */
  tls?: boolean;
  /** Accept schema 1 manifests (`compatibility.schema1.enabled`). */
  schema1?: boolean;
}

/** A running test registry. Also a PushTarget for fixtures.ts. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`, as in image references. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…` when tls. */
  url: string;
  /** The registry process itself, plain HTTP, bypassing the front (no log, no faults). */
  directUrl: string;
  /** The CA to trust (tls only), as PEM and as a skopeo `--cert-dir` directory. */
  caCertPem?: string;
  certDir?: string;
  /** The token server (token auth only). */
  tokenServer?: TokenServer;
  /** The first configured user: what fixtures push with. */
  credentials?: { username: string; password: string };
  /** Requests the front forwarded or answered, oldest first. */
  requestLog(): LoggedRequest[];
  clearRequestLog(): void;
  /** Sets (or clears, with null) a fault injector for the following requests. */
  intercept(interceptor: Interceptor | null): void;
  /** What the registry process printed (stdout and stderr), for debugging a failing test. */
  serverLog(): string;
  /** PID of the docker-registry process. */
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<TestRegistry>();
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const run = promisify(execFile);

// Last resort if a test forgets stop(): never leave a registry behind. `setpriv --pdeathsig` below
// covers the case where this process is killed outright.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Stops every registry this process started and not yet stopped. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

async function htpasswd(users: Record<string, string>): Promise<string> {
  const lines = await Promise.all(
    Object.entries(users).map(async ([user, password]) => {
      const child = run('htpasswd', ['-niB', user]);
      child.child.stdin?.end(`${password}\n`);
      return (await child).stdout.trim();
    }),
  );
  return `${lines.join('\n')}\n`;
}

/** Answers when GET /v2/ on the port returns any HTTP status (200, or 401 with auth). */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/v2/', timeout: 500 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

interface Spawned {
  child: ChildProcess;
  port: number;
  output: () => string;
}

async function spawnRegistry(dir: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<Spawned> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const configPath = join(dir, 'config.yml');
    // YAML is a superset of JSON, so the config is written as JSON.
    writeFileSync(configPath, JSON.stringify({ ...config, http: { ...(config.http as object), addr: `127.0.0.1:${port}` } }, null, 2));
    const command = existsSync('/usr/bin/setpriv')
      ? ['setpriv', '--pdeathsig', 'KILL', '--', 'docker-registry', 'serve', configPath]
      : ['docker-registry', 'serve', configPath];
    const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    let out = '';
    const keep = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.length > 1_000_000) out = out.slice(-500_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);

    const deadline = Date.now() + 15_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (await probe(port)) return { child, port, output: () => out };
      await new Promise((r) => setTimeout(r, 40));
    }
    child.kill('SIGKILL');
    if (/address already in use/.test(out) && attempt < 5) continue;
    throw new Error(`docker-registry did not start on port ${port}:\n${out}`);
  }
}

/** Starts a registry; stop it with `stop()` or {@link stopAll} (e.g. in afterAll). */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  dirs.add(dir);
  let tokenServer: TokenServer | undefined;
  let front: RegistryFront | undefined;
  let spawned: Spawned | undefined;
  const tls = opts.tls ? await testTls() : undefined;
  try {
    const config: Record<string, unknown> = {
      version: '0.1',
      log: { level: 'info', formatter: 'text', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: join(dir, 'data') },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { secret: randomBytes(16).toString('hex') },
    };
    if (opts.auth?.kind === 'basic') {
      writeFileSync(join(dir, 'htpasswd'), await htpasswd(opts.auth.users));
      config.auth = { htpasswd: { realm: 'berth-test-registry', path: join(dir, 'htpasswd') } };
    } else if (opts.auth?.kind === 'token') {
      tokenServer = await startTokenServer({ ...opts.auth.token, users: opts.auth.users });
      writeFileSync(join(dir, 'token-root.pem'), tokenServer.certPem);
      config.auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: join(dir, 'token-root.pem'),
        },
      };
    }
    const env: NodeJS.ProcessEnv = {};
    if (opts.proxy) {
      config.proxy = {
        remoteurl: opts.proxy.remoteUrl,
        ...(opts.proxy.username === undefined ? {} : { username: opts.proxy.username }),
        ...(opts.proxy.password === undefined ? {} : { password: opts.proxy.password }),
      };
      if (opts.proxy.caCertPem !== undefined) {
        // Go reads extra roots from SSL_CERT_FILE: lets a mirror reach a TLS primary.
        writeFileSync(join(dir, 'remote-ca.pem'), opts.proxy.caCertPem);
        env.SSL_CERT_FILE = join(dir, 'remote-ca.pem');
      }
    }
    if (opts.schema1) config.compatibility = { schema1: { enabled: true } };

    spawned = await spawnRegistry(dir, config, env);
    front = await startFront({ backendPort: spawned.port, ...(tls ? { tls } : {}) });
  } catch (err) {
    spawned?.child.kill('SIGKILL');
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw err;
  }

  const { child, port, output } = spawned;
  const host = `127.0.0.1:${front.port}`;
  const firstUser = Object.entries(opts.auth?.users ?? {})[0];
  let stopping: Promise<void> | undefined;
  const registry: TestRegistry = {
    host,
    url: `${tls ? 'https' : 'http'}://${host}`,
    directUrl: `http://127.0.0.1:${port}`,
    ...(tls ? { caCertPem: tls.caCertPem, certDir: tls.certDir } : {}),
    ...(tokenServer ? { tokenServer } : {}),
    ...(firstUser ? { credentials: { username: firstUser[0], password: firstUser[1] } } : {}),
    requestLog: () => [...front.log],
    clearRequestLog: () => void front.log.splice(0),
    intercept: (interceptor) => void (front.interceptor = interceptor),
    serverLog: output,
    pid: child.pid ?? 0,
    stop: () =>
      (stopping ??= (async () => {
        running.delete(registry);
        await front.close();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
          await exited;
          clearTimeout(timer);
        }
        await tokenServer?.stop();
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      })()),
  };
  running.add(registry);
  return registry;
}
