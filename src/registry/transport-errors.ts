/**
 * How the transport classifies a failure into a RegistryError, where the HTTP call happens, as
 * go-containerregistry does: an error response by its status and the registry's own `{"errors":[…]}`
 * body (distribution spec, "Error Codes"), a network or TLS fault by its code; 429, 5xx and resets are
 * temporary, the rest permanent.
 */
import { RegistryError, type RegistryErrorCode, type RegistryErrorDetail } from './errors.js';

/** Most bytes of an error body read; the rest is dropped (a registry error body is a few hundred bytes). */
export const ERROR_BODY_CAP = 64 * 1024;

/** The `{"errors":[{code,message,detail}]}` body of the distribution spec, or [] when it is not one. */
export function parseRegistryErrors(body: Buffer): RegistryErrorDetail[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  const list = (parsed as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(list)) return [];
  return list.flatMap((e: unknown) => {
    if (typeof e !== 'object' || e === null) return [];
    const { code, message, detail } = e as Record<string, unknown>;
    // Registry text is untrusted: no control characters, bounded length.
    const clean = (v: unknown): string => (typeof v === 'string' ? v.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 500) : '');
    return [{ code: clean(code), message: clean(message), ...(detail === undefined ? {} : { detail }) }];
  });
}

const NOT_FOUND_CODES = new Set<string>(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN']);

/**
 * Classifies an error response: 401 UNAUTHORIZED, 403 DENIED, 404 by the body's code, 429 and 5xx
 * temporary, other statuses PROTOCOL_ERROR. The message carries the registry's own words and the host.
 */
export function errorFromResponse(
  status: number,
  body: Buffer,
  registry: string,
  what: string,
  opts: { notFound?: RegistryErrorCode; hint?: string | undefined } = {},
): RegistryError {
  const errors = parseRegistryErrors(body);
  const said = errors.map((e) => e.message || e.code).filter((m) => m !== '').join('; ');
  let code: RegistryErrorCode = 'PROTOCOL_ERROR';
  let temporary = false;
  if (status === 401) code = 'UNAUTHORIZED';
  else if (status === 403) code = 'DENIED';
  else if (status === 404) {
    const named = errors.find((e) => NOT_FOUND_CODES.has(e.code))?.code as RegistryErrorCode | undefined;
    code = named ?? opts.notFound ?? 'NAME_UNKNOWN';
  } else if (status === 429) [code, temporary] = ['TOO_MANY_REQUESTS', true];
  else if (status >= 500) [code, temporary] = ['REGISTRY_UNAVAILABLE', status !== 501 && status !== 505];
  const detail = [said || `HTTP ${status}`, opts.hint].filter(Boolean).join('; ');
  return new RegistryError(code, `${what}: ${detail} (HTTP ${status} from ${registry})`, { status, registry, errors, temporary });
}

const TEMPORARY_NET_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** Node's codes for a certificate that fails verification (expired, unknown issuer, wrong name…). */
const CERTIFICATE_CODE_RE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

function errorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown[] };
  const own = typeof e.code === 'string' ? e.code : undefined;
  if (own !== undefined && own !== 'UND_ERR_SOCKET') return own;
  // undici wraps socket faults (cause: ECONNRESET); Happy Eyeballs reports an AggregateError.
  const inner = e.cause !== err ? errorCode(e.cause, depth + 1) : undefined;
  return inner ?? (Array.isArray(e.errors) ? errorCode(e.errors[0], depth + 1) : undefined) ?? own;
}

/**
 * Turns a network or TLS failure into REGISTRY_UNAVAILABLE: temporary for resets, refusals and
 * timeouts; permanent for DNS names that do not exist and certificate problems, which retrying won't fix.
 */
export function classifyNetworkError(err: unknown, registry: string, what: string, host: string = registry): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = errorCode(err) ?? 'unknown error';
  const temporary = TEMPORARY_NET_CODES.has(code);
  let why = `cannot reach ${host} (${code})`;
  if (code === 'ENOTFOUND') why = `the host name ${host} does not resolve`;
  else if (CERTIFICATE_CODE_RE.test(code)) {
    why = `TLS verification of ${host} failed (${code}); configure the registry's CA or mark it insecure`;
  } else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') why = `TLS handshake with ${host} failed; is it plain HTTP? (${code})`;
  return new RegistryError('REGISTRY_UNAVAILABLE', `${what}: ${why}`, { registry, temporary, cause: err });
}

/** Milliseconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 10.2.3). */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** True when a TLS failure is about the certificate (so the server does speak TLS). */
export function isCertificateError(err: unknown): boolean {
  const cause = err instanceof RegistryError ? err.cause : err;
  return CERTIFICATE_CODE_RE.test(errorCode(cause) ?? '');
}
