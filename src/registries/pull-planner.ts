/**
 * Where a pull goes, as cri-o and podman decide it (containers/image): a short name becomes its
 * candidates (`[aliases]` first, then each unqualified-search registry), each candidate its sources
 * (the mirrors that apply, then the primary location last), blocked registries are refused before any
 * request, and each source gets the credentials meant for its own host.
 */
import { credentialsFor } from '../registry/auth-file.js';
import type { Credentials } from '../registry/credentials.js';
import { RegistryError } from '../registry/errors.js';
import type { RepositoryTarget } from '../registry/manifests.js';
import { formatName, formatReference, registryHost, type ImageReference } from '../registry/reference.js';
import { findRegistry } from '../registry/registries-conf.js';
import { pullSources, shortNameCandidates, type PullSource } from '../registry/sources.js';
import type { PlannedCandidate, PlannedSource, PlanPull } from '../pulls/pull-plan.js';
import type { RegistrySettings } from './registry-settings.js';

/** Plans pulls and normalizes what users ask for, under one registry configuration. */
export interface PullPlanner {
  /** The candidates and their sources for `image`, with credentials per source. */
  plan: PlanPull;
  /**
   * The fully qualified reference a pull of `image` is recorded and deduplicated under (for a short
   * name, its first candidate). Throws INVALID_REFERENCE (400) when a short name cannot be resolved and
   * REGISTRY_BLOCKED (403) when every candidate's registry is blocked.
   */
  normalize(image: string): string;
}

interface OpenCandidate {
  name: ImageReference;
  sources: PullSource[];
}

/** The registry host part of a source as users write it (docker.io, not registry-1.docker.io), for auth.json keys. */
function sourceDomain(source: PullSource): string {
  const suffix = `/${source.repository}`;
  return source.display.endsWith(suffix) ? source.display.slice(0, -suffix.length) : source.endpoint;
}

/** Builds the planner over settings loaded once at start-up. */
export function createPullPlanner(settings: RegistrySettings): PullPlanner {
  const { conf, authFile } = settings;

  /** The candidates of `image` whose registry is not blocked; throws when none is left. */
  function openCandidates(image: string): OpenCandidate[] {
    const { candidates } = shortNameCandidates(conf, image);
    const open: OpenCandidate[] = [];
    for (const name of candidates) {
      const { blocked, sources } = pullSources(conf, name);
      // A blocked search registry is skipped, as containers/image skips it while trying candidates.
      if (!blocked) open.push({ name, sources });
    }
    if (open.length > 0) return open;
    const first = candidates[0]!;
    const entry = conf && findRegistry(conf, formatName(first));
    const where = entry ? ` ([[registry]] prefix "${entry.prefix}" in ${entry.file})` : '';
    const names = candidates.map((c) => formatName(c)).join(', ');
    throw new RegistryError('REGISTRY_BLOCKED', `pulling ${image} is refused: the registry of ${names} is blocked in registries.conf${where}`, {
      registry: registryHost(first.domain),
    });
  }

  /**
   * Credentials for one source. Those of the request are meant for the registry the user named: they
   * go to the primary location and to a mirror on that same host only, never to a mirror elsewhere
   * (containers/image would send them to every mirror). A short name's candidates each get them at
   * their primary, as podman's --creds does. Every other source gets what AUTH_FILE holds for its own
   * host and repository.
   */
  function credentials(source: PullSource, primary: PullSource, fromRequest: Credentials | undefined): Credentials | undefined {
    if (fromRequest !== undefined && source.endpoint === primary.endpoint) return fromRequest;
    return authFile ? credentialsFor(authFile, sourceDomain(source), source.repository) : undefined;
  }

  async function planned(source: PullSource, primary: PullSource, fromRequest: Credentials | undefined): Promise<PlannedSource> {
    const target: RepositoryTarget = {
      registry: source.endpoint,
      repository: source.repository,
      insecure: source.insecure || (await settings.insecure.isInsecure(source.endpoint)),
    };
    const own = credentials(source, primary, fromRequest);
    if (own !== undefined) target.credentials = own;
    return { target, reference: source.reference, display: source.display, mirror: source.mirror };
  }

  return {
    async plan(image, fromRequest) {
      const plan: PlannedCandidate[] = [];
      for (const { name, sources } of openCandidates(image)) {
        const primary = sources.find((s) => !s.mirror) ?? sources.at(-1)!;
        plan.push({ name, sources: await Promise.all(sources.map((s) => planned(s, primary, fromRequest))) });
      }
      return plan;
    },

    normalize(image) {
      return formatReference(openCandidates(image)[0]!.name);
    },
  };
}
