/** Talks to a running berth over real HTTP, as curl would. */
import { request } from 'undici';

/** An answer: status, headers and the parsed JSON body. */
export interface ApiAnswer<T = any> {
  status: number;
  contentType: string;
  body: T;
}

/** Sends one request to `base` and parses the JSON answer. */
export async function api<T = any>(base: string, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    contentType: String(res.headers['content-type'] ?? ''),
    body: (text ? JSON.parse(text) : undefined) as T,
  };
}

/** Pulls `image` and waits (up to 30 s) for the pull to end; returns the pull object. */
export async function pullAndWait(base: string, body: Record<string, unknown>): Promise<any> {
  const started = await api(base, 'POST', '/v1/pulls?wait=30', body);
  if (started.status !== 202) throw new Error(`pull answered ${started.status}: ${JSON.stringify(started.body)}`);
  return started.body;
}
