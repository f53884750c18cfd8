/**
 * Renders berth's OpenAPI document from the routes themselves. The services are never called while
 * rendering, so inert ones stand in for them.
 */
import { buildApp, type AppDeps } from '../src/app.js';

const unused = (): never => {
  throw new Error('not available while rendering the OpenAPI document');
};

/** App dependencies that are never called: enough to build the routes and their documentation. */
export function inertAppDeps(): AppDeps {
  return {
    images: { get: unused, list: unused, remove: unused },
    pulls: { create: unused, get: unused, cancel: unused, wait: unused, list: unused },
    registries: { describe: unused, inspect: unused, tags: unused },
    metrics: { metrics: unused, contentType: 'text/plain' },
    checks: [],
    maxWaitSeconds: 300,
  };
}

/** The OpenAPI document as YAML, exactly as committed in openapi.yaml. */
export async function renderOpenApiYaml(): Promise<string> {
  const deps = inertAppDeps();
  const app = await buildApp(deps);
  await app.ready();
  const yaml = app.swagger({ yaml: true });
  await app.close();
  return yaml;
}
