/**
 * The fixtures' own minimal registry client for pushing: finds the auth scheme with GET /v2/, answers
 * a Basic or Bearer challenge (token for `repository:NAME:pull,push,delete`), uploads blobs
 * monolithically (POST, then PUT ?digest=) unless HEAD finds them, and PUTs manifests. Deliberately
 * independent of berth's src/registry, which is what gets tested against it.
 */
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { sha256 } from './image-builder.js';

/** Where to push: a TestRegistry fits, or any `{ url }`. */
export interface PushTarget {
  url: string;
  credentials?: { username: string; password: string };
  /** CA to trust for an https url. */
  caCertPem?: string;
}

/** Sent with every fixture request, so request logs tell fixture traffic from berth's. */
export const USER_AGENT = 'berth-test-fixtures';

const agents = new Map<string, Dispatcher>();
function dispatcherFor(target: PushTarget): Dispatcher {
  const key = target.caCertPem ?? '';
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent(target.caCertPem ? { connect: { ca: target.caCertPem } } : {});
    agents.set(key, agent);
  }
  return agent;
}

type Body = Buffer | Readable | null;

/** One repository's push session: finds the auth scheme once (GET /v2/), then signs every call. */
export class Session {
  private authorization: string | undefined;
  private ready: Promise<void> | undefined;
  constructor(
    readonly target: PushTarget,
    readonly repo: string,
  ) {}

  private basic(): string | undefined {
    const c = this.target.credentials;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private async login(): Promise<void> {
    const res = await request(`${this.target.url}/v2/`, { dispatcher: dispatcherFor(this.target), headers: { 'user-agent': USER_AGENT } });
    await res.body.dump();
    if (res.statusCode === 200) return;
    const challenge = String(res.headers['www-authenticate'] ?? '');
    if (res.statusCode !== 401 || challenge === '') throw new Error(`GET /v2/ answered ${res.statusCode}`);
    if (/^basic/i.test(challenge)) {
      this.authorization = this.basic();
      return;
    }
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const url = new URL(params.realm ?? '');
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', `repository:${this.repo}:pull,push,delete`);
    const basic = this.basic();
    const tokenRes = await request(url, {
      dispatcher: dispatcherFor(this.target),
      headers: { 'user-agent': USER_AGENT, ...(basic ? { authorization: basic } : {}) },
    });
    const body = (await tokenRes.body.json()) as { token?: string; access_token?: string };
    if (tokenRes.statusCode !== 200) throw new Error(`token server answered ${tokenRes.statusCode}`);
    this.authorization = `Bearer ${body.token ?? body.access_token}`;
  }

  /** Calls the registry; `path` is absolute ('/v2/…', query allowed). Returns status, headers, body text. */
  async call(method: Dispatcher.HttpMethod, path: string, headers: Record<string, string> = {}, body: Body = null) {
    this.ready ??= this.login();
    await this.ready;
    const res = await request(`${this.target.url}${path}`, {
      method,
      dispatcher: dispatcherFor(this.target),
      headers: { 'user-agent': USER_AGENT, ...headers, ...(this.authorization ? { authorization: this.authorization } : {}) },
      body,
    });
    const bytes = method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, bytes, text: bytes.toString('utf8') };
  }

  async expect(status: number, method: Dispatcher.HttpMethod, path: string, headers?: Record<string, string>, body?: Body) {
    const res = await this.call(method, path, headers, body);
    if (res.status !== status)
      throw new Error(`${method} ${this.target.url}${path}: expected ${status}, got ${res.status} ${res.text}`);
    return res;
  }
}

/** Uploads a blob unless the repository has it (HEAD), monolithically: POST then PUT ?digest=. */
export async function pushBlobWith(session: Session, blob: { digest: string; size: number; data?: Buffer; open?: () => Readable }) {
  const repo = session.repo;
  const head = await session.call('HEAD', `/v2/${repo}/blobs/${blob.digest}`);
  if (head.status === 200) return;
  const started = await session.expect(202, 'POST', `/v2/${repo}/blobs/uploads/`, { 'content-length': '0' });
  // The Location is absolute and names the front's host; keep only path and query, so the PUT goes
  // to the same origin the session talks to.
  const location = new URL(String(started.headers.location), session.target.url);
  location.searchParams.set('digest', blob.digest);
  await session.expect(
    201,
    'PUT',
    `${location.pathname}${location.search}`,
    { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    blob.data ?? blob.open!(),
  );
}

/** PUTs a manifest; checks the registry's Docker-Content-Digest against the bytes' sha256. */
export async function putManifestWith(session: Session, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
  const res = await session.expect(201, 'PUT', `/v2/${session.repo}/manifests/${reference}`, { 'content-type': mediaType }, bytes);
  const digest = sha256(bytes);
  const answered = res.headers['docker-content-digest'];
  if (answered !== undefined && answered !== digest) throw new Error(`registry says ${String(answered)}, we pushed ${digest}`);
  return digest;
}

/** `127.0.0.1:PORT` of a target. */
export function hostOf(target: PushTarget): string {
  return new URL(target.url).host;
}

