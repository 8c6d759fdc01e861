/**
 * What Temporal knows about the inventory's hosts, read on the controller (the worker that runs
 * the inventory workflow) through its own client, never asked of the host: the host's fixed-ID
 * run (hostWorkflowId) in flight, its last closed upgrade or rollback with the project's search
 * attributes, and, for a host that did not answer, the last time its queue was polled. One list
 * per batch for the runs in flight, one page of one for each host's last outcome, one
 * describeTaskQueue per unreachable host: the cost grows with the fleet, not with its history.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { lastPollOf, queuePollers } from '../../worker/queue-pollers.js';
import { INVENTORY_LIMITS, type HostVisibility } from '../../workflows/fleet/inventory-types.js';
import {
  HostNameSchema,
  SEARCH_ATTRIBUTES,
  TaskQueueSchema,
  WORKFLOW_ROLLBACK,
  WORKFLOW_UPGRADE,
  hostWorkflowId,
  taskQueueForHost,
} from '../../workflows/types.js';
import { validated } from '../support.js';

const VisibilityInput = z
  .object({
    hosts: z.array(HostNameSchema).max(INVENTORY_LIMITS.batchHosts),
    unreachable: z.array(HostNameSchema).max(INVENTORY_LIMITS.batchHosts),
    taskQueue: TaskQueueSchema.optional(),
  })
  .strict();
export type VisibilityInput = z.input<typeof VisibilityInput>;

const CONCURRENCY = 8;
const KINDS: Record<string, string> = { [WORKFLOW_UPGRADE]: 'upgrade', [WORKFLOW_ROLLBACK]: 'rollback' };

async function eachLimit<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, lane));
}

function iso(d: Date | undefined | null): string | undefined {
  return d ? d.toISOString() : undefined;
}

function first(attrs: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = attrs?.[key];
  return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** The host's fixed-ID runs now running, one visibility list for the whole batch. */
async function inFlight(client: Client, hosts: readonly string[]): Promise<Map<string, HostVisibility['inFlight']>> {
  const out = new Map<string, HostVisibility['inFlight']>();
  if (!hosts.length) return out;
  const byId = new Map(hosts.map((h) => [hostWorkflowId(h), h]));
  const ids = [...byId.keys()].map((id) => `'${id}'`).join(', ');
  for await (const w of client.workflow.list({ query: `WorkflowId IN (${ids}) AND ExecutionStatus = 'Running'` })) {
    const host = byId.get(w.workflowId);
    if (host) out.set(host, { kind: KINDS[w.type] ?? w.type, runId: w.runId, startedAt: w.startTime.toISOString() });
  }
  return out;
}

/** The host's last closed upgrade or rollback: one page of one. */
async function lastOutcome(client: Client, host: string): Promise<HostVisibility['lastOutcome']> {
  const query =
    `${SEARCH_ATTRIBUTES.host} = '${host}' AND ExecutionStatus != 'Running' ` +
    `AND WorkflowType IN ('${WORKFLOW_UPGRADE}', '${WORKFLOW_ROLLBACK}')`;
  for await (const w of client.workflow.list({ query, pageSize: 1 })) {
    const attrs = w.searchAttributes as Record<string, unknown> | undefined;
    const toVersion = first(attrs, SEARCH_ATTRIBUTES.toVersion);
    return {
      kind: KINDS[w.type] ?? w.type,
      outcome: first(attrs, SEARCH_ATTRIBUTES.outcome) ?? w.status.name.toLowerCase(),
      ...(toVersion ? { toVersion } : {}),
      ...(w.closeTime ? { closedAt: iso(w.closeTime) } : {}),
    };
  }
  return undefined;
}

/** The last time Temporal saw the queue polled for activities (it forgets pollers after a few minutes). */
export async function lastPolled(client: Client, taskQueue: string): Promise<string | undefined> {
  const last = lastPollOf(await queuePollers(client.workflowService, client.options.namespace, taskQueue));
  return last ? new Date(last).toISOString() : undefined;
}

/** What Temporal knows about each host of a batch (the client is the controller's own). */
export async function hostsVisibility(client: Client, rawInput: unknown): Promise<Record<string, HostVisibility>> {
  const input = validated(VisibilityInput, rawInput, 'inventoryVisibility');
  const out: Record<string, HostVisibility> = {};
  for (const h of input.hosts) out[h] = {};
  const running = await inFlight(client, input.hosts);
  for (const [h, r] of running) out[h]!.inFlight = r;
  await eachLimit(input.hosts, async (h) => {
    const last = await lastOutcome(client, h);
    if (last) out[h]!.lastOutcome = last;
  });
  await eachLimit(input.unreachable, async (h) => {
    const at = await lastPolled(client, input.taskQueue ?? taskQueueForHost(h)).catch(() => undefined);
    if (at) out[h]!.lastPolledAt = at;
  });
  return out;
}

export function createInventoryControllerActivities() {
  return {
    inventoryVisibility: (input: VisibilityInput) => hostsVisibility(Context.current().client, input),
  };
}
