/**
 * The rollback of a ring whose gate failed during its soak (ringRollout with autoRollbackRing):
 * every upgraded host of the ring rolled back at once, each by a rollbackHost child on its host's
 * fixed workflow ID. The ring's report says how it went: `rolled-back`, or still `halted` with the
 * hosts whose rollback failed.
 */
import { ParentClosePolicy, WorkflowIdReusePolicy, startChild } from '@temporalio/workflow';
import type { rollbackHost } from '../host/rollback.js';
import { childResultOf, failureText } from '../run.js';
import { WORKFLOW_ROLLBACK, hostWorkflowId, taskQueueForHost, type UpgradeResult } from '../types.js';
import { clip } from './fleet-types.js';
import type { Ring, RingReport, ValidRingRolloutInput } from './ring-types.js';

/**
 * Rolls back the ring's upgraded `hosts`, records the outcome on `rep`, then calls `report`
 * (the rollout's status line).
 */
export async function rollBackRing(
  input: ValidRingRolloutInput,
  ring: Ring,
  rep: RingReport,
  hosts: string[],
  report: () => void,
): Promise<void> {
  const results = await Promise.all(
    hosts.map(async (host) => {
      try {
        const child = await startChild<typeof rollbackHost>(WORKFLOW_ROLLBACK, {
          workflowId: hostWorkflowId(host),
          args: [
            {
              host,
              healthTimeoutSeconds: input.plan.healthTimeoutSeconds,
              requestedBy: input.requestedBy ?? input.rolloutId,
              hostQueue: input.plan.taskQueue ?? taskQueueForHost(host),
            },
          ],
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `Roll back ${host}: ring ${ring.name}'s gate failed (${input.rolloutId})`,
        });
        const r = await child.result().catch((err: unknown) => childResultOf<UpgradeResult>(err));
        return r?.ok ? undefined : `${host}: ${r?.message ?? 'the rollback failed'}`;
      } catch (err) {
        return `${host}: could not start the rollback: ${failureText(err)}`;
      }
    }),
  );
  const bad = results.filter((r): r is string => r !== undefined);
  rep.state = bad.length ? 'halted' : 'rolled-back';
  rep.reason = clip(
    `${rep.reason ?? ''}; ${bad.length ? `rollback failed on ${bad.length}: ${bad.slice(0, 3).join('; ')}` : `${hosts.length} host${hosts.length === 1 ? '' : 's'} rolled back`}`,
    600,
  );
  report();
}
