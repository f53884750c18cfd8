/**
 * Where a pull goes: short-name resolution (containers/image pkg/shortnames Resolve) and the ordered
 * endpoints of one reference (sysregistriesv2 PullSourcesFromReference: mirrors first, primary last).
 * Pure: it reads a parsed RegistriesConf and never touches the network.
 */
import { RegistryError } from './errors.js';
import { formatName, hasExplicitDomain, parseReference, registryHost, type ImageReference } from './reference.js';
import { findRegistry, rewriteName, type RegistriesConf } from './registries-conf.js';

/** One place to try, in order. */
export interface PullSource {
  /** host[:port] to contact; docker.io is mapped to registry-1.docker.io. */
  endpoint: string;
  /** Repository path at that endpoint, after the prefix → location rewrite. */
  repository: string;
  /** Tag or digest to ask for (the digest when the reference has both). */
  reference: string;
  /** From registries.conf; the caller ORs in its own insecure rules. */
  insecure: boolean;
  mirror: boolean;
  /** `domain/path` as a person would write it, e.g. mirror.local:5000/library/alpine. */
  display: string;
}

/** The sources of one reference, and whether its `[[registry]]` blocks it. */
export interface PullSources {
  blocked: boolean;
  /** Prefix of the `[[registry]]` table that matched, if any. */
  registryPrefix?: string;
  /** Empty when blocked. */
  sources: PullSource[];
}

/** The fully qualified references a (possibly short) name may be pulled from, in order. */
export interface ShortNameCandidates {
  candidates: ImageReference[];
  /** True when an `[aliases]` entry decided it. */
  alias?: boolean;
}

/**
 * Endpoints to try for `ref`: the matching registry's mirrors that apply (`pull-from-mirror`
 * digest-only mirrors only for digest references, tag-only ones only for tag references;
 * `mirror-by-digest-only` makes them all digest-only), then the primary location last.
 */
export function pullSources(conf: RegistriesConf | undefined, ref: ImageReference): PullSources {
  const name = formatName(ref);
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const entry = conf && findRegistry(conf, name);
  if (!entry) {
    return { blocked: false, sources: [{ endpoint: registryHost(ref.domain), repository: ref.path, reference, insecure: false, mirror: false, display: name }] };
  }
  if (entry.blocked) return { blocked: true, registryPrefix: entry.prefix, sources: [] };
  const digested = ref.digest !== undefined;
  const endpoints = [
    ...entry.mirrors
      .filter((m) => m.pullFromMirror === 'all' || (m.pullFromMirror === 'digest-only') === digested)
      .map((m) => ({ location: m.location, insecure: m.insecure, mirror: true })),
    { location: entry.location, insecure: entry.insecure, mirror: false },
  ];
  const sources = endpoints.map(({ location, insecure, mirror }): PullSource => {
    const rewritten = rewriteName(name, entry.prefix, location);
    let target: ImageReference;
    try {
      // A bare host (prefix rewritten to nothing) would otherwise read as a Docker Hub short name.
      if (!hasExplicitDomain(rewritten)) throw new Error(`"${rewritten}" has no repository after the host`);
      // Normalizes Docker Hub names (docker.io/alpine → docker.io/library/alpine) and validates the result.
      target = parseReference(rewritten, { defaultTag: false });
    } catch (err) {
      throw new RegistryError(
        'INVALID_REFERENCE',
        `registries.conf rewrites "${name}" (prefix "${entry.prefix}", location "${location}") to "${rewritten}", which is not a valid repository name`,
        { cause: err },
      );
    }
    return { endpoint: registryHost(target.domain), repository: target.path, reference, insecure, mirror, display: formatName(target) };
  });
  return { blocked: false, registryPrefix: entry.prefix, sources };
}

/** The search list when no file sets `unqualified-search-registries`: Docker's default registry. */
export const DEFAULT_SEARCH_REGISTRIES: readonly string[] = Object.freeze(['docker.io']);

/** The search list in effect: the configured one, or docker.io when none is configured. */
export function effectiveSearchRegistries(conf: RegistriesConf | undefined): readonly string[] {
  return conf?.unqualifiedSearchRegistries ?? DEFAULT_SEARCH_REGISTRIES;
}

/**
 * Fully qualified candidates for `input`. A name with an explicit domain is never searched. A short
 * name resolves through `[aliases]` first (tag or digest of the input kept), else through each
 * unqualified-search registry in order (docker.io adds `library/`). Without a registries.conf, or with
 * one that does not set the list, short names mean docker.io, as in Docker; only an explicitly empty
 * list makes a short name an error. berth has no TTY, so `short-name-mode = "enforcing"` with more
 * than one search registry fails, as podman does without a terminal.
 */
export function shortNameCandidates(conf: RegistriesConf | undefined, input: string): ShortNameCandidates {
  if (hasExplicitDomain(input)) return { candidates: [parseReference(input)] };
  parseReference(input); // validate before any lookup
  // Aliases are keyed by the bare name: "image", "image:tag" and "image@digest" share one.
  const at = input.indexOf('@');
  const colon = input.indexOf(':');
  const end = Math.min(at < 0 ? input.length : at, colon < 0 ? input.length : colon);
  const shortName = input.slice(0, end);
  const suffix = input.slice(end);

  const alias = conf?.aliases.get(shortName);
  if (alias) return { candidates: [parseReference(alias.value + suffix)], alias: true };

  const registries = effectiveSearchRegistries(conf);
  if (registries.length === 0) {
    const where = conf?.unqualifiedSearchRegistriesOrigin ?? conf?.files.join(', ');
    throw new RegistryError(
      'INVALID_REFERENCE',
      `short name "${input}" cannot be resolved: it matches no alias and unqualified-search-registries is empty in ${where}; ` +
        'use a fully qualified name such as docker.io/library/alpine:latest',
    );
  }
  if (conf?.shortNameMode === 'enforcing' && registries.length > 1) {
    throw new RegistryError(
      'INVALID_REFERENCE',
      `short name "${input}" is ambiguous: short-name-mode is "enforcing" and it could come from ${registries.join(', ')}; ` +
        'berth cannot prompt, so use a fully qualified name or add an alias in [aliases]',
    );
  }
  return { candidates: registries.map((registry) => parseReference(`${registry}/${input}`)) };
}

/** A JSON-safe view of the effective configuration, for GET /v1/registries (registries.conf holds no secrets). */
export function describeConf(conf: RegistriesConf | undefined): Record<string, unknown> {
  if (!conf) return { configured: false, unqualifiedSearchRegistries: ['docker.io'], shortNameMode: 'permissive', registries: [], aliases: {} };
  return {
    configured: true,
    files: conf.files,
    unqualifiedSearchRegistries: [...effectiveSearchRegistries(conf)],
    shortNameMode: conf.shortNameMode,
    registries: conf.registries.map(({ prefix, location, insecure, blocked, mirrorByDigestOnly, mirrors }) => ({
      prefix,
      location,
      insecure,
      blocked,
      mirrorByDigestOnly,
      mirrors: mirrors.map(({ location: mirrorLocation, insecure: mirrorInsecure, pullFromMirror }) => ({
        location: mirrorLocation,
        insecure: mirrorInsecure,
        pullFromMirror,
      })),
    })),
    aliases: Object.fromEntries([...conf.aliases].map(([name, alias]) => [name, alias.value])),
    credentialHelpers: conf.credentialHelpers,
    warnings: conf.warnings,
  };
}
