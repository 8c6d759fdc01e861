/**
 * `fleet inventory schedule create|delete`: the standing inventory (workflows/fleet/standing-inventory.ts)
 * and the Temporal Schedule that refreshes it on an interval (overlap SKIP: one refresh at a time).
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
} from '@temporalio/client';
import type { Command } from 'commander';
import {
  INVENTORY_SCHEDULE_ID,
  STANDING_INVENTORY_ID,
  WORKFLOW_STANDING_INVENTORY,
} from '../../../workflows/fleet/inventory-types.js';
import type { refreshInventory, standingInventory } from '../../../workflows/fleet/standing-inventory.js';
import { TaskQueueSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { CliFailure, action } from '../../errors.js';
import { addHostSourceOptions, inventoryInputFromFlags, type InventoryFlags } from './inventory-input.js';
import { flag, requestedBy, seconds } from '../shared.js';

const EVERY = { min: 10, max: 7 * 24 * 3600 };

interface CreateFlags extends InventoryFlags {
  every?: string;
}

async function createCommand(flags: CreateFlags): Promise<number> {
  const input = await inventoryInputFromFlags(flags);
  const every = seconds(flags.every ?? '300', '--every', EVERY)!;
  const target = await connectTarget({});
  try {
    const queue = flags.fleetQueue ? flag(TaskQueueSchema, flags.fleetQueue, '--fleet-queue') : target.workflowQueue;
    await target.client.workflow.start<typeof standingInventory>(WORKFLOW_STANDING_INVENTORY, {
      taskQueue: queue,
      workflowId: STANDING_INVENTORY_ID,
      args: [],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      staticSummary: 'The standing fleet inventory (fleet inventory --cached)',
    });
    try {
      await target.client.schedule.create<typeof refreshInventory>({
        scheduleId: INVENTORY_SCHEDULE_ID,
        spec: { intervals: [{ every: `${every}s` }] },
        action: {
          type: 'startWorkflow',
          workflowType: 'refreshInventory',
          workflowId: `${INVENTORY_SCHEDULE_ID}-run`,
          taskQueue: queue,
          // The latest release too, resolved on the controller: the metrics count the hosts behind it.
          args: [{ ...input, resolveLatest: true }],
          workflowRunTimeout: '30m',
          staticSummary: `Refresh the standing inventory of ${input.hosts.length} hosts`,
        },
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m', pauseOnFailure: false },
        state: { note: `created by ${requestedBy()}` },
      });
    } catch (err) {
      if (err instanceof ScheduleAlreadyRunning)
        throw new CliFailure(`schedule ${INVENTORY_SCHEDULE_ID} already exists (delete it first)`);
      throw err;
    }
    await target.client.schedule.getHandle(INVENTORY_SCHEDULE_ID).trigger(ScheduleOverlapPolicy.SKIP);
    const line = `Schedule ${INVENTORY_SCHEDULE_ID}: the inventory of ${input.hosts.length} hosts every ${every} s (first refresh now); read it with \`fleet inventory --cached\``;
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ scheduleId: INVENTORY_SCHEDULE_ID, every, hosts: input.hosts.length })}\n`
        : `${line}\n`,
    );
    return 0;
  } finally {
    await target.close();
  }
}

async function deleteCommand(flags: { json?: boolean }): Promise<number> {
  const target = await connectTarget({});
  try {
    try {
      await target.client.schedule.getHandle(INVENTORY_SCHEDULE_ID).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      throw new CliFailure(`no schedule ${INVENTORY_SCHEDULE_ID}`);
    }
    await target.client.workflow
      .getHandle(STANDING_INVENTORY_ID)
      .terminate('fleet inventory schedule delete')
      .catch(() => undefined);
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ deleted: INVENTORY_SCHEDULE_ID })}\n`
        : `Schedule ${INVENTORY_SCHEDULE_ID} deleted; the standing inventory ended.\n`,
    );
    return 0;
  } finally {
    await target.close();
  }
}

export function registerInventoryScheduleCommands(inventory: Command): void {
  const schedule = inventory
    .command('schedule')
    .description('the standing inventory, refreshed on a Temporal Schedule');
  addHostSourceOptions(
    schedule.command('create').description('refresh the inventory on an interval into the standing inventory'),
  )
    .option('--every <seconds>', 'refresh interval', '300')
    .option('--concurrency <n>', 'host answers in flight per batch')
    .option('--answer-timeout <seconds>', 'a host whose worker does not answer within this is unreachable')
    .option('--fleet-queue <queue>', 'task queue of the workflow worker')
    .option('--json', 'machine-readable output')
    .action(action((flags: CreateFlags) => createCommand(flags)));
  schedule
    .command('delete')
    .description('delete the schedule and end the standing inventory')
    .option('--json', 'machine-readable output')
    .action(action((flags: { json?: boolean }) => deleteCommand(flags)));
}
