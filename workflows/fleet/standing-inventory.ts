/**
 * The standing inventory (issue 22): a long-lived workflow with a fixed ID (STANDING_INVENTORY_ID)
 * that holds the latest inventory and answers it by query (`fleet inventory --cached`, the
 * controller's metrics), fed by refreshInventory, which a Temporal Schedule starts on an interval.
 *
 * Each refresh arrives as a signal; the standing workflow merges it (an unreachable host is
 * unreachable since the last inventory that reached it, when Temporal forgot its last poll) and
 * continues as new with the merged state: every run's history is its input and one signal.
 */
import {
  condition,
  continueAsNew,
  defineSignal,
  executeChild,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  InventoryInputSchema,
  STANDING_INVENTORY_ID,
  WORKFLOW_INVENTORY,
  standingInventoryQuery,
  type InventoryInput,
  type InventoryResult,
  type StandingInventory,
} from './inventory-types.js';
import type { fleetInventory } from './inventory.js';
import { validateInput } from '../run.js';

export const inventoryRefreshedSignal = defineSignal<[InventoryResult]>('inventoryRefreshed');

/** Merges a refresh into the standing state (pure). */
export function mergeRefresh(state: StandingInventory, result: InventoryResult): StandingInventory {
  const lastSeen: Record<string, string> = {};
  const hosts = result.hosts.map((h) => {
    if (h.status !== 'unreachable') {
      lastSeen[h.host] = h.at;
      return h;
    }
    const seen = state.lastSeen[h.host];
    if (seen) lastSeen[h.host] = seen;
    const since = [h.unreachableSince, seen]
      .filter((x): x is string => !!x)
      .sort()
      .at(-1);
    return since ? { ...h, unreachableSince: since } : h;
  });
  return { latest: { ...result, hosts }, refreshes: state.refreshes + 1, lastSeen };
}

export async function standingInventory(state?: StandingInventory): Promise<void> {
  let current: StandingInventory = state ?? { refreshes: 0, lastSeen: {} };
  let refreshed = false;
  setHandler(standingInventoryQuery, () => current);
  setHandler(inventoryRefreshedSignal, (result) => {
    current = mergeRefresh(current, result);
    refreshed = true;
  });
  await condition(() => refreshed);
  await continueAsNew<typeof standingInventory>(current);
}

/** What the schedule runs: one inventory, handed to the standing workflow. */
export async function refreshInventory(rawInput: InventoryInput): Promise<{ hosts: number }> {
  const input = validateInput(InventoryInputSchema, rawInput);
  const result = await executeChild<typeof fleetInventory>(WORKFLOW_INVENTORY, {
    workflowId: `${workflowInfo().workflowId}-inventory`,
    args: [input],
  });
  await getExternalWorkflowHandle(STANDING_INVENTORY_ID).signal(inventoryRefreshedSignal, result);
  return { hosts: result.hosts.length };
}
