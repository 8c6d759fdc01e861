/**
 * What a fleet rollout does to one host, per component (issue 18): how the target is known, how a
 * host is changed (its child run), and how a canary is re-checked after the bake.
 *
 *   defenseclaw  the release is resolved on the resolver's worker (fleet.ts); an upgradeHost child
 *                per host on its fixed workflow ID; the bake re-check is waitHealthy on the host,
 *                and a relapse is rolled back
 *   worker       the version is the input's (an upgrader version, nothing to resolve); an
 *                updateWorkerHost child per host (worker-update.ts) on its own workflow ID; the
 *                re-check is the host's queue still polled by that version (awaitQueueVersion);
 *                there is nothing to roll back from here (the host's launcher owns the way back)
 *
 * Everything else of a fleet (probes, window, budget, pause/resume/abort, continue-as-new) is the
 * same for both.
 */
import {
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { workflowTime } from '../clock.js';
import { KIND, onHost } from '../proxies.js';
import { ticketArgs } from './fleet-ticket.js';
import type { ValidFleetInput } from './fleet-types.js';
import type { ReleaseTicket } from '../release-ticket.js';
import { failureText } from '../run.js';
import {
  LIMITS,
  WORKFLOW_UPGRADE,
  WORKFLOW_WORKER_UPDATE,
  hostWorkflowId,
  workerUpdateWorkflowId,
  type RolloutComponent,
  type UpgradeResult,
} from '../types.js';
import type { upgradeHost } from '../host/upgrade.js';
import { proveQueue, type updateWorkerHost } from './worker-update.js';

/** How the fleet places a host's child (fleet.ts childPlacement) and reaches its queue. */
export interface FleetContext {
  input: ValidFleetInput;
  queueOf(host: string): string;
  placement(host: string): { taskQueue: string; input: { hostQueue?: string } };
  ticket(): ReleaseTicket | undefined;
  /** True when an activity was not picked up in time (fleet.ts notPickedUp). */
  notPickedUp(err: unknown): boolean;
}

/** A host's child run: an upgradeHost or an updateWorkerHost. */
export type HostRun = (...args: any[]) => Promise<UpgradeResult>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type Recheck = { ok: true } | { unreachable: string } | { relapsed: string; rollBack: boolean };

export interface FleetComponent {
  readonly name: RolloutComponent;
  /** The target when the input names it outright (nothing to resolve), else undefined. */
  readonly given?: string;
  /** Starts the host's child run (WorkflowExecutionAlreadyStartedError: the host is busy). */
  start(host: string, version: string): Promise<ChildWorkflowHandle<HostRun>>;
  /** Why a host whose child ID is taken failed. */
  busy(host: string): string;
  /** A canary at the end of the bake. */
  recheck(host: string, version: string): Promise<Recheck>;
}

export function fleetComponent(ctx: FleetContext): FleetComponent {
  return ctx.input.component === 'worker' ? workerComponent(ctx) : defenseClawComponent(ctx);
}

/** For a child rollout's input: the component, only when it is not the default. */
export function componentArgs(component: RolloutComponent | undefined): { component?: 'worker' } {
  return component === 'worker' ? { component } : {};
}

function defenseClawComponent(ctx: FleetContext): FleetComponent {
  const { input } = ctx;
  return {
    name: 'defenseclaw',
    start: (host, version) =>
      startChild<typeof upgradeHost>(WORKFLOW_UPGRADE, {
        workflowId: hostWorkflowId(host),
        taskQueue: ctx.placement(host).taskQueue,
        args: [
          {
            ...ctx.placement(host).input,
            host,
            version,
            options: {
              healthTimeoutSeconds: input.healthTimeoutSeconds,
              onFailure: 'rollback',
              requireConfirmation: false,
              confirmTimeoutSeconds: LIMITS.confirmTimeoutSeconds.default,
            },
            fleetId: input.fleetId,
            requestedBy: input.requestedBy,
            ...ticketArgs(ctx.ticket()),
          },
        ],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        // Closing the fleet (terminate) asks each host to cancel, i.e. compensate; never kills one mid-swap.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        staticSummary: `Upgrade ${host} to ${version} (fleet ${input.fleetId})`,
      }),
    busy: (host) => `busy: another upgrade or rollback of ${host} is running (${hostWorkflowId(host)})`,
    async recheck(host, version) {
      const timeoutSeconds = Math.min(input.healthTimeoutSeconds, 60);
      const acts = onHost(ctx.queueOf(host), KIND.bakeCheck(timeoutSeconds), input.unreachableSeconds);
      try {
        await acts.waitHealthy.executeWithOptions({ summary: `bake check: ${host} still healthy on ${version}` }, [
          { version, timeoutSeconds },
        ]);
        return { ok: true };
      } catch (err) {
        if (ctx.notPickedUp(err)) {
          return {
            unreachable: `after the bake, no worker picked up work on ${ctx.queueOf(host)} within ${input.unreachableSeconds} s`,
          };
        }
        return { relapsed: `unhealthy at the end of the bake: ${failureText(err)}`, rollBack: true };
      }
    },
  };
}

/** A canary's worker must have polled within one long poll (about a minute) before the re-check. */
const RECHECK_RECENT_MS = 75_000;

function workerComponent(ctx: FleetContext): FleetComponent {
  const { input } = ctx;
  return {
    name: 'worker',
    given: input.version,
    start: (host, version) =>
      startChild<typeof updateWorkerHost>(WORKFLOW_WORKER_UPDATE, {
        workflowId: workerUpdateWorkflowId(host),
        taskQueue: workflowInfo().taskQueue,
        args: [
          {
            host,
            version,
            hostQueue: ctx.queueOf(host),
            answerSeconds: input.unreachableSeconds,
            fleetId: input.fleetId,
            requestedBy: input.requestedBy,
          },
        ],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        staticSummary: `Move ${host}'s worker to ${version} (fleet ${input.fleetId})`,
      }),
    busy: (host) => `busy: another update of ${host}'s worker is running (${workerUpdateWorkflowId(host)})`,
    async recheck(host, version) {
      const queue = ctx.queueOf(host);
      try {
        await proveQueue(queue, version, 90, { since: workflowTime() - RECHECK_RECENT_MS });
        return { ok: true };
      } catch (err) {
        return {
          relapsed: `after the bake, ${queue} is not polled by ${version}: ${failureText(err)}`,
          rollBack: false,
        };
      }
    },
  };
}
