/** POST /v1/pulls, GET /v1/pulls/{id}, GET /v1/pulls. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '../http/common-schemas.js';
import { CreatePullBody, ListPullsQuery, PullIdParams, PullList, WaitQuery } from './pulls-schemas.js';
import { toPullView, type PullsService } from './pulls-service.js';

/** What the pulls routes need. */
export interface PullsRoutesOptions {
  pulls: PullsService;
  maxWaitSeconds: number;
}

/** The pulls routes. */
export function pullsRoutes({ pulls, maxWaitSeconds }: PullsRoutesOptions): FastifyPluginAsyncTypebox {
  const waitSeconds = (wait: number | undefined) => Math.min(wait ?? 0, maxWaitSeconds);
  return async (app) => {
    app.post(
      '/v1/pulls',
      {
        schema: {
          tags: ['pulls'],
          operationId: 'createPull',
          summary: 'Pull an image',
          description:
            'Queues a pull of `image` for `platform` (default linux/amd64). A pull of the same reference and platform already in flight is joined: same id. `?wait=SECONDS` holds the answer until the pull ends or the time is up.',
          body: CreatePullBody,
          querystring: WaitQuery,
          response: { 202: { $ref: 'Pull' }, ...problemResponses(400, 403, 500, 503) },
        },
      },
      async (request, reply) => {
        const { pull } = await pulls.create(request.body);
        const current = await pulls.wait(pull, waitSeconds(request.query.wait));
        return reply.code(202).header('location', `/v1/pulls/${pull.id}`).send(toPullView(current));
      },
    );

    app.get(
      '/v1/pulls/:id',
      {
        schema: {
          tags: ['pulls'],
          operationId: 'getPull',
          summary: 'Show a pull',
          params: PullIdParams,
          querystring: WaitQuery,
          response: { 200: { $ref: 'Pull' }, ...problemResponses(404, 500, 503) },
        },
      },
      async (request) => {
        const pull = await pulls.get(request.params.id);
        return toPullView(await pulls.wait(pull, waitSeconds(request.query.wait)));
      },
    );

    app.delete(
      '/v1/pulls/:id',
      {
        schema: {
          tags: ['pulls'],
          operationId: 'cancelPull',
          summary: 'Cancel a pull in flight',
          description:
            'The pull ends as failed with code CANCELED: a queued one leaves the queue, a running one stops within a second. 409 when it already ended.',
          params: PullIdParams,
          response: { 200: { $ref: 'Pull' }, ...problemResponses(404, 409, 500, 503) },
        },
      },
      async (request) => toPullView(await pulls.cancel(request.params.id)),
    );

    app.get(
      '/v1/pulls',
      {
        schema: {
          tags: ['pulls'],
          operationId: 'listPulls',
          summary: 'List pulls, newest first',
          querystring: ListPullsQuery,
          response: { 200: PullList, ...problemResponses(400, 500, 503) },
        },
      },
      async (request) => {
        const { limit, cursor, state } = request.query;
        const page = await pulls.list({ limit, ...(cursor ? { cursor } : {}), ...(state ? { state } : {}) });
        return { pulls: page.pulls.map(toPullView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
      },
    );
  };
}
