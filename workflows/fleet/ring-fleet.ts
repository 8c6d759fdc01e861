/**
 * A ring's upgrade: one fleetRollout child `<rolloutId>.<ring>` (canary 0, the ring's batch and
 * budget, the rollout's resolved version and ticket), kept inside the ring's maintenance window,
 * and the ring's verdict read from its result.
 */
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  startChild,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { ReleaseTicket } from '../release-ticket.js';
import { workflowTime } from '../clock.js';
import { childResultOf, failureText } from '../run.js';
import { WORKFLOW_FLEET } from '../types.js';
import { componentArgs } from './fleet-component.js';
import { ticketArgs } from './fleet-ticket.js';
import { clip, maintenanceWindowSignal, resolveLimit, type FleetHostRecord, type FleetResult } from './fleet-types.js';
import type { fleetRollout } from './fleet.js';
import { windowState } from './maintenance-window.js';
import { describeFailures } from './ring-progress.js';
import type { Ring, RingReport, RolloutVerdict, ValidRingRolloutInput } from './ring-types.js';

/** The plan's one task queue for every host, for each child's input (nothing: each host's own queue). */
export function sharedQueue(input: ValidRingRolloutInput): { taskQueue?: string } {
  return input.plan.taskQueue ? { taskQueue: input.plan.taskQueue } : {};
}

export interface RingFleet {
  input: ValidRingRolloutInput;
  ring: Ring;
  rep: RingReport;
  fleetId: string;
  hosts: string[];
  /** The resolved version, the rollout's ticket and the host whose worker resolved it. */
  version?: string;
  ticket?: ReleaseTicket;
  resolver?: string;
  /** The window closed mid-ring: the ring waits until `opensAt`. */
  waiting: (opensAt: number) => void;
  /** The rollout's status line, after the ring changed state. */
  report: () => void;
}

/**
 * The ring's fleetRollout child, kept inside the window: when the window closes it is told to
 * start no new host (in-flight hosts finish); when it reopens, to go on.
 */
export async function runRingFleet(f: RingFleet): Promise<FleetResult | undefined> {
  const { input, ring, rep, fleetId, hosts } = f;
  const plan = input.plan;
  let child: ChildWorkflowHandle<typeof fleetRollout>;
  try {
    child = await startChild<typeof fleetRollout>(WORKFLOW_FLEET, {
      workflowId: fleetId,
      args: [
        {
          fleetId,
          hosts,
          version: f.version,
          canary: 0,
          batch: { count: resolveLimit(ring.batch, hosts.length, 1) },
          maxFailures: { count: resolveLimit(ring.maxFailures, hosts.length, 0) },
          bakeSeconds: 0,
          healthTimeoutSeconds: plan.healthTimeoutSeconds,
          unreachableSeconds: plan.unreachableSeconds,
          controller: f.resolver,
          requestedBy: input.requestedBy ?? input.rolloutId,
          jitterMs: plan.jitterMs,
          ...ticketArgs(f.ticket),
          ...sharedQueue(input),
          ...componentArgs(input.component),
        },
      ],
      // A closed ring of an earlier rollout with the same ID (a channel schedule's rollouts are all
      // `rollout-<schedule>`) is no obstacle; one still running is, and the ring says so.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `Ring ${ring.name} of ${input.rolloutId}: ${hosts.length} hosts to ${f.version}`,
    });
  } catch (err) {
    rep.reason = clip(`could not start the ring: ${failureText(err)}`);
    return undefined;
  }
  let result: FleetResult | undefined;
  let done = false;
  const ended = child.result().then(
    (r) => {
      result = r;
    },
    (err: unknown) => {
      result = childResultOf<FleetResult>(err);
      if (!result) rep.reason = clip(failureText(err));
    },
  );
  void ended.finally(() => {
    done = true;
  });
  while (!done && ring.window) {
    const w = windowState(ring.window, workflowTime());
    if (w.open) {
      await condition(() => done, Math.max(1000, (w.closesAt ?? workflowTime() + 86_400_000) - workflowTime()));
      if (done || windowState(ring.window, workflowTime()).open) continue;
      await child.signal(maintenanceWindowSignal, { open: false });
      f.waiting(windowState(ring.window, workflowTime()).opensAt!);
    } else {
      await condition(() => done, Math.max(1000, w.opensAt! - workflowTime()));
      if (done || !windowState(ring.window, workflowTime()).open) continue;
      await child.signal(maintenanceWindowSignal, { open: true });
      rep.state = 'upgrading';
      rep.opensAt = undefined;
      f.report();
    }
  }
  await ended;
  return result;
}

/**
 * Whether the ring's fleet result halts the rollout, and why: aborted, not run or not resolved,
 * or more failures than the ring's budget (`rep.failed`, `rep.budget`). Nothing: the ring goes on.
 */
export function fleetHalt(
  result: FleetResult | undefined,
  rep: RingReport,
  fleetId: string,
  failed: FleetHostRecord[],
): { verdict: RolloutVerdict; why: string } | undefined {
  const verdict = result?.verdict;
  if (verdict === 'aborted') return { verdict: 'aborted', why: `its fleet rollout ${fleetId} was aborted` };
  if (verdict === 'resolve-failed' || !result) {
    return {
      verdict: 'ring-over-budget',
      why: `its fleet rollout ${fleetId} failed: ${result?.message ?? rep.reason ?? 'no result'}`,
    };
  }
  if (rep.failed > rep.budget || verdict === 'failure-budget-exceeded' || verdict === 'canary-failed') {
    return {
      verdict: 'ring-over-budget',
      why: `${rep.failed} failure${rep.failed === 1 ? '' : 's'} over a budget of ${rep.budget}: ${describeFailures(failed)}`,
    };
  }
  return undefined;
}
