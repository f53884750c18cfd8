/**
 * Registry credentials from a containers-auth.json(5) file or a Docker config.json (`auths`), looked
 * up as containers/image's pkg/docker/config does (findCredentialsInFile): the most specific key first
 * (host/ns/repo, host/ns, host), then keys normalized from legacy URL forms such as
 * `https://index.docker.io/v1/`. The secrets live in a module-private map, never on the object, so
 * logging or serializing an AuthFile shows host names only; error messages name keys, never values.
 */
import { readFile } from 'node:fs/promises';
import type { Credentials } from './credentials.js';

/** A loaded auth file; holds no secret itself (see credentialsFor). */
export interface AuthFile {
  /** Path (or label) of the file, for messages. */
  readonly source: string;
  /** Registry host names that have credentials, sorted; docker.io for Docker Hub. */
  readonly hosts: readonly string[];
  /** Settings berth read but does not act on (credential helpers). */
  readonly warnings: readonly string[];
}

/** An auth file that cannot be used; the message names the file and the key, never a secret. */
export class AuthFileError extends Error {
  override readonly name = 'AuthFileError';
  readonly code = 'AUTH_FILE_INVALID';

  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** Entries by key as written in the file; undefined marks an entry with no usable credentials. */
const secrets = new WeakMap<AuthFile, ReadonlyMap<string, Credentials | undefined>>();

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Docker Hub's several names all mean index.docker.io for matching (normalizeRegistry). */
function normalizeRegistry(registry: string): string {
  return registry === 'registry-1.docker.io' || registry === 'docker.io' ? 'index.docker.io' : registry;
}

/** A key as a registry host: URL forms lose scheme and path, as normalizeAuthFileKey does. */
function normalizeKey(key: string): string {
  const stripped = key.replace(/^https?:\/\//, '');
  return normalizeRegistry(stripped === key ? key : stripped.split('/', 1)[0]!);
}

/** Reads one `auths` entry; undefined for entries Docker leaves empty when a helper holds the secret. */
function entryCredentials(file: string, key: string, entry: unknown, warnings: string[]): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new AuthFileError(file, `entry "${key}" must be an object`);
  const fields = entry as Record<string, unknown>;
  const text = (name: string): string => {
    const value = fields[name];
    if (value !== undefined && value !== null && typeof value !== 'string') throw new AuthFileError(file, `"${name}" of entry "${key}" must be a string`);
    return (value as string | null | undefined) ?? '';
  };
  const [auth, username, password, identityToken, registryToken] = ['auth', 'username', 'password', 'identitytoken', 'registrytoken'].map(text);
  // containers/image sends the identity token (an OAuth2 refresh token) instead of user and password when set.
  if (identityToken) return { identityToken };
  if (registryToken) return { registryToken };
  if (auth) {
    if (!BASE64_RE.test(auth)) throw new AuthFileError(file, `"auth" of entry "${key}" is not valid base64`);
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) {
      // Skipped, as docker and containers/image do.
      warnings.push(`entry "${key}": "auth" does not decode to username:password and is ignored`);
      return undefined;
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
  }
  // Docker's AuthConfig also reads plain username and password fields.
  if (username && password) return { username, password };
  return undefined;
}

/** Parses containers-auth.json(5) / Docker config.json text. */
export function parseAuthFile(text: string, source = 'auth file'): AuthFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // JSON.parse messages quote the text around the fault, which may be a secret: report a position only.
    const position = /position (\d+)/.exec(String(err))?.[1];
    let where = '';
    if (position !== undefined) {
      const before = text.slice(0, Number(position)).split('\n');
      where = ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
    }
    throw new AuthFileError(source, `is not valid JSON${where}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new AuthFileError(source, 'must be a JSON object with "auths"');
  const { auths, credHelpers, credsStore } = doc as Record<string, unknown>;
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new AuthFileError(source, '"auths" must be an object of registry → credentials');
  }
  const warnings: string[] = [];
  const entries = new Map<string, Credentials | undefined>();
  for (const [key, entry] of Object.entries((auths ?? {}) as Record<string, unknown>)) {
    entries.set(key, entryCredentials(source, key, entry, warnings));
  }
  if (credHelpers && typeof credHelpers === 'object') {
    for (const host of Object.keys(credHelpers)) warnings.push(`credHelpers entry "${host}" is ignored: berth runs no credential helper`);
  }
  if (credsStore) warnings.push('credsStore is ignored: berth runs no credential helper');
  const hosts = new Set<string>();
  for (const [key, credentials] of entries) {
    if (!credentials) continue;
    const host = normalizeKey(key).split('/', 1)[0]!;
    hosts.add(host === 'index.docker.io' ? 'docker.io' : host);
  }
  const file: AuthFile = Object.freeze({ source, hosts: Object.freeze([...hosts].sort()), warnings: Object.freeze(warnings) });
  secrets.set(file, entries);
  return file;
}

/** Reads and parses an auth file (AUTH_FILE). */
export async function loadAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AuthFileError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`);
  }
  return parseAuthFile(text, path);
}

/**
 * Credentials for `registry` (the domain as in the reference: docker.io, 127.0.0.1:5000; for a mirror,
 * the mirror's host) and `repository` (its path there). Keys are tried from the most specific
 * (host/ns/repo, host/ns, host), then legacy URL keys; the first key present decides, even when its
 * entry is empty, as in containers/image.
 */
export function credentialsFor(authFile: AuthFile, registry: string, repository: string): Credentials | undefined {
  const entries = secrets.get(authFile);
  if (!entries) return undefined;
  let key = repository ? `${registry}/${repository}` : registry;
  for (;;) {
    if (entries.has(key)) return entries.get(key);
    const slash = key.lastIndexOf('/');
    if (slash === -1) break;
    key = key.slice(0, slash);
  }
  const normalized = normalizeRegistry(registry);
  for (const [candidate, credentials] of entries) {
    if (normalizeKey(candidate) === normalized) return credentials;
  }
  return undefined;
}

/** What GET /v1/registries may show of an auth file: its path, host names and warnings. */
export function describeAuthFile(authFile: AuthFile | undefined): Record<string, unknown> {
  if (!authFile) return { configured: false, hosts: [] };
  return { configured: true, file: authFile.source, hosts: [...authFile.hosts], warnings: [...authFile.warnings] };
}
