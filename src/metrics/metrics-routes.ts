/** GET /metrics in the Prometheus text format. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '../http/common-schemas.js';

/** The metrics route over a registry. */
export function metricsRoutes(registry: { metrics(): Promise<string>; contentType: string }): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/metrics',
      {
        schema: {
          tags: ['health'],
          operationId: 'getMetrics',
          summary: 'Prometheus metrics: pulls by state, failures by code, images, store bytes, process',
          response: {
            200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...problemResponses(503),
          },
        },
      },
      async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );
  };
}
