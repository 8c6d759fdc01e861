/** `status`: re-attach to the host's running upgrade or rollback, or show how the last one ended. */
import { stopAgent } from '../../worker/agent/agent.js';
import { hostWorkflowId } from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { CliFailure } from '../errors.js';
import { stuckAfterSeconds } from '../supervise.js';
import { resultOf } from '../watch.js';
import { followAndReport, interactiveTerminal, link, printResult, type CommonFlags } from './shared.js';

export async function statusCommand(flags: CommonFlags): Promise<number> {
  stuckAfterSeconds(flags.stuckAfter);
  const host = flags.host ?? 'this host';
  // Where nothing ever ran, no agent is started (and none stays resident) just to say so.
  const target = await connectTarget({ ...flags, nothingRan: `no upgrade has run on ${host} yet` });
  let running = false;
  try {
    const workflowId = hostWorkflowId(target.host);
    const handle = target.client.workflow.getHandle(workflowId);
    const d = await handle.describe().catch(() => undefined);
    if (!d) throw new CliFailure(`no upgrade has run on ${target.host} yet`);
    if (d.status.name === 'RUNNING') {
      running = true;
      const result = await followAndReport(target, target.client.workflow.getHandle(workflowId, d.runId), {
        ...flags,
        answerConfirmation: interactiveTerminal() && !flags.json,
      });
      return result.ok ? 0 : 1;
    }
    const result = await resultOf(target.client.workflow.getHandle(workflowId, d.runId));
    printResult(result, { json: flags.json, live: false, ui: link(target, workflowId, d.runId) });
    return result.ok ? 0 : 1;
  } finally {
    await target.close();
    // An agent started only to read a finished run's end does not stay behind.
    if (target.agent?.started && !running) await stopAgent(target.agent.dataDir).catch(() => undefined);
  }
}
