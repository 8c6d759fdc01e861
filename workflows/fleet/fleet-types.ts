/**
 * The vocabulary of a fleet rollout, shared by the fleetRollout workflow and the CLI: its input
 * (validated, bounded), the per-host record, the progress answer, the result, and the query and
 * Updates that watch and steer it.
 *
 * Pure and deterministic (zod and Temporal definitions only).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { ReleaseTicketSchema } from '../release-ticket.js';
import {
  HostNameSchema,
  IdSchema,
  LIMITS,
  ROLLOUT_COMPONENTS,
  VersionSchema,
  type RolloutComponent,
  type UpgradeOutcome,
} from '../types.js';

/** The task queue the fleet workflow runs on (served by `defenseclaw-upgrade fleet worker`). */
export const FLEET_TASK_QUEUE = 'defenseclaw-upgrade-fleet';

export const FLEET_LIMITS = {
  /** Hosts in one rollout: the state travels through continue-as-new, so it must stay well under 2 MB. */
  hosts: 5000,
  canary: { min: 0, max: 100, default: 1 },
  /** Hosts upgrading at the same time. */
  batch: { min: 1, max: 500, default: 5 },
  bakeSeconds: { min: 0, max: 86400, default: 60 },
  /** A host whose worker does not pick up the first probe within this is unreachable. */
  unreachableSeconds: { min: 2, max: 3600, default: 60 },
  /** Children started per workflow run before it continues as new (bounds each run's history). */
  hostsPerRun: { min: 1, max: 1000, default: 500 },
  /** Spread of host starts: each host waits a deterministic 0..jitterMs before it starts (jitter.ts). */
  jitterMs: { min: 0, max: 600_000, default: 0 },
  /** Longest failure reason kept per host. */
  reasonChars: 300,
} as const;

/** `N` hosts or `P%` of the fleet. */
export const LimitSchema = z.union([
  z.object({ count: z.number().int().min(0).max(FLEET_LIMITS.hosts) }).strict(),
  z.object({ percent: z.number().int().min(0).max(100) }).strict(),
]);
export type Limit = z.infer<typeof LimitSchema>;

/**
 * A limit as a number of hosts for a fleet of `total`. Percentages round down (a budget of 10% of
 * 9 hosts is 0 failures); `atLeast` raises the result (a window of 10% of 3 hosts is still 1).
 */
export function resolveLimit(limit: Limit, total: number, atLeast = 0): number {
  const n = 'count' in limit ? limit.count : Math.floor((total * limit.percent) / 100);
  return Math.max(atLeast, Math.min(n, Math.max(total, atLeast)));
}

/** `5` or `10%`: the CLI's spelling of a Limit. Throws on anything else. */
export function parseLimit(text: string, what: string): Limit {
  const m = /^\s*([0-9]{1,5})\s*(%?)\s*$/.exec(text);
  if (!m) throw new Error(`${what} must be a number of hosts (5) or a percentage of the fleet (10%)`);
  const n = Number(m[1]);
  if (m[2]) {
    if (n > 100) throw new Error(`${what} must be a percentage between 0% and 100%`);
    return { percent: n };
  }
  if (n > FLEET_LIMITS.hosts) throw new Error(`${what} must be at most ${FLEET_LIMITS.hosts}`);
  return { count: n };
}

export const HOST_STATES = [
  'waiting',
  'upgrading',
  'healthy',
  'rolled-back',
  'failed',
  'skipped',
  'unreachable',
] as const;
export type FleetHostState = (typeof HOST_STATES)[number];

/** States that count against the failure budget. */
export const FAILED_STATES: readonly FleetHostState[] = ['rolled-back', 'failed', 'unreachable'];

export interface FleetHostRecord {
  host: string;
  state: FleetHostState;
  /** One of the first `canary` hosts. */
  canary?: boolean;
  /** What the fleet itself is doing for this host (probe, upgrade, bake, bake-check, rollback). */
  step?: string;
  /** Installed version before, and after (when known). */
  before?: string;
  after?: string;
  /** The host run's outcome, when it ran. */
  outcome?: UpgradeOutcome | 'busy' | 'cancelled';
  /** Why it failed, was rolled back or skipped (one line, bounded). */
  reason?: string;
  /** Workflow time (epoch ms). */
  startedAt?: number;
  endedAt?: number;
}

const Text = (max: number) => z.string().max(max);
const Time = z.number().int().min(0).max(8.64e15);

const HostRecordSchema = z
  .object({
    host: HostNameSchema,
    state: z.enum(HOST_STATES),
    canary: z.boolean().optional(),
    step: Text(32).optional(),
    before: VersionSchema.optional(),
    after: VersionSchema.optional(),
    outcome: Text(32).optional(),
    reason: Text(FLEET_LIMITS.reasonChars + 8).optional(),
    startedAt: Time.optional(),
    endedAt: Time.optional(),
  })
  .strict();

export const FLEET_PHASES = ['resolve', 'canary', 'bake', 'rollout', 'finished'] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];

export const FLEET_VERDICTS = [
  'succeeded',
  'completed-with-failures',
  'failure-budget-exceeded',
  'canary-failed',
  'aborted',
  'resolve-failed',
] as const;
export type FleetVerdict = (typeof FLEET_VERDICTS)[number];

/** Who paused, resumed or aborted, and why (for the audit trail). */
export const ControlRequestSchema = z
  .object({
    by: IdSchema.optional(),
    reason: Text(200).optional(),
    /** Abort only: also cancel the hosts in flight (each compensates its own changes). */
    cancelInFlight: z.boolean().optional(),
  })
  .strict();
export type ControlRequest = z.infer<typeof ControlRequestSchema>;

const ControlEventSchema = z
  .object({
    action: z.enum(['pause', 'resume', 'abort']),
    at: Time,
    by: IdSchema.optional(),
    reason: Text(200).optional(),
  })
  .strict();
export type ControlEvent = z.infer<typeof ControlEventSchema>;

/** What a run hands to the next one through continue-as-new. */
export const FleetStateSchema = z
  .object({
    phase: z.enum(FLEET_PHASES),
    version: VersionSchema.optional(),
    paused: z.boolean(),
    /** A ring rollout's maintenance window is closed: no new host starts (in-flight ones finish). */
    windowClosed: z.boolean().optional(),
    aborted: z.boolean(),
    cancelInFlight: z.boolean().optional(),
    /** Why no more hosts are started (budget, canary, abort, resolve). */
    stopReason: Text(400).optional(),
    startedAt: Time,
    bakeStartedAt: Time.optional(),
    bakeEndsAt: Time.optional(),
    /** How many runs came before this one (continue-as-new). */
    runs: z.number().int().min(0).max(1_000_000),
    /** The last few pause / resume / abort requests. */
    controls: z.array(ControlEventSchema).max(20),
    hosts: z.array(HostRecordSchema).max(FLEET_LIMITS.hosts),
  })
  .strict();
export interface FleetState {
  phase: FleetPhase;
  version?: string;
  paused: boolean;
  windowClosed?: boolean;
  aborted: boolean;
  cancelInFlight?: boolean;
  stopReason?: string;
  startedAt: number;
  bakeStartedAt?: number;
  bakeEndsAt?: number;
  runs: number;
  controls: ControlEvent[];
  hosts: FleetHostRecord[];
}

const intIn = (l: { min: number; max: number; default: number }) =>
  z.number().int().min(l.min).max(l.max).default(l.default);

export const FleetInputSchema = z
  .object({
    /** The fleet's ID; also its workflow ID and the DefenseClawFleetId of every host run. */
    fleetId: IdSchema,
    /** Hosts in rollout order; the first `canary` of them are the canaries. */
    hosts: z
      .array(HostNameSchema)
      .min(1)
      .max(FLEET_LIMITS.hosts)
      .refine((h) => new Set(h).size === h.length, { message: 'hosts must not repeat' }),
    /** Target version; absent means the latest release, resolved once for the whole fleet. */
    version: VersionSchema.optional(),
    /**
     * What moves (issue 18): DefenseClaw (absent: the default, as every run before) or `worker`, the
     * hosts' own workers, to `version` (required: an upgrader version; no release is resolved).
     */
    component: z.enum(ROLLOUT_COMPONENTS).optional(),
    canary: intIn(FLEET_LIMITS.canary),
    batch: LimitSchema.default({ count: FLEET_LIMITS.batch.default }),
    maxFailures: LimitSchema.default({ count: 0 }),
    bakeSeconds: intIn(FLEET_LIMITS.bakeSeconds),
    healthTimeoutSeconds: intIn(LIMITS.healthTimeoutSeconds),
    unreachableSeconds: intIn(FLEET_LIMITS.unreachableSeconds),
    /** The host whose worker resolves the release (default: the first host, i.e. the first canary). */
    controller: HostNameSchema.optional(),
    /**
     * Serve every host from this one task queue instead of each host's own (a pool of workers that
     * can reach every host; also the benchmark's stub workers). Default: defenseclaw-upgrade@<host>.
     */
    taskQueue: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9@._:-]{0,199}$/, 'a task queue name')
      .optional(),
    hostsPerRun: intIn(FLEET_LIMITS.hostsPerRun),
    jitterMs: intIn(FLEET_LIMITS.jitterMs),
    /**
     * The release, resolved once, for every host (release-ticket.ts): given by a parent rollout, or
     * absent and issued by the fleet itself on the resolver's worker (and carried when it continues as new).
     */
    ticket: ReleaseTicketSchema.optional(),
    requestedBy: IdSchema.optional(),
    /** Set only by the workflow itself when it continues as new. */
    state: FleetStateSchema.optional(),
  })
  .strict()
  .refine((i) => !i.ticket || !i.version || i.ticket.version === i.version, {
    message: 'the release ticket is for another version',
    path: ['ticket'],
  })
  .refine((i) => i.component !== 'worker' || (i.version !== undefined && !i.ticket), {
    message: 'a rollout of the worker needs --version (the upgrader version) and no release ticket',
    path: ['version'],
  })
  .refine((i) => i.canary <= i.hosts.length, {
    message: 'canary must not exceed the number of hosts',
    path: ['canary'],
  })
  .refine(
    (i) =>
      !i.state || (i.state.hosts.length === i.hosts.length && i.state.hosts.every((h, n) => h.host === i.hosts[n])),
    {
      message: 'state does not match the hosts',
      path: ['state'],
    },
  );
export type FleetInput = z.input<typeof FleetInputSchema>;
export type ValidFleetInput = z.output<typeof FleetInputSchema>;

/** What the `progress` query answers. */
export interface FleetProgress {
  fleetId: string;
  /** Present when the rollout moves the hosts' workers (absent: DefenseClaw). */
  component?: RolloutComponent;
  phase: FleetPhase;
  /** The resolved target (absent until resolved). */
  version?: string;
  requestedVersion?: string;
  paused: boolean;
  aborted: boolean;
  stopReason?: string;
  verdict?: FleetVerdict;
  message?: string;
  settings: {
    canary: number;
    batch: number;
    maxFailures: number;
    bakeSeconds: number;
    healthTimeoutSeconds: number;
    unreachableSeconds: number;
    hostsPerRun: number;
    resolver: string;
    taskQueue?: string;
    jitterMs?: number;
  };
  counts: Record<FleetHostState, number>;
  failures: number;
  inFlight: number;
  startedAt: number;
  endedAt?: number;
  bakeStartedAt?: number;
  bakeEndsAt?: number;
  /** This run's place in the chain of continue-as-new runs, and its history length. */
  run: number;
  historyLength: number;
  controls: ControlEvent[];
  hosts: FleetHostRecord[];
}

export interface FleetResult extends FleetProgress {
  verdict: FleetVerdict;
  message: string;
  ok: boolean;
}

export interface FleetControlAnswer {
  paused: boolean;
  aborted: boolean;
  phase: FleetPhase;
  inFlight: number;
  waiting: number;
}

export const fleetProgressQuery = defineQuery<FleetProgress>('progress');
export const pauseUpdate = defineUpdate<FleetControlAnswer, [ControlRequest]>('pause');
export const resumeUpdate = defineUpdate<FleetControlAnswer, [ControlRequest]>('resume');
export const abortUpdate = defineUpdate<FleetControlAnswer, [ControlRequest]>('abort');
/**
 * Sent by a ring rollout (a workflow cannot send Updates) when its ring's maintenance window
 * closes or opens: while closed no new host starts. Apart from an operator's pause.
 */
export const maintenanceWindowSignal = defineSignal<[{ open: boolean }]>('maintenanceWindow');

export function emptyCounts(): Record<FleetHostState, number> {
  return Object.fromEntries(HOST_STATES.map((s) => [s, 0])) as Record<FleetHostState, number>;
}

export function countStates(hosts: readonly FleetHostRecord[]): Record<FleetHostState, number> {
  const c = emptyCounts();
  for (const h of hosts) c[h.state] += 1;
  return c;
}

/** A reason cut to the bounded length, on one line. */
export function clip(text: string, max: number = FLEET_LIMITS.reasonChars): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
