/**
 * Pushes fixture images into test registries through the distribution API (monolithic blob upload,
 * HEAD to skip blobs already there, manifest PUT), with Basic or Bearer auth. Deliberately independent
 * of berth's own registry client: it is what that client is tested against. Builders live in
 * image-builder.ts and are re-exported here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  type ConfigBlob,
  type ImageConfigOptions,
  imageConfig,
  type Layer,
  layer,
  MediaTypes,
  type Platform,
  sha256,
} from './image-builder.js';
import { hostOf, type PushTarget, pushBlobWith, putManifestWith, Session } from './push-session.js';

export * from './image-builder.js';
export { type PushTarget, USER_AGENT } from './push-session.js';

/** Pushes one blob (config, layer or anything) unless the repository already has it. */
export async function pushBlob(target: PushTarget, repo: string, blob: { digest: string; size: number; data: Buffer }): Promise<void> {
  await pushBlobWith(new Session(target, repo), blob);
}

/** PUTs raw manifest bytes under a tag or digest, for manifests the builders do not make. Returns the digest. */
export async function putManifest(target: PushTarget, repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
  return putManifestWith(new Session(target, repo), reference, mediaType, bytes);
}

/** What to push as one image. `config` defaults to a plain linux/amd64 config for the layers. */
export interface ImageSpec {
  layers: Layer[];
  config?: Omit<ImageConfigOptions, 'layers'> | ConfigBlob;
  format?: 'oci' | 'docker';
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
}

/** A pushed layer as the manifest lists it. */
export interface PushedLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffID: string;
}

/** What {@link pushImage} pushed; compare berth's results against this. */
export interface PushedImage {
  repo: string;
  /** null when pushed by digest only (index children). */
  tag: string | null;
  /** `HOST/REPO:TAG` (or `HOST/REPO@DIGEST` without tag) and `HOST/REPO@DIGEST`. */
  reference: string;
  digestReference: string;
  mediaType: string;
  manifestDigest: string;
  manifestSize: number;
  manifestBytes: Buffer;
  configDigest: string;
  configSize: number;
  configBytes: Buffer;
  platform: Platform;
  layers: PushedLayer[];
  /** Sum of the layer sizes. */
  layersSize: number;
  /** manifest + config + layers: the bytes a full pull stores. */
  totalSize: number;
}

/** What {@link pushIndex} pushed. */
export interface PushedIndex {
  repo: string;
  tag: string;
  reference: string;
  digestReference: string;
  mediaType: string;
  indexDigest: string;
  indexSize: number;
  indexBytes: Buffer;
  /** One per platform, in the order given; each pushed by digest. */
  children: PushedImage[];
}

function layerMediaType(l: Layer, format: 'oci' | 'docker'): string {
  if (l.mediaType) return l.mediaType;
  if (format === 'oci') return l.compression === 'gzip' ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer;
  return l.compression === 'gzip' ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer;
}

/** Manifests are indented, as Docker's are: a client that re-serializes them gets another digest. */
const manifestJson = (value: unknown): Buffer => Buffer.from(JSON.stringify(value, null, 3));

/** Pushes an image (blobs, then manifest) to `repo`, tagged `tag` or by digest only when tag is null. */
export async function pushImage(target: PushTarget, repo: string, tag: string | null, spec: ImageSpec): Promise<PushedImage> {
  return pushWith(new Session(target, repo), tag, spec);
}

async function pushWith(session: Session, tag: string | null, spec: ImageSpec): Promise<PushedImage> {
  const format = spec.format ?? 'oci';
  const config = spec.config && 'bytes' in spec.config ? spec.config : imageConfig({ ...spec.config, layers: spec.layers });
  await Promise.all([...spec.layers, { digest: config.digest, size: config.size, data: config.bytes }].map((b) => pushBlobWith(session, b)));
  const layers = spec.layers.map((l) => ({ mediaType: layerMediaType(l, format), digest: l.digest, size: l.size, diffID: l.diffID }));
  const mediaType = format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: format === 'oci' ? MediaTypes.ociConfig : MediaTypes.dockerConfig, digest: config.digest, size: config.size },
    layers: layers.map(({ mediaType: m, digest, size }) => ({ mediaType: m, digest, size })),
    ...(spec.annotations && format === 'oci' ? { annotations: spec.annotations } : {}),
  };
  const manifestBytes = manifestJson(manifest);
  const manifestDigest = await putManifestWith(session, tag ?? sha256(manifestBytes), mediaType, manifestBytes);
  const host = hostOf(session.target);
  const layersSize = layers.reduce((sum, l) => sum + l.size, 0);
  return {
    repo: session.repo,
    tag,
    reference: tag === null ? `${host}/${session.repo}@${manifestDigest}` : `${host}/${session.repo}:${tag}`,
    digestReference: `${host}/${session.repo}@${manifestDigest}`,
    mediaType,
    manifestDigest,
    manifestSize: manifestBytes.length,
    manifestBytes,
    configDigest: config.digest,
    configSize: config.size,
    configBytes: config.bytes,
    platform: config.platform,
    layers,
    layersSize,
    totalSize: manifestBytes.length + config.size + layersSize,
  };
}

/** One platform of an index: its image, with the platform written into its config too. */
export interface PlatformImage extends ImageSpec {
  platform: Platform;
}

/** Pushes each platform's image by digest, then an OCI index or Docker manifest list tagged `tag`. */
export async function pushIndex(
  target: PushTarget,
  repo: string,
  tag: string,
  platforms: PlatformImage[],
  format: 'oci' | 'docker' = 'oci',
): Promise<PushedIndex> {
  const session = new Session(target, repo);
  const children: PushedImage[] = [];
  for (const p of platforms) {
    const base = p.config && !('bytes' in p.config) ? p.config : {};
    const config = p.config && 'bytes' in p.config
      ? p.config
      : imageConfig({
          ...base,
          layers: p.layers,
          os: p.platform.os,
          architecture: p.platform.architecture,
          ...(p.platform.variant === undefined ? {} : { variant: p.platform.variant }),
          ...(p.platform['os.version'] === undefined ? {} : { osVersion: p.platform['os.version'] }),
        });
    children.push(await pushWith(session, null, { ...p, config, format }));
  }
  const mediaType = format === 'oci' ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c, i) => ({
      mediaType: c.mediaType,
      digest: c.manifestDigest,
      size: c.manifestSize,
      platform: platforms[i]!.platform,
    })),
  };
  const indexBytes = manifestJson(index);
  const indexDigest = await putManifestWith(session, tag, mediaType, indexBytes);
  const host = hostOf(target);
  return {
    repo,
    tag,
    reference: `${host}/${repo}:${tag}`,
    digestReference: `${host}/${repo}@${indexDigest}`,
    mediaType,
    indexDigest,
    indexSize: indexBytes.length,
    indexBytes,
    children,
  };
}

/**
 * Points `tag` at another image: pushes `image` (an ImageSpec) under the tag, or re-tags an image
 * already pushed to this repository (a PushedImage or PushedIndex, by its manifest bytes).
 */
export async function moveTag(
  target: PushTarget,
  repo: string,
  tag: string,
  image: ImageSpec | PushedImage | PushedIndex,
): Promise<PushedImage | PushedIndex> {
  if ('indexBytes' in image) {
    await putManifestWith(new Session(target, repo), tag, image.mediaType, image.indexBytes);
    return { ...image, repo, tag, reference: `${hostOf(target)}/${repo}:${tag}` };
  }
  if ('manifestBytes' in image) {
    await putManifestWith(new Session(target, repo), tag, image.mediaType, image.manifestBytes);
    return { ...image, repo, tag, reference: `${hostOf(target)}/${repo}:${tag}` };
  }
  return pushImage(target, repo, tag, image);
}

/** Deletes a manifest by digest (the registry has `storage.delete.enabled`); its tags go with it. */
export async function deleteManifest(target: PushTarget, repo: string, digest: string): Promise<void> {
  await new Session(target, repo).expect(202, 'DELETE', `/v2/${repo}/manifests/${digest}`);
}

/** A schema 1 image (see {@link pushSchema1}). */
export interface PushedSchema1 {
  repo: string;
  tag: string;
  reference: string;
  /** What the registry and clients call its digest: of the JWS payload without signatures. */
  manifestDigest: string;
  /** The signed manifest as served; its sha256 is NOT manifestDigest. */
  manifestBytes: Buffer;
}

/**
 * Copies an image already in the registry to `repo:tag` as a signed schema 1 manifest, using skopeo
 * (`--format v2s1`), because schema 1 needs a libtrust JWS signature. The registry must have been
 * started with `schema1: true`. Runs skopeo asynchronously: a synchronous child would block this
 * process and with it the registry's front.
 */
export async function pushSchema1(
  target: PushTarget & { certDir?: string },
  from: PushedImage,
  repo: string,
  tag: string,
): Promise<PushedSchema1> {
  const host = hostOf(target);
  const https = target.url.startsWith('https:');
  const side = (which: 'src' | 'dest') => [
    ...(https && target.certDir ? [`--${which}-cert-dir`, target.certDir] : [`--${which}-tls-verify=false`]),
    ...(target.credentials ? [`--${which}-creds`, `${target.credentials.username}:${target.credentials.password}`] : []),
  ];
  await promisify(execFile)('skopeo', [
    'copy', '--format', 'v2s1', ...side('src'), ...side('dest'),
    `docker://${from.digestReference}`, `docker://${host}/${repo}:${tag}`,
  ]);
  const res = await new Session(target, repo).expect(200, 'GET', `/v2/${repo}/manifests/${tag}`, {
    accept: MediaTypes.schema1Signed,
  });
  return {
    repo,
    tag,
    reference: `${host}/${repo}:${tag}`,
    manifestDigest: String(res.headers['docker-content-digest']),
    manifestBytes: res.bytes,
  };
}

/** The layer both `shared/one:1` and `shared/two:1` start with. */
export const sharedBaseLayer = (): Layer =>
  layer({ 'etc/os-release': 'ID=berth-fixture\nVERSION_ID=1\n', 'bin/sh': '#!berth fixture shell\n' });

/** Everything {@link pushStandardFixtures} pushed. The contents are fixed, so are the digests. */
export interface StandardFixtures {
  /** OCI image with 4 layers: `multi/layers:1`. */
  multiLayers: PushedImage;
  /** OCI index linux/amd64, linux/arm64/v8, linux/arm/v7: `multi/platform:1`. */
  multiPlatform: PushedIndex;
  /** Docker schema 2 image with 2 layers: `docker/v2s2:1`. */
  dockerV2s2: PushedImage;
  /** Docker manifest list linux/amd64 + linux/arm64/v8: `docker/list:1`. */
  dockerList: PushedIndex;
  /** Two images starting with the same layer: `shared/one:1`, `shared/two:1`. */
  sharedOne: PushedImage;
  sharedTwo: PushedImage;
  /** The layer they share. */
  sharedLayer: PushedLayer;
}

const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

const platformName = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Pushes the standard scenario (see {@link StandardFixtures}) into a registry. */
export async function pushStandardFixtures(target: PushTarget): Promise<StandardFixtures> {
  const shared = sharedBaseLayer();
  const [multiLayers, multiPlatform, dockerV2s2, dockerList, sharedOne, sharedTwo] = await Promise.all([
    pushImage(target, 'multi/layers', '1', {
      layers: [
        shared,
        layer({ 'usr/lib/berth/lib.txt': 'library\n'.repeat(200) }),
        layer({ 'app/main.js': 'console.log("hello from berth fixture");\n', 'app/data/empty': '' }),
        layer({ 'etc/app/config.json': '{"mode":"test"}\n', 'app/link': { type: 'symlink', linkname: 'main.js' } }),
      ],
      config: {
        env: ['PATH=/usr/bin:/bin', 'APP_MODE=test'],
        entrypoint: ['/app/main.js'],
        cmd: ['--serve'],
        workingDir: '/app',
        user: '1000:1000',
        labels: { 'org.opencontainers.image.title': 'multi-layers' },
        exposedPorts: ['8080/tcp'],
        volumes: ['/data'],
      },
      annotations: { 'org.opencontainers.image.ref.name': '1' },
    }),
    pushIndex(
      target,
      'multi/platform',
      '1',
      PLATFORMS.map((platform) => ({
        platform,
        layers: [layer({ 'etc/platform': `${platformName(platform)}\n` })],
        config: { cmd: ['/bin/sh'], labels: { platform: platformName(platform) } },
      })),
    ),
    pushImage(target, 'docker/v2s2', '1', {
      format: 'docker',
      layers: [shared, layer({ 'srv/index.html': '<h1>docker v2s2</h1>\n' })],
      config: { cmd: ['httpd'], exposedPorts: ['80/tcp'] },
    }),
    pushIndex(
      target,
      'docker/list',
      '1',
      PLATFORMS.slice(0, 2).map((platform) => ({
        platform,
        layers: [layer({ 'etc/platform': `docker ${platformName(platform)}\n` })],
      })),
      'docker',
    ),
    pushImage(target, 'shared/one', '1', { layers: [shared, layer({ 'one.txt': 'one\n' })] }),
    pushImage(target, 'shared/two', '1', { layers: [shared, layer({ 'two.txt': 'two\n' })] }),
  ]);
  return { multiLayers, multiPlatform, dockerV2s2, dockerList, sharedOne, sharedTwo, sharedLayer: sharedOne.layers[0]! };
}
