/**
 * The vocabulary of a ring rollout (issue 14), shared by the ringRollout workflow, the channel
 * schedule, the notifier and the CLI: the plan (ordered rings of hosts), maintenance windows,
 * pins, promotion gates, the events a webhook receives, and the verdicts.
 *
 * Pure and deterministic (zod and Temporal definitions only). A plan is operator data: host
 * names, numbers, names of gates. It never carries a URL, a path or a command: the webhook URL
 * lives in the controller's configuration, an operator check in each host's own configuration.
 */
import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { FLEET_LIMITS, LimitSchema } from './fleet-types.js';
import {
  HostNameSchema,
  IdSchema,
  LIMITS,
  ROLLOUT_COMPONENTS,
  TaskQueueSchema,
  VersionSchema,
  type RolloutComponent,
} from '../types.js';

/** The workflow type a rollout plan runs as (on FLEET_TASK_QUEUE). */
export const WORKFLOW_RINGS = 'ringRollout';

export const RING_LIMITS = {
  rings: 20,
  /** Hosts in all rings together. */
  hosts: 5000,
  soakSeconds: { min: 0, max: 7 * 86400, default: 0 },
  /** How long after its ring a host that was unreachable may still catch up. */
  catchUpSeconds: { min: 0, max: 30 * 86400, default: 3600 },
  /** Spread of host starts inside a wave (each host waits a deterministic 0..jitter ms). */
  jitterMs: { min: 0, max: 600_000, default: 0 },
  /** Counters watched during a soak. */
  counters: 20,
} as const;

/** Seconds a host's worker has to pick up work before the host counts as late / unreachable. */
export const UnreachableSecondsSchema = z
  .number()
  .int()
  .min(FLEET_LIMITS.unreachableSeconds.min)
  .max(FLEET_LIMITS.unreachableSeconds.max);

export const RingNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'a ring name (a-z, 0-9, _ and -)');

/** Days a window opens on (ISO weekday names, lower case, three letters). */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/**
 * A maintenance window: opens on each listed day at `start` (HH:MM, 24 h) in `timeZone` (an IANA
 * name such as Europe/Paris, or UTC) and stays open `minutes`. A window may run past midnight.
 */
export const MaintenanceWindowSchema = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    start: z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a start time HH:MM'),
    minutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60),
    timeZone: z
      .string()
      .regex(/^(UTC|[A-Za-z_]+(\/[A-Za-z0-9_+-]+){1,2})$/, 'an IANA time zone name')
      .default('UTC'),
  })
  .strict();
export type MaintenanceWindow = z.output<typeof MaintenanceWindowSchema>;

/** A version, or `hold` (never upgrade this host or ring until the pin is removed). */
export const PinSchema = z.union([VersionSchema, z.literal('hold')]);
export type Pin = z.infer<typeof PinSchema>;

/** Names of the /health counters a soak watches; they must not climb during the soak. */
export const CounterNameSchema = z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/, 'a counter name');

export const RingSchema = z
  .object({
    name: RingNameSchema,
    hosts: z.array(HostNameSchema).min(1).max(RING_LIMITS.hosts),
    /** Hosts upgrading at the same time in this ring. */
    batch: LimitSchema.default({ count: 5 }),
    /** Failures this ring tolerates before it halts the rollout. */
    maxFailures: LimitSchema.default({ count: 0 }),
    soakSeconds: z
      .number()
      .int()
      .min(RING_LIMITS.soakSeconds.min)
      .max(RING_LIMITS.soakSeconds.max)
      .default(RING_LIMITS.soakSeconds.default),
    window: MaintenanceWindowSchema.optional(),
    /** Pin the whole ring (hosts keep their version, or stop at this one). */
    pin: PinSchema.optional(),
  })
  .strict();
export type Ring = z.output<typeof RingSchema>;

/** What gates promotion from one ring to the next, besides every host being healthy. */
export const GatesSchema = z
  .object({
    /** /health counters that must not climb during the soak (e.g. connector.errors). */
    counters: z.array(CounterNameSchema).max(RING_LIMITS.counters).default([]),
    /** Every subsystem /health reports must stay in a healthy state during the soak. */
    subsystems: z.boolean().default(true),
    /** Run each host's own operator check (from the host's configuration) during the soak. */
    operatorCheck: z.boolean().default(false),
  })
  .strict();
export type Gates = z.output<typeof GatesSchema>;

export const RolloutPlanSchema = z
  .object({
    rings: z.array(RingSchema).min(1).max(RING_LIMITS.rings),
    /** Per-host pins (they win over a ring's pin). */
    pins: z.record(HostNameSchema, PinSchema).default(() => ({})),
    gates: GatesSchema.default(() => GatesSchema.parse({})),
    /** Roll back a ring whose gate failed during its soak. */
    autoRollbackRing: z.boolean().default(false),
    catchUpSeconds: z
      .number()
      .int()
      .min(RING_LIMITS.catchUpSeconds.min)
      .max(RING_LIMITS.catchUpSeconds.max)
      .default(RING_LIMITS.catchUpSeconds.default),
    jitterMs: z
      .number()
      .int()
      .min(RING_LIMITS.jitterMs.min)
      .max(RING_LIMITS.jitterMs.max)
      .default(RING_LIMITS.jitterMs.default),
    /** A host whose worker does not answer within this is late (it does not hold its ring). */
    unreachableSeconds: UnreachableSecondsSchema.default(FLEET_LIMITS.unreachableSeconds.default),
    /** Seconds each host waits for its gateway's health after the swap. */
    healthTimeoutSeconds: z
      .number()
      .int()
      .min(LIMITS.healthTimeoutSeconds.min)
      .max(LIMITS.healthTimeoutSeconds.max)
      .default(LIMITS.healthTimeoutSeconds.default),
    /**
     * Serve every host from this one task queue instead of each host's own (a pool of workers that
     * can reach every host; also the benchmark's stub workers), as a fleet's `taskQueue`: the
     * resolve, the probes, the rings, the soaks, the catch-up and rollbacks all go there.
     * Default: each host's own queue, defenseclaw-upgrade@<host>.
     */
    taskQueue: TaskQueueSchema.optional(),
  })
  .strict()
  .superRefine((plan, ctx) => {
    const seen = new Map<string, string>();
    const names = new Set<string>();
    let total = 0;
    for (const ring of plan.rings) {
      if (names.has(ring.name)) ctx.addIssue({ code: 'custom', message: `ring ${ring.name} is named twice` });
      names.add(ring.name);
      for (const host of ring.hosts) {
        const other = seen.get(host);
        if (other !== undefined)
          ctx.addIssue({ code: 'custom', message: `host ${host} is in ring ${other} and ring ${ring.name}` });
        seen.set(host, ring.name);
      }
      total += ring.hosts.length;
    }
    if (total > RING_LIMITS.hosts)
      ctx.addIssue({ code: 'custom', message: `at most ${RING_LIMITS.hosts} hosts in one rollout` });
    for (const host of Object.keys(plan.pins))
      if (!seen.has(host)) ctx.addIssue({ code: 'custom', message: `pinned host ${host} is in no ring` });
  });
export type RolloutPlan = z.output<typeof RolloutPlanSchema>;

/** The input of the ringRollout workflow. */
export const RingRolloutInputSchema = z
  .object({
    rolloutId: IdSchema,
    plan: RolloutPlanSchema,
    /** Target version; absent means the latest release, resolved once for the whole rollout. */
    version: VersionSchema.optional(),
    /** Set when a channel schedule started this rollout. */
    channel: z.enum(['stable', 'latest']).optional(),
    /**
     * What moves (issue 18): DefenseClaw (absent) or `worker`, the hosts' own workers, to `version`
     * (required). For `worker` only `hold` pins apply (version pins name DefenseClaw versions).
     */
    component: z.enum(ROLLOUT_COMPONENTS).optional(),
    requestedBy: IdSchema.optional(),
  })
  .strict()
  .refine((i) => i.component !== 'worker' || (i.version !== undefined && !i.channel), {
    message: 'a rollout of the worker needs a version (the upgrader version) and no channel',
    path: ['version'],
  });
export type RingRolloutInput = z.input<typeof RingRolloutInputSchema>;
export type ValidRingRolloutInput = z.output<typeof RingRolloutInputSchema>;

export const RING_STATES = [
  'pending',
  'waiting-for-window',
  'upgrading',
  'soaking',
  'passed',
  'halted',
  'rolled-back',
  'skipped',
] as const;
export type RingState = (typeof RING_STATES)[number];

export const ROLLOUT_VERDICTS = [
  /** Every ring passed (pinned and held hosts are reported, not failures). */
  'succeeded',
  /** A ring went over its failure budget: the rollout stopped there. */
  'ring-over-budget',
  /** A promotion gate (health subsystem, counter, operator check) failed during a soak. */
  'gate-failed',
  /** The release could not be resolved or verified; nothing was touched. */
  'resolve-failed',
  /** Nothing to do: every host is already on the target, newer, or pinned. */
  'nothing-to-do',
  /** An operator aborted it. */
  'aborted',
] as const;
export type RolloutVerdict = (typeof ROLLOUT_VERDICTS)[number];

/**
 * What a webhook receives: one JSON object per event, schema version 1. `eventId` is stable
 * across retries (`<rolloutId>:<kind>:<ring or host>:<n>`), so a receiver can drop duplicates.
 */
export const ROLLOUT_EVENT_KINDS = [
  'ring-started',
  'ring-halted',
  'rollout-finished',
  'rollout-waiting-for-window',
  'host-caught-up',
] as const;
export type RolloutEventKind = (typeof ROLLOUT_EVENT_KINDS)[number];

export interface RolloutEvent {
  schema: 1;
  eventId: string;
  kind: RolloutEventKind;
  rolloutId: string;
  version?: string;
  ring?: string;
  host?: string;
  verdict?: RolloutVerdict;
  /** One line for a human. */
  message: string;
  /** Workflow time, ISO 8601. */
  at: string;
  /** ring-waiting: when the window opens next (ISO 8601). */
  opensAt?: string;
}

export interface RingReport {
  name: string;
  state: RingState;
  hosts: number;
  /** Hosts handed to the ring's fleetRollout, and how they ended (counts by fleet host state). */
  upgraded: number;
  failed: number;
  /** Resolved failure budget of the ring. */
  budget: number;
  held: string[];
  pinned: string[];
  current: string[];
  late: string[];
  /** The fleetRollout child(ren) of this ring. */
  fleetIds: string[];
  window?: MaintenanceWindow;
  /** When the window opens next (epoch ms), while waiting for it. */
  opensAt?: number;
  soakEndsAt?: number;
  startedAt?: number;
  endedAt?: number;
  /** One line: why it halted, or how it ended. */
  reason?: string;
}

export interface LateHostReport {
  host: string;
  ring: string;
  state: 'waiting' | 'caught-up' | 'never-caught-up' | 'failed';
  deadline: number;
  reason?: string;
}

/** What the `ringProgress` query answers. */
export interface RingProgress {
  rolloutId: string;
  /** Present when the rollout moves the hosts' workers (absent: DefenseClaw). */
  component?: RolloutComponent;
  /** The resolved target (absent until resolved). */
  version?: string;
  requestedVersion?: string;
  channel?: 'stable' | 'latest';
  phase: 'resolve' | 'rings' | 'catch-up' | 'finished';
  /** The ring being worked on (index into rings). */
  current?: number;
  rings: RingReport[];
  late: LateHostReport[];
  verdict?: RolloutVerdict;
  message?: string;
  startedAt: number;
  endedAt?: number;
  historyLength: number;
}

/** The result of ringRollout (also what the channel schedule reads). */
export interface RingRolloutResult extends RingProgress {
  rolloutId: string;
  version: string;
  verdict: RolloutVerdict;
  message: string;
  ok: boolean;
}

export const ringProgressQuery = defineQuery<RingProgress>('ringProgress');
