/**
 * Test-only workflows: updateUpgrader and upgraderSwitchOutcome on a host's queue, as the fleet's
 * updateWorkerHost calls them. Bundled by the tests, never by the product build.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface UpgraderActivities {
  updateUpgrader(input: { version: string; deadlineSeconds?: number }): Promise<unknown>;
  upgraderSwitchOutcome(input: { version: string }): Promise<unknown>;
}

function onQueue(taskQueue: string) {
  return proxyActivities<UpgraderActivities>({
    taskQueue,
    startToCloseTimeout: '5m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '1s', maximumAttempts: 3 },
  });
}

export async function updateUpgraderOnHost(
  taskQueue: string,
  version: string,
  deadlineSeconds?: number,
): Promise<unknown> {
  return onQueue(taskQueue).updateUpgrader({ version, ...(deadlineSeconds ? { deadlineSeconds } : {}) });
}

export async function switchOutcomeOnHost(taskQueue: string, version: string): Promise<unknown> {
  return onQueue(taskQueue).upgraderSwitchOutcome({ version });
}
