/**
 * `cancel`: asks the host's running upgrade or rollback to stop. Before the gateway was stopped
 * nothing changes; after, the run compensates back to the pre-upgrade state.
 */
import { hostWorkflowId } from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { CliFailure } from '../errors.js';
import { followAndReport, runningRun, type CommonFlags } from './shared.js';

export async function cancelCommand(flags: CommonFlags): Promise<number> {
  const target = await connectTarget(flags);
  try {
    const workflowId = hostWorkflowId(target.host);
    const running = await runningRun(target, workflowId);
    if (!running) throw new CliFailure(`nothing is running on ${target.host}`);
    const handle = target.client.workflow.getHandle(workflowId, running.runId);
    await handle.cancel();
    if (!flags.json) process.stderr.write(`Cancel requested for ${workflowId}; waiting for it to wind down.\n`);
    const result = await followAndReport(target, handle, { ...flags, answerConfirmation: false });
    // The cancel did its job when the host is back where it was; a failed rollback is a failure.
    return result.outcome === 'rollback-failed' ? 1 : 0;
  } finally {
    await target.close();
  }
}
