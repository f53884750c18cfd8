/**
 * Media types of the OCI image spec (v1.1) and of Docker's image manifest v2 schema 2, the two formats
 * registries serve today. Schema 1 is listed only so it can be recognized and refused clearly.
 */

/** OCI image manifest (image-spec manifest.md). */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** OCI image index: a list of manifests, usually one per platform (image-spec image-index.md). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** OCI image configuration (image-spec config.md). */
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** OCI empty descriptor content `{}`, used as the config of artifacts. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
/** OCI layer, uncompressed tar. */
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
/** OCI layer, gzip-compressed tar. */
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** OCI layer, zstd-compressed tar. */
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** OCI non-distributable layer, uncompressed (deprecated in image-spec 1.1, still met in the wild). */
export const OCI_LAYER_NONDISTRIBUTABLE = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
/** OCI non-distributable layer, gzip. */
export const OCI_LAYER_NONDISTRIBUTABLE_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
/** OCI non-distributable layer, zstd. */
export const OCI_LAYER_NONDISTRIBUTABLE_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';

/** Docker image manifest v2 schema 2. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker manifest list (the schema 2 counterpart of the OCI index). */
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Docker container image configuration. */
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** Docker layer, gzip-compressed tar. */
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Docker layer, uncompressed tar (rare, but written by some builders). */
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
/** Docker foreign layer (Windows base layers), served from `urls`, not from the registry. */
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
/** Docker schema 1 manifest, unsigned (deprecated, refused). */
export const DOCKER_SCHEMA1_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+json';
/** Docker schema 1 manifest, signed JWS (deprecated, refused). */
export const DOCKER_SCHEMA1_SIGNED_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

/**
 * The Accept list for manifest requests. Every supported type must be listed: a registry answers
 * 404 for an OCI manifest not accepted, and rewrites a schema 2 manifest into schema 1 (another digest)
 * when schema 2 is missing (docker-registry 2.8 behaviour).
 */
export const MANIFEST_ACCEPT: readonly string[] = Object.freeze([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);

/** True for media types of an index (OCI index or Docker manifest list). */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/** True for media types of a single-image manifest (OCI or Docker schema 2). */
export function isImageManifestMediaType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}

/** True for Docker schema 1 manifest types, which berth refuses. */
export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === DOCKER_SCHEMA1_MANIFEST || mediaType === DOCKER_SCHEMA1_SIGNED_MANIFEST;
}

/** Compression of a layer media type, or undefined when the type is not a known layer type. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  switch (mediaType) {
    case OCI_LAYER:
    case OCI_LAYER_NONDISTRIBUTABLE:
    case DOCKER_LAYER:
      return 'none';
    case OCI_LAYER_GZIP:
    case OCI_LAYER_NONDISTRIBUTABLE_GZIP:
    case DOCKER_LAYER_GZIP:
    case DOCKER_FOREIGN_LAYER:
      return 'gzip';
    case OCI_LAYER_ZSTD:
    case OCI_LAYER_NONDISTRIBUTABLE_ZSTD:
      return 'zstd';
    default:
      return undefined;
  }
}
