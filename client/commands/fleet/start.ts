/**
 * `fleet --hosts a,b,c | --hosts-file FILE [--version X.Y.Z] [--canary N] [--batch N|P%] [--max-failures N|P%]
 * [--bake S] [--health-timeout S] [--jitter MS] [--yes]`: the flags to a validated fleetRollout input, the
 * plan shown before asking, and the start (then watched by follow.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { stripVTControlCharacters } from 'node:util';
import { confirm } from '@inquirer/prompts';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
} from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import {
  FLEET_LIMITS,
  FLEET_TASK_QUEUE,
  FleetInputSchema,
  parseLimit,
  resolveLimit,
  type FleetInput,
  type ValidFleetInput,
} from '../../../workflows/fleet/fleet-types.js';
import type { fleetRollout } from '../../../workflows/fleet/fleet.js';
import {
  HostNameSchema,
  IdSchema,
  LIMITS,
  SEARCH_ATTRIBUTES,
  VersionSchema,
  WORKFLOW_FLEET,
} from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { hasWorkflowPollers } from '../../../worker/queue-pollers.js';
import { CliFailure, UsageError, oneLine } from '../../errors.js';
import { color } from '../../render/format.js';
import { parseHostsFile, parseHostsList } from '../../hosts-list.js';
import { componentFromFlag, componentPrefix, targetText } from './component.js';
import { flag, interactiveTerminal, link, requestedBy, seconds } from '../shared.js';
import { followFleet } from './follow.js';

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
    if (!(await hasWorkflowPollers(target.client.workflowService, target.namespace, queue))) {
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
