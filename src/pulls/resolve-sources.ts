/**
 * Resolves a planned pull to one image: tries each candidate name in order and, for each, its sources
 * in order (mirrors first, primary last); the first source that serves the manifest wins and serves
 * every blob of the image, as containers/image does. When all fail, every attempt is listed.
 */
import { AppError } from '../errors.js';
import { RegistryError } from '../registry/errors.js';
import type { ResolvedImage } from '../registry/manifests.js';
import type { Platform } from '../registry/platform.js';
import { formatName } from '../registry/reference.js';
import type { PlannedCandidate, PlannedSource } from './pull-plan.js';
import type { PullAttempt } from './pulls-repository.js';


/** A pull that nowhere succeeded; `attempts` lists every source tried, in order. */
export class PullFailedError extends AppError {
  override readonly name = 'PullFailedError';
  constructor(
    code: string,
    message: string,
    readonly attempts: PullAttempt[],
    readonly temporary: boolean,
  ) {
    super(code, message, 502, { attempts });
  }
}

/** The stable code and message of any failure, for attempts and pull records. */
export function errorSummary(err: unknown): { code: string; message: string } {
  if (err instanceof RegistryError || err instanceof AppError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** True when trying again later may succeed. */
export function isTemporary(err: unknown): boolean {
  if (err instanceof PullFailedError) return err.temporary;
  if (err instanceof RegistryError) return err.temporary;
  // A blob a concurrent delete removed is fetched again; a blob whose digest or size is wrong is not:
  // the registry serves bad content, and retrying would download it again (a cut body is a network error).
  if (err instanceof AppError) return err.code === 'BLOB_VANISHED';
  // Unknown faults (Postgres or the disk hiccuping) are worth another try.
  return true;
}

/**
 * The message of a pull that nowhere succeeded: the primary's error first, then the mirrors', in the
 * spirit of containers/image's "(Mirrors also failed: …)". With no mirrors, the primary's error alone.
 */
export function describeFailure(attempts: PullAttempt[], sources: PlannedSource[]): string {
  const primaryIndex = sources.findIndex((s) => !s.mirror);
  const primary = attempts[primaryIndex] ?? attempts[attempts.length - 1];
  if (!primary) return 'no source to pull from';
  const mirrors = attempts.filter((a) => a !== primary);
  const head = `${primary.source}: ${primary.error.message}`;
  if (mirrors.length === 0) return head;
  return `${head} (Mirrors also failed: [${mirrors.map((m) => `${m.source}: ${m.error.message}`).join(', ')}])`;
}

/** What resolving needs of the registry client. */
export interface ManifestResolver {
  resolveImage(target: PlannedSource['target'], reference: string, platform: Platform): Promise<ResolvedImage>;
}

/** The first source that serves the image, with the candidate it belongs to. */
export interface ResolvedSource {
  candidate: PlannedCandidate;
  source: PlannedSource;
  resolved: ResolvedImage;
}

/** Tries the candidates and their sources in order; throws PullFailedError listing every attempt. */
export async function resolveFromSources(
  registry: ManifestResolver,
  candidates: PlannedCandidate[],
  platform: Platform,
): Promise<ResolvedSource> {
  const { candidate, source, result } = await firstServingSource(candidates, (s) => registry.resolveImage(s.target, s.reference, platform));
  return { candidate, source, resolved: result };
}

/**
 * Runs `attempt` on each candidate's sources in order (mirrors first, primary last) and answers the
 * first success; when all fail, throws PullFailedError listing every attempt, the primary's first.
 */
export async function firstServingSource<T>(
  candidates: PlannedCandidate[],
  attempt: (source: PlannedSource) => Promise<T>,
): Promise<{ candidate: PlannedCandidate; source: PlannedSource; result: T }> {
  const attempts: PullAttempt[] = [];
  const candidateFailures: PullFailedError[] = [];
  let last: PullFailedError | undefined;
  for (const candidate of candidates) {
    const candidateAttempts: PullAttempt[] = [];
    let temporary = false;
    for (const source of candidate.sources) {
      try {
        return { candidate, source, result: await attempt(source) };
      } catch (err) {
        candidateAttempts.push({ source: source.display, error: errorSummary(err) });
        if (!source.mirror) temporary = isTemporary(err);
      }
    }
    attempts.push(...candidateAttempts);
    const primaryIndex = candidate.sources.findIndex((s) => !s.mirror);
    const primaryError = candidateAttempts[primaryIndex] ?? candidateAttempts.at(-1);
    last = new PullFailedError(
      primaryError?.error.code ?? 'PULL_FAILED',
      describeFailure(candidateAttempts, candidate.sources),
      candidateAttempts,
      temporary,
    );
    candidateFailures.push(last);
  }
  if (!last) throw new PullFailedError('PULL_FAILED', 'no source to pull from', [], false);
  if (candidates.length === 1) throw last;
  // A short name tried in several registries: say so, as podman does, and list every attempt.
  const names = candidates.map((c) => formatName(c.name)).join(', ');
  const detail = attempts.map((a) => `${a.source}: ${a.error.message}`).join('; ');
  // Worth retrying when any candidate's registry failed temporarily: that one may have had the image.
  const temporary = candidateFailures.some((f) => f.temporary);
  throw new PullFailedError(last.code, `no candidate of ${names} could be pulled: ${detail}`, attempts, temporary);
}
