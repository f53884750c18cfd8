/** Reading a registry's responses within bounds: capped bodies, bodies dropped unread, single header values. */
import type { Readable } from 'node:stream';

/** Reads at most `cap` bytes of a body, then destroys the stream; `overflow` says whether more was sent. */
export async function readCapped(body: Readable, cap: number): Promise<{ bytes: Buffer; overflow: boolean }> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (total + chunk.length > cap) {
      chunks.push(chunk.subarray(0, cap - total));
      discardBody(body);
      return { bytes: Buffer.concat(chunks, cap), overflow: true };
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return { bytes: Buffer.concat(chunks, total), overflow: false };
}

/**
 * Stops reading a body and drops the connection. undici reports an unread body's destruction as an
 * 'error' event (RequestAbortedError), which would be unhandled, so it is swallowed here.
 */
export function discardBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** First value of a header that undici may report as an array. */
export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
