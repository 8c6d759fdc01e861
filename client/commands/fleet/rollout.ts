/**
 * `defenseclaw-upgrade fleet rollout`: a release through the rings of a plan file (ringRollout on
 * the fleet queue), and its status.
 *
 *   fleet rollout --plan plan.yaml [--version X.Y.Z] [--id ID] [--yes] [--detach] [--json]
 *   fleet rollout status <id> [--json]       table of rings and their states, then the late hosts
 */
import { randomBytes } from 'node:crypto';
import { stripVTControlCharacters } from 'node:util';
import { confirm } from '@inquirer/prompts';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
} from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { FLEET_TASK_QUEUE, resolveLimit } from '../../../workflows/fleet/fleet-types.js';
import { describeWindow } from '../../../workflows/fleet/maintenance-window.js';
import type { ringRollout } from '../../../workflows/fleet/rings.js';
import {
  WORKFLOW_RINGS,
  ringProgressQuery,
  type RingProgress,
  type RingRolloutInput,
  type RingRolloutResult,
  type RolloutPlan,
} from '../../../workflows/fleet/ring-types.js';
import { IdSchema, SEARCH_ATTRIBUTES, VersionSchema, type RolloutComponent } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { CliFailure, UsageError, action, oneLine } from '../../errors.js';
import { color } from '../../render/format.js';
import { readPlanFile } from '../../rollout-plan.js';
import { componentFromFlag, componentOption, componentPrefix, targetText } from './component.js';
import { flag, interactiveTerminal, link, requestedBy } from '../shared.js';
import { workflowSnapshot } from './snapshot.js';

interface RolloutFlags {
  component?: string;
  plan?: string;
  version?: string;
  id?: string;
  yes?: boolean;
  detach?: boolean;
  json?: boolean;
  autoRollbackRing?: boolean;
}

export function newRolloutId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `rollout-${t}-${randomBytes(3).toString('hex')}`;
}

/** What the plan will do, for the confirmation. */
export function describeRollout(id: string, plan: RolloutPlan, version?: string, component?: RolloutComponent): string {
  const lines = [color.bold(`Ring rollout ${id}`), `  target: ${targetText(component, version, 'the first host')}`];
  if (component === 'worker')
    lines.push(
      "  worker rollout: version pins are ignored (hold pins apply); each ring's gate is its hosts' queues polled by the version",
    );
  for (const [i, r] of plan.rings.entries()) {
    const n = r.hosts.length;
    const extra = [
      `batch ${resolveLimit(r.batch, n, 1)}`,
      `budget ${resolveLimit(r.maxFailures, n, 0)}`,
      r.soakSeconds ? `soak ${r.soakSeconds} s` : '',
      r.window ? `window ${describeWindow(r.window)}` : '',
      r.pin ? `pinned ${r.pin}` : '',
    ].filter(Boolean);
    lines.push(`  ${i + 1}. ${r.name}: ${n} host${n === 1 ? '' : 's'} (${extra.join(', ')})`);
  }
  const pins = Object.entries(plan.pins);
  if (pins.length) lines.push(`  pins: ${pins.map(([h, p]) => `${h}=${p}`).join(', ')}`);
  const g = plan.gates;
  const gates = [g.subsystems ? 'subsystems' : '', ...g.counters, g.operatorCheck ? 'operator check' : ''].filter(
    Boolean,
  );
  lines.push(`  gates during soaks: ${gates.length ? gates.join(', ') : 'none'}`);
  if (plan.autoRollbackRing) lines.push('  a ring whose gate fails is rolled back');
  return lines.join('\n');
}

export async function rolloutStartCommand(flags: RolloutFlags): Promise<number> {
  if (!flags.plan) throw new UsageError('give the plan with --plan plan.yaml');
  const fromFile = await readPlanFile(flags.plan);
  const plan = flags.autoRollbackRing ? { ...fromFile, autoRollbackRing: true } : fromFile;
  const version = flags.version === undefined ? undefined : flag(VersionSchema, flags.version, '--version');
  const { component } = componentFromFlag(flags.component, version);
  const rolloutId = flag(IdSchema, flags.id ?? newRolloutId(), '--id');
  if (!flags.yes && (!interactiveTerminal() || flags.json))
    throw new UsageError('confirming the rollout needs a terminal; pass --yes to start it without asking');
  const input: RingRolloutInput = {
    rolloutId,
    plan,
    version,
    requestedBy: requestedBy(),
    ...(component ? { component } : {}),
  };
  const target = await connectTarget({});
  try {
    if (!flags.yes) {
      process.stdout.write(`${describeRollout(rolloutId, plan, version, component)}\n`);
      if (!(await confirm({ message: `Start the rollout through ${plan.rings.length} rings?`, default: false }))) {
        process.stdout.write('Nothing started.\n');
        return 1;
      }
    }
    try {
      await target.client.workflow.start<typeof ringRollout>(WORKFLOW_RINGS, {
        taskQueue: FLEET_TASK_QUEUE,
        workflowId: rolloutId,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: `Ring rollout of ${componentPrefix(component)}${version ?? 'the latest release'} through ${plan.rings.length} rings`,
        staticDetails: stripVTControlCharacters(describeRollout(rolloutId, plan, version, component)),
        typedSearchAttributes: [
          { key: defineSearchAttributeKey(SEARCH_ATTRIBUTES.fleetId, 'KEYWORD'), value: rolloutId },
        ],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw new CliFailure(
          `rollout ${rolloutId} already exists; see \`defenseclaw-upgrade fleet rollout status ${rolloutId}\``,
        );
      throw err;
    }
    const ui = link(target, rolloutId);
    if (flags.detach) {
      if (flags.json) process.stdout.write(`${JSON.stringify({ rolloutId, ui })}\n`);
      else {
        process.stdout.write(
          `Rollout ${rolloutId} started.\nWatch it with: defenseclaw-upgrade fleet rollout status ${rolloutId}\n`,
        );
        if (ui) process.stdout.write(`Temporal UI: ${ui}\n`);
      }
      return 0;
    }
    if (!flags.json) process.stderr.write(`Rollout ${rolloutId} started.${ui ? ` Temporal UI: ${ui}` : ''}\n`);
    const result = await follow(target.client, rolloutId, flags.json === true);
    return result.ok ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** Prints each ring's change of state until the rollout ends; then its table (or JSON). */
async function follow(client: Client, id: string, json: boolean): Promise<RingRolloutResult> {
  const handle = client.workflow.getHandle(id);
  const seen = new Map<string, string>();
  const done = handle.result() as Promise<RingRolloutResult>;
  let finished: RingRolloutResult | undefined;
  void done.then((r) => (finished = r)).catch(() => undefined);
  while (!finished) {
    if (!json) {
      const p = await handle.query(ringProgressQuery).catch(() => undefined);
      for (const r of p?.rings ?? []) {
        if (seen.get(r.name) === r.state) continue;
        seen.set(r.name, r.state);
        process.stderr.write(`ring ${r.name}: ${r.state}${r.reason ? ` (${r.reason})` : ''}\n`);
      }
    }
    await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  }
  const result = await done;
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${renderRollout(result)}\n`);
  return result;
}

function when(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

const STATE_COLOR: Record<string, (s: string) => string> = {
  passed: color.green,
  halted: color.red,
  'rolled-back': color.yellow,
  'waiting-for-window': color.cyan,
};

/** The rings as a table, then the verdict and the late hosts. */
export function renderRollout(p: RingProgress): string {
  const t = new Table({
    head: ['ring', 'state', 'hosts', 'upgraded', 'failed/budget', 'left alone', 'note'],
    style: { head: [], border: [] },
  });
  for (const r of p.rings) {
    const alone = [
      r.held.length ? `${r.held.length} held` : '',
      r.pinned.length ? `${r.pinned.length} pinned` : '',
      r.current.length ? `${r.current.length} current` : '',
      r.late.length ? `${r.late.length} late` : '',
    ].filter(Boolean);
    const note =
      r.state === 'waiting-for-window'
        ? `window opens ${when(r.opensAt)}`
        : r.state === 'soaking'
          ? `soak ends ${when(r.soakEndsAt)}`
          : (r.reason ?? '');
    t.push([
      r.name,
      (STATE_COLOR[r.state] ?? ((s: string) => s))(r.state),
      String(r.hosts),
      String(r.upgraded),
      `${r.failed}/${r.budget}`,
      alone.join(', '),
      note.length > 70 ? `${note.slice(0, 69)}…` : note,
    ]);
  }
  const lines = [
    `${color.bold(`Rollout ${p.rolloutId}`)} → ${componentPrefix(p.component)}${p.version ?? p.requestedVersion ?? 'latest'}: ${p.phase}${p.verdict ? ` (${p.verdict})` : ''}`,
    t.toString(),
  ];
  if (p.late.length) {
    lines.push('Late hosts:');
    for (const l of p.late) lines.push(`  ${l.host} (ring ${l.ring}): ${l.state}${l.reason ? ` - ${l.reason}` : ''}`);
  }
  if (p.message) lines.push(p.message);
  return lines.join('\n');
}

/** The rollout now: its query while it runs, its result once it ended. */
export function rolloutSnapshot(client: Client, id: string): Promise<{ progress: RingProgress; running: boolean }> {
  return workflowSnapshot<RingProgress>(client, id, {
    type: WORKFLOW_RINGS,
    what: 'ring rollout',
    query: ringProgressQuery,
    silent: (err) => `rollout ${id} runs but does not answer (${oneLine(err)}); is a fleet worker running?`,
    // ringRollout returns its result for every verdict.
    ended: (handle) =>
      (handle.result() as Promise<RingRolloutResult>).catch((err: unknown) => {
        throw new CliFailure(`rollout ${id} ended without a result: ${oneLine(err)}`);
      }),
  });
}

export async function rolloutStatusCommand(id: string, flags: { json?: boolean }): Promise<number> {
  flag(IdSchema, id, 'rollout id');
  const target = await connectTarget({});
  try {
    const snap = await rolloutSnapshot(target.client, id);
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...snap.progress, running: snap.running }, null, 2)}\n`);
    else process.stdout.write(`${renderRollout(snap.progress)}\n`);
    if (snap.running) return 0;
    return (snap.progress as RingRolloutResult).ok ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** `fleet rollout …` under the `fleet` command. */
export function registerRolloutCommands(fleet: Command): void {
  const rollout = fleet
    .command('rollout')
    .description('roll a release through the rings of a plan file: windows, soaks, gates, pins, late hosts');
  rollout
    .command('start', { isDefault: true })
    .description('start a ring rollout from a plan (the default: `fleet rollout --plan plan.yaml`)')
    .option('--plan <file>', 'the rollout plan (YAML): rings, pins, gates (see README, "Ring rollouts")')
    .option('--version <X.Y.Z>', 'target release (default: the latest, resolved once)')
    .addOption(componentOption())
    .option('--id <rollout-id>', 'the rollout ID (default: rollout-<time>-<random>)')
    .option('-y, --yes', 'start without asking')
    .option('--auto-rollback-ring', "roll a ring back when a gate fails during its soak (the plan's autoRollbackRing)")
    .option('--detach', 'print the rollout ID and return; watch with `fleet rollout status <id>`')
    .option('--json', 'machine-readable output')
    .action(action((flags: RolloutFlags) => rolloutStartCommand(flags)));
  rollout
    .command('status <rollout-id>')
    .description('the rings of a rollout and their states, the late hosts, the verdict')
    .option('--json', 'machine-readable output')
    .action(action((id: string, flags: { json?: boolean }) => rolloutStatusCommand(id, flags)));
}
