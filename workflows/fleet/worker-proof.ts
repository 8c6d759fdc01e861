/**
 * proveWorkers: a ring's gate when the rollout moves the hosts' workers (issue 18). DefenseClaw's
 * gates (/health subsystems, counters, the operator check) say nothing about the upgrader, so at the
 * end of the soak each host of the ring must still have its queue polled by a worker of the version
 * (awaitQueueVersion on the controller, a poller seen within about one long poll). A child of
 * ringRollout per ring (`<fleetId>.proof`), at most PARALLEL hosts at a time; its result has the
 * shape of a soak's, so the ring halts the same way (gate-failed).
 */
import { z } from 'zod';
import { workflowTime } from '../clock.js';
import { clip } from './fleet-types.js';
import { RING_LIMITS } from './ring-types.js';
import type { SoakResult } from './ring-soak.js';
import { failureText, validateInput } from '../run.js';
import { HostNameSchema, TaskQueueSchema, VersionSchema, taskQueueForHost } from '../types.js';
import { proveQueue } from './worker-update.js';

const PARALLEL = 20;
/** A worker that polls holds a long poll of about a minute: any poll this recent counts. */
const RECENT_MS = 75_000;

const ProveWorkersInputSchema = z
  .object({
    hosts: z.array(HostNameSchema).min(1).max(RING_LIMITS.hosts),
    version: VersionSchema,
    /** The plan's shared task queue, if any (instead of each host's own). */
    taskQueue: TaskQueueSchema.optional(),
  })
  .strict();
export type ProveWorkersInput = z.input<typeof ProveWorkersInputSchema>;

export async function proveWorkers(raw: ProveWorkersInput): Promise<SoakResult> {
  const input = validateInput(ProveWorkersInputSchema, raw);
  const failures: SoakResult['failures'] = [];
  const since = workflowTime() - RECENT_MS;
  let next = 0;
  const lane = async () => {
    while (next < input.hosts.length) {
      const host = input.hosts[next++]!;
      const queue = input.taskQueue ?? taskQueueForHost(host);
      try {
        await proveQueue(queue, input.version, 90, { since });
      } catch (err) {
        failures.push({ host, reason: clip(`its queue is not polled by ${input.version}: ${failureText(err)}`, 200) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, input.hosts.length) }, lane));
  return { ok: failures.length === 0, checks: 1, failures };
}
