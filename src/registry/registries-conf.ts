/**
 * containers-registries.conf(5), version 2: what an effective configuration says, and how a name finds
 * its `[[registry]]` by prefix, following containers/image's pkg/sysregistriesv2 (refMatchingPrefix,
 * FindRegistry, rewriteReference). Files are read and merged in registries-conf-load.ts.
 */

/** `pull-from-mirror` of a `[[registry.mirror]]`. */
export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

/** `short-name-mode`; berth never has a TTY, so `enforcing` fails on ambiguity as podman does without one. */
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

/** One `[[registry.mirror]]` table. */
export interface MirrorEntry {
  location: string;
  insecure: boolean;
  /** Effective value: `digest-only` when the registry sets `mirror-by-digest-only`. */
  pullFromMirror: PullFromMirror;
}

/** One `[[registry]]` table, validated and normalized. */
export interface RegistryEntry {
  /** `host[:port][/namespace…]` or `*.host`; defaults to `location`. */
  prefix: string;
  /** Physical location of the prefix-rooted namespace; '' only for a wildcard prefix (no rewrite). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
  /** The file this table came from. */
  file: string;
}

/** A short-name alias: the fully-qualified, normalized name (`domain/path`) and where it was set. */
export interface ShortNameAlias {
  value: string;
  file: string;
}

/** The effective configuration of a registries.conf file and its drop-ins. */
export interface RegistriesConf {
  files: string[];
  /** undefined when no file sets `unqualified-search-registries` (then short names mean docker.io). */
  unqualifiedSearchRegistries: string[] | undefined;
  unqualifiedSearchRegistriesOrigin: string | undefined;
  /** One entry per prefix, sorted by prefix, as sysregistriesv2 keeps them. */
  registries: RegistryEntry[];
  aliases: ReadonlyMap<string, ShortNameAlias>;
  shortNameMode: ShortNameMode;
  /** Parsed only: berth reads credentials from AUTH_FILE and runs no helper. */
  credentialHelpers: string[];
  /** Settings berth parsed but does not act on. */
  warnings: string[];
}

/** A registries.conf that cannot be used; the message is `file:line: reason`. */
export class RegistriesConfError extends Error {
  override readonly name = 'RegistriesConfError';
  readonly code = 'REGISTRIES_CONF_INVALID';

  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
    readonly column?: number,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}${column === undefined ? '' : `:${column}`}: ${reason}`);
  }
}

/**
 * Length of `prefix` matched at the start of `ref` ('domain/path', optionally with :tag or @digest),
 * or -1. Matches end at a separator: `example.com/foo` matches `example.com/foo/bar`, not
 * `example.com/foobar`; `*.example.com` matches subdomains only (sysregistriesv2 refMatchingPrefix).
 */
export function refMatchingPrefix(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1);
    const index = ref.indexOf(suffix);
    if (index === -1 || ref.slice(0, index).includes('/')) return -1;
    const end = index + suffix.length;
    return end === ref.length || ':/@'.includes(ref[end]!) ? end : -1;
  }
  if (ref.length < prefix.length || !ref.startsWith(prefix)) return -1;
  if (ref.length === prefix.length) return prefix.length;
  // Like sysregistriesv2 this lets `example.com:5000` match prefix `example.com` (documented there as unintended).
  return ':/@'.includes(ref[prefix.length]!) ? prefix.length : -1;
}

/** The `[[registry]]` with the longest prefix matching `ref` ('domain/path'), as FindRegistry. */
export function findRegistry(conf: RegistriesConf, ref: string): RegistryEntry | undefined {
  let found: RegistryEntry | undefined;
  for (const entry of conf.registries) {
    // Strictly longer wins; on equal length the first in prefix order stays, as in sysregistriesv2.
    if (refMatchingPrefix(ref, entry.prefix) !== -1 && entry.prefix.length > (found?.prefix.length ?? 0)) found = entry;
  }
  return found;
}

/**
 * `name` ('domain/path') with the matched `prefix` replaced by `location` (Endpoint.rewriteReference);
 * an empty location (wildcard prefix) leaves the name as it is.
 */
export function rewriteName(name: string, prefix: string, location: string): string {
  const matched = refMatchingPrefix(name, prefix);
  if (matched === -1) throw new Error(`invalid prefix '${prefix}' for reference '${name}'`);
  return location === '' ? name : location + name.slice(matched);
}
