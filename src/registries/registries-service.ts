/**
 * Remote look-ups without pulling — what `skopeo inspect` and `skopeo list-tags` answer — resolved
 * through the same plan as a pull (short names, mirrors first, credentials per host), and the
 * effective registry configuration with every secret left out.
 */
import { configSummary } from '../images/config-summary.js';
import type { PlanPull } from '../pulls/pull-plan.js';
import { firstServingSource, resolveFromSources, type ManifestResolver } from '../pulls/resolve-sources.js';
import { describeAuthFile } from '../registry/auth-file.js';
import type { RepositoryTarget } from '../registry/manifests.js';
import { isIndexMediaType } from '../registry/media-types.js';
import { formatPlatform, normalizePlatform, parsePlatform, type Platform } from '../registry/platform.js';
import { formatName, formatReference } from '../registry/reference.js';
import { describeConf } from '../registry/sources.js';
import type { RegistrySettings } from './registry-settings.js';

/** What the look-ups need of the registry client. */
export interface RemoteRegistry extends ManifestResolver {
  listTags(target: RepositoryTarget, options?: { pageSize?: number }): Promise<string[]>;
}

/** What the registries service needs. */
export interface RegistriesServiceDeps {
  settings: RegistrySettings;
  plan: PlanPull;
  registry: RemoteRegistry;
  defaultPlatform: string;
}

/** What a pull of `image` would get, without pulling it. */
export interface RemoteImage {
  name: string;
  source: string;
  digest: string;
  mediaType: string;
  manifestDigest: string;
  manifestMediaType: string;
  platform: string;
  platforms?: string[];
  created?: string;
  id: string;
  size: number;
  labels: Record<string, string>;
  config: ReturnType<typeof configSummary>;
  layers: { digest: string; size: number; mediaType: string }[];
}

function indexPlatforms(bytes: Buffer, mediaType: string): string[] | undefined {
  if (!isIndexMediaType(mediaType)) return undefined;
  const index = JSON.parse(bytes.toString('utf8')) as { manifests?: { platform?: Platform }[] };
  const platforms = (index.manifests ?? [])
    .map((m) => m.platform)
    .filter((p): p is Platform => p !== undefined && p.os !== 'unknown')
    .map((p) => formatPlatform(p.variant ? { ...normalizePlatform(p), variant: p.variant } : normalizePlatform(p)));
  return [...new Set(platforms)];
}

/** Builds the registries service. */
export function createRegistriesService(deps: RegistriesServiceDeps) {
  return {
    /** The effective configuration: search list, registries and mirrors, aliases, insecure rules, hosts with credentials. */
    describe() {
      return {
        registriesConf: describeConf(deps.settings.conf),
        credentials: describeAuthFile(deps.settings.authFile),
        insecure: deps.settings.insecure.describe(),
        caHosts: deps.settings.caHosts,
      };
    },

    /** Resolves `image` for `platform` as a pull would, and describes it. */
    async inspect(image: string, platform?: string): Promise<RemoteImage> {
      const wanted = parsePlatform(platform ?? deps.defaultPlatform);
      const candidates = await deps.plan(image, undefined);
      const { candidate, source, resolved } = await resolveFromSources(deps.registry, candidates, wanted);
      const summary = configSummary(resolved.config);
      const created = resolved.config.created;
      const platforms = indexPlatforms(resolved.topBytes, resolved.topMediaType);
      return {
        name: formatReference(candidate.name),
        source: source.display,
        digest: resolved.topDigest,
        mediaType: resolved.topMediaType,
        manifestDigest: resolved.manifestDigest,
        manifestMediaType: resolved.manifestMediaType,
        platform: formatPlatform(resolved.platform),
        ...(platforms ? { platforms } : {}),
        ...(typeof created === 'string' ? { created } : {}),
        id: resolved.configDescriptor.digest,
        size: resolved.configDescriptor.size + resolved.layers.reduce((sum, l) => sum + l.size, 0),
        labels: summary.labels,
        config: summary,
        layers: resolved.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      };
    },

    /** Every tag of `repository`, from the first source that lists them (registry pagination followed). */
    async tags(repository: string): Promise<{ repository: string; source: string; tags: string[] }> {
      const candidates = await deps.plan(repository, undefined);
      const { candidate, source, result: tags } = await firstServingSource(candidates, (s) => deps.registry.listTags(s.target));
      return { repository: formatName(candidate.name), source: source.display, tags };
    },
  };
}

/** The registries service's interface. */
export type RegistriesService = ReturnType<typeof createRegistriesService>;
