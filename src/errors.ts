/**
 * berth's error hierarchy. Every error a user can meet has a stable `code` and an HTTP status;
 * `toProblem` is the one place that maps any thrown value to an RFC 9457 problem document.
 */
import { RegistryError, type RegistryErrorCode } from './registry/errors.js';

/** Base of every error berth raises on purpose. */
export class AppError extends Error {
  override readonly name: string = 'AppError';
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number,
    /** Extra members for the problem document (must hold no secrets). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** 400: the request is malformed; the message says what to fix. */
export class BadRequestError extends AppError {
  override readonly name = 'BadRequestError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(code, message, 400, extra);
  }
}

/** 403: the request is understood and refused by policy. */
export class ForbiddenError extends AppError {
  override readonly name = 'ForbiddenError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(code, message, 403, extra);
  }
}

/** 404: the named resource does not exist. */
export class NotFoundError extends AppError {
  override readonly name = 'NotFoundError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(code, message, 404, extra);
  }
}

/** 409: the request conflicts with the current state (an ambiguous ID prefix, a pull in progress). */
export class ConflictError extends AppError {
  override readonly name = 'ConflictError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(code, message, 409, extra);
  }
}

/** 503: a dependency (Postgres, Redis) is unreachable. */
export class UnavailableError extends AppError {
  override readonly name = 'UnavailableError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(code, message, 503, extra);
  }
}

/** An RFC 9457 problem document with berth's stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [member: string]: unknown;
}

const REGISTRY_INPUT_ERRORS = new Set<RegistryErrorCode>(['INVALID_REFERENCE', 'INVALID_PLATFORM', 'INVALID_CREDENTIALS']);

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** HTTP status for a registry-client failure: bad input is the caller's, the rest is the registry's. */
export function registryErrorStatus(err: RegistryError): number {
  if (REGISTRY_INPUT_ERRORS.has(err.code)) return 400;
  if (err.code === 'REGISTRY_BLOCKED') return 403;
  return 502;
}

function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `urn:berth:problem:${code}`, title: TITLES[status] ?? 'Error', status, code, detail, ...extra };
}

const UNAVAILABLE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/** True when a thrown value means Postgres or Redis could not be reached. */
export function isDependencyDown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_NET_CODES.has(code)) return true;
  // pg: 57P01 admin shutdown, 57P03 cannot connect now, 08xxx connection exceptions.
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P03')) return true;
  // ioredis with the offline queue off fails fast with "Stream isn't writeable…".
  return /Connection terminated|connect ECONNREFUSED|Connection is closed|MaxRetriesPerRequest|timeout exceeded when trying to connect|Stream isn't writeable|enableOfflineQueue/i.test(
    err.message,
  );
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  validation?: unknown;
  message: string;
}

/**
 * Maps anything thrown to a problem document. The one place where errors become HTTP; handlers only throw.
 * Unknown errors become a 500 whose detail says nothing internal.
 */
export function toProblem(err: unknown): Problem {
  if (err instanceof AppError) return problem(err.statusCode, err.code, err.message, err.extra);
  if (err instanceof RegistryError) {
    const status = registryErrorStatus(err);
    const extra: Record<string, unknown> = {};
    if (err.registry) extra.registry = err.registry;
    if (err.errors.length > 0) extra.registryErrors = err.errors;
    return problem(status, err.code, err.message, extra);
  }
  if (isDependencyDown(err)) {
    return problem(503, 'DEPENDENCY_UNAVAILABLE', 'Postgres or Redis is unreachable; retry once they are back');
  }
  const fe = err as FastifyLikeError;
  if (fe && typeof fe === 'object' && typeof fe.message === 'string') {
    if (fe.validation) return problem(400, 'VALIDATION_FAILED', fe.message);
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      // Fastify's own client errors (bad JSON, wrong content type, body too large) keep their status.
      return problem(fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message);
    }
  }
  return problem(500, 'INTERNAL', 'An internal error occurred; the server log has the details');
}
