import { describe, expect, it } from 'vitest';
import {
  DOCKER_FOREIGN_LAYER, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1_SIGNED_MANIFEST,
  isImageManifestMediaType, isIndexMediaType, isSchema1MediaType, layerCompression, MANIFEST_ACCEPT,
  OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_NONDISTRIBUTABLE_ZSTD, OCI_LAYER_ZSTD, OCI_MANIFEST,
} from './media-types.js';

describe('media types', () => {
  it('accepts exactly the four supported manifest types, OCI first', () => {
    expect(MANIFEST_ACCEPT).toEqual([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);
    expect(Object.isFrozen(MANIFEST_ACCEPT)).toBe(true);
  });

  it('tells indexes, image manifests and schema 1 apart', () => {
    expect([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST].map(isIndexMediaType)).toEqual([true, true, false]);
    expect([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX].map(isImageManifestMediaType)).toEqual([true, true, false]);
    expect([DOCKER_SCHEMA1_SIGNED_MANIFEST, DOCKER_MANIFEST].map(isSchema1MediaType)).toEqual([true, false]);
  });

  it('knows the compression of each layer type', () => {
    expect([OCI_LAYER, DOCKER_LAYER, OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER, OCI_LAYER_ZSTD, OCI_LAYER_NONDISTRIBUTABLE_ZSTD, 'text/plain'].map(layerCompression)).toEqual([
      'none', 'none', 'gzip', 'gzip', 'gzip', 'zstd', 'zstd', undefined,
    ]);
  });
});
