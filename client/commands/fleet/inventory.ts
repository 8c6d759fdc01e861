/**
 * `defenseclaw-upgrade fleet inventory`: which host runs which DefenseClaw (issue 22).
 *
 *   fleet inventory --hosts a,b | --hosts-file F | --plan P [--behind X.Y.Z|latest] [--json]
 *                   [--concurrency N] [--answer-timeout S]       a live inventory (fleetInventory)
 *   fleet inventory --cached [--behind …] [--json]               the standing inventory, by query
 *   fleet inventory schedule create (hosts) --every S | delete   the standing inventory's schedule
 */
import { randomBytes } from 'node:crypto';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { Command, Option } from 'commander';
import type { fleetInventory } from '../../../workflows/fleet/inventory.js';
import {
  INVENTORY_LIMITS,
  STANDING_INVENTORY_ID,
  WORKFLOW_INVENTORY,
  standingInventoryQuery,
  type InventoryResult,
} from '../../../workflows/fleet/inventory-types.js';
import { TaskQueueSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { hasWorkflowPollers } from '../../../worker/queue-pollers.js';
import { CliFailure, UsageError, action, oneLine } from '../../errors.js';
import { inventoryJson, renderInventory } from '../../render/inventory.js';
import { addHostSourceOptions, behindFlag, inventoryInputFromFlags, type InventoryFlags } from './inventory-input.js';
import { registerInventoryScheduleCommands } from './inventory-schedule.js';
import { flag } from '../shared.js';

export function newInventoryId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `inventory-${t}-${randomBytes(3).toString('hex')}`;
}

export async function inventoryCommand(flags: InventoryFlags): Promise<number> {
  const behind = behindFlag(flags.behind);
  if (flags.cached) {
    if (flags.hosts !== undefined || flags.hostsFile !== undefined || flags.plan !== undefined)
      throw new UsageError('--cached reads the standing inventory: give no hosts with it');
  }
  const input = flags.cached ? undefined : await inventoryInputFromFlags(flags);
  const target = await connectTarget({});
  try {
    let result: InventoryResult;
    let source = 'live';
    if (!input) {
      const handle = target.client.workflow.getHandle(STANDING_INVENTORY_ID);
      const status = await handle.describe().then(
        (d) => d.status.name,
        () => 'missing',
      );
      if (status !== 'RUNNING')
        throw new CliFailure(
          `no standing inventory runs (${status.toLowerCase()}); create it with \`defenseclaw-upgrade fleet inventory schedule create\``,
        );
      const state = await handle.query(standingInventoryQuery).catch((err: unknown) => {
        throw new CliFailure(
          `no standing inventory answers (${oneLine(err)}); create it with \`defenseclaw-upgrade fleet inventory schedule create\``,
        );
      });
      if (!state.latest)
        throw new CliFailure('the standing inventory has not been refreshed yet; try again after its first refresh');
      result = state.latest;
      source = `cached, refresh ${state.refreshes}`;
    } else {
      const queue = flags.fleetQueue ? flag(TaskQueueSchema, flags.fleetQueue, '--fleet-queue') : target.workflowQueue;
      if (!(await hasWorkflowPollers(target.client.workflowService, target.client.options.namespace, queue)))
        throw new CliFailure(
          `no worker polls ${queue}: run \`defenseclaw-upgrade fleet worker\` on the controller (or the local agent)`,
        );
      result = await target.client.workflow.execute<typeof fleetInventory>(WORKFLOW_INVENTORY, {
        taskQueue: queue,
        workflowId: newInventoryId(),
        args: [{ ...input, ...(behind === 'latest' ? { resolveLatest: true } : {}) }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        staticSummary: `Inventory of ${input.hosts.length} hosts`,
      });
    }
    let target_ = behind;
    if (behind === 'latest') {
      if (!result.latest)
        throw new CliFailure(
          `--behind latest: the latest release could not be resolved (${result.latestError ?? 'not asked'})`,
        );
      target_ = result.latest;
    }
    const view = { result, behind: target_, source };
    process.stdout.write(flags.json ? inventoryJson(view) : renderInventory(view));
    return 0;
  } finally {
    await target.close();
  }
}

export function registerInventoryCommands(fleet: Command): void {
  const inventory = fleet
    .command('inventory')
    .description("which host runs which DefenseClaw: each host's worker answers, grouped by version");
  addHostSourceOptions(
    inventory.command('show', { isDefault: true }).description('read the inventory now (the default)'),
  )
    .option(
      '--behind <X.Y.Z|latest>',
      'list only the hosts older than this version (latest: as the controller resolves it)',
    )
    .option('--cached', 'the standing inventory (fleet inventory schedule create), instantly')
    .option('--concurrency <n>', 'host answers in flight per batch', String(INVENTORY_LIMITS.concurrency.default))
    .option(
      '--answer-timeout <seconds>',
      'a host whose worker does not answer within this is unreachable',
      String(INVENTORY_LIMITS.answerSeconds.default),
    )
    .addOption(new Option('--fleet-queue <queue>', 'task queue of the workflow worker').hideHelp())
    .option('--json', 'machine-readable output')
    .action(action((flags: InventoryFlags) => inventoryCommand(flags)));
  registerInventoryScheduleCommands(inventory);
}
