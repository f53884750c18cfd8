/**
 * The registry client's front door: one object holding the connection pool and token cache, with the
 * operations berth needs (ping, manifests, image resolution, blobs, tag lists). Everything is
 * delegated to the layers below, as crane's `remote` package delegates to its transport.
 */
import { fetchBlob, type BlobDownload, type FetchBlobOptions } from './blobs.js';
import { RegistryError } from './errors.js';
import { fetchManifest, resolveImage, type Descriptor, type FetchedManifest, type RepositoryTarget, type ResolvedImage } from './manifests.js';
import type { Platform } from './platform.js';
import { repositoryApiPath, RegistryTransport, type PingResult, type RegistryTransportOptions } from './transport.js';
import { headerValue, readCapped } from './transport-response.js';

/** Options of RegistryClient: those of the transport (user agent, TLS, retries, timeouts, dispatcher). */
export type RegistryClientOptions = RegistryTransportOptions;

/** Options of listTags. */
export interface ListTagsOptions {
  /** Tags per page (`n`); the registry's default when absent. */
  pageSize?: number;
  /** Stop after this many tags (default 100 000). */
  maxTags?: number;
  signal?: AbortSignal;
}

const TAG_PAGE_CAP = 4 * 1024 * 1024;

/** The target of `Link: <…>; rel="next"` (RFC 8288), as the distribution spec paginates tags/list. */
export function nextLink(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const link of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/s.exec(link);
    if (m === null) continue;
    for (const param of (m[2] ?? '').split(';')) {
      const eq = param.indexOf('=');
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'rel') continue;
      // rel may list several relation types: rel="next last".
      const rels = param.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase().split(/\s+/);
      if (rels.includes('next')) return m[1];
    }
  }
  return undefined;
}

/** A client for OCI/Docker registries; create one per process and close it on shutdown. */
export class RegistryClient {
  /** The underlying transport, for callers that need raw requests. */
  readonly transport: RegistryTransport;

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new RegistryTransport(options);
  }

  /** Checks that `registry` (host[:port]) speaks the distribution API; says how it wants auth. */
  ping(registry: string, options: { insecure?: boolean; signal?: AbortSignal } = {}): Promise<PingResult> {
    const endpoint = options.insecure === undefined ? { registry } : { registry, insecure: options.insecure };
    return this.transport.ping(endpoint, { signal: options.signal, fresh: true });
  }

  /** Fetches and verifies one manifest by tag or digest. */
  getManifest(target: RepositoryTarget, reference: string, options: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    return fetchManifest(this.transport, target, reference, options);
  }

  /** Resolves a tag or digest to the image for `platform`, with its config and layers. */
  resolveImage(target: RepositoryTarget, reference: string, platform: Platform, options: { signal?: AbortSignal } = {}): Promise<ResolvedImage> {
    return resolveImage(this.transport, target, reference, platform, options);
  }

  /** Starts streaming a blob (optionally from an offset); the caller verifies its digest. */
  getBlob(target: RepositoryTarget, descriptor: Descriptor, options: FetchBlobOptions = {}): Promise<BlobDownload> {
    return fetchBlob(this.transport, target, descriptor, options);
  }

  /** All tags of a repository, following `Link: rel="next"` pages on the same registry. */
  async listTags(target: RepositoryTarget, options: ListTagsOptions = {}): Promise<string[]> {
    const maxTags = options.maxTags ?? 100_000;
    // The origin of the first page, once answered: for an insecure host the scheme is only known then.
    let origin: string | undefined;
    const what = `tag list of ${target.repository}`;
    let path: string | undefined = repositoryApiPath(target.repository, `tags/list${options.pageSize ? `?n=${options.pageSize}` : ''}`);
    const seen = new Set<string>();
    const tags: string[] = [];
    while (path !== undefined) {
      seen.add(path);
      const res = await this.transport.request(target, 'GET', path, { what, notFound: 'NAME_UNKNOWN', ...(options.signal ? { signal: options.signal } : {}) });
      const { bytes, overflow } = await readCapped(res.body, TAG_PAGE_CAP);
      if (overflow) throw new RegistryError('PROTOCOL_ERROR', `${what}: a page is larger than ${TAG_PAGE_CAP} bytes`, { registry: target.registry });
      let page: unknown;
      try {
        page = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new RegistryError('PROTOCOL_ERROR', `${what}: the registry answered something that is not JSON`, { registry: target.registry });
      }
      // An empty repository may answer "tags": null.
      const list = (page as { tags?: unknown } | null)?.tags ?? [];
      if (!Array.isArray(list) || !list.every((t) => typeof t === 'string')) {
        throw new RegistryError('PROTOCOL_ERROR', `${what}: "tags" is not a list of strings`, { registry: target.registry });
      }
      tags.push(...list);
      if (tags.length >= maxTags) return tags.slice(0, maxTags);
      origin ??= new URL(res.url).origin;
      const link = nextLink(headerValue(res.headers, 'link'));
      path = undefined;
      if (link !== undefined) {
        const next = new URL(link, res.url);
        // Credentials go only to the registry itself; a page elsewhere is not followed.
        if (next.origin !== origin) throw new RegistryError('PROTOCOL_ERROR', `${what}: the next page is on another host (${next.host})`, { registry: target.registry });
        const candidate = next.pathname + next.search;
        if (!seen.has(candidate)) path = candidate;
      }
    }
    return tags;
  }

  /** Closes connections; the client must not be used afterwards. */
  close(): Promise<void> {
    return this.transport.close();
  }
}
