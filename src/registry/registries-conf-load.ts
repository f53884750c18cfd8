/**
 * Reads registries.conf files into an effective configuration, following containers/image's
 * pkg/sysregistriesv2 (loadConfigFile, updateWithConfigurationFrom): TOML parsed, top-level keys
 * checked, drop-ins merged. Errors name the file, the line and the reason, so an operator can fix them.
 */
import { readdir, readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { RegistriesConfError, type RegistriesConf, type RegistryEntry, type ShortNameAlias, type ShortNameMode } from './registries-conf.js';
import {
  checkAliasName,
  DOMAIN_RE,
  Invalid,
  optional,
  parseAliasValue,
  parseLocation,
  parseRegistry,
  stringList,
  tables,
  within,
  type Spot,
  type Table,
} from './registries-conf-tables.js';

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
