/**
 * buildApp: berth's HTTP API as a Fastify instance. It never listens (server.ts and main.ts do, tests
 * use inject) and owns no infrastructure: services and checks come in as arguments.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { healthRoutes, type DependencyCheck } from './health/health-routes.js';
import { ProblemSchema } from './http/common-schemas.js';
import { installProblemHandler } from './http/problem-handler.js';
import { imagesRoutes, type ImagesRoutesOptions } from './images/images-routes.js';
import { ImageSchema } from './images/images-schemas.js';
import { pullsRoutes } from './pulls/pulls-routes.js';
import { PullSchema } from './pulls/pulls-schemas.js';
import type { PullsService } from './pulls/pulls-service.js';
import { metricsRoutes } from './metrics/metrics-routes.js';
import { registriesRoutes } from './registries/registries-routes.js';
import type { RegistriesService } from './registries/registries-service.js';

/** What the API needs to answer. */
export interface AppDeps {
  images: ImagesRoutesOptions['images'];
  pulls: PullsService;
  registries: Pick<RegistriesService, 'describe' | 'inspect' | 'tags'>;
  checks: DependencyCheck[];
  /** The Prometheus registry served at /metrics. */
  metrics: Parameters<typeof metricsRoutes>[0];
  maxWaitSeconds: number;
  /** The process logger (pino); none means silent. */
  logger?: FastifyBaseLogger;
  version?: string;
}

/** Fields pino must never print: credentials travel in these. */
export const REDACTED_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]'];

/** Builds the API; call `ready()` or `inject()` on the result. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // name@sha256:… refs are long; find-my-way's default of 100 would cut them off.
    routerOptions: { maxParamLength: 2048 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installProblemHandler(app);
  app.addSchema(ProblemSchema);
  app.addSchema(PullSchema);
  app.addSchema(ImageSchema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'berth',
        version: deps.version ?? '0.1.0',
        description:
          'Pulls container images from OCI/Docker registries in queued jobs, stores their content by digest and lets you inspect, list and delete them. Errors are RFC 9457 problem documents with a stable `code`.',
      },
      tags: [
        { name: 'pulls', description: 'Pull images from registries' },
        { name: 'images', description: 'Images held by berth' },
        { name: 'registries', description: 'Registry configuration and remote look-ups' },
        { name: 'health', description: 'Probes' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes(deps.checks));
  await app.register(metricsRoutes(deps.metrics));
  await app.register(pullsRoutes({ pulls: deps.pulls, maxWaitSeconds: deps.maxWaitSeconds }));
  await app.register(imagesRoutes({ images: deps.images }));
  await app.register(registriesRoutes(deps.registries));
  return app;
}
