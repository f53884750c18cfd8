/** Free TCP ports on loopback for child processes (registries) that cannot listen on port 0 themselves. */
import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that was free a moment ago: bind port 0, read the port, close. Another process
 * can still take it before the caller binds, so callers retry on "address already in use".
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
