/**
 * fleetInventory: every host's own worker answers what it runs (readInventory on its queue), a
 * few at a time, within a bounded time (scheduleToStart: a host whose worker does not pick the
 * activity up is `unreachable`); what Temporal knows about the hosts (a run in flight, the last
 * outcome, the last poll) comes from the controller (inventoryVisibility on this workflow's queue).
 *
 * The hosts go in child batches of INVENTORY_LIMITS.batchHosts (inventoryBatch), a few batches at
 * a time: each history grows with its own hosts only, the parent's with the number of batches, so
 * a 5,000-host inventory stays far from Temporal's history limits.
 */
import { executeChild, workflowInfo } from '@temporalio/workflow';
import type { ControllerActivities } from '../../activities/controller/controller.js';
import { workflowTime } from '../clock.js';
import { notPickedUp } from './fleet-host.js';
import {
  INVENTORY_LIMITS,
  InventoryInputSchema,
  WORKFLOW_INVENTORY_BATCH,
  type HostInventory,
  type InventoryInput,
  type InventoryResult,
} from './inventory-types.js';
import { validateInput } from '../run.js';
import { KIND, hostQueue, onController, onHost } from '../proxies.js';

const controller = onController<ControllerActivities>(KIND.visibility);

const now = () => new Date(workflowTime()).toISOString();

function oneLine(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return `${e?.cause?.message ?? e?.message ?? String(err)}`.replace(/\s+/g, ' ').slice(0, 200);
}

async function lanes<T>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, lane));
}

export async function fleetInventory(rawInput: InventoryInput): Promise<InventoryResult> {
  const input = validateInput(InventoryInputSchema, rawInput);
  const startedAt = now();
  const latestP = input.resolveLatest
    ? controller.resolveChannel({ channel: 'latest' }).then(
        (r) => ({ latest: r.version }),
        (err: unknown) => ({ latestError: oneLine(err) }),
      )
    : Promise.resolve({});
  const size = INVENTORY_LIMITS.batchHosts;
  const batches: string[][] = [];
  for (let i = 0; i < input.hosts.length; i += size) batches.push(input.hosts.slice(i, i + size));
  const results: HostInventory[][] = new Array(batches.length);
  const { workflowId, runId } = workflowInfo();
  await lanes(batches, INVENTORY_LIMITS.parallelBatches, async (hosts, i) => {
    results[i] = await executeChild<typeof inventoryBatch>(WORKFLOW_INVENTORY_BATCH, {
      workflowId: `${workflowId}-${runId.slice(0, 8)}-b${i + 1}`,
      args: [{ ...input, hosts, resolveLatest: undefined }],
    });
  });
  return { startedAt, finishedAt: now(), hosts: results.flat(), ...(await latestP) };
}

/** One batch: every host's answer, then what Temporal knows about them. */
export async function inventoryBatch(rawInput: InventoryInput): Promise<HostInventory[]> {
  const input = validateInput(InventoryInputSchema, rawInput);
  const answerSeconds = input.answerSeconds ?? INVENTORY_LIMITS.answerSeconds.default;
  const records: HostInventory[] = new Array(input.hosts.length);
  await lanes(input.hosts, input.concurrency ?? INVENTORY_LIMITS.concurrency.default, async (host, i) => {
    const acts = onHost(hostQueue(host, input.taskQueue), KIND.read, answerSeconds);
    try {
      const report = await acts.readInventory();
      records[i] = { host, status: 'ok', at: now(), ...report };
    } catch (err) {
      records[i] = notPickedUp(err)
        ? { host, status: 'unreachable', at: now() }
        : { host, status: 'error', at: now(), error: oneLine(err) };
    }
  });
  const unreachable = records.filter((r) => r.status === 'unreachable').map((r) => r.host);
  try {
    const seen = await controller.inventoryVisibility({ hosts: input.hosts, unreachable, taskQueue: input.taskQueue });
    for (const r of records) {
      Object.assign(r, seen[r.host] ?? {});
      if (r.status === 'unreachable' && r.lastPolledAt) r.unreachableSince = r.lastPolledAt;
    }
  } catch {
    // What Temporal knows is extra: the hosts' own answers stand without it.
  }
  return records;
}
