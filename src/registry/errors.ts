/**
 * Errors of the registry client. Every failure carries a stable `code` and says whether it is
 * temporary (worth retrying: 429, 5xx, connection resets) or permanent, classified where the HTTP call
 * happens, as go-containerregistry's transport does. This module imports nothing outside registry/.
 */

/** Stable codes of registry-client failures. */
export type RegistryErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_PLATFORM'
  | 'INVALID_CREDENTIALS'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NAME_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'TOO_MANY_REQUESTS'
  | 'REGISTRY_UNAVAILABLE'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MANIFEST_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MANIFEST'
  | 'PLATFORM_NOT_FOUND'
  | 'REGISTRY_BLOCKED'
  | 'TOKEN_FAILED'
  | 'PROTOCOL_ERROR';

/** One entry of a registry's `{"errors":[…]}` body (distribution spec, "Error Codes"). */
export interface RegistryErrorDetail {
  code: string;
  message: string;
  detail?: unknown;
}

/** Options shared by every registry error. */
export interface RegistryErrorOptions {
  /** Worth retrying with backoff (429, 5xx, network faults). */
  temporary?: boolean;
  /** HTTP status the registry answered, when there was an answer. */
  status?: number;
  /** The registry host (host[:port]) that failed. */
  registry?: string;
  /** The errors the registry itself reported, verbatim. */
  errors?: RegistryErrorDetail[];
  cause?: unknown;
}

/** A failure of the registry client; `code` is stable and safe to show to API users. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly temporary: boolean;
  readonly status: number | undefined;
  readonly registry: string | undefined;
  readonly errors: RegistryErrorDetail[];

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options: RegistryErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.temporary = options.temporary ?? false;
    this.status = options.status;
    this.registry = options.registry;
    this.errors = options.errors ?? [];
  }
}

/** True for errors a caller may retry. */
export function isTemporary(err: unknown): boolean {
  return err instanceof RegistryError && err.temporary;
}
