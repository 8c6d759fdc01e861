/**
 * A channel schedule's memory, on the controller: the last ring rollout of the schedule (read from
 * Temporal through the worker's client), and the channel state kept in the schedule's own action
 * (the `state` of the checkChannel input, see workflows/fleet/channel-types.ts), read and written with
 * the schedule's conflict token so that a check recording a failed ring and an operator clearing
 * a skip never overwrite each other.
 *
 * The read and write functions take a Client: the CLI's `clear-skip` uses them too.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import {
  CheckChannelInputSchema,
  ChannelStateSchema,
  ScheduleIdSchema,
  WORKFLOW_CHECK_CHANNEL,
  recordRollout,
  rolloutIdFor,
  type ChannelState,
  type PreviousRollout,
  type ValidCheckChannelInput,
} from '../../workflows/fleet/channel-types.js';
import { SEARCH_ATTRIBUTES } from '../../workflows/types.js';
import { FailureType, refuse, sleep, validated } from '../support.js';

/** A schedule that is not (or no longer) a channel schedule. */
export class NotAChannelSchedule extends Error {
  override readonly name = 'NotAChannelSchedule';
}

/** The check input a channel schedule carries (plan, channel, state), with its raw form for re-encoding. */
export async function readChannelSchedule(
  client: Client,
  scheduleId: string,
): Promise<{ input: ValidCheckChannelInput; raw: Awaited<ReturnType<Client['workflowService']['describeSchedule']>> }> {
  const raw = await client.workflowService.describeSchedule({ namespace: client.options.namespace, scheduleId });
  const start = raw.schedule?.action?.startWorkflow;
  const payload = start?.input?.payloads?.[0];
  if (!start || start.workflowType?.name !== WORKFLOW_CHECK_CHANNEL || !payload)
    throw new NotAChannelSchedule(`schedule ${scheduleId} does not check a release channel`);
  const decoded = client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
  const r = CheckChannelInputSchema.safeParse(decoded);
  if (!r.success)
    throw new NotAChannelSchedule(`schedule ${scheduleId} carries a channel check input this version cannot read`);
  return { input: r.data, raw };
}

/**
 * Applies `change` to the schedule's channel state: describe, change, update with the conflict
 * token, then read back until the change is there (a concurrent writer makes the update lose, and
 * it is redone on the fresh state). `change` must be idempotent. Answers the state written.
 */
export async function updateChannelState(
  client: Client,
  scheduleId: string,
  change: (state: ChannelState) => ChannelState,
): Promise<ChannelState> {
  const converter = client.options.loadedDataConverter.payloadConverter;
  for (let attempt = 0; attempt < 10; attempt++) {
    const { input, raw } = await readChannelSchedule(client, scheduleId);
    const next = ChannelStateSchema.parse(change(input.state));
    if (isDeepStrictEqual(next, input.state)) return next;
    const start = raw.schedule!.action!.startWorkflow!;
    start.input = { payloads: [converter.toPayload({ ...input, state: next })] };
    try {
      await client.workflowService.updateSchedule({
        namespace: client.options.namespace,
        scheduleId,
        schedule: raw.schedule,
        conflictToken: raw.conflictToken,
        identity: client.options.identity,
        requestId: randomUUID(),
      });
    } catch (err) {
      // A conflict (another writer came first): read again and redo.
      if (attempt === 9) throw err;
      continue;
    }
    for (let i = 0; i < 30; i++) {
      const now = await readChannelSchedule(client, scheduleId);
      if (isDeepStrictEqual(now.input.state, next)) return next;
      if (!isDeepStrictEqual(now.input.state, input.state)) break; // someone else's change landed
      await sleep(100);
    }
  }
  throw new Error(`could not update the channel state of schedule ${scheduleId} (too many concurrent changes)`);
}

// -------------------------------------------------------------------------------------------------
// The last rollout

const RolloutResultSchema = z
  .object({
    version: z.string().max(64).optional(),
    verdict: z.string().max(64).optional(),
    message: z.string().max(2000).optional(),
    rings: z
      .array(z.object({ name: z.string().max(64).optional(), state: z.string().max(32).optional() }).loose())
      .max(100)
      .optional(),
  })
  .loose();

const HALTED_RING_STATES = ['halted', 'rolled-back'];

/** The schedule's last ring rollout (fixed ID `rollout-<scheduleId>`), or null when it never ran. */
export async function readPreviousRollout(client: Client, scheduleId: string): Promise<PreviousRollout | null> {
  const handle = client.workflow.getHandle(rolloutIdFor(scheduleId));
  let d;
  try {
    d = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
  const toVersion = d.searchAttributes?.[SEARCH_ATTRIBUTES.toVersion]?.[0];
  const base: PreviousRollout = {
    runId: d.runId,
    status: 'running',
    ...(typeof toVersion === 'string' ? { version: toVersion } : {}),
  };
  const status = d.status.name;
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') return base;
  base.endedAt = d.closeTime?.toISOString();
  if (status !== 'COMPLETED' && status !== 'FAILED') {
    base.status = status === 'CANCELLED' ? 'cancelled' : status === 'TERMINATED' ? 'terminated' : 'timed-out';
    return base;
  }
  let result: unknown;
  try {
    result = await handle.result();
    base.status = 'completed';
  } catch (err) {
    base.status = 'failed';
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    result = cause instanceof ApplicationFailure ? cause.details?.[0] : undefined;
    if (result === undefined) base.message = (cause ?? (err as Error)).message?.slice(0, 300);
  }
  const r = RolloutResultSchema.safeParse(result);
  if (r.success) {
    if (r.data.version) base.version = r.data.version;
    if (r.data.verdict) base.verdict = r.data.verdict;
    if (r.data.message) base.message = r.data.message.slice(0, 300);
    const halted = r.data.rings?.find((x) => HALTED_RING_STATES.includes(x.state ?? ''));
    if (halted?.name) base.ring = halted.name;
  }
  return base;
}

// -------------------------------------------------------------------------------------------------
// Activities (the controller's worker client)

const ScheduleInput = z.object({ scheduleId: ScheduleIdSchema }).strict();
export type ScheduleInput = z.input<typeof ScheduleInput>;

function workerClient(): Client {
  return Context.current().client;
}

/** Activity: the last ring rollout of the schedule. */
export async function previousRollout(rawInput: unknown): Promise<PreviousRollout | null> {
  const { scheduleId } = validated(ScheduleInput, rawInput, 'previousRollout');
  return readPreviousRollout(workerClient(), scheduleId);
}

const SyncInput = z
  .object({
    scheduleId: ScheduleIdSchema,
    /** The last rollout, to record if it ended and was not recorded yet. */
    previous: z
      .object({
        runId: z.string().max(64),
        status: z.enum(['running', 'completed', 'failed', 'cancelled', 'terminated', 'timed-out']),
        version: z.string().max(64).optional(),
        verdict: z.string().max(64).optional(),
        message: z.string().max(2000).optional(),
        ring: z.string().max(64).optional(),
        endedAt: z.string().max(40).optional(),
      })
      .strict()
      .nullable(),
    /** Workflow time, ISO, for the skip entry. */
    now: z.string().max(40),
  })
  .strict();
export type SyncInput = z.input<typeof SyncInput>;

/**
 * Activity: the schedule's channel state now, after recording the last rollout (once) when it
 * ended: a success raises lastRolledOut, a ring over budget or a failed gate adds a skip entry.
 */
export async function syncChannelState(rawInput: unknown): Promise<{ state: ChannelState; recorded?: string }> {
  const { scheduleId, previous, now } = validated(SyncInput, rawInput, 'syncChannelState');
  const client = workerClient();
  let recorded: string | undefined;
  try {
    const state = await updateChannelState(client, scheduleId, (s) => {
      if (!previous) return s;
      const r = recordRollout(s, previous, now);
      recorded = r.recorded;
      return r.state;
    });
    return { state, ...(recorded ? { recorded } : {}) };
  } catch (err) {
    if (err instanceof NotAChannelSchedule) throw refuse(FailureType.NotFound, err.message);
    throw err;
  }
}
