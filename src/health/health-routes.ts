/** Liveness and readiness probes, in the shape Kubernetes expects. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { problemResponses } from '../http/common-schemas.js';
import { withTimeout } from '../util/with-timeout.js';

/** A named dependency check; resolves when the dependency answers. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
}

const CheckResult = Type.Object({ name: Type.String(), ok: Type.Boolean(), error: Type.Optional(Type.String()) });

/** Routes /healthz (the process is alive) and /readyz (Postgres and Redis answer). */
export function healthRoutes(checks: DependencyCheck[]): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          tags: ['health'],
          operationId: 'getHealth',
          summary: 'Liveness: the process answers',
          response: { 200: Type.Object({ status: Type.Literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          tags: ['health'],
          operationId: 'getReadiness',
          summary: 'Readiness: Postgres and Redis are reachable',
          response: {
            200: Type.Object({ status: Type.Literal('ready'), checks: Type.Array(CheckResult) }),
            503: Type.Object({ status: Type.Literal('unavailable'), checks: Type.Array(CheckResult) }),
            ...problemResponses(500),
          },
        },
      },
      async (_request, reply) => {
        const results = await Promise.all(
          checks.map(async ({ name, check }) => {
            try {
              await withTimeout(check(), 2000, `${name} did not answer within 2 s`);
              return { name, ok: true };
            } catch (err) {
              return { name, ok: false, error: err instanceof Error ? err.message : String(err) };
            }
          }),
        );
        if (results.every((r) => r.ok)) return { status: 'ready' as const, checks: results };
        return reply.code(503).send({ status: 'unavailable' as const, checks: results });
      },
    );
  };
}
