/**
 * Where a pull may come from: the names it may resolve to (several for a short name) and, for each,
 * the sources to try in order (mirrors first, primary last, as containers/image does).
 */
import type { Credentials } from '../registry/credentials.js';
import type { RepositoryTarget } from '../registry/manifests.js';
import type { ImageReference } from '../registry/reference.js';

/** One place to fetch a candidate from. */
export interface PlannedSource {
  target: RepositoryTarget;
  /** Tag or digest to ask this source for. */
  reference: string;
  /** How the source is named to users, e.g. `mirror.local:5000/library/alpine`. */
  display: string;
  mirror: boolean;
}

/** A fully qualified name the pull may resolve to, with its sources in order. */
export interface PlannedCandidate {
  name: ImageReference;
  sources: PlannedSource[];
}

/** Plans a pull of `image` (as the user wrote it) with the credentials given in the request. */
export type PlanPull = (image: string, credentials: Credentials | undefined) => Promise<PlannedCandidate[]>;
