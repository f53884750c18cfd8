/** Errors of the content store. */
import { AppError } from '../errors.js';

/** Codes of a blob whose bytes are not what its digest and size promised. */
export type ContentVerificationCode = 'DIGEST_MISMATCH' | 'SIZE_MISMATCH';

/**
 * 502: the bytes received do not match the expected digest or size. The blob came from upstream, so
 * the fault is the registry's (or the network's); nothing was kept.
 */
export class ContentVerificationError extends AppError {
  override readonly name = 'ContentVerificationError';
  constructor(code: ContentVerificationCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, 502, extra);
  }
}

/**
 * 503, temporary: a blob the caller had stored was removed by a concurrent image delete before the
 * image that needs it was recorded. Retrying the pull downloads it again.
 */
export class BlobVanishedError extends AppError {
  override readonly name = 'BlobVanishedError';
  /** Always worth retrying. */
  readonly temporary = true;
  constructor(readonly digest: string) {
    super('BLOB_VANISHED', `Blob ${digest} was removed by a concurrent delete before the image was recorded; retry the pull`, 503, {
      digest,
    });
  }
}
