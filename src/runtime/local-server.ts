/**
 * What the servers berth starts for itself (the embedded Postgres, a local Redis) have in common: the
 * log they report to, the handle that stops them, and a free loopback port to run on.
 */
import net from 'node:net';

/** Where runtime helpers report what they did: a pino or Fastify logger fits. */
export interface RuntimeLog {
  info(message: string): void;
  warn(message: string): void;
}

/** A database server berth started itself; stop() shuts it down and is safe to call twice. */
export interface RunningService {
  /** Connection URL (may hold a password: never log it). */
  url: string;
  stop(): Promise<void>;
}

/** Whether a loopback port can be bound now (the port may still be taken before Postgres binds it). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A loopback port the kernel considers free. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
