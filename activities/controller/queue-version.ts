/**
 * awaitQueueVersion: the proof that a host's worker switched versions, as Temporal itself sees it.
 * A controller activity (the fleet worker's, through its own client connection): it reads the
 * pollers of the host's activity task queue (describeTaskQueue) every second, parses each poller's
 * identity (worker/identity.ts) and answers as soon as one that polled after `since` reports
 * `version`. Heartbeats while it waits; gives up (non-retryable, QueueVersionTimeout) after
 * `timeoutSeconds`, naming the versions it saw, or as soon as a new worker of the `previous`
 * version polls (QueueVersionReverted: the host's launcher went back).
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { queuePollers } from '../../worker/queue-pollers.js';
import { TaskQueueSchema, VersionSchema } from '../../workflows/types.js';
import { refuse, sleep, validated } from '../support.js';

export const QUEUE_VERSION_TIMEOUT = 'QueueVersionTimeout';
export const QUEUE_VERSION_REVERTED = 'QueueVersionReverted';

const InputSchema = z
  .object({
    taskQueue: TaskQueueSchema,
    version: VersionSchema,
    timeoutSeconds: z.number().int().min(1).max(3600),
    /** Only pollers seen after this (epoch ms, server time); default: when this activity was scheduled. */
    since: z.number().int().min(0).max(8.64e15).optional(),
    /**
     * The version the queue was polled by before the switch: a worker of that version that was not
     * there at the first reading (a new process) means the host went back: answered at once
     * (QueueVersionReverted) instead of at the timeout.
     */
    previous: VersionSchema.optional(),
  })
  .strict();
export type AwaitQueueVersionInput = z.input<typeof InputSchema>;

export interface QueueVersionProof {
  identity: string;
  version: string;
  /** When that poller last polled (epoch ms, server time). */
  lastAccessTime?: number;
}

/** Activity: waits until `taskQueue` is polled by a worker of `version` (see the file's comment). */
export async function awaitQueueVersion(raw: unknown): Promise<QueueVersionProof> {
  const input = validated(InputSchema, raw, 'awaitQueueVersion');
  const ctx = Context.current();
  const since = input.since ?? ctx.info.currentAttemptScheduledTimestampMs;
  const deadline = Date.now() + input.timeoutSeconds * 1000;
  const seen = new Set<string>();
  let before: Set<string> | undefined;
  for (;;) {
    ctx.heartbeat({ seen: [...seen] });
    const pollers = await queuePollers(
      ctx.client.workflowService,
      ctx.info.workflowNamespace ?? 'default',
      input.taskQueue,
    );
    before ??= new Set(pollers.filter((p) => p.version === input.previous).map((p) => p.identity));
    for (const p of pollers) {
      if (p.lastAccessTime !== undefined && p.lastAccessTime < since) continue;
      if (p.version === input.version)
        return { identity: p.identity, version: p.version, lastAccessTime: p.lastAccessTime };
      seen.add(p.version ?? 'before 0.2');
      if (input.previous && p.version === input.previous && !before.has(p.identity))
        throw refuse(
          QUEUE_VERSION_REVERTED,
          `${input.taskQueue} is polled again by a new worker of ${input.previous} (${p.identity}), not ${input.version}`,
        );
    }
    if (Date.now() >= deadline) {
      const saw = seen.size ? `it saw ${[...seen].join(', ')}` : 'no worker polled it';
      throw refuse(
        QUEUE_VERSION_TIMEOUT,
        `${input.taskQueue} was not polled by a worker of ${input.version} within ${input.timeoutSeconds} s (${saw})`,
      );
    }
    await sleep(1000, ctx.cancellationSignal);
  }
}
