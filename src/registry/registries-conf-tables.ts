/**
 * The values of a registries.conf document checked and normalized as containers/image's
 * sysregistriesv2 does (postProcessRegistries, parseLocation) and its shortnames.go for `[aliases]`:
 * typed keys, prefixes and locations, `[[registry]]` tables with their mirrors, alias names and values.
 * A failure is an Invalid naming the spot it concerns, which the loader turns into a line number.
 */
import { formatName, parseReference } from './reference.js';
import type { MirrorEntry, PullFromMirror, RegistryEntry } from './registries-conf.js';

// Grammar of distribution/reference (regexp.go), which sysregistriesv2 validates against.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
/** A registry host, `host[:port]` (distribution/reference's domain). */
export const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const NAME_RE = new RegExp(`^${DOMAIN}(?:/${PATH_COMPONENT})*$`);

/** True for a repository path such as `library/alpine` (no domain, tag or digest). */
export function isRepositoryPath(value: string): boolean {
  return PATH_RE.test(value);
}

/** A first name component that is a registry host, as distribution/reference decides it. */
function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** Trailing slashes stripped, URI schemes rejected (sysregistriesv2's parseLocation). */
export function parseLocation(input: string, what: string): string {
  const trimmed = input.replace(/\/+$/, '');
  if (/^https?:\/\//.test(trimmed)) throw new Invalid(`invalid ${what} '${input}': URI schemes are not supported`);
  return trimmed;
}

/** Checks `host[:port][/namespace…]`: no tag, digest or wildcard (man page, "prefix" formats). */
function checkName(value: string, what: string): void {
  if (value.includes('*')) {
    throw new Invalid(`invalid ${what} '${value}': a wildcard is only allowed as a leading '*.' of a prefix`);
  }
  if (value.includes('@')) throw new Invalid(`invalid ${what} '${value}': must not contain a digest`);
  if (/\/[^/]*:/.test(value)) throw new Invalid(`invalid ${what} '${value}': must not contain a tag`);
  if (!NAME_RE.test(value)) throw new Invalid(`invalid ${what} '${value}': expected host[:port][/namespace…]`);
  if (!looksLikeHost(value.split('/')[0]!)) {
    throw new Invalid(`invalid ${what} '${value}': must start with a registry host (with a '.' or a ':port', or localhost)`);
  }
}

/** Checks a prefix: `host[:port][/namespace…]` or `*.host` (man page; loadConfigFile's wildcard check). */
function checkPrefix(prefix: string): void {
  if (!prefix.startsWith('*.')) return checkName(prefix, 'prefix');
  if (/[/@:]/.test(prefix) || !DOMAIN_RE.test(prefix.slice(2))) {
    throw new Invalid(`wildcarded prefix should be in the format *.example.com; prefix '${prefix}' is incorrectly formatted`);
  }
}

/** Where in the file: a top-level key, a key of the Nth [[registry]] or of its Mth mirror, or an alias. */
export interface Spot {
  registry?: number;
  mirror?: number;
  aliases?: boolean;
  key?: string;
}

/** A semantic error; `spot` says where, and becomes a line number in RegistriesConfError. */
export class Invalid extends Error {
  constructor(
    message: string,
    public spot?: Spot,
  ) {
    super(message);
  }
}

/** Runs `fn`, attributing any Invalid it throws without a spot to `spot`. */
export function within<T>(spot: Spot, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Invalid) err.spot ??= spot;
    throw err;
  }
}

/** A TOML table as parsed. */
export type Table = Record<string, unknown>;

/** `table[key]` when it has the given type, `fallback` when unset. */
export function optional<T>(table: Table, key: string, type: 'string' | 'boolean', fallback: T): T {
  const value = table[key];
  if (value === undefined) return fallback;
  if (typeof value !== type) throw new Invalid(`'${key}' must be a ${type}`);
  return value as T;
}

/** `table[key]` when it is an array of strings, undefined when unset. */
export function stringList(table: Table, key: string): string[] | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Invalid(`'${key}' must be an array of strings`);
  return value as string[];
}

/** `value` when it is an array of tables (`[[key]]`), [] when unset. */
export function tables(value: unknown, key: string): Table[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw new Invalid(`'${key}' must be an array of tables ([[${key}]])`);
  }
  return value as Table[];
}

const REGISTRY_KEYS = new Set(['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror', 'proxy', 'pull-from-mirror']);
const MIRROR_KEYS = new Set(['location', 'insecure', 'pull-from-mirror', 'proxy']);

/** Parses one `[[registry]]` table (the Nth) as postProcessRegistries does. */
export function parseRegistry(table: Table, n: number, file: string, warn: (spot: Spot, text: string) => void): RegistryEntry {
  const at = (key: string, mirror?: number): Spot => ({ registry: n, mirror, key });
  for (const key of Object.keys(table)) if (!REGISTRY_KEYS.has(key)) warn(at(key), `unknown key '${key}' in [[registry]] is ignored`);
  const location = within(at('location'), () => parseLocation(optional(table, 'location', 'string', ''), 'location'));
  let prefix = within(at('prefix'), () => parseLocation(optional(table, 'prefix', 'string', ''), 'prefix'));
  const insecure = within(at('insecure'), () => optional(table, 'insecure', 'boolean', false));
  const blocked = within(at('blocked'), () => optional(table, 'blocked', 'boolean', false));
  const mirrorByDigestOnly = within(at('mirror-by-digest-only'), () => optional(table, 'mirror-by-digest-only', 'boolean', false));
  within(at(prefix === '' ? 'location' : 'prefix'), () => {
    if (prefix === '') {
      if (location === '') throw new Invalid('invalid condition: both location and prefix are unset');
      prefix = location;
    } else if (!prefix.startsWith('*.') && location === '') {
      throw new Invalid('invalid condition: location is unset and prefix is not in the format: *.example.com');
    }
    checkPrefix(prefix);
  });
  if (location !== '') within(at('location'), () => checkName(location, 'location'));
  if (table['pull-from-mirror'] !== undefined) {
    throw new Invalid(`pull-from-mirror must not be set for a non-mirror registry '${prefix}'`, at('pull-from-mirror'));
  }
  if (table.proxy !== undefined) warn(at('proxy'), `proxy of '${prefix}' is not supported by berth and is ignored`);
  const mirrors = within(at('mirror'), () => tables(table.mirror, 'registry.mirror')).map((mirror, m): MirrorEntry => {
    for (const key of Object.keys(mirror)) {
      if (!MIRROR_KEYS.has(key)) warn(at(key, m), `unknown key '${key}' in [[registry.mirror]] is ignored`);
    }
    const mirrorLocation = within(at('location', m), () => {
      const value = parseLocation(optional(mirror, 'location', 'string', ''), 'location');
      if (value === '') throw new Invalid('invalid condition: mirror location is unset');
      checkName(value, 'mirror location');
      return value;
    });
    const pull = within(at('pull-from-mirror', m), (): PullFromMirror | '' => {
      const value = optional(mirror, 'pull-from-mirror', 'string', '');
      if (mirrorByDigestOnly && value !== '') {
        throw new Invalid(
          `cannot set mirror usage mirror-by-digest-only for the registry ('${prefix}') and pull-from-mirror for per-mirror ('${mirrorLocation}') at the same time`,
        );
      }
      if (value !== '' && value !== 'all' && value !== 'digest-only' && value !== 'tag-only') {
        throw new Invalid(`unsupported pull-from-mirror value '${value}' for mirror '${mirrorLocation}' (all, digest-only or tag-only)`);
      }
      return value;
    });
    if (mirror.proxy !== undefined) warn(at('proxy', m), `proxy of mirror '${mirrorLocation}' is not supported by berth and is ignored`);
    return {
      location: mirrorLocation,
      insecure: within(at('insecure', m), () => optional(mirror, 'insecure', 'boolean', false)),
      // mirror-by-digest-only on the registry makes every mirror digest-only (PullSourcesFromReference).
      pullFromMirror: mirrorByDigestOnly ? 'digest-only' : pull === '' ? 'all' : pull,
    };
  });
  return { prefix, location, insecure, blocked, mirrorByDigestOnly, mirrors, file };
}

/** Validates an alias name: a short name without domain, tag or digest (validateShortName). */
export function checkAliasName(name: string): void {
  if (name.includes('@')) throw new Invalid(`invalid short name '${name}': must not contain digest`);
  if (name.includes(':')) throw new Invalid(`invalid short name '${name}': must not contain tag`);
  if (!PATH_RE.test(name) || name.length > 255) throw new Invalid(`invalid short name '${name}': not a valid image name`);
  if (name.includes('/') && looksLikeHost(name.split('/')[0]!)) throw new Invalid(`invalid short name '${name}': must not contain registry`);
}

/** Validates and normalizes an alias value: fully qualified, no tag or digest (parseShortNameValue). */
export function parseAliasValue(value: string): string {
  if (value.includes('@')) throw new Invalid(`invalid alias '${value}': must not contain digest`);
  if (/\/[^/]*:/.test(value)) throw new Invalid(`invalid alias '${value}': must not contain tag`);
  const slash = value.indexOf('/');
  if (slash === -1 || !looksLikeHost(value.slice(0, slash)) || !NAME_RE.test(value)) {
    throw new Invalid(`invalid alias '${value}': must contain registry and repository`);
  }
  // docker.io/alpine becomes docker.io/library/alpine, as ParseNormalizedNamed does.
  return formatName(parseReference(value, { defaultTag: false }));
}
