/** The public API of berth's registry client (a standalone OCI/Docker distribution client). */
export * from './errors.js';
export * from './reference.js';
export * from './media-types.js';
export * from './platform.js';
export * from './challenge.js';
export * from './credentials.js';
export * from './token-cache.js';
export * from './transport.js';
export * from './transport-errors.js';
export * from './transport-response.js';
export { isLoopbackHost, type TlsSettings } from './transport-tls.js';
export * from './manifests.js';
export * from './blobs.js';
export * from './client.js';
