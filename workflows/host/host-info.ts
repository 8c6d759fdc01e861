/** hostBackups: a read-only look at a host's backups, answered by that host's own worker. */
import { ApplicationFailure } from '@temporalio/workflow';
import { quick, routeActivitiesTo } from '../proxies.js';
import { HostNameSchema, TaskQueueSchema, parseWith } from '../types.js';

export async function hostBackups(input: { host: string; hostQueue?: string }) {
  let host: string;
  try {
    host = parseWith(HostNameSchema, input?.host, 'host');
    routeActivitiesTo(parseWith(TaskQueueSchema.optional(), input?.hostQueue, 'hostQueue'));
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidInput');
  }
  await quick.checkHost({ host });
  return quick.listBackups();
}
