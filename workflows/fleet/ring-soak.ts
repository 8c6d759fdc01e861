/**
 * soakRing: a ring's soak. Reads each upgraded host's gate at the start (the baseline), then every
 * ~min(30 s, soak/3) until `soakSeconds` have passed, each host on its own worker (readGate). The
 * gate fails for a host when:
 *   - subsystems: a subsystem of /health is `error` or `stopped`, or left a healthy state
 *     (`running`, `disabled`) it was in at the baseline;
 *   - counters: a named counter is higher than at the baseline (it climbed during the soak);
 *   - operatorCheck: the host's own check did not exit 0;
 *   - the gate could not be read (the host or its gateway stopped answering).
 * The first failing reading ends the soak. A child of ringRollout per ring.
 *
 * Its history grows by ~3 events per host per reading (a 1,780-host ring: ~5,500 a reading; a
 * one-hour soak reads 120 times), so before a reading that would take it past HISTORY_SOFT_LIMIT
 * it continues as new, carrying the baseline (bounded: ≤ 32 subsystems and the plan's ≤ 20
 * counters per host), the end time and the count of checks. The ring rollout sees one result.
 */
import { continueAsNew, sleep, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { GateReading } from '../../activities/host/health-gate.js';
import { KIND, hostQueue, onHost } from '../proxies.js';
import { workflowTime } from '../clock.js';
import { clip } from './fleet-types.js';
import { notPickedUp } from './fleet-host.js';
import {
  CounterNameSchema,
  GatesSchema,
  RING_LIMITS,
  RingNameSchema,
  UnreachableSecondsSchema,
  type Gates,
} from './ring-types.js';
import { failureText, validateInput } from '../run.js';
import { HostNameSchema, TaskQueueSchema } from '../types.js';

/** A baseline as a continued soak carries it (the subsystems and counters gateFailure compares). */
const BaselineSchema = z
  .object({
    subsystems: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{0,39}$/), z.string().regex(/^[a-z_-]{1,32}$/))
      .refine((r) => Object.keys(r).length <= 32, 'at most 32 subsystems'),
    counters: z
      .record(CounterNameSchema, z.number().nullable())
      .refine((r) => Object.keys(r).length <= RING_LIMITS.counters, `at most ${RING_LIMITS.counters} counters`),
  })
  .strict();

/** History length after which a soak continues as new before its next reading. */
const HISTORY_SOFT_LIMIT = 10_000;

const SoakRingInputSchema = z
  .object({
    ring: RingNameSchema,
    hosts: z.array(HostNameSchema).min(1).max(RING_LIMITS.hosts),
    soakSeconds: z.number().int().min(1).max(RING_LIMITS.soakSeconds.max),
    gates: GatesSchema,
    unreachableSeconds: UnreachableSecondsSchema,
    /** The plan's shared task queue, if any (instead of each host's own). */
    taskQueue: TaskQueueSchema.optional(),
    /** Set only by the workflow itself when it continues as new. */
    state: z
      .object({
        endsAt: z.number().int().min(0).max(8.64e15),
        checks: z.number().int().min(1).max(1_000_000),
        /** Each host's baseline reading, in the order of `hosts`. */
        baseline: z.array(BaselineSchema).max(RING_LIMITS.hosts),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((i) => !i.state || i.state.baseline.length === i.hosts.length, {
    message: 'the baseline does not match the hosts',
    path: ['state'],
  });
export type SoakRingInput = z.input<typeof SoakRingInputSchema>;

export interface SoakResult {
  ok: boolean;
  checks: number;
  /** Hosts whose gate failed, with the first reason (one line each). */
  failures: Array<{ host: string; reason: string }>;
}

const HEALTHY = ['running', 'disabled'];
const BROKEN = ['error', 'stopped'];
const PARALLEL = 50;

/** Why a reading fails the gate against its baseline, or undefined (pure). */
export function gateFailure(gates: Gates, base: GateReading, now: GateReading): string | undefined {
  if (gates.subsystems) {
    for (const [name, state] of Object.entries(now.subsystems)) {
      const before = base.subsystems[name];
      if (BROKEN.includes(state)) return `subsystem ${name} is ${state}`;
      if (before && HEALTHY.includes(before) && !HEALTHY.includes(state))
        return `subsystem ${name} went from ${before} to ${state}`;
    }
  }
  for (const c of gates.counters) {
    const a = base.counters[c];
    const b = now.counters[c];
    if (typeof a === 'number' && typeof b === 'number' && b > a) return `counter ${c} climbed from ${a} to ${b}`;
  }
  if (gates.operatorCheck && now.check && !now.check.ok) {
    return `operator check failed (exit ${now.check.exitCode})${now.check.output ? `: ${now.check.output}` : ''}`;
  }
  return undefined;
}

export async function soakRing(raw: SoakRingInput): Promise<SoakResult> {
  const input = validateInput(SoakRingInputSchema, raw);
  const gates = input.gates;
  const endsAt = input.state?.endsAt ?? workflowTime() + input.soakSeconds * 1000;
  const intervalMs = Math.max(1000, Math.min(30_000, Math.floor((input.soakSeconds * 1000) / 3)));
  const failures: SoakResult['failures'] = [];
  let baseline: Map<string, GateReading>;
  let checks: number;
  if (input.state) {
    const carried = input.state.baseline;
    baseline = new Map(input.hosts.map((h, i) => [h, carried[i]!]));
    checks = input.state.checks;
  } else {
    baseline = new Map();
    for (const [host, r] of await readAll(input, gates)) {
      if (typeof r === 'string') failures.push({ host, reason: r });
      else {
        baseline.set(host, { subsystems: r.subsystems, counters: r.counters });
        // A baseline that already fails (a broken subsystem, a failing check) fails the gate too.
        const why = gateFailure(gates, r, r);
        if (why) failures.push({ host, reason: `at the start of the soak: ${why}` });
      }
    }
    checks = 1;
  }
  while (!failures.length && workflowTime() < endsAt) {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > HISTORY_SOFT_LIMIT) {
      return continueAsNew<typeof soakRing>({
        ...raw,
        state: { endsAt, checks, baseline: input.hosts.map((h) => baseline.get(h)!) },
      });
    }
    await sleep(Math.min(intervalMs, endsAt - workflowTime()));
    const now = await readAll(input, gates);
    checks++;
    for (const [host, r] of now) {
      const base = baseline.get(host)!;
      const why = typeof r === 'string' ? r : gateFailure(gates, base, r);
      if (why) failures.push({ host, reason: clip(why) });
    }
  }
  return { ok: failures.length === 0, checks, failures };
}

/** Each host's reading, or a one-line reason it could not be read. */
async function readAll(
  input: z.output<typeof SoakRingInputSchema>,
  gates: Gates,
): Promise<Map<string, GateReading | string>> {
  const out = new Map<string, GateReading | string>();
  let next = 0;
  const lane = async () => {
    while (next < input.hosts.length) {
      const host = input.hosts[next++]!;
      out.set(host, await readOne(host, input, gates));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, input.hosts.length) }, lane));
  return new Map(input.hosts.map((h) => [h, out.get(h)!]));
}

async function readOne(
  host: string,
  input: z.output<typeof SoakRingInputSchema>,
  gates: Gates,
): Promise<GateReading | string> {
  const { unreachableSeconds } = input;
  const acts = onHost(hostQueue(host, input.taskQueue), KIND.gate, unreachableSeconds);
  try {
    return await acts.readGate.executeWithOptions({ summary: `gate on ${host}` }, [
      { counters: gates.counters, operatorCheck: gates.operatorCheck },
    ]);
  } catch (err) {
    if (notPickedUp(err)) return `its worker did not answer the gate check within ${unreachableSeconds} s`;
    return clip(`the gate could not be read: ${failureText(err)}`);
  }
}
