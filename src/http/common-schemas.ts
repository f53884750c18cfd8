/** Schemas shared by every route: the problem document and its per-status responses. */
import { Type } from 'typebox';

/** RFC 9457 problem document with berth's stable `code`. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URN naming the problem type: urn:berth:problem:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable, machine-readable error code' }),
    detail: Type.String({ description: 'What went wrong and what to do about it' }),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);

const problemRef = Type.Ref('Problem');

/** Response entries for the error statuses a route can answer, to spread into `response`. */
export function problemResponses(...statuses: number[]): Record<number, typeof problemRef> {
  return Object.fromEntries(statuses.map((status) => [status, problemRef]));
}
