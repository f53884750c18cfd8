/** Request and response schemas of the registries routes. */
import { Type } from 'typebox';
import { ConfigSummarySchema } from '../images/images-schemas.js';

/** Query of GET /v1/registries/inspect. */
export const InspectQuery = Type.Object({
  image: Type.String({ minLength: 1, maxLength: 512, description: 'Image reference, as for a pull (short names are resolved)' }),
  platform: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'os/arch[/variant], default linux/amd64' })),
});

/** Query of GET /v1/registries/tags. */
export const TagsQuery = Type.Object({
  repository: Type.String({ minLength: 1, maxLength: 512, description: 'Repository, e.g. quay.io/team/app or a short name' }),
});

const Layer = Type.Object({ digest: Type.String(), size: Type.Integer(), mediaType: Type.String() });

/** What a pull would get, like `skopeo inspect`. */
export const RemoteImageSchema = Type.Object({
  name: Type.String({ description: 'The fully qualified reference that resolved' }),
  source: Type.String({ description: 'The registry or mirror that answered' }),
  digest: Type.String({ description: 'Digest the reference resolves to (an index digest for a multi-platform image)' }),
  mediaType: Type.String(),
  manifestDigest: Type.String({ description: 'Digest of the image manifest for the platform' }),
  manifestMediaType: Type.String(),
  platform: Type.String(),
  platforms: Type.Optional(Type.Array(Type.String(), { description: 'Platforms of the index, when the reference names one' })),
  created: Type.Optional(Type.String()),
  id: Type.String({ description: 'Image ID the pull would record: the config digest' }),
  size: Type.Integer({ description: 'Bytes of config and layers (compressed)' }),
  labels: Type.Record(Type.String(), Type.String()),
  config: ConfigSummarySchema,
  layers: Type.Array(Layer),
});

/** A repository's tags, and the source that listed them. */
export const TagList = Type.Object({
  repository: Type.String(),
  source: Type.String(),
  tags: Type.Array(Type.String()),
});

/** The effective registry configuration; holds no secrets. */
export const RegistriesConfigSchema = Type.Object({
  registriesConf: Type.Unknown({ description: 'registries.conf as berth applies it (search list, registries, mirrors, aliases)' }),
  credentials: Type.Unknown({ description: 'Hosts and namespaces with credentials in AUTH_FILE (never the secrets)' }),
  insecure: Type.Unknown({ description: 'Registries spoken to over plain HTTP or without TLS verification' }),
  caHosts: Type.Array(Type.String(), { description: 'Registries with their own CA certificates in REGISTRY_CA_DIR' }),
});
