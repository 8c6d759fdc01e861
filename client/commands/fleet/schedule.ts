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
import { type Client } from '@temporalio/client';
import { Command } from 'commander';
import {
  CHANNELS,
  CHANNEL_LIMITS,
  ScheduleIdSchema,
  rolloutIdFor,
  type Channel,
} from '../../../workflows/fleet/channel-types.js';
import { IdSchema, VersionSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { CliFailure, UsageError, action } from '../../errors.js';
import { readPlanFile } from '../../rollout-plan.js';
import { flag, requestedBy } from '../shared.js';
import {
  clearChannelSkip,
  controlChannelSchedule,
  createChannelSchedule,
  duration,
  listChannelSchedules,
  renderScheduleInfo,
  triggerChannelSchedule,
} from './schedule-client.js';

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
