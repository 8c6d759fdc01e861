/**
 * One host in a fleet rollout: how its ending is written down (`endHost`), its upgradeHost child
 * started and the child's result mapped onto its record (`upgradeChild`, `applyResult`), and the
 * rollback of a canary that relapsed during the bake (`recheckCanary`).
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityFailure,
  ParentClosePolicy,
  TimeoutFailure,
  WorkflowIdReusePolicy,
  isCancellation,
  startChild,
} from '@temporalio/workflow';
import { workflowTime } from '../clock.js';
import { childResultOf, failureText } from '../run.js';
import { clip, type FleetHostRecord, type FleetHostState, type ValidFleetInput } from './fleet-types.js';
import type { FleetComponent } from './fleet-component.js';
import type { rollbackHost } from '../host/rollback.js';
import { WORKFLOW_ROLLBACK, hostWorkflowId, isVersion, type UpgradeResult } from '../types.js';

/** Where a host's child run goes: the queue it starts on and what its input adds (fleet.ts). */
export type ChildPlacement = (host: string) => { taskQueue: string; input: { hostQueue?: string } };

/** True when an activity timed out waiting for a worker to pick it up (nobody polls the queue). */
export function notPickedUp(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}

/** The UpgradeResult a failed child attached to its failure (see HostRun.finish). */
export function resultOf(err: unknown): UpgradeResult | undefined {
  return childResultOf<UpgradeResult>(err);
}

/** Records that a host is done with, in `state`. */
export function endHost(
  rec: FleetHostRecord,
  state: FleetHostState,
  o: { after?: string; outcome?: FleetHostRecord['outcome']; reason?: string } = {},
): void {
  rec.state = state;
  rec.step = undefined;
  if (o.after !== undefined && isVersion(o.after)) rec.after = o.after;
  if (o.outcome) rec.outcome = o.outcome;
  if (o.reason !== undefined) rec.reason = clip(o.reason);
  rec.startedAt ??= workflowTime();
  rec.endedAt = workflowTime();
}

/** A host whose worker answered its probe: starts its upgradeHost child, awaits it, records how it ended. */
export async function upgradeChild(rec: FleetHostRecord, version: string, component: FleetComponent): Promise<void> {
  const { host } = rec;
  let child;
  try {
    child = await component.start(host, version);
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return endHost(rec, 'failed', {
        outcome: 'busy',
        reason: component.busy(host),
      });
    }
    if (isCancellation(err))
      return endHost(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
    return endHost(rec, 'failed', { reason: `could not start the upgrade: ${failureText(err)}` });
  }

  let result: UpgradeResult | undefined;
  try {
    result = await child.result();
  } catch (err) {
    result = resultOf(err);
    if (!result) {
      const cancelled = isCancellation(err);
      return endHost(rec, 'failed', {
        outcome: cancelled ? 'cancelled' : undefined,
        reason: cancelled
          ? `cancelled by the abort; the host compensated its own changes (see \`defenseclaw-upgrade status --host ${host}\`)`
          : failureText(err),
      });
    }
  }
  applyResult(rec, result);
}

/** Maps what a host's upgradeHost child answered onto its record. */
export function applyResult(rec: FleetHostRecord, r: UpgradeResult): void {
  const from = isVersion(r.from) ? r.from : undefined;
  if (from) rec.before = from;
  const why = r.failure ? `${r.failure.step}: ${r.failure.error}` : r.message;
  if (r.ok) return endHost(rec, 'healthy', { after: r.to, outcome: r.outcome });
  switch (r.outcome) {
    case 'rolled-back':
      return endHost(rec, 'rolled-back', { after: from, outcome: r.outcome, reason: why });
    case 'failed-unchanged':
      return endHost(rec, 'failed', { after: from, outcome: r.outcome, reason: why });
    case 'rollback-failed':
      return endHost(rec, 'failed', {
        outcome: r.outcome,
        reason: `${why}; ROLLBACK FAILED: ${r.compensation?.hostState ?? r.message}`,
      });
    default:
      return endHost(rec, 'failed', { outcome: r.outcome, reason: why });
  }
}

/** A canary at the end of the bake, re-checked on its own worker; a relapse of DefenseClaw is rolled back. */
export async function recheckCanary(
  rec: FleetHostRecord,
  version: string,
  input: ValidFleetInput,
  component: FleetComponent,
  placement: ChildPlacement,
): Promise<void> {
  rec.step = 'bake-check';
  const checked = await component.recheck(rec.host, version);
  if ('ok' in checked) return;
  if ('unreachable' in checked) return endHost(rec, 'unreachable', { reason: checked.unreachable });
  rec.reason = clip(checked.relapsed);
  if (!checked.rollBack) return endHost(rec, 'failed', { reason: checked.relapsed });
  // It relapsed: put it back on its backup, like any failed host.
  rec.step = 'rollback';
  const reason = rec.reason;
  try {
    const child = await startChild<typeof rollbackHost>(WORKFLOW_ROLLBACK, {
      workflowId: hostWorkflowId(rec.host),
      taskQueue: placement(rec.host).taskQueue,
      args: [
        {
          host: rec.host,
          healthTimeoutSeconds: input.healthTimeoutSeconds,
          requestedBy: input.requestedBy,
          ...placement(rec.host).input,
        },
      ],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `Roll back canary ${rec.host} (fleet ${input.fleetId})`,
    });
    const r = await child.result().catch((err: unknown) => resultOf(err));
    if (r?.ok) {
      endHost(rec, 'rolled-back', { after: r.to, outcome: 'rolled-back', reason: `${reason}; rolled back` });
    } else {
      endHost(rec, 'failed', { outcome: r?.outcome, reason: `${reason}; the rollback failed: ${r?.message ?? ''}` });
    }
  } catch (err) {
    endHost(rec, 'failed', { reason: `${reason}; could not start the rollback: ${failureText(err)}` });
  }
}
