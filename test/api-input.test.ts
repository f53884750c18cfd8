/**
 * Whatever a client sends, berth answers with a 2xx or a 4xx problem document — never a 500 — and
 * never records half of a bad request. Property-based: fast-check generates the input.
 * The berth here runs no worker, so no generated reference is ever contacted.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from './helpers/api.js';
import { startBerth, type TestBerth } from './helpers/berth.js';

let berth: TestBerth;

beforeAll(async () => {
  berth = await startBerth({}, { noWorker: true });
});

afterAll(async () => {
  await berth?.close();
});

const referenceLike = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.stringMatching(/^[a-zA-Z0-9._:@\/-]{0,90}$/),
  fc.constantFrom('sha256:', 'sha256:abc', `sha256:${'f'.repeat(64)}`, 'a@b', ':tag', '/', '..', '%2e%2e', 'x'.repeat(300)),
);

function expectProblemOrSuccess(res: { status: number; contentType: string; body: any }): void {
  expect(res.status).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.contentType).toContain('application/problem+json');
    expect(typeof res.body.code).toBe('string');
    expect(res.body.detail.length).toBeGreaterThan(0);
  }
}

describe('input the API did not expect', () => {
  it('GET and DELETE /v1/images/{ref} answer 2xx or 4xx for any ref', async () => {
    await fc.assert(
      fc.asyncProperty(referenceLike, fc.constantFrom('GET', 'DELETE'), async (ref, method) => {
        expectProblemOrSuccess(await api(berth.url, method, `/v1/images/${encodeURIComponent(ref)}`));
      }),
      { numRuns: 150 },
    );
  });

  it('POST /v1/pulls answers 202 or 4xx for any body, and a rejected one leaves no pull behind', async () => {
    const before = (await api(berth.url, 'GET', '/v1/pulls?limit=1000')).body.pulls.length as number;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            image: referenceLike,
            platform: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('linux/amd64', 'linux/arm64/v8', 'linux', 'windows/amd64')),
            auth: fc.oneof(fc.anything(), fc.record({ auth: fc.string() }), fc.record({ username: fc.string(), password: fc.string() })),
          },
          { requiredKeys: [] },
        ),
        async (body) => {
          const res = await api(berth.url, 'POST', '/v1/pulls', body);
          expectProblemOrSuccess(res);
          if (res.status === 202) accepted++;
        },
      ),
      { numRuns: 150 },
    );
    const after = (await api(berth.url, 'GET', '/v1/pulls?limit=1000')).body.pulls.length as number;
    expect(after - before).toBeLessThanOrEqual(accepted);
  });

  it('list parameters out of range or malformed answer 400', async () => {
    for (const query of ['limit=0', 'limit=100000', 'limit=abc', 'cursor=not-a-cursor', 'cursor=' + Buffer.from('{"x":1}').toString('base64url')]) {
      const res = await api(berth.url, 'GET', `/v1/images?${query}`);
      expect(res.status, query).toBe(400);
      expectProblemOrSuccess(res);
    }
  });

  it('a body that is not JSON answers 400', async () => {
    const res = await fetch(`${berth.url}/v1/pulls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"image":' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });
});

describe('GET /v1/pulls pages', () => {
  it('walk through every pull exactly once, and a forged cursor is a 400', async () => {
    for (const tag of ['p1', 'p2', 'p3']) await api(berth.url, 'POST', '/v1/pulls', { image: `127.0.0.1:9/paged/app:${tag}` });
    const all = (await api(berth.url, 'GET', '/v1/pulls?limit=1000')).body.pulls.map((p: { id: string }) => p.id) as string[];
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api(berth.url, 'GET', `/v1/pulls?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.pulls.map((p: { id: string }) => p.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all);
    const forged = Buffer.from(JSON.stringify({ at: new Date().toISOString(), id: 'not-a-uuid' })).toString('base64url');
    const res = await api(berth.url, 'GET', `/v1/pulls?cursor=${forged}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_CURSOR');
  });
});
