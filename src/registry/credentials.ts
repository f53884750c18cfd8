/**
 * Registry credentials in the forms the CRI (Kubernetes' AuthConfig message) and docker's config.json
 * use. Secrets never leave this module in readable form except as the HTTP header built from them;
 * cache keys use a fingerprint, and error messages name fields, never values.
 */
import { createHash } from 'node:crypto';
import { RegistryError } from './errors.js';

/** Credentials for one registry: user and password, an OAuth2 identity (refresh) token, or a bearer token. */
export type Credentials =
  | { username: string; password: string }
  | { identityToken: string }
  | { registryToken: string };

/** Field names accepted by parseCriAuth, camelCase (CRI's JSON) and snake_case (its proto names). */
const FIELDS: Record<string, string> = {
  username: 'username',
  password: 'password',
  auth: 'auth',
  identityToken: 'identityToken',
  identity_token: 'identityToken',
  registryToken: 'registryToken',
  registry_token: 'registryToken',
  serverAddress: 'serverAddress',
  server_address: 'serverAddress',
};

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function bad(why: string): RegistryError {
  return new RegistryError('INVALID_CREDENTIALS', `invalid credentials: ${why}`);
}

/** Decodes docker's `auth` field: base64 (standard alphabet, padded) of `user:password`. */
function decodeAuth(auth: string): { username: string; password: string } {
  if (!BASE64_RE.test(auth)) throw bad('"auth" is not valid base64 of "username:password"');
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(auth, 'base64'));
  } catch {
    throw bad('"auth" does not decode to UTF-8 text');
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) throw bad('"auth" must decode to "username:password" but has no ":"');
  const username = decoded.slice(0, colon);
  if (username === '') throw bad('the username in "auth" is empty');
  return { username, password: decoded.slice(colon + 1) };
}

/**
 * Reads a CRI AuthConfig-shaped value: `{ username, password }`, `{ auth: base64("user:pass") }`,
 * `{ identityToken }` or `{ registryToken }`, each optionally with `serverAddress` (ignored: the target
 * registry is decided by the reference). Returns undefined for absent or empty input (anonymous).
 * Throws INVALID_CREDENTIALS saying what is wrong: unknown fields, mixed forms, bad base64, empty user.
 */
export function parseCriAuth(body: unknown): Credentials | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('expected an object');
  // Empty strings count as absent (CRI sends every field), except an empty password next to a user.
  const fields: Record<string, string> = {};
  let emptyPassword = false;
  for (const [key, value] of Object.entries(body)) {
    const field = FIELDS[key];
    if (field === undefined) {
      throw bad(`unknown field "${key}" (expected username and password, auth, identityToken or registryToken)`);
    }
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw bad(`"${key}" must be a string`);
    if (field in fields) throw bad(`"${field}" is given twice (camelCase and snake_case)`);
    if (value !== '') fields[field] = value;
    else if (field === 'password') emptyPassword = true;
  }
  const hasUserPass = 'username' in fields || 'password' in fields;
  const forms = [hasUserPass && 'username/password', 'auth' in fields && 'auth', 'identityToken' in fields && 'identityToken', 'registryToken' in fields && 'registryToken'].filter(
    (f): f is string => typeof f === 'string',
  );
  if (forms.length > 1) throw bad(`give one form of credentials, not ${forms.join(' and ')}`);
  const { username, password, auth, identityToken, registryToken } = fields;
  if (hasUserPass) {
    if (username === undefined) throw bad('"password" is given without "username"');
    if (password === undefined && !emptyPassword) throw bad('"username" is given without "password"');
    return { username, password: password ?? '' };
  }
  if (auth !== undefined) return decodeAuth(auth);
  if (identityToken !== undefined) return { identityToken };
  if (registryToken !== undefined) return { registryToken };
  return undefined;
}

/** Which form credentials take, for messages and logs (never the values). */
export function credentialsKind(c: Credentials | undefined): 'anonymous' | 'basic' | 'identity-token' | 'registry-token' {
  if (c === undefined) return 'anonymous';
  if ('username' in c) return 'basic';
  if ('identityToken' in c) return 'identity-token';
  return 'registry-token';
}

/**
 * A SHA-256 hex fingerprint of credentials, to key caches per identity without holding the secret in
 * the key; `anonymous` for none.
 */
export function credentialsFingerprint(c: Credentials | undefined): string {
  if (c === undefined) return 'anonymous';
  // A JSON array is unambiguous whatever the secrets contain, so distinct credentials never collide.
  const canonical = JSON.stringify(
    'username' in c ? ['basic', c.username, c.password] : 'identityToken' in c ? ['identity', c.identityToken] : ['registry', c.registryToken],
  );
  return createHash('sha256').update(canonical).digest('hex');
}

/** The `Authorization: Basic` header value for a user and password (RFC 7617, UTF-8). */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
