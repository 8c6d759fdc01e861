/**
 * `defenseclaw-upgrade fleet`: one release to many hosts as one durable workflow (fleetRollout on
 * the `defenseclaw-upgrade-fleet` queue), each host upgraded by its own worker.
 *
 *   fleet --hosts a,b,c | --hosts-file FILE [--version X.Y.Z] [--canary N] [--batch N|P%]
 *         [--max-failures N|P%] [--bake S] [--health-timeout S] [--jitter MS] [--yes]
 *   fleet status <id> [--json] [--all]      live table (TTY) or one snapshot
 *   fleet pause|resume|abort <id>           Updates on the running rollout
 *   fleet worker                            the worker that runs fleet workflows (a controller machine)
 *   fleet schedule …                        a release channel on a schedule (schedule.ts)
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { stripVTControlCharacters } from 'node:util';
import { confirm } from '@inquirer/prompts';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, defineSearchAttributeKey } from '@temporalio/common';
import proto from '@temporalio/proto';
import { Worker, type NativeConnectionOptions } from '@temporalio/worker';
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import logUpdate from 'log-update';
import { createControllerActivities } from '../../activities/controller/controller.js';
import { ensureAgent } from '../../worker/agent/agent.js';
import { shortHostname, workerIdentity } from '../../worker/identity.js';
import { controllerRuntimeOptions, serveControllerMetrics } from '../../worker/metrics.js';
import {
  connectWorker,
  installRuntime,
  resolveWorkflowCode,
  runtimeLogger,
  workerConnectionOptions,
} from '../../worker/worker.js';
import { progressQuery } from '../../workflows/definitions.js';
import {
  FAILED_STATES,
  FLEET_LIMITS,
  FLEET_TASK_QUEUE,
  FleetInputSchema,
  HOST_STATES,
  abortUpdate,
  countStates,
  fleetProgressQuery,
  parseLimit,
  pauseUpdate,
  resolveLimit,
  resumeUpdate,
  type FleetControlAnswer,
  type FleetHostRecord,
  type FleetHostState,
  type FleetInput,
  type FleetProgress,
  type FleetResult,
  type ValidFleetInput,
} from '../../workflows/fleet/fleet-types.js';
import type { fleetRollout } from '../../workflows/fleet/fleet.js';
import {
  HostNameSchema,
  IdSchema,
  LIMITS,
  SEARCH_ATTRIBUTES,
  VersionSchema,
  WORKFLOW_FLEET,
  taskQueueForHost,
} from '../../workflows/types.js';
import { connectTarget, type Target } from '../connect.js';
import { CliFailure, UsageError, action, oneLine } from '../errors.js';
import { color, duration } from '../render/format.js';
import { parseHostsFile, parseHostsList } from '../hosts-list.js';
import { workerGone } from '../supervise.js';
import { temporalConfigured } from '../temporal.js';
import { componentFromFlag, componentOption, componentPrefix, hostRunId, targetText } from './component.js';
import { upgraderVersions, type UpgraderVersions } from './fleet-upgraders.js';
import { registerRolloutCommands } from './rollout.js';
import { withTimeout, workflowSnapshot } from './snapshot.js';
import { registerScheduleCommands } from './schedule.js';
import { flag, interactiveTerminal, link, requestedBy, seconds } from './shared.js';
import { markReadyWhenPolling } from '../../worker/ready-mark.js';

// -------------------------------------------------------------------------------------------------
// Start

export interface FleetFlags {
  component?: string;
  hosts?: string;
  hostsFile?: string;
  version?: string;
  canary?: string;
  batch?: string;
  maxFailures?: string;
  bake?: string;
  healthTimeout?: string;
  unreachableTimeout?: string;
  jitter?: string;
  controller?: string;
  id?: string;
  fleetQueue?: string;
  yes?: boolean;
  detach?: boolean;
  json?: boolean;
  all?: boolean;
}

function whole(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(value)) throw new UsageError(`${name} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function limit(value: string, name: string) {
  try {
    return parseLimit(value, name);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--jitter <ms>`: a whole number of milliseconds within FLEET_LIMITS.jitterMs. */
function jitterMs(value: string | undefined): number {
  const { min, max, default: dflt } = FLEET_LIMITS.jitterMs;
  if (value === undefined) return dflt;
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new UsageError(
      `--jitter must be a whole number of milliseconds from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  return Number(value);
}

export function newFleetId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `fleet-${t}-${randomBytes(3).toString('hex')}`;
}

/** The workflow input from the flags; everything is checked before anything is contacted. */
export async function fleetInputFromFlags(flags: FleetFlags): Promise<ValidFleetInput> {
  const component = componentFromFlag(flags.component, flags.version);
  if (Boolean(flags.hosts) === Boolean(flags.hostsFile))
    throw new UsageError('give the hosts with exactly one of --hosts a,b,c or --hosts-file FILE');
  let hosts: string[];
  if (flags.hostsFile) {
    let text: string;
    try {
      text = await fs.readFile(flags.hostsFile, 'utf8');
    } catch (err) {
      throw new UsageError(
        `cannot read the hosts file ${flags.hostsFile}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`,
      );
    }
    hosts = parseHostsFile(text);
  } else {
    hosts = parseHostsList(flags.hosts!);
  }
  const input: FleetInput = {
    fleetId: flag(IdSchema, flags.id ?? newFleetId(), '--id'),
    hosts,
    version: flags.version === undefined ? undefined : flag(VersionSchema, flags.version, '--version'),
    canary: whole(flags.canary, '--canary') ?? Math.min(FLEET_LIMITS.canary.default, hosts.length),
    batch: limit(flags.batch ?? String(FLEET_LIMITS.batch.default), '--batch'),
    maxFailures: limit(flags.maxFailures ?? '0', '--max-failures'),
    bakeSeconds: seconds(flags.bake, '--bake') ?? FLEET_LIMITS.bakeSeconds.default,
    healthTimeoutSeconds: seconds(flags.healthTimeout, '--health-timeout') ?? LIMITS.healthTimeoutSeconds.default,
    unreachableSeconds:
      seconds(flags.unreachableTimeout, '--unreachable-timeout') ?? FLEET_LIMITS.unreachableSeconds.default,
    controller: flags.controller === undefined ? undefined : flag(HostNameSchema, flags.controller, '--controller'),
    jitterMs: jitterMs(flags.jitter),
    requestedBy: requestedBy(),
    ...component,
  };
  if (input.canary! > hosts.length)
    throw new UsageError(`--canary ${input.canary} is more than the ${hosts.length} hosts given`);
  return flag(FleetInputSchema, input, 'fleet option');
}

export function describePlan(input: ValidFleetInput): string {
  const n = input.hosts.length;
  const batch = resolveLimit(input.batch, n, 1);
  const budget = resolveLimit(input.maxFailures, n, 0);
  const canaries = input.hosts.slice(0, input.canary);
  const shown = (hs: string[]) => (hs.length > 6 ? `${hs.slice(0, 6).join(', ')}, … (${hs.length})` : hs.join(', '));
  return [
    color.bold(`Fleet rollout ${input.fleetId}`),
    `  target:        ${targetText(input.component, input.version, `${input.controller ?? input.hosts[0]}'s worker`)}`,
    `  hosts:         ${n}`,
    `  canary:        ${canaries.length ? `${shown(canaries)}, then a ${input.bakeSeconds} s bake and a health re-check` : 'none'}`,
    `  window:        at most ${batch} host${batch === 1 ? '' : 's'} upgrading at a time`,
    `  failure budget: stop starting hosts after ${budget + 1} failure${budget === 0 ? '' : 's'} (failed hosts roll back)`,
    `  unreachable:   a host whose worker does not answer within ${input.unreachableSeconds} s fails`,
    `  jitter:        ${input.jitterMs ? `each host starts after its own delay of 0–${input.jitterMs} ms` : 'none'}`,
  ].join('\n');
}

export async function fleetStartCommand(flags: FleetFlags): Promise<number> {
  const input = await fleetInputFromFlags(flags);
  if (!flags.yes && (!interactiveTerminal() || flags.json)) {
    throw new UsageError('confirming the rollout needs a terminal; pass --yes to start it without asking');
  }
  const target = await connectTarget({});
  try {
    const queue = flags.fleetQueue ?? FLEET_TASK_QUEUE;
    if (!(await hasPollers(target.client, target.namespace, queue))) {
      process.stderr.write(
        `${color.yellow('warning:')} no worker polls ${queue}; the rollout waits until one runs (\`defenseclaw-upgrade fleet worker\` on a controller machine).\n`,
      );
    }
    if (!flags.yes) {
      process.stdout.write(`${describePlan(input)}\n`);
      const ok = await confirm({ message: `Start rolling out to ${input.hosts.length} hosts?`, default: false });
      if (!ok) {
        process.stdout.write('Nothing started.\n');
        return 1;
      }
    }
    try {
      await target.client.workflow.start<typeof fleetRollout>(WORKFLOW_FLEET, {
        taskQueue: queue,
        workflowId: input.fleetId,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: `Fleet rollout of ${componentPrefix(input.component)}${input.version ?? 'the latest release'} to ${input.hosts.length} hosts`,
        staticDetails: stripVTControlCharacters(describePlan(input)),
        typedSearchAttributes: [
          { key: defineSearchAttributeKey(SEARCH_ATTRIBUTES.fleetId, 'KEYWORD'), value: input.fleetId },
          ...(input.version
            ? [{ key: defineSearchAttributeKey(SEARCH_ATTRIBUTES.toVersion, 'KEYWORD'), value: input.version }]
            : []),
        ],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw new CliFailure(
          `fleet ${input.fleetId} already exists; watch it with \`defenseclaw-upgrade fleet status ${input.fleetId}\``,
        );
      throw err;
    }
    const ui = link(target, input.fleetId);
    if (flags.detach) {
      if (flags.json) process.stdout.write(`${JSON.stringify({ fleetId: input.fleetId, ui })}\n`);
      else {
        process.stdout.write(`Fleet ${input.fleetId} started.\n`);
        process.stdout.write(`Watch it with: defenseclaw-upgrade fleet status ${input.fleetId}\n`);
        if (ui) process.stdout.write(`Temporal UI: ${ui}\n`);
      }
      return 0;
    }
    if (!flags.json) {
      process.stderr.write(
        `Fleet ${input.fleetId} started (pause/resume/abort with \`defenseclaw-upgrade fleet pause ${input.fleetId}\`).\n`,
      );
      if (ui) process.stderr.write(`Temporal UI: ${ui}\n`);
    }
    const result = await followFleet(target, input.fleetId, flags);
    return result.ok ? 0 : 1;
  } finally {
    await target.close();
  }
}

async function hasPollers(client: Client, namespace: string, queue: string): Promise<boolean> {
  try {
    const r = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: queue, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (r.pollers?.length ?? 0) > 0;
  } catch {
    return true; // cannot tell: say nothing
  }
}

// -------------------------------------------------------------------------------------------------
// Status, watching, results

/** Per host, what its own run is doing right now (only for hosts upgrading without a fleet step). */
export type CurrentSteps = Map<string, string>;

async function currentSteps(client: Client, p: FleetProgress): Promise<CurrentSteps> {
  const out: CurrentSteps = new Map();
  const busy = p.hosts.filter((h) => h.state === 'upgrading' && !h.step).slice(0, 50);
  let next = 0;
  const worker = async () => {
    while (next < busy.length) {
      const h = busy[next++]!;
      const q = await withTimeout(
        client.workflow.getHandle(hostRunId(p.component, h.host)).query(progressQuery),
        2000,
      ).catch(() => undefined);
      const running = q?.steps.filter((s) => s.status === 'running').pop() ?? q?.steps.at(-1);
      if (running) out.set(h.host, running.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, busy.length) }, worker));
  return out;
}

/** Per host in flight whose worker is gone (client/supervise.ts: unstarted work, stale pollers), why. */
export type GoneWorkers = Map<string, string>;

async function goneWorkers(client: Client, namespace: string, p: FleetProgress): Promise<GoneWorkers> {
  const out: GoneWorkers = new Map();
  const busy = p.hosts.filter((h) => h.state === 'upgrading').slice(0, 200);
  let next = 0;
  const worker = async () => {
    while (next < busy.length) {
      const h = busy[next++]!;
      const queue = p.settings.taskQueue ?? taskQueueForHost(h.host);
      const w = await workerGone(client, namespace, queue, client.workflow.getHandle(hostRunId(p.component, h.host)));
      if (w?.gone) out.set(h.host, w.why ?? 'gone');
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, busy.length) }, worker));
  return out;
}

/** The rollout's end: its result, or the result attached to its failure. */
export async function fleetResultOf(handle: WorkflowHandle): Promise<FleetResult> {
  try {
    return (await handle.result()) as FleetResult;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause;
      if (cause instanceof ApplicationFailure && cause.details?.[0]) return cause.details[0] as FleetResult;
      throw new CliFailure(`fleet ${handle.workflowId} ended without a result: ${oneLine(cause ?? err)}`);
    }
    throw err;
  }
}

/** A rollout's state now: its query while it runs, its result once it ended. */
export function fleetSnapshot(client: Client, fleetId: string): Promise<{ progress: FleetProgress; running: boolean }> {
  return workflowSnapshot<FleetProgress>(client, fleetId, {
    type: WORKFLOW_FLEET,
    what: 'fleet rollout',
    query: fleetProgressQuery,
    silent: (err) =>
      `fleet ${fleetId} runs but does not answer (${oneLine(err)}); is a fleet worker running (\`defenseclaw-upgrade fleet worker\`)?`,
    ended: fleetResultOf,
  });
}

export async function fleetStatusCommand(fleetId: string, flags: { json?: boolean; all?: boolean }): Promise<number> {
  flag(IdSchema, fleetId, 'fleet id');
  const target = await connectTarget({});
  try {
    const snap = await fleetSnapshot(target.client, fleetId);
    const live = !flags.json && process.stdout.isTTY === true;
    if (snap.running && live) {
      const result = await followFleet(target, fleetId, flags);
      return result.ok ? 0 : 1;
    }
    const steps = snap.running ? await currentSteps(target.client, snap.progress) : new Map<string, string>();
    const gone = snap.running ? await goneWorkers(target.client, target.namespace, snap.progress) : new Map();
    const upgraders = await upgraderVersions(target.client, target.namespace, snap.progress);
    if (flags.json) {
      const hosts = snap.progress.hosts.map((h) => ({
        ...h,
        ...(steps.has(h.host) ? { step: steps.get(h.host) } : {}),
        ...(gone.has(h.host) ? { worker: 'gone', workerGone: gone.get(h.host) } : {}),
        ...(upgraders.has(h.host) ? { upgrader: upgraders.get(h.host) } : {}),
      }));
      process.stdout.write(`${JSON.stringify({ ...snap.progress, hosts, running: snap.running }, null, 2)}\n`);
    } else {
      process.stdout.write(
        `${renderFleet(snap.progress, { now: Date.now(), steps, gone, upgraders, all: flags.all })}\n`,
      );
    }
    if (snap.running) return 0;
    return (snap.progress as FleetResult).ok ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** Watches a rollout to its end: a live table on a terminal, one line per host change otherwise. */
export async function followFleet(
  target: Target,
  fleetId: string,
  flags: { json?: boolean; all?: boolean },
): Promise<FleetResult> {
  const handle = target.client.workflow.getHandle(fleetId);
  const live = !flags.json && process.stdout.isTTY === true;
  let settled: { result?: FleetResult; error?: unknown } | undefined;
  const done = fleetResultOf(handle).then(
    (result) => (settled = { result }),
    (error) => (settled = { error }),
  );
  const onSigint = () => {
    if (live) logUpdate.done();
    process.stderr.write(
      `\nStopped watching; the rollout goes on. Watch it again with: defenseclaw-upgrade fleet status ${fleetId}\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  const seen = new Map<string, FleetHostState>();
  // The upgrader versions change rarely: read again every UPGRADERS_EVERY_MS, not every refresh.
  let upgraders: { at: number; versions: UpgraderVersions } | undefined;
  try {
    while (!settled) {
      const p = await withTimeout(handle.query(fleetProgressQuery), 10_000).catch(() => undefined);
      if (p && live) {
        if (!upgraders || Date.now() - upgraders.at > UPGRADERS_EVERY_MS) {
          upgraders = { at: Date.now(), versions: await upgraderVersions(target.client, target.namespace, p) };
        }
        logUpdate(
          renderFleet(p, {
            now: Date.now(),
            steps: await currentSteps(target.client, p),
            gone: await goneWorkers(target.client, target.namespace, p),
            upgraders: upgraders.versions,
            all: flags.all,
            maxRows: rowsAvailable(),
          }),
        );
      } else if (p && !flags.json) {
        for (const line of changes(p, seen)) process.stdout.write(`${line}\n`);
      }
      await Promise.race([done, sleep(1000)]);
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  if (settled.error) {
    if (live) logUpdate.done();
    throw settled.error;
  }
  const result = settled.result!;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (live) {
    logUpdate(
      renderFleet(result, {
        now: Date.now(),
        upgraders: upgraders?.versions,
        all: flags.all,
        maxRows: rowsAvailable(),
      }),
    );
    logUpdate.done();
  } else {
    for (const line of changes(result, seen)) process.stdout.write(`${line}\n`);
    process.stdout.write(`${renderFleet(result, { now: Date.now(), all: flags.all })}\n`);
  }
  return result;
}

const UPGRADERS_EVERY_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function rowsAvailable(): number {
  return Math.max(8, (process.stdout.rows ?? 40) - 10);
}

/** One line per host whose state changed since the last call (for pipes and logs). */
function changes(p: FleetProgress, seen: Map<string, FleetHostState>): string[] {
  const out: string[] = [];
  for (const h of p.hosts) {
    if (seen.get(h.host) === h.state) continue;
    const first = !seen.has(h.host);
    seen.set(h.host, h.state);
    if (first && h.state === 'waiting') continue;
    const versions = h.before || h.after ? ` ${h.before ?? '?'} → ${h.after ?? '?'}` : '';
    const took = h.endedAt && h.startedAt ? ` (${duration(h.endedAt - h.startedAt)})` : '';
    out.push(`${h.host}: ${h.state}${versions}${took}${h.reason && h.state !== 'healthy' ? ` — ${h.reason}` : ''}`);
  }
  return out;
}

const PAINT: Record<FleetHostState, (s: string) => string> = {
  waiting: color.dim,
  upgrading: color.cyan,
  healthy: color.green,
  'rolled-back': color.yellow,
  failed: color.red,
  skipped: color.dim,
  unreachable: color.red,
};

export interface RenderOptions {
  now: number;
  steps?: CurrentSteps;
  /** Hosts in flight whose worker is gone: shown as `worker gone`, not as upgrading. */
  gone?: GoneWorkers;
  /** Per host, the upgrader version its worker reports: adds a `worker` column (— when unknown). */
  upgraders?: UpgraderVersions;
  /** Show every host (default: all when they fit, else the interesting ones). */
  all?: boolean;
  maxRows?: number;
  /** Terminal width to fit (default 80). */
  width?: number;
}

/** The order rows are shown in when not all fit: what needs attention first. */
const ATTENTION: FleetHostState[] = [
  'upgrading',
  'failed',
  'unreachable',
  'rolled-back',
  'waiting',
  'healthy',
  'skipped',
];

/** A header with counts, a table of hosts (fits 80 columns), the failures with their reasons. */
export function renderFleet(p: FleetProgress, o: RenderOptions): string {
  const width = Math.max(60, Math.min(o.width ?? 80, 200));
  const lines: string[] = [];
  const flags = [p.paused ? color.yellow('PAUSED') : '', p.aborted ? color.red('ABORTED') : '']
    .filter(Boolean)
    .join(' ');
  const target = p.version ?? p.requestedVersion ?? 'latest';
  lines.push(
    fit(
      `${color.bold(`Fleet ${p.fleetId}`)} → ${componentPrefix(p.component)}${color.bold(target)}  ${p.phase}${flags ? `  ${flags}` : ''}`,
      width,
    ),
  );
  const c = p.counts ?? countStates(p.hosts);
  const counts = HOST_STATES.filter((s) => c[s] > 0 || s === 'healthy' || s === 'waiting')
    .map((s) => `${PAINT[s](s)} ${c[s]}`)
    .join('  ');
  lines.push(fit(counts, width));
  const bake =
    p.phase === 'bake' && p.bakeEndsAt ? `  bake ends in ${duration(Math.max(0, p.bakeEndsAt - o.now))}` : '';
  lines.push(
    fit(
      color.dim(
        `failures ${p.failures} (budget ${p.settings.maxFailures}) · window ${p.settings.batch} · canary ${p.settings.canary} · run ${p.run + 1}${bake}`,
      ),
      width,
    ),
  );

  const maxRows = o.all ? Infinity : (o.maxRows ?? 30);
  let rows: FleetHostRecord[] = p.hosts;
  let hidden = 0;
  if (rows.length > maxRows) {
    const rank = (h: FleetHostRecord) => ATTENTION.indexOf(h.state);
    rows = p.hosts
      .map((h, i) => ({ h, i }))
      .sort((a, b) => rank(a.h) - rank(b.h) || a.i - b.i)
      .slice(0, maxRows)
      .sort((a, b) => a.i - b.i)
      .map((x) => x.h);
    hidden = p.hosts.length - rows.length;
  }
  // With the upgrader versions: a `worker` column, paid for by a narrower step column.
  const widths = o.upgraders ? [13, 11, 16, 8, 10] : [13, 12, 16, 10];
  const hostWidth = Math.max(12, width - widths.reduce((a, b) => a + b, 0) - (widths.length + 2));
  const table = new Table({
    head: ['host', 'state', 'step', 'version', ...(o.upgraders ? ['worker'] : []), 'time'],
    colWidths: [hostWidth, ...widths],
    style: { head: [], border: [], compact: true },
    truncate: '…',
  });
  for (const h of rows) {
    const step = h.step ?? o.steps?.get(h.host) ?? '';
    const versions =
      h.before || h.after ? `${h.before ?? '?'} → ${h.after ?? (h.state === 'upgrading' ? '…' : '?')}` : '';
    const end = h.endedAt ?? (h.state === 'upgrading' ? o.now : undefined);
    const took = h.startedAt !== undefined && end !== undefined ? duration(Math.max(0, end - h.startedAt)) : '';
    const state = o.gone?.has(h.host) ? color.red('worker gone') : PAINT[h.state](h.state);
    const upgrader = o.upgraders ? [o.upgraders.get(h.host) ?? '—'] : [];
    table.push([h.host + (h.canary ? '*' : ''), state, step, versions, ...upgrader, took]);
  }
  lines.push(table.toString());
  if (hidden > 0) lines.push(color.dim(fit(`… ${hidden} more hosts not shown (--all shows every host)`, width)));
  if (p.settings.canary > 0) lines.push(color.dim('* canary'));

  const troubled = p.hosts.filter((h) => FAILED_STATES.includes(h.state) && h.reason);
  if (troubled.length) {
    lines.push(color.bold('Failures:'));
    for (const h of troubled.slice(0, o.all ? Infinity : 10)) {
      lines.push(fit(`  ${PAINT[h.state](h.host)} ${h.state}: ${h.reason}`, width));
    }
    if (!o.all && troubled.length > 10) lines.push(color.dim(`  … ${troubled.length - 10} more`));
  }
  if (o.gone?.size) {
    lines.push(color.bold('Workers gone (the run waits for them; restart the host worker):'));
    for (const [host, why] of [...o.gone].slice(0, o.all ? Infinity : 10)) lines.push(fit(`  ${host}: ${why}`, width));
  }
  if (p.stopReason && !p.message) lines.push(fit(`${color.yellow('stopping:')} ${p.stopReason}`, width));
  if (p.message) {
    const paint =
      p.verdict === 'succeeded' ? color.green : p.verdict === 'completed-with-failures' ? color.yellow : color.red;
    lines.push(
      ...wrap(`${(p.verdict ?? '').toUpperCase()} ${p.message}`, width).map((l, i) => (i === 0 ? paint(l) : l)),
    );
  }
  return lines.join('\n');
}

/** Word-wraps plain text to `width` columns (a word longer than a line is cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const w = word.length > width ? `${word.slice(0, width - 1)}…` : word;
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Cuts a line (which may hold colour codes) to `width` visible columns. */
function fit(line: string, width: number): string {
  const plain = stripVTControlCharacters(line);
  if (plain.length <= width) return line;
  return `${plain.slice(0, width - 1)}…`;
}

// -------------------------------------------------------------------------------------------------
// Pause, resume, abort

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

// -------------------------------------------------------------------------------------------------
// The fleet worker

/**
 * Runs the worker that executes fleet workflows (no activities: every host's work runs on that
 * host's own worker) until SIGINT/SIGTERM.
 */
export async function runFleetWorker(
  opts: { taskQueue?: string; env?: NodeJS.ProcessEnv; onReady?: (line: string) => void } = {},
): Promise<void> {
  const env = opts.env ?? process.env;
  installRuntime(await controllerRuntimeOptions(env));
  const logger = runtimeLogger();
  let options: NativeConnectionOptions & { address: string };
  let namespace: string;
  if (temporalConfigured(env)) {
    const t = workerConnectionOptions(env);
    options = t.options as NativeConnectionOptions & { address: string };
    namespace = t.namespace;
  } else {
    const agent = await ensureAgent({ env });
    if (!agent.address) throw new CliFailure(`the local agent is not ready: ${agent.error ?? agent.state}`);
    options = { address: agent.address };
    namespace = agent.namespace ?? 'default';
  }
  const taskQueue = opts.taskQueue ?? FLEET_TASK_QUEUE;
  const connection = await connectWorker(options);
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      identity: workerIdentity('controller', shortHostname()),
      // The controller's own activities (ring rollout notifications to DEFENSECLAW_UPGRADE_WEBHOOK_URL,
      // channel checks): they trust only this machine's configuration.
      activities: createControllerActivities(env),
      ...resolveWorkflowCode(),
      shutdownGraceTime: '5s',
    });
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(130);
    logger.info(`${sig} received: stopping the fleet worker (rollouts continue when a worker returns)`);
    try {
      worker.shutdown();
    } catch {
      // not running yet or already stopping
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stopMark = new AbortController();
  const metrics = await serveControllerMetrics(connection, namespace, env);
  try {
    const running = worker.run();
    opts.onReady?.(`fleet worker polling ${taskQueue} on ${options.address} (namespace ${namespace})`);
    void markReadyWhenPolling({
      connection,
      namespace,
      taskQueue,
      identity: worker.options.identity,
      kind: 'workflow',
      env,
      signal: stopMark.signal,
    }).then((file) => file && logger.info(`polling ${taskQueue}: wrote ${file} for the launcher`));
    await running;
  } finally {
    stopMark.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
    await connection.close().catch(() => undefined);
  }
}

// -------------------------------------------------------------------------------------------------
// The command tree

export function registerFleetCommands(program: Command): void {
  const fleet = program
    .command('fleet')
    .description(
      'roll a release out to many hosts: canaries, a bake, then a sliding window with a failure budget (each host upgraded by its own worker)',
    );
  // `fleet --hosts …` starts a rollout: `start` is the default subcommand, so that the options of
  // `fleet status ID --json` reach `status` (the program parses options apart from operands).
  fleet
    .command('start', { isDefault: true })
    .description('start a rollout (the default: `fleet --hosts a,b,c` is `fleet start --hosts a,b,c`) and watch it')
    .option('--hosts <a,b,c>', 'the hosts, comma-separated, in rollout order (the first are the canaries)')
    .option('--hosts-file <file>', 'the hosts, one per line (# comments and blank lines allowed)')
    .option('--version <X.Y.Z>', 'target release (default: the latest, resolved once for the whole fleet)')
    .addOption(componentOption())
    .option('--canary <n>', 'upgrade the first N hosts first and bake them', String(FLEET_LIMITS.canary.default))
    .option('--batch <n|p%>', 'at most this many hosts upgrading at once', String(FLEET_LIMITS.batch.default))
    .option('--max-failures <n|p%>', 'stop starting hosts when failures exceed this', '0')
    .option('--bake <seconds>', 'how long the canaries must stay healthy', String(FLEET_LIMITS.bakeSeconds.default))
    .option('--health-timeout <seconds>', 'seconds each host waits for gateway health', '60')
    .option(
      '--unreachable-timeout <seconds>',
      'a host whose worker does not answer within this fails as unreachable',
      String(FLEET_LIMITS.unreachableSeconds.default),
    )
    .option(
      '--jitter <ms>',
      'spread host starts: each host waits its own delay of 0..ms, a hash of its name',
      String(FLEET_LIMITS.jitterMs.default),
    )
    .option('--controller <host>', "resolve the release on this host's worker (default: the first canary)")
    .option('--id <fleet-id>', 'the rollout ID (default: fleet-<time>-<random>)')
    .addOption(
      new Option('--fleet-queue <queue>', 'task queue of the fleet worker').default(FLEET_TASK_QUEUE).hideHelp(),
    )
    .option('-y, --yes', 'start without asking')
    .option('--detach', 'print the rollout ID and return; watch with `fleet status <id>`')
    .option('--all', 'show every host in the table')
    .option('--json', 'machine-readable output')
    .action(action((flags: FleetFlags) => fleetStartCommand(flags)));

  fleet
    .command('status <fleet-id>')
    .description('live table of a rollout: per host state, step, versions, time; then the failures')
    .option('--all', 'show every host')
    .option('--json', 'machine-readable output')
    .action(action((id: string, flags: { json?: boolean; all?: boolean }) => fleetStatusCommand(id, flags)));
  fleet
    .command('pause <fleet-id>')
    .description('start no new host (in-flight hosts finish)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; json?: boolean }) => fleetControlCommand('pause', id, flags)),
    );
  fleet
    .command('resume <fleet-id>')
    .description('continue a paused rollout')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; json?: boolean }) => fleetControlCommand('resume', id, flags)),
    );
  fleet
    .command('abort <fleet-id>')
    .description(
      'stop the rollout: no new host starts; in-flight hosts finish (or are cancelled and undo their changes)',
    )
    .option('--cancel-in-flight', 'also cancel the hosts in flight (each compensates its own changes)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; cancelInFlight?: boolean; json?: boolean }) =>
        fleetControlCommand('abort', id, flags),
      ),
    );
  registerRolloutCommands(fleet);
  registerScheduleCommands(fleet);
  fleet
    .command('worker')
    .description('run the worker that executes fleet rollouts, in the foreground (on a controller machine)')
    .option('--task-queue <queue>', 'task queue to serve', FLEET_TASK_QUEUE)
    .action(
      action(async (flags: { taskQueue?: string }) => {
        await runFleetWorker({
          taskQueue: flags.taskQueue,
          onReady: (line) => process.stderr.write(`${line}\n`),
        });
        return 0;
      }),
    );
}
