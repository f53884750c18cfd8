/**
 * A Docker token server (distribution/docs/spec/auth/token.md, oauth.md) on 127.0.0.1:0, for test
 * registries in `auth.token` mode. GET `?service=&scope=` with optional Basic credentials; POST form
 * `grant_type=password|refresh_token` (OAuth2, identity tokens). Tokens are RS256 JWTs whose key is
 * named by `kid` (the libtrust fingerprint, as Distribution 2.8 matches it) or by `x5c`.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** One grant inside a token (`access` claim). */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** How a token request identified itself. */
export type TokenGrant = 'anonymous' | 'basic' | 'password' | 'refresh_token' | 'rejected';

/** One request the token server answered. Holds user names, never passwords or tokens. */
export interface TokenRequest {
  at: number;
  method: 'GET' | 'POST';
  grant: TokenGrant;
  /** The user the credentials proved (or claimed, when rejected). */
  user?: string;
  service: string;
  scopes: string[];
  granted: Access[];
  status: number;
  /** A refresh token was asked for (`offline_token=true` or `access_type=offline`). */
  offline: boolean;
  clientId?: string;
}

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  /** user → password. A valid user is granted every action asked for. */
  users: Record<string, string>;
  /** Repositories anonymous callers may pull: exact names, `prefix/*`, or `*`. Default none. */
  anonymousPull?: string[];
  service?: string;
  issuer?: string;
  /** Which fields carry the token in answers. Default both `token` and `access_token`. */
  response?: 'both' | 'token' | 'access_token';
  /** `expires_in` answered, in seconds. Default 300. */
  expiresIn?: number;
  /** Seconds from `iat` to the JWT's `exp`. Default `expiresIn`. (The registry allows 60 s leeway.) */
  lifetime?: number;
  /** Leave `expires_in` and `issued_at` out of answers (clients then assume 60 s). */
  omitExpiry?: boolean;
  /** How the JWT header names the key. Default 'kid'. */
  keyId?: 'kid' | 'x5c';
  /** Identity tokens accepted by `grant_type=refresh_token`: token → user. */
  refreshTokens?: Record<string, string>;
  /** false: POST answers 404, as token servers without OAuth2 do (clients fall back to GET). */
  oauth?: boolean;
  /** Overrides the grant policy: actions to grant for one requested scope (user undefined = anonymous). */
  permissions?: (user: string | undefined, scope: Access) => string[];
}

/** A running token server. */
export interface TokenServer {
  /** `http://127.0.0.1:PORT/token`: the realm registries announce. */
  realm: string;
  service: string;
  issuer: string;
  /** The self-signed certificate of the signing key: the registry's `rootcertbundle`. */
  certPem: string;
  /** The libtrust key ID of the signing key. */
  kid: string;
  /** Requests answered so far, oldest first. */
  requests(): TokenRequest[];
  clearRequests(): void;
  /** Refresh tokens handed out so far (they are accepted by `grant_type=refresh_token`). */
  issuedRefreshTokens(): string[];
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** libtrust's key ID: SHA-256 of the SPKI DER, first 240 bits, base32, 12 groups of 4 joined by ':'. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const digest = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of digest.subarray(0, 30)) bits += byte.toString(2).padStart(8, '0');
  let encoded = '';
  for (let i = 0; i < bits.length; i += 5) encoded += alphabet[Number.parseInt(bits.slice(i, i + 5), 2)];
  return encoded.match(/.{4}/g)!.join(':');
}

interface Signer {
  privateKey: KeyObject;
  certPem: string;
  certDerBase64: string;
  kid: string;
}

let signer: Promise<Signer> | undefined;

/** One RSA key and self-signed certificate per test process (key generation is the slow part). */
function testSigner(): Promise<Signer> {
  signer ??= (async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = mkdtempSync(join(tmpdir(), 'berth-token-'));
    try {
      writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      await run('openssl', [
        'req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
        '-days', '7', '-sha256', '-subj', '/CN=berth test token signer',
      ]);
      const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const certDerBase64 = new X509Certificate(certPem).raw.toString('base64');
      return { privateKey, certPem, certDerBase64, kid: libtrustKeyId(publicKey) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return signer;
}

/** Parses `type:name:actions` (the name may itself hold ':' only in theory; split on the outer ones). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function anonymousMayPull(allow: string[], name: string): boolean {
  return allow.some((p) => p === '*' || p === name || (p.endsWith('/*') && name.startsWith(p.slice(0, -1))));
}

/** Starts a token server. Stop it with `stop()` (startRegistry does so for the ones it starts). */
export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const key = await testSigner();
  const service = opts.service ?? 'berth-test-registry';
  const issuer = opts.issuer ?? 'berth-test-token-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const lifetime = opts.lifetime ?? expiresIn;
  const log: TokenRequest[] = [];
  const refresh = new Map<string, string>(Object.entries(opts.refreshTokens ?? {}));
  const issued: string[] = [];

  const grantFor = (user: string | undefined, requested: Access[]): Access[] =>
    requested
      .map((scope) => {
        let actions: string[];
        if (opts.permissions) actions = opts.permissions(user, scope);
        else if (user !== undefined) actions = scope.actions;
        else if (scope.type === 'repository' && anonymousMayPull(opts.anonymousPull ?? [], scope.name))
          actions = scope.actions.filter((a) => a === 'pull');
        else actions = [];
        return { ...scope, actions: scope.actions.filter((a) => actions.includes(a)) };
      })
      .filter((a) => a.actions.length > 0);

  const jwt = (user: string | undefined, access: Access[], aud: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = opts.keyId === 'x5c'
      ? { typ: 'JWT', alg: 'RS256', x5c: [key.certDerBase64] }
      : { typ: 'JWT', alg: 'RS256', kid: key.kid };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud,
      exp: now + lifetime,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
  };

  const answer = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const tokenBody = (token: string, refreshToken?: string): Record<string, unknown> => ({
    ...(opts.response === 'access_token' ? {} : { token }),
    ...(opts.response === 'token' ? {} : { access_token: token }),
    ...(opts.omitExpiry ? {} : { expires_in: expiresIn, issued_at: new Date().toISOString() }),
    ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
  });

  const newRefreshToken = (user: string): string => {
    const token = `berth-refresh-${randomBytes(16).toString('hex')}`;
    refresh.set(token, user);
    issued.push(token);
    return token;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record = (entry: Omit<TokenRequest, 'at' | 'method'>) =>
      log.push({ at: Date.now(), method: req.method === 'POST' ? 'POST' : 'GET', ...entry });
    if (url.pathname !== '/token') return answer(res, 404, { error: 'not found' });

    if (req.method === 'GET') {
      const service = url.searchParams.get('service') ?? '';
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
      const offline = url.searchParams.get('offline_token') === 'true';
      const clientId = url.searchParams.get('client_id') ?? undefined;
      const auth = req.headers.authorization;
      let user: string | undefined;
      if (auth !== undefined) {
        const match = /^Basic\s+(.+)$/i.exec(auth);
        const [name = '', ...rest] = Buffer.from(match?.[1] ?? '', 'base64').toString('utf8').split(':');
        if (match === null || opts.users[name] === undefined || opts.users[name] !== rest.join(':')) {
          record({ grant: 'rejected', user: name, service, scopes, granted: [], status: 401, offline, clientId });
          return answer(res, 401, { details: 'incorrect username or password' }, {
            'www-authenticate': 'Basic realm="berth-test-token"',
          });
        }
        user = name;
      }
      const granted = grantFor(user, scopes.map(parseScope).filter((s): s is Access => s !== undefined));
      const refreshToken = offline && user !== undefined ? newRefreshToken(user) : undefined;
      record({ grant: user === undefined ? 'anonymous' : 'basic', user, service, scopes, granted, status: 200, offline, clientId });
      return answer(res, 200, tokenBody(jwt(user, granted, service), refreshToken));
    }

    if (req.method === 'POST') {
      if (opts.oauth === false) return answer(res, 404, { error: 'not found' });
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const service = form.get('service') ?? '';
      const scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
      const offline = form.get('access_type') === 'offline';
      const clientId = form.get('client_id') ?? undefined;
      const grantType = form.get('grant_type');
      let user: string | undefined;
      if (grantType === 'password') {
        const name = form.get('username') ?? '';
        if (opts.users[name] !== undefined && opts.users[name] === form.get('password')) user = name;
        else {
          record({ grant: 'rejected', user: name, service, scopes, granted: [], status: 401, offline, clientId });
          return answer(res, 401, { error: 'invalid_grant', error_description: 'incorrect username or password' });
        }
      } else if (grantType === 'refresh_token') {
        user = refresh.get(form.get('refresh_token') ?? '');
        if (user === undefined) {
          record({ grant: 'rejected', service, scopes, granted: [], status: 401, offline, clientId });
          return answer(res, 401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
        }
      } else {
        record({ grant: 'rejected', service, scopes, granted: [], status: 400, offline, clientId });
        return answer(res, 400, { error: 'unsupported_grant_type' });
      }
      const granted = grantFor(user, scopes.map(parseScope).filter((s): s is Access => s !== undefined));
      const refreshToken = offline && grantType === 'password' ? newRefreshToken(user) : undefined;
      record({ grant: grantType, user, service, scopes, granted, status: 200, offline, clientId });
      return answer(res, 200, { ...tokenBody(jwt(user, granted, service), refreshToken), scope: scopes.join(' ') });
    }
    return answer(res, 405, { error: 'method not allowed' });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => answer(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPem: key.certPem,
    kid: key.kid,
    requests: () => [...log],
    clearRequests: () => void log.splice(0),
    issuedRefreshTokens: () => [...issued],
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
