/** hostBackups: a read-only look at a host's backups, answered by that host's own worker. */
import { ApplicationFailure } from '@temporalio/workflow';
import { quick } from './activities.js';
import { HostNameSchema, parseWith } from './types.js';

export async function hostBackups(input: { host: string }) {
  let host: string;
  try {
    host = parseWith(HostNameSchema, input?.host, 'host');
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidInput');
  }
  await quick.checkHost({ host });
  return quick.listBackups();
}
