/** Route plugins that exist only with extra configuration, rendered into the document all the same. */
import type { FastifyInstance } from 'fastify';

/** The extra route plugins, with inert services. */
export function registryRoutesForDocs(): Array<(app: FastifyInstance) => Promise<void>> {
  return [];
}
