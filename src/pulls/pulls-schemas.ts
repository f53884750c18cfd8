/** Request and response schemas of the pulls routes. */
import { Type } from 'typebox';

const Attempt = Type.Object({
  source: Type.String({ description: 'The registry/repository tried' }),
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});

/** A pull as the API shows it. */
export const PullSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    image: Type.String({ description: 'The image as requested' }),
    reference: Type.String({ description: 'The normalized reference, e.g. docker.io/library/alpine:latest' }),
    platform: Type.String({ description: 'os/architecture[/variant]' }),
    state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    progress: Type.Object({
      bytesDone: Type.Integer(),
      bytesTotal: Type.Integer(),
      layersDone: Type.Integer(),
      layersTotal: Type.Integer(),
    }),
    imageId: Type.Optional(Type.String({ description: 'ID (config digest) of the pulled image' })),
    source: Type.Optional(Type.String({ description: 'The registry or mirror that served the image' })),
    error: Type.Optional(
      Type.Object({
        code: Type.String(),
        message: Type.String(),
        attempts: Type.Optional(Type.Array(Attempt)),
      }),
    ),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Pull' },
);

/** Credentials for the registry, in one of the three forms the CRI accepts. */
export const AuthSchema = Type.Object(
  {
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    auth: Type.Optional(Type.String({ description: 'base64("username:password")' })),
    identityToken: Type.Optional(Type.String()),
    registryToken: Type.Optional(Type.String()),
    serverAddress: Type.Optional(Type.String()),
  },
  {
    additionalProperties: false,
    description: 'One of { username, password }, { auth }, { identityToken } (or { registryToken }). Never stored or logged.',
  },
);

/** Body of POST /v1/pulls. */
export const CreatePullBody = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 512, examples: ['alpine', 'quay.io/podman/hello:latest'] }),
    platform: Type.Optional(Type.String({ minLength: 1, maxLength: 64, examples: ['linux/arm64'] })),
    auth: Type.Optional(AuthSchema),
  },
  { additionalProperties: false },
);

/** `?wait=SECONDS`: hold the answer until the pull ends. */
export const WaitQuery = Type.Object({
  wait: Type.Optional(Type.Integer({ minimum: 0, description: 'Seconds to hold the answer until the pull ends' })),
});

/** Path parameter naming a pull. */
export const PullIdParams = Type.Object({ id: Type.String({ description: 'Pull ID (a UUID)' }) });

/** Query of GET /v1/pulls. */
export const ListPullsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String()),
  state: Type.Optional(Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')])),
});

/** A page of pulls. */
export const PullList = Type.Object({
  pulls: Type.Array(Type.Ref('Pull')),
  nextCursor: Type.Optional(Type.String({ description: 'Pass as `cursor` for the next page' })),
});
