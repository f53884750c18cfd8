/**
 * Manifests (distribution spec, "Pulling manifests"; OCI image-spec manifest.md and image-index.md):
 * fetched with a complete Accept list, capped in size, verified against their digest, and validated
 * before anything else reads them. resolveImage walks index → platform manifest → config as
 * containers/image does for `podman pull --platform`.
 */
import { RegistryError } from './errors.js';
import { digestOf, fetchBlobBytes } from './blobs.js';
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST,
  isImageManifestMediaType, isIndexMediaType, isSchema1MediaType, DOCKER_SCHEMA1_SIGNED_MANIFEST,
} from './media-types.js';
import { formatPlatform, normalizePlatform, platformMatches, type Platform } from './platform.js';
import { isDigest, isTag } from './reference.js';
import { repositoryApiPath, type RegistryEndpoint, type RegistryTransport } from './transport.js';
import { classifyNetworkError } from './transport-errors.js';
import { discardBody, headerValue, readCapped } from './transport-response.js';

/** A repository in a registry, with the identity to use there. */
export interface RepositoryTarget extends RegistryEndpoint {
  /** host[:port] to contact, e.g. registry-1.docker.io or 127.0.0.1:5000. */
  registry: string;
  /** Repository path, e.g. library/alpine. */
  repository: string;
}

/** An OCI content descriptor (image-spec descriptor.md); `platform` appears in index entries. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform & { 'os.version'?: string; 'os.features'?: string[]; features?: string[] };
}

/** An OCI image manifest or Docker schema 2 manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** A manifest as fetched: its verified digest, media type, exact bytes and parsed content. */
export type FetchedManifest = {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
} & ({ kind: 'image'; manifest: ImageManifest } | { kind: 'index'; manifest: ImageIndex });

/** Largest manifest accepted (4 MiB, the limit distribution and containerd enforce). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest image config accepted (8 MiB, as containers/image). */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Manifest media types berth reads; everything else is refused with UNSUPPORTED_MEDIA_TYPE. */
const SUPPORTED = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

function invalidManifest(what: string, why: string, registry: string): RegistryError {
  return new RegistryError('INVALID_MANIFEST', `${what}: ${why}`, { registry });
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks one descriptor; returns why it is invalid or undefined. */
function descriptorProblem(v: unknown, where: string): string | undefined {
  if (!isObject(v)) return `${where} is not an object`;
  if (typeof v.mediaType !== 'string' || v.mediaType === '') return `${where}.mediaType is missing`;
  if (typeof v.digest !== 'string' || !isDigest(v.digest)) return `${where}.digest is not a valid digest`;
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) return `${where}.size is not a non-negative integer`;
  if (v.urls !== undefined && !(Array.isArray(v.urls) && v.urls.every((u) => typeof u === 'string'))) return `${where}.urls is not a list of strings`;
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') return `${where}.platform needs os and architecture`;
    if (p.variant !== undefined && typeof p.variant !== 'string') return `${where}.platform.variant is not a string`;
  }
  return undefined;
}

/** Checks the shape the media type promises; returns why it is invalid or undefined. */
function manifestProblem(m: Json, kind: 'image' | 'index'): string | undefined {
  if (m.schemaVersion !== 2) return `schemaVersion is ${JSON.stringify(m.schemaVersion)}, expected 2`;
  if (kind === 'index') {
    if (!Array.isArray(m.manifests)) return 'the "manifests" list is missing';
    return m.manifests.map((d, i) => descriptorProblem(d, `manifests[${i}]`)).find((p) => p !== undefined);
  }
  if (m.config === undefined) return 'the "config" descriptor is missing';
  if (!Array.isArray(m.layers)) return 'the "layers" list is missing';
  return [descriptorProblem(m.config, 'config'), ...m.layers.map((d, i) => descriptorProblem(d, `layers[${i}]`))].find((p) => p !== undefined);
}

const GENERIC_TYPES = new Set(['application/json', 'text/plain', 'application/octet-stream', 'binary/octet-stream']);

/** The media type from Content-Type (parameters dropped), else the body's mediaType, else a guess from the shape. */
function detectMediaType(contentType: string | undefined, parsed: unknown): string | undefined {
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  if (header && (SUPPORTED.includes(header) || isSchema1MediaType(header))) return header;
  if (isObject(parsed)) {
    if (typeof parsed.mediaType === 'string' && parsed.mediaType !== '') return parsed.mediaType;
    // OCI 1.0 made mediaType optional; guess as containers/image's GuessMIMEType does.
    if (parsed.schemaVersion === 1) return DOCKER_SCHEMA1_SIGNED_MANIFEST;
    if (Array.isArray(parsed.manifests)) return OCI_INDEX;
    if (isObject(parsed.config)) return OCI_MANIFEST;
  }
  // Generic types (application/json, text/plain…) say nothing about the format.
  return header && !GENERIC_TYPES.has(header) ? header : undefined;
}

/**
 * Fetches a manifest by tag or digest with Accept = MANIFEST_ACCEPT, refusing more than 4 MiB. By
 * digest the content must hash to it; by tag, a Docker-Content-Digest header must match the content.
 * Unknown and schema 1 media types are refused (UNSUPPORTED_MEDIA_TYPE), malformed ones too (INVALID_MANIFEST).
 */
export async function fetchManifest(transport: RegistryTransport, target: RepositoryTarget, reference: string, options: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
  const byDigest = reference.includes(':');
  if (byDigest ? !isDigest(reference) : !isTag(reference)) {
    throw new RegistryError('INVALID_REFERENCE', `"${reference}" is neither a valid tag nor a valid digest`);
  }
  const { registry } = target;
  const what = `manifest ${reference} of ${target.repository}`;
  const res = await transport.request(target, 'GET', repositoryApiPath(target.repository, `manifests/${reference}`), {
    accept: MANIFEST_ACCEPT,
    notFound: 'MANIFEST_UNKNOWN',
    what,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const tooLarge = (): RegistryError => new RegistryError('MANIFEST_TOO_LARGE', `${what} is larger than ${MAX_MANIFEST_BYTES} bytes`, { registry });
  if (Number(headerValue(res.headers, 'content-length') ?? 0) > MAX_MANIFEST_BYTES) {
    discardBody(res.body);
    throw tooLarge();
  }
  let read: { bytes: Buffer; overflow: boolean };
  try {
    read = await readCapped(res.body, MAX_MANIFEST_BYTES);
  } catch (err) {
    throw classifyNetworkError(err, registry, what, res.url.host);
  }
  if (read.overflow) throw tooLarge();
  const bytes = read.bytes;

  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const mediaType = detectMediaType(headerValue(res.headers, 'content-type'), parsed);
  const supported = `supported: ${SUPPORTED.join(', ')}`;
  if (mediaType !== undefined && isSchema1MediaType(mediaType)) {
    throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `${what} is a Docker schema 1 manifest (${mediaType}), which is deprecated and not supported; ${supported}`, { registry });
  }
  if (mediaType === undefined && parsed === undefined) throw invalidManifest(what, 'the content is not valid JSON', registry);
  if (mediaType === undefined || !SUPPORTED.includes(mediaType)) {
    throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `${what} has media type ${mediaType ?? '(none)'}, which is not supported; ${supported}`, { registry });
  }

  // Verify before trusting anything in the content (distribution spec, "Content Digests").
  let digest: string;
  if (byDigest) {
    const actual = digestOf(bytes, reference.slice(0, reference.indexOf(':')));
    if (actual !== reference) throw new RegistryError('DIGEST_MISMATCH', `${what}: the content's digest is ${actual}`, { registry });
    digest = reference;
  } else {
    digest = digestOf(bytes);
    const stated = headerValue(res.headers, 'docker-content-digest');
    if (stated !== undefined) {
      if (!isDigest(stated)) throw new RegistryError('PROTOCOL_ERROR', `${what}: invalid Docker-Content-Digest "${stated}"`, { registry });
      const actual = digestOf(bytes, stated.slice(0, stated.indexOf(':')));
      if (actual !== stated) {
        throw new RegistryError('DIGEST_MISMATCH', `${what}: Docker-Content-Digest says ${stated} but the content's digest is ${actual}`, { registry });
      }
    }
  }

  if (!isObject(parsed)) throw invalidManifest(what, parsed === undefined ? 'the content is not valid JSON' : 'the content is not a JSON object', registry);
  if (typeof parsed.mediaType === 'string' && SUPPORTED.includes(parsed.mediaType) && parsed.mediaType !== mediaType) {
    throw invalidManifest(what, `Content-Type says ${mediaType} but the manifest says ${parsed.mediaType}`, registry);
  }
  const kind = isIndexMediaType(mediaType) ? 'index' : 'image';
  const problem = manifestProblem(parsed, kind);
  if (problem !== undefined) throw invalidManifest(what, problem, registry);
  const base = { digest, mediaType, size: bytes.length, bytes };
  return kind === 'index' ? { ...base, kind, manifest: parsed as unknown as ImageIndex } : { ...base, kind, manifest: parsed as unknown as ImageManifest };
}

/**
 * The index entry for a platform (containerd's matcher, first match in index order), skipping entries
 * that are not image manifests or carry no platform (e.g. buildx attestations, "unknown/unknown").
 * Throws PLATFORM_NOT_FOUND listing what the index offers.
 */
export function selectPlatform(index: ImageIndex, platform: Platform): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform !== undefined && isImageManifestMediaType(d.mediaType));
  const match = candidates.find((d) => d.platform !== undefined && platformMatches(platform, d.platform));
  if (match !== undefined) return match;
  const available = [...new Set(candidates.filter((d) => d.platform?.os !== 'unknown').map((d) => formatPlatform(normalizePlatform(d.platform as Platform))))];
  throw new RegistryError(
    'PLATFORM_NOT_FOUND',
    `no image for ${formatPlatform(normalizePlatform(platform))} in the index; available: ${available.length > 0 ? available.join(', ') : 'none'}`,
  );
}

/** An image resolved for one platform: the manifests on the way, the config, the layers to fetch. */
export interface ResolvedImage {
  /** Digest the reference resolved to: the index's digest, or the manifest's when there is no index. */
  topDigest: string;
  topMediaType: string;
  topBytes: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
  manifestBytes: Buffer;
  manifest: ImageManifest;
  configDescriptor: Descriptor;
  /** The image configuration, parsed. */
  config: Record<string, unknown>;
  configBytes: Buffer;
  layers: Descriptor[];
  /** The image's real platform (from its config when stated there), normalized. */
  platform: Platform;
}

/** The os/architecture/variant an image config states, if it states them. */
function configPlatform(config: Json): Platform | undefined {
  const { os, architecture, variant } = config;
  if (typeof os !== 'string' || typeof architecture !== 'string' || os === '' || architecture === '') return undefined;
  return normalizePlatform(typeof variant === 'string' && variant !== '' ? { os, architecture, variant } : { os, architecture });
}

/**
 * Resolves `reference` (tag or digest) to one image for `platform`: picks the index entry when the
 * reference names an index, then fetches and verifies the config (≤ 8 MiB). A reference naming a
 * single-platform manifest is accepted whatever its platform, as podman does, and its real platform reported.
 */
export async function resolveImage(
  transport: RegistryTransport,
  target: RepositoryTarget,
  reference: string,
  platform: Platform,
  options: { signal?: AbortSignal } = {},
): Promise<ResolvedImage> {
  const top = await fetchManifest(transport, target, reference, options);
  let image = top;
  let indexPlatform: Platform | undefined;
  let declaredVariant: string | undefined;
  if (top.kind === 'index') {
    const child = selectPlatform(top.manifest, platform);
    image = await fetchManifest(transport, target, child.digest, options);
    if (image.size !== child.size) {
      throw new RegistryError('SIZE_MISMATCH', `manifest ${child.digest} of ${target.repository} has ${image.size} bytes, the index says ${child.size}`, { registry: target.registry });
    }
    indexPlatform = child.platform === undefined ? undefined : normalizePlatform(child.platform);
    declaredVariant = child.platform?.variant;
  }
  if (image.kind !== 'image') {
    throw invalidManifest(`manifest ${image.digest} of ${target.repository}`, 'an index entry is itself an index; nested indexes are not supported', target.registry);
  }
  const manifest = image.manifest;
  const configBytes = await fetchBlobBytes(transport, target, manifest.config, { maxBytes: MAX_CONFIG_BYTES, what: 'image config', ...options });
  let config: unknown;
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch {
    config = undefined;
  }
  if (!isObject(config)) throw invalidManifest(`image config ${manifest.config.digest} of ${target.repository}`, 'it is not a JSON object', target.registry);
  return {
    topDigest: top.digest,
    topMediaType: top.mediaType,
    topBytes: top.bytes,
    manifestDigest: image.digest,
    manifestMediaType: image.mediaType,
    manifestBytes: image.bytes,
    manifest,
    configDescriptor: manifest.config,
    config,
    configBytes,
    layers: manifest.layers,
    platform: withDeclaredVariant(configPlatform(config) ?? indexPlatform ?? normalizePlatform(platform), config.variant, declaredVariant),
  };
}

/**
 * Normalizing drops a variant that is the architecture's default (arm64/v8) so that matching works
 * as containerd's; the image record keeps the variant the image declares, as `docker inspect` shows it.
 */
function withDeclaredVariant(platform: Platform, ...declared: unknown[]): Platform {
  if (platform.variant) return platform;
  const variant = declared.find((v): v is string => typeof v === 'string' && v !== '');
  return variant ? { ...platform, variant: variant.toLowerCase() } : platform;
}
