/**
 * What a fleet rollout is doing: its progress query or its result, and per host in flight the step
 * its own run is on and whether its worker is gone. Read by `fleet status` and the live table.
 */
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { progressQuery } from '../../../workflows/definitions.js';
import { fleetProgressQuery, type FleetProgress, type FleetResult } from '../../../workflows/fleet/fleet-types.js';
import { WORKFLOW_FLEET, taskQueueForHost } from '../../../workflows/types.js';
import { CliFailure, oneLine } from '../../errors.js';
import { workerGone } from '../../supervise.js';
import { hostRunId } from './component.js';
import { withTimeout, workflowSnapshot } from './snapshot.js';

/** Per host, what its own run is doing right now (only for hosts upgrading without a fleet step). */
export type CurrentSteps = Map<string, string>;

export async function currentSteps(client: Client, p: FleetProgress): Promise<CurrentSteps> {
  const out: CurrentSteps = new Map();
  const busy = p.hosts.filter((h) => h.state === 'upgrading' && !h.step).slice(0, 50);
  let next = 0;
  const worker = async () => {
    while (next < busy.length) {
      const h = busy[next++]!;
      const q = await withTimeout(
        client.workflow.getHandle(hostRunId(p.component, h.host)).query(progressQuery),
        2000,
      ).catch(() => undefined);
      const running = q?.steps.filter((s) => s.status === 'running').pop() ?? q?.steps.at(-1);
      if (running) out.set(h.host, running.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, busy.length) }, worker));
  return out;
}

/** Per host in flight whose worker is gone (client/supervise.ts: unstarted work, stale pollers), why. */
export type GoneWorkers = Map<string, string>;

export async function goneWorkers(client: Client, namespace: string, p: FleetProgress): Promise<GoneWorkers> {
  const out: GoneWorkers = new Map();
  const busy = p.hosts.filter((h) => h.state === 'upgrading').slice(0, 200);
  let next = 0;
  const worker = async () => {
    while (next < busy.length) {
      const h = busy[next++]!;
      const queue = p.settings.taskQueue ?? taskQueueForHost(h.host);
      const w = await workerGone(client, namespace, queue, client.workflow.getHandle(hostRunId(p.component, h.host)));
      if (w?.gone) out.set(h.host, w.why ?? 'gone');
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, busy.length) }, worker));
  return out;
}

/** The rollout's end: its result, or the result attached to its failure. */
export async function fleetResultOf(handle: WorkflowHandle): Promise<FleetResult> {
  try {
    return (await handle.result()) as FleetResult;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause;
      if (cause instanceof ApplicationFailure && cause.details?.[0]) return cause.details[0] as FleetResult;
      throw new CliFailure(`fleet ${handle.workflowId} ended without a result: ${oneLine(cause ?? err)}`);
    }
    throw err;
  }
}

/** A rollout's state now: its query while it runs, its result once it ended. */
export function fleetSnapshot(client: Client, fleetId: string): Promise<{ progress: FleetProgress; running: boolean }> {
  return workflowSnapshot<FleetProgress>(client, fleetId, {
    type: WORKFLOW_FLEET,
    what: 'fleet rollout',
    query: fleetProgressQuery,
    silent: (err) =>
      `fleet ${fleetId} runs but does not answer (${oneLine(err)}); is a fleet worker running (\`defenseclaw-upgrade fleet worker\`)?`,
    ended: fleetResultOf,
  });
}
