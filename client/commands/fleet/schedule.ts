/**
 * `defenseclaw-upgrade fleet schedule`: a release channel on a Temporal Schedule. Each check is a
 * checkChannel workflow on the fleet queue (workflows/fleet/channel.ts); a newer version on the channel
 * starts one ring rollout (`rollout-<id>`) with the schedule's plan.
 *
 *   fleet schedule create --plan plan.yaml --channel stable|latest --every 1h [--id NAME] [--paused]
 *   fleet schedule list [--json]
 *   fleet schedule pause|unpause|delete <id> [--reason TEXT]
 *   fleet schedule trigger <id> [--no-wait] [--json]     check now, print what the check did
 *   fleet schedule clear-skip <id> <version> [--reason TEXT]
 *
 * The command functions take a Client, so that tests drive the very code the CLI runs.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type Client,
} from '@temporalio/client';
import { Command } from 'commander';
import {
  readChannelSchedule,
  readPreviousRollout,
  updateChannelState,
} from '../../../activities/controller/schedule-state.js';
import {
  CHANNELS,
  CHANNEL_LIMITS,
  ScheduleIdSchema,
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
import { IdSchema, VersionSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { CliFailure, UsageError, action, oneLine } from '../../errors.js';
import { readPlanFile } from '../../rollout-plan.js';
import { flag, requestedBy } from '../shared.js';

// -------------------------------------------------------------------------------------------------
// Flags (pure)

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `--every 90s|15m|1h|1d` as seconds, within CHANNEL_LIMITS.everySeconds. */
export function parseEvery(text: string): number {
  const m = /^\s*([0-9]{1,7})\s*([smhd])\s*$/.exec(text);
  if (!m) throw new UsageError(`--every must be a duration such as 15m, 1h or 1d, got ${JSON.stringify(text)}`);
  const s = Number(m[1]) * UNITS[m[2]!]!;
  const { min, max } = CHANNEL_LIMITS.everySeconds;
  if (s < min || s > max) throw new UsageError(`--every must be from ${min / 60}m to ${max / 86400}d, got ${text}`);
  return s;
}

function parseChannel(text: string | undefined): Channel {
  if (!text || !(CHANNELS as readonly string[]).includes(text))
    throw new UsageError(`--channel must be ${CHANNELS.join(' or ')}${text ? `, got ${JSON.stringify(text)}` : ''}`);
  return text as Channel;
}

function duration(seconds: number): string {
  for (const [u, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds % n === 0) return `${seconds / n}${u}`;
  return `${seconds}s`;
}

// -------------------------------------------------------------------------------------------------
// The commands, on a client

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

// -------------------------------------------------------------------------------------------------
// The command tree

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const target = await connectTarget({});
  try {
    return await fn(target.client);
  } finally {
    await target.close();
  }
}

const scheduleIdFlag = (id: string) => flag(ScheduleIdSchema, id, 'schedule ID');

export function registerScheduleCommands(fleet: Command): void {
  const schedule = fleet
    .command('schedule')
    .description('check a release channel on a schedule and roll a newer release out through the plan’s rings');
  schedule
    .command('create')
    .description('create a channel schedule (its checks run on the fleet worker)')
    .requiredOption('--plan <file>', 'the rollout plan (YAML): ordered rings of hosts')
    .requiredOption(
      '--channel <stable|latest>',
      'stable: the signed stable.txt channel (0.8.8+); latest: the latest release',
    )
    .requiredOption('--every <duration>', 'how often to check (15m, 1h, 1d)')
    .option('--id <name>', 'the schedule ID (default: <channel>-channel)')
    .option('--paused', 'create it paused')
    .option('--json', 'machine-readable output')
    .action(
      action(
        async (flags: {
          plan: string;
          channel: string;
          every: string;
          id?: string;
          paused?: boolean;
          json?: boolean;
        }) => {
          const channel = parseChannel(flags.channel);
          const everySeconds = parseEvery(flags.every);
          const scheduleId = scheduleIdFlag(flags.id ?? `${channel}-channel`);
          const plan = await readPlanFile(flags.plan);
          await withClient((client) =>
            createChannelSchedule(client, {
              plan,
              channel,
              everySeconds,
              scheduleId,
              paused: flags.paused,
              by: requestedBy(),
            }),
          );
          if (flags.json) process.stdout.write(`${JSON.stringify({ scheduleId, channel, everySeconds })}\n`);
          else
            process.stdout.write(
              `Schedule ${scheduleId} created: checks the ${channel} channel every ${duration(everySeconds)}${flags.paused ? ' (paused)' : ''}; a newer release starts ring rollout ${rolloutIdFor(scheduleId)}.\n`,
            );
          return 0;
        },
      ),
    );
  schedule
    .command('list')
    .description('channel schedules: channel, interval, paused, last rolled out, skipped versions, rollout')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: { json?: boolean }) => {
        const all = await withClient((client) => listChannelSchedules(client));
        if (flags.json) process.stdout.write(`${JSON.stringify(all)}\n`);
        else
          process.stdout.write(all.length ? `${all.map(renderScheduleInfo).join('\n')}\n` : 'No channel schedule.\n');
        return 0;
      }),
    );
  for (const op of ['pause', 'unpause', 'delete'] as const) {
    schedule
      .command(`${op} <id>`)
      .description(
        op === 'pause'
          ? 'stop checking (a rollout in flight goes on)'
          : op === 'unpause'
            ? 'check again on the interval'
            : 'delete the schedule (a rollout in flight goes on; its skip list goes with it)',
      )
      .option('--reason <text>', 'why, for the audit trail')
      .action(
        action(async (id: string, flags: { reason?: string }) => {
          const scheduleId = scheduleIdFlag(id);
          const note = `${op}d by ${requestedBy()}${flags.reason ? `: ${flags.reason.slice(0, 200)}` : ''}`;
          await withClient((client) => controlChannelSchedule(client, op, scheduleId, note));
          process.stdout.write(`Schedule ${scheduleId} ${op === 'delete' ? 'deleted' : `${op}d`}.\n`);
          return 0;
        }),
      );
  }
  schedule
    .command('trigger <id>')
    .description('check the channel now and print what the check did')
    .option('--no-wait', 'return once the check started')
    .option('--json', 'machine-readable output')
    .action(
      action(async (id: string, flags: { wait?: boolean; json?: boolean }) => {
        const scheduleId = scheduleIdFlag(id);
        const answer = await withClient((client) => triggerChannelSchedule(client, scheduleId, { wait: flags.wait }));
        if (flags.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
        else if (!answer.triggered) process.stdout.write(`${answer.message}\n`);
        else if (answer.failure) process.stdout.write(`check ${answer.checkId} failed: ${answer.failure}\n`);
        else if (answer.result) {
          const r = answer.result;
          if (r.recorded) process.stdout.write(`recorded: ${r.recorded}\n`);
          process.stdout.write(`${r.message}\n`);
        } else process.stdout.write(`check ${answer.checkId} started\n`);
        return answer.triggered && answer.failure ? 1 : 0;
      }),
    );
  schedule
    .command('clear-skip <id> <version>')
    .description('let a version that failed a ring be rolled out again (the entry stays, marked cleared)')
    .option('--reason <text>', 'why, for the audit trail')
    .action(
      action(async (id: string, version: string, flags: { reason?: string }) => {
        const scheduleId = scheduleIdFlag(id);
        const v = flag(VersionSchema, version, 'version');
        const by = flag(IdSchema, requestedBy(), 'user');
        const r = await withClient((client) => clearChannelSkip(client, scheduleId, v, by, flags.reason));
        if (!r.cleared) throw new CliFailure(`${v} is not on the skip list of ${scheduleId}`);
        process.stdout.write(`${v} cleared from the skip list of ${scheduleId}; the next check may roll it out.\n`);
        return 0;
      }),
    );
}
