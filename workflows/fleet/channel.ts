/**
 * checkChannel: what a channel schedule runs, on the fleet queue, once per interval (overlap SKIP:
 * one check at a time). It is short and it never waits for a rollout:
 *
 *   the schedule's last ring rollout (rollout-<scheduleId>)      running → "a rollout is already running"
 *   → record it once in the schedule's state if it ended           succeeded → lastRolledOut; ring over budget
 *                                                                  or gate failed → the version is skipped
 *   → the channel's version now (on the controller: latest release, or the signed stable.txt)
 *   → skipped? not newer than lastRolledOut? → say so
 *   → start ringRollout as an abandoned child with the fixed ID rollout-<scheduleId>
 *     (one rollout at a time per schedule: a rollout started meanwhile makes this a no-op)
 *
 * Every activity runs on the controller (the fleet worker, this workflow's own queue).
 */
import { ParentClosePolicy, WorkflowIdReusePolicy, setCurrentDetails, startChild } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ChannelActivities } from '../../activities/controller/channel-activities.js';
import {
  CheckChannelInputSchema,
  decideCheck,
  rolloutIdFor,
  type CheckChannelInput,
  type CheckChannelResult,
} from './channel-types.js';
import { workflowTime } from '../clock.js';
import { WORKFLOW_RINGS, type RingRolloutInput } from './ring-types.js';
import { validateInput } from '../run.js';
import { KIND, onController } from '../proxies.js';

const controller = onController<ChannelActivities>(KIND.channel);

export async function checkChannel(rawInput: CheckChannelInput): Promise<CheckChannelResult> {
  const input = validateInput(CheckChannelInputSchema, rawInput);
  const { scheduleId, channel } = input;
  const rolloutId = rolloutIdFor(scheduleId);
  const done = (r: Omit<CheckChannelResult, 'channel' | 'rolloutId'>): CheckChannelResult => {
    setCurrentDetails(r.message);
    return { channel, rolloutId, ...r };
  };

  const previous = await controller.previousRollout({ scheduleId });
  const { state, recorded } = await controller.syncChannelState({
    scheduleId,
    previous,
    now: new Date(workflowTime()).toISOString(),
  });
  const seen = recorded ? { recorded } : {};
  if (previous?.status === 'running') {
    return done({
      outcome: 'already-running',
      message: `a rollout is already running (${previous.version ?? 'version not resolved yet'}, ${rolloutId})`,
      ...seen,
    });
  }

  const resolved = await controller.resolveChannel({ channel });
  const version = resolved.version;
  const decision = decideCheck(state, version);
  if (decision.outcome !== 'start') return done({ ...decision, version, ...seen });

  const rollout: RingRolloutInput = {
    rolloutId,
    plan: input.plan,
    version,
    channel,
    requestedBy: `schedule:${scheduleId}`.slice(0, 128),
  };
  try {
    await startChild(WORKFLOW_RINGS, {
      workflowId: rolloutId,
      args: [rollout],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      staticSummary: `Ring rollout of ${version} from the ${channel} channel (schedule ${scheduleId})`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return done({
        outcome: 'already-running',
        message: `a rollout is already running (${rolloutId})`,
        version,
        ...seen,
      });
    }
    throw err;
  }
  return done({ outcome: 'started', message: `started ${version}`, version, ...seen });
}
