/**
 * GET /v1/images, GET and DELETE /v1/images/{ref}. A ref may hold raw slashes
 * (`/v1/images/127.0.0.1:5000/team/app:1`), so each single-ref route also answers under a wildcard.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { problemResponses } from '../http/common-schemas.js';
import type { ImagesService } from './images-service.js';
import { DeleteResult, ImageList, ImageRefParams, ListImagesQuery } from './images-schemas.js';

/** What the images routes need. */
export interface ImagesRoutesOptions {
  images: Pick<ImagesService, 'get' | 'list' | 'remove'>;
}

function refOf(request: FastifyRequest): string {
  const params = request.params as { ref?: string; '*'?: string };
  return params.ref ?? params['*'] ?? '';
}

/** The images routes. */
export function imagesRoutes({ images }: ImagesRoutesOptions): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/images',
      {
        schema: {
          tags: ['images'],
          operationId: 'listImages',
          summary: 'List images, most recently pulled first',
          querystring: ListImagesQuery,
          response: { 200: ImageList, ...problemResponses(400, 500, 503) },
        },
      },
      async (request) => {
        const { limit, cursor, name } = request.query;
        return images.list({ limit, ...(cursor ? { cursor } : {}), ...(name ? { name } : {}) });
      },
    );

    const getSchema = {
      tags: ['images'],
      operationId: 'getImage',
      summary: 'Inspect an image',
      params: ImageRefParams,
      response: { 200: { $ref: 'Image' }, ...problemResponses(400, 404, 409, 500, 503) },
    };
    const deleteSchema = {
      tags: ['images'],
      operationId: 'deleteImage',
      summary: 'Remove a name, or an image with all its names',
      description:
        'By a name (repo:tag): removes that name, and the image once no name is left. By ID or name@digest: removes the image and all its names. Blobs no other image uses are removed from the store.',
      params: ImageRefParams,
      response: { 200: DeleteResult, ...problemResponses(400, 404, 409, 500, 503) },
    };
    const hidden = { hide: true };

    app.get('/v1/images/:ref', { schema: getSchema }, async (request) => images.get(refOf(request)));
    app.get('/v1/images/*', { schema: hidden }, async (request) => images.get(refOf(request)));
    app.delete('/v1/images/:ref', { schema: deleteSchema }, async (request) => images.remove(refOf(request)));
    app.delete('/v1/images/*', { schema: hidden }, async (request) => images.remove(refOf(request)));
  };
}
