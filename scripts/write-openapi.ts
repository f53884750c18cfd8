/** `npm run openapi`: writes openapi.yaml from the routes. */
import { writeFile } from 'node:fs/promises';
import { renderOpenApiYaml } from './openapi-document.js';

await writeFile(new URL('../openapi.yaml', import.meta.url), await renderOpenApiYaml());
console.log('wrote openapi.yaml');
