/**
 * Turns every error into application/problem+json through the one mapper in errors.ts, and logs
 * server-side failures with their cause while client errors stay at info level.
 */
import type { FastifyInstance } from 'fastify';
import { toProblem } from '../errors.js';

/** Installs the error and not-found handlers on the app. */
export function installProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const problem = toProblem(err);
    if (problem.status >= 500) request.log.error({ err }, `${problem.code}: ${err instanceof Error ? err.message : String(err)}`);
    else request.log.info({ code: problem.code }, problem.detail);
    return reply.code(problem.status).type('application/problem+json').send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const problem = {
      type: 'urn:berth:problem:ROUTE_NOT_FOUND',
      title: 'Not Found',
      status: 404,
      code: 'ROUTE_NOT_FOUND',
      detail: `No route ${request.method} ${request.url.split('?')[0]}; the API is described at /docs`,
    };
    return reply.code(404).type('application/problem+json').send(problem);
  });
}
