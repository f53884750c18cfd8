/** Request and response schemas of the images routes. */
import { Type } from 'typebox';

const StringMap = Type.Record(Type.String(), Type.String());

/** What an image runs with: the `config` section of its OCI/Docker config, summarized. */
export const ConfigSummarySchema = Type.Object({
  env: Type.Array(Type.String()),
  cmd: Type.Array(Type.String()),
  entrypoint: Type.Array(Type.String()),
  workingDir: Type.String(),
  user: Type.String(),
  labels: StringMap,
  exposedPorts: Type.Array(Type.String()),
  volumes: Type.Array(Type.String()),
});

/** An image held by berth. */
export const ImageSchema = Type.Object(
  {
    id: Type.String({ description: 'Image ID: the digest of its config', examples: ['sha256:…'] }),
    names: Type.Array(Type.String(), { description: 'Fully qualified repo:tag names pointing at this image' }),
    digests: Type.Array(Type.String(), { description: 'Repo digests: repository@sha256:<manifest digest>' }),
    size: Type.Integer({ description: 'Bytes of config and layers as stored (compressed)' }),
    os: Type.String(),
    architecture: Type.String(),
    variant: Type.Optional(Type.String()),
    created: Type.Optional(Type.String({ format: 'date-time' })),
    layers: Type.Array(Type.Object({ digest: Type.String(), size: Type.Integer(), mediaType: Type.String() })),
    config: ConfigSummarySchema,
    manifestDigest: Type.String(),
    manifestMediaType: Type.String(),
    pulledAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Image' },
);

/** Path parameter naming an image in any of the forms berth accepts. */
export const ImageRefParams = Type.Object({
  ref: Type.String({
    description:
      'Image ID (sha256:<hex>, <hex>, or a unique prefix of at least 12 hex digits), a name (alpine, host:5000/team/app:1) or name@digest; URL-encode it or use raw slashes',
  }),
});

/** Query of GET /v1/images. */
export const ListImagesQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ description: 'nextCursor of the previous page' })),
  name: Type.Optional(Type.String({ description: 'Only images with this name (repo:tag) or in this repository' })),
});

/** A page of images. */
export const ImageList = Type.Object({
  images: Type.Array(Type.Ref('Image')),
  nextCursor: Type.Optional(Type.String({ description: 'Pass as `cursor` for the next page' })),
});

/** What a delete removed, as `docker rmi` reports it. */
export const DeleteResult = Type.Object({
  untagged: Type.Array(Type.String(), { description: 'Names removed' }),
  deleted: Type.Array(Type.String(), { description: 'Image IDs removed' }),
});
