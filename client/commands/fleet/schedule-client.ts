/**
 * A release channel's Temporal Schedule, on a Client: create, describe, list, pause/unpause/delete,
 * trigger a check and wait for it, clear a skipped version. `fleet schedule` (schedule.ts) calls
 * these, and so do the tests, so that they drive the very code the CLI runs.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type Client,
} from '@temporalio/client';
import {
  readChannelSchedule,
  readPreviousRollout,
  updateChannelState,
} from '../../../activities/controller/schedule-state.js';
import {
  WORKFLOW_CHECK_CHANNEL,
  checkIdFor,
  clearSkip,
  describeSkip,
  rolloutIdFor,
  type Channel,
  type ChannelState,
  type CheckChannelInput,
  type CheckChannelResult,
  type SkipEntry,
} from '../../../workflows/fleet/channel-types.js';
import { FLEET_TASK_QUEUE } from '../../../workflows/fleet/fleet-types.js';
import type { RolloutPlan } from '../../../workflows/fleet/ring-types.js';
import { CliFailure, oneLine } from '../../errors.js';

/** An interval as `fleet schedule create --every` takes it: 3600 → `1h`. */
export function duration(seconds: number): string {
  for (const [u, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds % n === 0) return `${seconds / n}${u}`;
  return `${seconds}s`;
}

export interface CreateOptions {
  plan: RolloutPlan;
  channel: Channel;
  everySeconds: number;
  scheduleId: string;
  paused?: boolean;
  by: string;
}

export async function createChannelSchedule(client: Client, o: CreateOptions): Promise<void> {
  const input: CheckChannelInput = { scheduleId: o.scheduleId, channel: o.channel, plan: o.plan };
  const hosts = o.plan.rings.reduce((n, r) => n + r.hosts.length, 0);
  try {
    await client.schedule.create({
      scheduleId: o.scheduleId,
      spec: { intervals: [{ every: `${o.everySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: WORKFLOW_CHECK_CHANNEL,
        workflowId: checkIdFor(o.scheduleId),
        taskQueue: FLEET_TASK_QUEUE,
        args: [input],
        // A check that cannot finish (no controller) must not hold the next ones back forever.
        workflowRunTimeout: '15m',
        staticSummary: `Check the ${o.channel} channel; roll a newer release out to ${o.plan.rings.length} rings (${hosts} hosts)`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m', pauseOnFailure: false },
      state: { paused: o.paused ?? false, note: `created by ${o.by}` },
      memo: { channel: o.channel, createdBy: o.by },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning)
      throw new CliFailure(`schedule ${o.scheduleId} already exists (delete it first, or pick another --id)`);
    throw err;
  }
}

export interface ChannelScheduleInfo {
  scheduleId: string;
  channel: Channel;
  everySeconds?: number;
  paused: boolean;
  note?: string;
  nextCheck?: string;
  rings: string[];
  hosts: number;
  lastRolledOut?: string;
  skipped: SkipEntry[];
  rollout?: { id: string; status: string; version?: string; verdict?: string };
}

/** One channel schedule: its spec and state, its channel memory, and its last rollout. */
export async function describeChannelSchedule(client: Client, scheduleId: string): Promise<ChannelScheduleInfo> {
  const handle = client.schedule.getHandle(scheduleId);
  const d = await handle.describe().catch((err: unknown) => {
    if (err instanceof ScheduleNotFoundError) throw new CliFailure(`no schedule ${scheduleId}`);
    throw err;
  });
  const { input } = await readChannelSchedule(client, scheduleId).catch((err: unknown) => {
    throw new CliFailure(oneLine(err));
  });
  const prev = await readPreviousRollout(client, scheduleId);
  const every = d.spec.intervals?.[0]?.every;
  return {
    scheduleId,
    channel: input.channel,
    ...(every ? { everySeconds: Math.round(every / 1000) } : {}),
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    ...(d.info.nextActionTimes[0] ? { nextCheck: d.info.nextActionTimes[0].toISOString() } : {}),
    rings: input.plan.rings.map((r) => r.name),
    hosts: input.plan.rings.reduce((n, r) => n + r.hosts.length, 0),
    ...(input.state.lastRolledOut ? { lastRolledOut: input.state.lastRolledOut } : {}),
    skipped: input.state.skipped,
    ...(prev
      ? {
          rollout: {
            id: rolloutIdFor(scheduleId),
            status: prev.status,
            ...(prev.version ? { version: prev.version } : {}),
            ...(prev.verdict ? { verdict: prev.verdict } : {}),
          },
        }
      : {}),
  };
}

/** Every channel schedule (the ones whose action is a checkChannel), described. */
export async function listChannelSchedules(client: Client): Promise<ChannelScheduleInfo[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.type === 'startWorkflow' && s.action.workflowType === WORKFLOW_CHECK_CHANNEL) ids.push(s.scheduleId);
  }
  ids.sort();
  const out: ChannelScheduleInfo[] = [];
  for (const id of ids) {
    try {
      out.push(await describeChannelSchedule(client, id));
    } catch {
      // deleted between the list and the describe
    }
  }
  return out;
}

export function renderScheduleInfo(s: ChannelScheduleInfo): string {
  const lines = [
    `${s.scheduleId}: ${s.channel} channel, every ${s.everySeconds ? duration(s.everySeconds) : '?'}, ${s.paused ? `PAUSED${s.note ? ` (${s.note})` : ''}` : `next check ${s.nextCheck ?? '-'}`}`,
    `  plan:            ${s.rings.join(' → ')} (${s.hosts} hosts)`,
    `  last rolled out: ${s.lastRolledOut ?? 'nothing yet'}`,
    `  rollout:         ${s.rollout ? `${s.rollout.id} ${s.rollout.status}${s.rollout.version ? ` ${s.rollout.version}` : ''}${s.rollout.verdict ? ` (${s.rollout.verdict})` : ''}` : 'none yet'}`,
  ];
  const active = s.skipped.filter((e) => !e.clearedAt);
  const cleared = s.skipped.filter((e) => e.clearedAt);
  for (const e of active) lines.push(`  SKIPPED ${e.version}: ${describeSkip(e)}`);
  for (const e of cleared.slice(-3))
    lines.push(`  cleared ${e.version} (${e.verdict}) by ${e.clearedBy} on ${e.clearedAt!.slice(0, 10)}`);
  return lines.join('\n');
}

export async function controlChannelSchedule(
  client: Client,
  op: 'pause' | 'unpause' | 'delete',
  scheduleId: string,
  note: string,
): Promise<void> {
  await readChannelSchedule(client, scheduleId).catch((err: unknown) => {
    throw new CliFailure(
      err instanceof ScheduleNotFoundError || /not found/i.test(oneLine(err))
        ? `no schedule ${scheduleId}`
        : oneLine(err),
    );
  });
  const handle = client.schedule.getHandle(scheduleId);
  if (op === 'pause') await handle.pause(note);
  else if (op === 'unpause') await handle.unpause(note);
  else await handle.delete();
}

export type TriggerAnswer =
  | { triggered: true; checkId: string; result?: CheckChannelResult; failure?: string }
  | { triggered: false; message: string };

/**
 * Runs a check now (overlap SKIP, like the schedule's own starts) and, unless `wait` is false, waits
 * for what it did.
 */
export async function triggerChannelSchedule(
  client: Client,
  scheduleId: string,
  opts: { wait?: boolean; timeoutMs?: number } = {},
): Promise<TriggerAnswer> {
  const handle = client.schedule.getHandle(scheduleId);
  await readChannelSchedule(client, scheduleId).catch((err: unknown) => {
    throw new CliFailure(/not found/i.test(oneLine(err)) ? `no schedule ${scheduleId}` : oneLine(err));
  });
  const before = await handle.describe();
  const taken = before.info.numActionsTaken;
  const skipped = before.info.numActionsSkippedOverlap;
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let checkId: string | undefined;
  let runId: string | undefined;
  while (Date.now() < deadline) {
    const d = await handle.describe();
    if (d.info.numActionsTaken > taken) {
      const last = d.info.recentActions.at(-1)!;
      checkId = last.action.workflow.workflowId;
      runId = last.action.workflow.firstExecutionRunId;
      break;
    }
    if (d.info.numActionsSkippedOverlap > skipped)
      return { triggered: false, message: 'a check is already running; this one was skipped (overlap policy SKIP)' };
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!checkId)
    throw new CliFailure(
      `the schedule did not start the check within ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s`,
    );
  if (opts.wait === false) return { triggered: true, checkId };
  const check = client.workflow.getHandle(checkId, runId);
  try {
    const result = (await Promise.race([
      check.result(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new CliFailure(
                `check ${checkId} has not finished; is a fleet worker running (\`defenseclaw-upgrade fleet worker\`)?`,
              ),
            ),
          Math.max(1000, deadline - Date.now()),
        ).unref(),
      ),
    ])) as CheckChannelResult;
    return { triggered: true, checkId, result };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      let cause: unknown = err.cause;
      while ((cause as { cause?: unknown })?.cause) cause = (cause as { cause?: unknown }).cause;
      return { triggered: true, checkId, failure: oneLine(cause ?? err) };
    }
    throw err;
  }
}

/** Clears `version` from the skip list; the entry stays, marked with who cleared it and when. */
export async function clearChannelSkip(
  client: Client,
  scheduleId: string,
  version: string,
  by: string,
  reason?: string,
): Promise<{ cleared: boolean; state: ChannelState }> {
  let cleared = false;
  const state = await updateChannelState(client, scheduleId, (s) => {
    const r = clearSkip(s, version, by, new Date().toISOString(), reason);
    cleared = cleared || r.cleared;
    return r.state;
  }).catch((err: unknown) => {
    throw new CliFailure(/not found/i.test(oneLine(err)) ? `no schedule ${scheduleId}` : oneLine(err));
  });
  return { cleared, state };
}
