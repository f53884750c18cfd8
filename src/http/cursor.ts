/**
 * Opaque list cursors: a keyset position (a timestamp and an ID) as base64url JSON. Clients pass back
 * what they were given; anything else is a 400 that says to start again.
 */
import { BadRequestError } from '../errors.js';

/** Where a page ended: the last row's timestamp and ID (the list's sort key). */
export interface KeysetPosition {
  at: Date;
  id: string;
}

/** The cursor for the page after `position`. */
export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify({ at: position.at.toISOString(), id: position.id })).toString('base64url');
}

/** The position a cursor holds; INVALID_CURSOR (400) unless it is one encodeCursor made with a valid ID. */
export function decodeCursor(cursor: string, isId: (id: string) => boolean): KeysetPosition {
  const invalid = new BadRequestError('INVALID_CURSOR', 'cursor is not a nextCursor returned by this API; start again without it');
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  const { at, id } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { at?: unknown; id?: unknown };
  if (typeof at !== 'string' || typeof id !== 'string' || !isId(id)) throw invalid;
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) throw invalid;
  return { at: date, id };
}
