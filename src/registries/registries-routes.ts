/** GET /v1/registries, /v1/registries/inspect, /v1/registries/tags. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '../http/common-schemas.js';
import { InspectQuery, RegistriesConfigSchema, RemoteImageSchema, TagList, TagsQuery } from './registries-schemas.js';
import type { RegistriesService } from './registries-service.js';

/** The registries routes. */
export function registriesRoutes(registries: Pick<RegistriesService, 'describe' | 'inspect' | 'tags'>): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/registries',
      {
        schema: {
          tags: ['registries'],
          operationId: 'getRegistries',
          summary: 'The effective registry configuration (no secrets)',
          response: { 200: RegistriesConfigSchema, ...problemResponses(500) },
        },
      },
      async () => registries.describe(),
    );

    app.get(
      '/v1/registries/inspect',
      {
        schema: {
          tags: ['registries'],
          operationId: 'inspectRemoteImage',
          summary: 'What a pull of an image would get, without pulling it (like skopeo inspect)',
          querystring: InspectQuery,
          response: { 200: RemoteImageSchema, ...problemResponses(400, 403, 500, 502) },
        },
      },
      async (request) => registries.inspect(request.query.image, request.query.platform),
    );

    app.get(
      '/v1/registries/tags',
      {
        schema: {
          tags: ['registries'],
          operationId: 'listRemoteTags',
          summary: "A repository's tags in the registry (pagination followed)",
          querystring: TagsQuery,
          response: { 200: TagList, ...problemResponses(400, 403, 500, 502) },
        },
      },
      async (request) => registries.tags(request.query.repository),
    );
  };
}
