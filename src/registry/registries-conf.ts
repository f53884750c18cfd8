/**
 * containers-registries.conf(5), version 2: parsing, validation, drop-in merging and prefix matching,
 * following containers/image's pkg/sysregistriesv2 (postProcessRegistries, refMatchingPrefix,
 * FindRegistry, rewriteReference, loadConfigFile, updateWithConfigurationFrom) and its shortnames.go
 * for `[aliases]`. Errors name the file, the line and the reason, so an operator can fix them.
 */
import { readdir, readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { formatName, parseReference } from './reference.js';

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

// Grammar of distribution/reference (regexp.go), which sysregistriesv2 validates against.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
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
function parseLocation(input: string, what: string): string {
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

/** A semantic error; `spot` says where, and becomes a line number in RegistriesConfError. */
class Invalid extends Error {
  constructor(
    message: string,
    public spot?: Spot,
  ) {
    super(message);
  }
}

/** Runs `fn`, attributing any Invalid it throws without a spot to `spot`. */
function within<T>(spot: Spot, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Invalid) err.spot ??= spot;
    throw err;
  }
}

type Table = Record<string, unknown>;

/** What one file sets; undefined fields were not set (drop-ins only override what they set). */
interface FileConf {
  file: string;
  registries: RegistryEntry[];
  unqualifiedSearchRegistries?: string[];
  shortNameMode?: ShortNameMode;
  credentialHelpers?: string[];
  aliases: Map<string, string | null>;
  warnings: string[];
}

const TOP_KEYS = new Set([
  'unqualified-search-registries',
  'registry',
  'aliases',
  'short-name-mode',
  'credential-helpers',
  'additional-layer-store-auth-helper',
]);
const REGISTRY_KEYS = new Set(['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror', 'proxy', 'pull-from-mirror']);
const MIRROR_KEYS = new Set(['location', 'insecure', 'pull-from-mirror', 'proxy']);

/** Where in the file: a top-level key, a key of the Nth [[registry]] or of its Mth mirror, or an alias. */
interface Spot {
  registry?: number;
  mirror?: number;
  aliases?: boolean;
  key?: string;
}

/** Finds the line of a key or table header in the TOML source, for semantic errors. */
function lineOf(text: string, spot: Spot): number | undefined {
  const lines = text.split(/\r?\n/);
  let section = 'root';
  let registry = -1;
  let mirror = -1;
  const want =
    spot.mirror !== undefined ? `mirror:${spot.registry}:${spot.mirror}`
    : spot.registry !== undefined ? `registry:${spot.registry}`
    : spot.aliases ? 'aliases'
    : 'root';
  let header: number | undefined;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const table = /^\[(\[?)\s*([^\]]+?)\s*\]\]?/.exec(line);
    if (table) {
      const name = table[2]!.split('.').map((part) => part.trim().replace(/^["']|["']$/g, '')).join('.');
      if (table[1] && name === 'registry') {
        registry += 1;
        mirror = -1;
        section = `registry:${registry}`;
      } else if (table[1] && name === 'registry.mirror') {
        mirror += 1;
        section = `mirror:${registry}:${mirror}`;
      } else {
        section = name === 'aliases' ? 'aliases' : `other:${name}`;
      }
      if (section === want) header = i + 1;
      continue;
    }
    if (section !== want || spot.key === undefined) continue;
    const key = /^(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=/.exec(line);
    if (key && (key[1] ?? key[2] ?? key[3]) === spot.key) return i + 1;
  }
  return header;
}

function fail(text: string, file: string, spot: Spot, reason: string): never {
  throw new RegistriesConfError(file, lineOf(text, spot), reason);
}

function optional<T>(table: Table, key: string, type: 'string' | 'boolean', fallback: T): T {
  const value = table[key];
  if (value === undefined) return fallback;
  if (typeof value !== type) throw new Invalid(`'${key}' must be a ${type}`);
  return value as T;
}

function stringList(table: Table, key: string): string[] | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Invalid(`'${key}' must be an array of strings`);
  return value as string[];
}

function tables(value: unknown, key: string): Table[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw new Invalid(`'${key}' must be an array of tables ([[${key}]])`);
  }
  return value as Table[];
}

/** Parses one `[[registry]]` table (the Nth) as postProcessRegistries does. */
function parseRegistry(table: Table, n: number, file: string, warn: (spot: Spot, text: string) => void): RegistryEntry {
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
function checkAliasName(name: string): void {
  if (name.includes('@')) throw new Invalid(`invalid short name '${name}': must not contain digest`);
  if (name.includes(':')) throw new Invalid(`invalid short name '${name}': must not contain tag`);
  if (!PATH_RE.test(name) || name.length > 255) throw new Invalid(`invalid short name '${name}': not a valid image name`);
  if (name.includes('/') && looksLikeHost(name.split('/')[0]!)) throw new Invalid(`invalid short name '${name}': must not contain registry`);
}

/** Validates and normalizes an alias value: fully qualified, no tag or digest (parseShortNameValue). */
function parseAliasValue(value: string): string {
  if (value.includes('@')) throw new Invalid(`invalid alias '${value}': must not contain digest`);
  if (/\/[^/]*:/.test(value)) throw new Invalid(`invalid alias '${value}': must not contain tag`);
  const slash = value.indexOf('/');
  if (slash === -1 || !looksLikeHost(value.slice(0, slash)) || !NAME_RE.test(value)) {
    throw new Invalid(`invalid alias '${value}': must contain registry and repository`);
  }
  // docker.io/alpine becomes docker.io/library/alpine, as ParseNormalizedNamed does.
  return formatName(parseReference(value, { defaultTag: false }));
}

function parseFile(text: string, file: string): FileConf {
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      throw new RegistriesConfError(file, err.line, `invalid TOML: ${reason}`, err.column);
    }
    throw err;
  }
  const conf: FileConf = { file, registries: [], aliases: new Map(), warnings: [] };
  const warn = (spot: Spot, message: string): void => {
    const line = lineOf(text, spot);
    conf.warnings.push(`${file}${line === undefined ? '' : `:${line}`}: ${message}`);
  };
  const run = <T>(spot: Spot, fn: () => T): T => {
    try {
      return within(spot, fn);
    } catch (err) {
      if (err instanceof Invalid) fail(text, file, err.spot ?? spot, err.message);
      throw err;
    }
  };
  if (doc.registries !== undefined) {
    const line = lineOf(text, { key: 'registries' }) ?? text.split(/\r?\n/).findIndex((l) => /^\s*\[+\s*registries\b/.test(l)) + 1;
    throw new RegistriesConfError(
      file,
      line || undefined,
      'the v1 format ([registries.search], [registries.insecure], [registries.block]) is not supported; ' +
        'use the v2 format: unqualified-search-registries = [...] and [[registry]] tables (containers-registries.conf(5))',
    );
  }
  for (const key of Object.keys(doc)) if (!TOP_KEYS.has(key)) warn({ key }, `unknown key '${key}' is ignored`);

  const search = run({ key: 'unqualified-search-registries' }, () => stringList(doc, 'unqualified-search-registries'));
  if (search) {
    conf.unqualifiedSearchRegistries = search.map((entry) =>
      run({ key: 'unqualified-search-registries' }, () => {
        const registry = parseLocation(entry, 'unqualified-search-registries entry');
        if (!DOMAIN_RE.test(registry)) throw new Invalid(`invalid unqualified-search-registries entry '${registry}': expected host[:port]`);
        return registry;
      }),
    );
  }
  const mode = run({ key: 'short-name-mode' }, () => optional(doc, 'short-name-mode', 'string', ''));
  if (mode !== '') {
    if (mode !== 'enforcing' && mode !== 'permissive' && mode !== 'disabled') {
      fail(text, file, { key: 'short-name-mode' }, `invalid short-name-mode '${mode}' (enforcing, permissive or disabled)`);
    }
    conf.shortNameMode = mode;
  }
  conf.credentialHelpers = run({ key: 'credential-helpers' }, () => stringList(doc, 'credential-helpers'));
  if (conf.credentialHelpers?.some((h) => h !== 'containers-auth.json')) {
    warn({ key: 'credential-helpers' }, 'credential helpers are not run by berth; credentials come from AUTH_FILE only');
  }
  if (doc['additional-layer-store-auth-helper'] !== undefined) {
    warn({ key: 'additional-layer-store-auth-helper' }, 'additional-layer-store-auth-helper does not apply to berth and is ignored');
  }

  const registries = run({ key: 'registry' }, () => tables(doc.registry, 'registry'));
  const byLocation = new Map<string, RegistryEntry>();
  for (const [i, table] of registries.entries()) {
    const entry = run({ registry: i }, () => parseRegistry(table, i, file, warn));
    // A location may appear in several tables (several prefixes) but must agree on insecure and blocked.
    const key = entry.location === '' ? entry.prefix : entry.location;
    const other = byLocation.get(key);
    for (const setting of ['insecure', 'blocked'] as const) {
      if (other && other[setting] !== entry[setting]) {
        fail(text, file, { registry: i, key: setting }, `registry '${key}' is defined multiple times with conflicting '${setting}' setting`);
      }
    }
    byLocation.set(key, entry);
    // The first table of a prefix wins; later ones with the same prefix are ignored (postProcessRegistries).
    if (!conf.registries.some((r) => r.prefix === entry.prefix)) conf.registries.push(entry);
  }

  const aliases = doc.aliases;
  if (aliases !== undefined) {
    if (typeof aliases !== 'object' || aliases === null || Array.isArray(aliases)) fail(text, file, { key: 'aliases' }, "'aliases' must be a table");
    for (const [name, value] of Object.entries(aliases as Table)) {
      const spot: Spot = { aliases: true, key: name };
      run(spot, () => checkAliasName(name));
      if (typeof value !== 'string') fail(text, file, spot, `alias '${name}' must be a string`);
      // An empty value erases an alias set by an earlier file (containers-registries.conf(5)).
      conf.aliases.set(name, value === '' ? null : run(spot, () => parseAliasValue(value)));
    }
  }
  return conf;
}

/** Merges files in order, later files overriding what they set (updateWithConfigurationFrom). */
function merge(files: FileConf[]): RegistriesConf {
  const registries = new Map<string, RegistryEntry>();
  const aliases = new Map<string, ShortNameAlias>();
  const conf: RegistriesConf = {
    files: files.map((f) => f.file),
    unqualifiedSearchRegistries: undefined,
    unqualifiedSearchRegistriesOrigin: undefined,
    registries: [],
    aliases,
    shortNameMode: 'permissive',
    credentialHelpers: ['containers-auth.json'],
    warnings: [],
  };
  for (const file of files) {
    for (const entry of file.registries) registries.set(entry.prefix, entry);
    if (file.unqualifiedSearchRegistries) {
      conf.unqualifiedSearchRegistries = file.unqualifiedSearchRegistries;
      conf.unqualifiedSearchRegistriesOrigin = file.file;
    }
    if (file.shortNameMode) conf.shortNameMode = file.shortNameMode;
    // Set in a later file replaces, and an empty list means the default again (tryUpdatingCache).
    if (file.credentialHelpers) conf.credentialHelpers = file.credentialHelpers.length ? file.credentialHelpers : ['containers-auth.json'];
    for (const [name, value] of file.aliases) {
      if (value === null) aliases.delete(name);
      else aliases.set(name, { value, file: file.file });
    }
    conf.warnings.push(...file.warnings);
  }
  conf.registries = [...registries.keys()].sort().map((prefix) => registries.get(prefix)!);
  return conf;
}

/** Parses one registries.conf v2 document; `file` is used in error messages. */
export function parseRegistriesConf(text: string, file: string): RegistriesConf {
  return merge([parseFile(text, file)]);
}

async function read(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new RegistriesConfError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Loads a registries.conf and the `*.conf` drop-ins of `<file>.d` (for /etc/containers/registries.conf:
 * /etc/containers/registries.conf.d), merged in alphabetical order as sysregistriesv2 does.
 */
export async function loadRegistriesConf(file: string): Promise<RegistriesConf> {
  const files = [parseFile(await read(file), file)];
  const dir = `${file}.d`;
  let names: string[] = [];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.filter((e) => !e.isDirectory() && e.name.endsWith('.conf')).map((e) => e.name).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new RegistriesConfError(dir, undefined, `cannot read drop-in directory: ${code}`);
  }
  for (const name of names) {
    const dropIn = `${dir}/${name}`;
    files.push(parseFile(await read(dropIn), dropIn));
  }
  return merge(files);
}
