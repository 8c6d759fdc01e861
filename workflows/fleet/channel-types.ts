/**
 * A release channel on a schedule (issue 14, item 4): the input of the checkChannel workflow that
 * a Temporal Schedule starts, the channel state it keeps (the newest version rolled out, the skip
 * list), and the pure rules that decide what one check does.
 *
 * Where the state lives: in the schedule itself, as the `state` of the checkChannel input its
 * action carries. The schedule lives until it is deleted (no retention limit, unlike workflow
 * histories), every check starts with the state it saw in its own history, a check records a
 * finished rollout through an activity (whose input, in the check's history, says what and why),
 * and an operator's `clear-skip` keeps the entry with who cleared it and when. Memos of schedules
 * cannot be updated by this SDK, and a search attribute would need one more registered key
 * everywhere; the action's input needs neither.
 *
 * Pure and deterministic (zod only).
 */
import { z } from 'zod';
import { RingNameSchema, RolloutPlanSchema, type RolloutVerdict } from './ring-types.js';
import { IdSchema, VersionSchema, compareVersions } from '../types.js';

export const CHANNELS = ['stable', 'latest'] as const;
export type Channel = (typeof CHANNELS)[number];

/** The workflow a channel schedule starts. */
export const WORKFLOW_CHECK_CHANNEL = 'checkChannel';
/** Verdicts that put a version on the skip list until an operator clears it. */
export const SKIP_VERDICTS = ['ring-over-budget', 'gate-failed'] as const satisfies readonly RolloutVerdict[];
export type SkipVerdict = (typeof SKIP_VERDICTS)[number];

export const CHANNEL_LIMITS = {
  /** Schedule IDs are short: `rollout-<id>` and `check-<id>` must stay valid workflow IDs. */
  scheduleIdChars: 100,
  /** Skip entries kept (cleared ones included, oldest dropped first). */
  skipEntries: 50,
  /** Rollout run IDs remembered as recorded. */
  recordedRuns: 20,
  reasonChars: 300,
  /** Shortest and longest interval between two checks. */
  everySeconds: { min: 60, max: 30 * 86400 },
} as const;

export const ScheduleIdSchema = IdSchema.refine((s) => s.length <= CHANNEL_LIMITS.scheduleIdChars, {
  message: `at most ${CHANNEL_LIMITS.scheduleIdChars} characters`,
});

/** The one ring rollout a schedule may have at a time: a fixed workflow ID. */
export function rolloutIdFor(scheduleId: string): string {
  return `rollout-${scheduleId}`;
}

/** The workflow ID prefix of the schedule's checks (Temporal appends the start time). */
export function checkIdFor(scheduleId: string): string {
  return `check-${scheduleId}`;
}

const RunIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'a run ID');
const IsoTimeSchema = z.string().regex(/^\d{4}-\d{2}-\d{2}T[0-9:.]+Z$/, 'an ISO 8601 UTC time');
const Reason = z.string().max(CHANNEL_LIMITS.reasonChars + 8);

export const SkipEntrySchema = z
  .object({
    version: VersionSchema,
    verdict: z.enum(SKIP_VERDICTS),
    /** The ring that halted, when the rollout named it. */
    ring: RingNameSchema.optional(),
    reason: Reason,
    /** The ringRollout run that failed. */
    runId: RunIdSchema,
    /** When that rollout ended (or was recorded), workflow time. */
    at: IsoTimeSchema,
    /** Set by `fleet schedule clear-skip`: the version may be rolled out again. */
    clearedBy: IdSchema.optional(),
    clearedAt: IsoTimeSchema.optional(),
    clearReason: Reason.optional(),
  })
  .strict();
export type SkipEntry = z.output<typeof SkipEntrySchema>;

export const ChannelStateSchema = z
  .object({
    /** The newest version a rollout of this schedule brought to the fleet (verdict succeeded or nothing-to-do). */
    lastRolledOut: VersionSchema.optional(),
    skipped: z.array(SkipEntrySchema).max(CHANNEL_LIMITS.skipEntries).default([]),
    /** Rollout runs already recorded (newest last), so that a run is recorded once. */
    recorded: z.array(RunIdSchema).max(CHANNEL_LIMITS.recordedRuns).default([]),
  })
  .strict();
export type ChannelState = z.output<typeof ChannelStateSchema>;

export const EMPTY_CHANNEL_STATE: ChannelState = { skipped: [], recorded: [] };

export const CheckChannelInputSchema = z
  .object({
    scheduleId: ScheduleIdSchema,
    channel: z.enum(CHANNELS),
    plan: RolloutPlanSchema,
    state: ChannelStateSchema.default(() => ({ skipped: [], recorded: [] })),
  })
  .strict();
export type CheckChannelInput = z.input<typeof CheckChannelInputSchema>;
export type ValidCheckChannelInput = z.output<typeof CheckChannelInputSchema>;

/** The last ringRollout of a schedule, as the controller read it from Temporal. */
export interface PreviousRollout {
  runId: string;
  status: 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out';
  version?: string;
  verdict?: string;
  message?: string;
  /** The ring that halted (verdict ring-over-budget or gate-failed). */
  ring?: string;
  /** ISO time the run closed. */
  endedAt?: string;
}

export const CHECK_OUTCOMES = ['started', 'skipped', 'up-to-date', 'already-running'] as const;
export type CheckOutcome = (typeof CHECK_OUTCOMES)[number];

export interface CheckChannelResult {
  outcome: CheckOutcome;
  /** One line for a human: "started 0.8.5", "0.8.5 is skipped (…)", "nothing newer than 0.8.4", … */
  message: string;
  channel: Channel;
  /** The channel's version, when it was resolved. */
  version?: string;
  rolloutId: string;
  /** What this check recorded about the previous rollout, if anything. */
  recorded?: string;
}

// -------------------------------------------------------------------------------------------------
// Rules (pure)

const clip = (s: string) => (s.length > CHANNEL_LIMITS.reasonChars ? `${s.slice(0, CHANNEL_LIMITS.reasonChars)}…` : s);

/** The skip entry that still holds `version` back (not cleared), if any. */
export function activeSkip(state: ChannelState, version: string): SkipEntry | undefined {
  return state.skipped.find((e) => e.version === version && !e.clearedAt);
}

/**
 * The state after a finished rollout: a success raises `lastRolledOut`, a ring over budget or a
 * failed gate puts its version on the skip list. Idempotent: a run already recorded changes
 * nothing. A running rollout is not recorded.
 */
export function recordRollout(
  state: ChannelState,
  prev: PreviousRollout,
  nowIso: string,
): { state: ChannelState; recorded?: string } {
  if (prev.status === 'running' || state.recorded.includes(prev.runId)) return { state };
  const recorded = [...state.recorded, prev.runId].slice(-CHANNEL_LIMITS.recordedRuns);
  const version = prev.version && VersionSchema.safeParse(prev.version).success ? prev.version : undefined;
  const next: ChannelState = { ...state, recorded };
  let note = `rollout ${prev.runId} ended ${prev.verdict ?? prev.status}`;
  if (version && (prev.verdict === 'succeeded' || prev.verdict === 'nothing-to-do')) {
    if (!state.lastRolledOut || compareVersions(version, state.lastRolledOut) > 0) next.lastRolledOut = version;
    note = `${version} rolled out (${prev.verdict})`;
  } else if (version && (SKIP_VERDICTS as readonly string[]).includes(prev.verdict ?? '')) {
    const ring = prev.ring && RingNameSchema.safeParse(prev.ring).success ? prev.ring : undefined;
    const entry: SkipEntry = {
      version,
      verdict: prev.verdict as SkipVerdict,
      ...(ring ? { ring } : {}),
      reason: clip(prev.message ?? prev.verdict ?? 'failed'),
      runId: prev.runId,
      at: prev.endedAt && IsoTimeSchema.safeParse(prev.endedAt).success ? prev.endedAt : nowIso,
    };
    if (!activeSkip(state, version)) next.skipped = [...state.skipped, entry].slice(-CHANNEL_LIMITS.skipEntries);
    note = `${version} is now skipped: ${describeSkip(entry)}`;
  }
  return { state: next, recorded: note };
}

/** An operator clears a version from the skip list; the entry stays, marked cleared (audit trail). */
export function clearSkip(
  state: ChannelState,
  version: string,
  by: string,
  nowIso: string,
  reason?: string,
): { state: ChannelState; cleared: boolean } {
  if (!activeSkip(state, version)) return { state, cleared: false };
  return {
    state: {
      ...state,
      skipped: state.skipped.map((e) =>
        e.version === version && !e.clearedAt
          ? { ...e, clearedBy: by, clearedAt: nowIso, ...(reason ? { clearReason: clip(reason) } : {}) }
          : e,
      ),
    },
    cleared: true,
  };
}

/** "failed ring canary on 2026-05-01: 2 failures exceed the budget of 0" */
export function describeSkip(e: SkipEntry): string {
  const what = e.verdict === 'gate-failed' ? 'failed the promotion gate' : 'went over its failure budget';
  const where = e.ring ? `ring ${e.ring} ${what}` : `a ring ${what}`;
  return `${where} on ${e.at.slice(0, 10)}: ${e.reason}`;
}

/** What a check does once it knows the channel's version and that no rollout runs. */
export function decideCheck(
  state: ChannelState,
  version: string,
): { outcome: 'start' } | { outcome: 'skipped' | 'up-to-date'; message: string } {
  const skip = activeSkip(state, version);
  if (skip) {
    return {
      outcome: 'skipped',
      message: `${version} is skipped (${describeSkip(skip)}); clear it with \`fleet schedule clear-skip\``,
    };
  }
  if (state.lastRolledOut && compareVersions(version, state.lastRolledOut) <= 0) {
    return { outcome: 'up-to-date', message: `nothing newer than ${state.lastRolledOut}` };
  }
  return { outcome: 'start' };
}
