import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApp } from '../src/app.js';
import { inertAppDeps, renderOpenApiYaml } from '../scripts/openapi-document.js';

describe('openapi.yaml', () => {
  it('matches the document the routes produce (run `npm run openapi` after changing a route)', async () => {
    const committed = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8');
    expect(committed).toEqual(await renderOpenApiYaml());
  });

  it('gives every operation an operationId, a tag and response schemas', async () => {
    const doc = parse(await renderOpenApiYaml()) as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; responses?: Record<string, unknown> }>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, ...op })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(7);
    for (const op of operations) {
      expect(op.operationId, op.where).toBeTruthy();
      expect(op.tags?.length, op.where).toBeGreaterThan(0);
      expect(Object.keys(op.responses ?? {}).length, op.where).toBeGreaterThan(0);
    }
  });
});

describe('Swagger UI', () => {
  it('is served at /docs', async () => {
    const app = await buildApp(inertAppDeps());
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const json = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(JSON.parse(json.body)).toMatchObject({ openapi: '3.1.0', info: { title: 'berth' } });
    await app.close();
  });
});
