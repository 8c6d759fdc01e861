/** `fleet pause|resume|abort <id>`: Updates on the running rollout. */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  abortUpdate,
  pauseUpdate,
  resumeUpdate,
  type FleetControlAnswer,
} from '../../../workflows/fleet/fleet-types.js';
import { IdSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { CliFailure, UsageError, oneLine } from '../../errors.js';
import { flag, requestedBy } from '../shared.js';

export async function fleetControlCommand(
  action: 'pause' | 'resume' | 'abort',
  fleetId: string,
  flags: { reason?: string; cancelInFlight?: boolean; json?: boolean },
): Promise<number> {
  flag(IdSchema, fleetId, 'fleet id');
  if (flags.reason !== undefined && flags.reason.length > 200)
    throw new UsageError('--reason must be at most 200 characters');
  const target = await connectTarget({});
  try {
    const handle = target.client.workflow.getHandle(fleetId);
    const def = action === 'pause' ? pauseUpdate : action === 'resume' ? resumeUpdate : abortUpdate;
    const req = {
      by: requestedBy(),
      ...(flags.reason ? { reason: flags.reason } : {}),
      ...(action === 'abort' && flags.cancelInFlight ? { cancelInFlight: true } : {}),
    };
    let answer: FleetControlAnswer;
    try {
      answer = await handle.executeUpdate(def, { args: [req] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw new CliFailure(`cannot ${action} ${fleetId}: ${oneLine(err.cause ?? err)}`);
      throw new CliFailure(`cannot ${action} ${fleetId}: ${oneLine(err)}`);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ fleetId, action, ...answer })}\n`);
      return 0;
    }
    const what =
      action === 'pause'
        ? `paused: no new host starts; ${answer.inFlight} in flight will finish`
        : action === 'resume'
          ? `resumed: ${answer.waiting} hosts waiting`
          : `aborted: no new host starts; ${answer.inFlight} in flight ${flags.cancelInFlight ? 'are being cancelled (each undoes its own changes)' : 'will finish'}`;
    process.stdout.write(`Fleet ${fleetId} ${what}.\n`);
    return 0;
  } finally {
    await target.close();
  }
}
