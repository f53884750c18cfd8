/**
 * The pull queue's contract: its name and the payload of its jobs. Payloads carry the pull's ID and
 * sealed credentials only, never rows; a job's ID is its pull's ID, so BullMQ itself refuses doubles.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Name of the BullMQ queue holding pull jobs. */
export const PULL_QUEUE_NAME = 'pulls';

/** What a pull job carries through Redis. */
export interface PullJobData {
  pullId: string;
  /** Credentials sealed with the job-secret key (job-secrets.ts); never plain text. */
  sealedCredentials?: string;
}

/** The one way to put a pull on the queue. */
export type EnqueuePull = (data: PullJobData) => Promise<void>;

/** Options of every pull job. */
export interface PullJobPolicy {
  /** Attempts before a temporary failure ends the pull. */
  attempts: number;
}

/** Creates the pull queue on a Redis connection (one that fails fast when Redis is down). */
export function createPullQueue(connection: Redis, prefix: string): Queue<PullJobData> {
  return new Queue<PullJobData>(PULL_QUEUE_NAME, { connection, prefix });
}

/** An EnqueuePull bound to a queue and a job policy. */
export function pullEnqueuer(queue: Queue<PullJobData>, policy: PullJobPolicy): EnqueuePull {
  return async (data) => {
    await queue.add('pull', data, {
      jobId: data.pullId,
      attempts: policy.attempts,
      backoff: { type: 'exponential', delay: 1000 },
      // Jobs hold sealed credentials; remove them as soon as they end. Postgres keeps the record.
      removeOnComplete: true,
      removeOnFail: true,
    });
  };
}
