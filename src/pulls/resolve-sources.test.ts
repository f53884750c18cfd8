import { describe, expect, it } from 'vitest';
import { RegistryError } from '../registry/errors.js';
import type { ResolvedImage } from '../registry/manifests.js';
import { parseReference } from '../registry/reference.js';
import type { PlannedCandidate, PlannedSource } from './pull-plan.js';
import { PullFailedError, resolveFromSources } from './resolve-sources.js';

const platform = { os: 'linux', architecture: 'amd64' };

function source(display: string, mirror: boolean): PlannedSource {
  const [registry, ...path] = display.split('/');
  return { target: { registry: registry!, repository: path.join('/') }, reference: 'latest', display, mirror };
}

function candidate(name: string, sources: PlannedSource[]): PlannedCandidate {
  return { name: parseReference(name), sources };
}

/** A resolver that fails for the registries named in `failures` and records the order it was asked in. */
function resolver(failures: Record<string, RegistryError>) {
  const asked: string[] = [];
  return {
    asked,
    async resolveImage(target: { registry: string }): Promise<ResolvedImage> {
      asked.push(target.registry);
      const failure = failures[target.registry];
      if (failure) throw failure;
      return { topDigest: `sha256:${'a'.repeat(64)}` } as ResolvedImage;
    },
  };
}

const down = (host: string) => new RegistryError('REGISTRY_UNAVAILABLE', `${host} is down`, { temporary: true });
const missing = (host: string) => new RegistryError('MANIFEST_UNKNOWN', `${host} has no such manifest`);

describe('resolveFromSources', () => {
  it('tries mirrors first and stops at the first source that serves the image', async () => {
    const r = resolver({ 'm1.test': down('m1.test') });
    const c = candidate('p.test/app', [source('m1.test/app', true), source('m2.test/app', true), source('p.test/app', false)]);
    const found = await resolveFromSources(r, [c], platform);
    expect(found.source.display).toBe('m2.test/app');
    expect(r.asked).toEqual(['m1.test', 'm2.test']);
  });

  it('names the primary’s error first and lists the mirrors’ after it when all fail', async () => {
    const r = resolver({ 'm1.test': down('m1.test'), 'p.test': missing('p.test') });
    const c = candidate('p.test/app', [source('m1.test/app', true), source('p.test/app', false)]);
    const err = await resolveFromSources(r, [c], platform).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PullFailedError);
    const failure = err as PullFailedError;
    expect(failure.code).toBe('MANIFEST_UNKNOWN');
    expect(failure.message).toBe('p.test/app: p.test has no such manifest (Mirrors also failed: [m1.test/app: m1.test is down])');
    expect(failure.attempts.map((a) => a.source)).toEqual(['m1.test/app', 'p.test/app']);
    expect(failure.temporary).toBe(false); // the primary's failure decides
  });

  it('returns the primary’s error as is when there are no mirrors', async () => {
    const r = resolver({ 'p.test': down('p.test') });
    const err = (await resolveFromSources(r, [candidate('p.test/app', [source('p.test/app', false)])], platform).catch((e: unknown) => e)) as PullFailedError;
    expect(err.message).toBe('p.test/app: p.test is down');
    expect(err.temporary).toBe(true);
  });

  it('moves on to the next short-name candidate and lists every attempt when none succeeds', async () => {
    const r = resolver({ 'a.test': missing('a.test'), 'b.test': missing('b.test') });
    const candidates = [candidate('a.test/app', [source('a.test/app', false)]), candidate('b.test/app', [source('b.test/app', false)])];
    const err = (await resolveFromSources(r, candidates, platform).catch((e: unknown) => e)) as PullFailedError;
    expect(err.attempts.map((a) => a.source)).toEqual(['a.test/app', 'b.test/app']);
    expect(err.message).toContain('a.test/app, b.test/app');
  });
});

describe('resolveFromSources across short-name candidates', () => {
  it('is worth retrying when an earlier candidate failed temporarily, even if the last failed for good', async () => {
    const r = resolver({ 'a.test': down('a.test'), 'b.test': missing('b.test') });
    const candidates = [candidate('a.test/app', [source('a.test/app', false)]), candidate('b.test/app', [source('b.test/app', false)])];
    const err = (await resolveFromSources(r, candidates, platform).catch((e: unknown) => e)) as PullFailedError;
    expect(err.temporary).toBe(true);
  });
});

describe('isTemporary', () => {
  it('retries a blob a concurrent delete removed, never one whose digest or size is wrong', async () => {
    const { isTemporary } = await import('./resolve-sources.js');
    const { BlobVanishedError, ContentVerificationError } = await import('../store/errors.js');
    expect(isTemporary(new BlobVanishedError(`sha256:${'a'.repeat(64)}`))).toBe(true);
    expect(isTemporary(new ContentVerificationError('DIGEST_MISMATCH', 'blob has another digest'))).toBe(false);
    expect(isTemporary(new ContentVerificationError('SIZE_MISMATCH', 'blob has another size'))).toBe(false);
  });
});
