/**
 * updateWorkerHost: moves one host's worker (the upgrader itself) to another version, as a fleet's
 * host child when its `component` is `worker` (issue 18). It runs on the controller's queue:
 *
 *   switch  updateUpgrader on the host's queue: the host installs the version side by side from its
 *           own configured source, switches `current`, writes switch.json and restarts its worker
 *           through its launcher
 *   prove   awaitQueueVersion on the controller: the host's queue polled, after the switch, by a
 *           worker whose identity reports the version (within PROOF_SECONDS, past the launcher's
 *           own deadline of 120 s)
 *   outcome when not proven: upgraderSwitchOutcome on the host's queue, answered by whatever worker
 *           runs there now: the launcher reverted it (rolled-back, with the launcher's reason), or
 *           not (failed)
 *
 * The way back never depends on this workflow: the launcher on the host reverts a version that does
 * not prove itself. This run only reports it. Its result has the shape of UpgradeResult, so a fleet
 * counts it like any host run. Its workflow ID (workerUpdateWorkflowId) is apart from the host's
 * DefenseClaw runs, so an upgrade in flight on the host is not refused, and its activities are
 * retried on the restarted worker.
 */
import { ApplicationFailure, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import { z } from 'zod';
import type { AwaitQueueVersionInput, QueueVersionProof } from '../../activities/controller/queue-version.js';
import { KIND, hostQueue, onController, onHost } from '../proxies.js';
import { workflowTime } from '../clock.js';
import { FLEET_LIMITS, clip } from './fleet-types.js';
import { failureText, validateInput } from '../run.js';
import {
  HostNameSchema,
  IdSchema,
  SEARCH_ATTRIBUTES,
  TaskQueueSchema,
  VersionSchema,
  isVersion,
  type StepRecord,
  type UpgradeOutcome,
  type UpgradeResult,
} from '../types.js';

/** How long the new version has to poll the host's queue: past the launcher's 120 s deadline. */
export const PROOF_SECONDS = 150;
/** A switch the launcher has not decided yet (switch.json still there) is asked about again, this often. */
const OUTCOME_ASKS = 6;
const OUTCOME_WAIT_MS = 10_000;

export const WorkerUpdateInputSchema = z
  .object({
    host: HostNameSchema,
    /** The upgrader version the host's worker moves to. */
    version: VersionSchema,
    /** The host's queue (default defenseclaw-upgrade@<host>, or the fleet's shared one). */
    hostQueue: TaskQueueSchema.optional(),
    /** Seconds the host's worker has to pick up each of its activities. */
    answerSeconds: z
      .number()
      .int()
      .min(FLEET_LIMITS.unreachableSeconds.min)
      .max(FLEET_LIMITS.unreachableSeconds.max)
      .default(FLEET_LIMITS.unreachableSeconds.default),
    /** Seconds the new version has to poll the queue (default PROOF_SECONDS). */
    proofSeconds: z.number().int().min(5).max(3600).default(PROOF_SECONDS),
    fleetId: IdSchema.optional(),
    requestedBy: IdSchema.optional(),
  })
  .strict();
export type WorkerUpdateInput = z.input<typeof WorkerUpdateInputSchema>;

/**
 * The controller's proof that `queue` is polled by a worker of `version` (activities/controller/queue-version.ts),
 * by a poller seen after `since`; `previous` ends it early when a new worker of that version polls.
 */
export function proveQueue(
  queue: string,
  version: string,
  timeoutSeconds: number,
  o: { since?: number; previous?: string } = {},
): Promise<QueueVersionProof> {
  const controller = onController<{ awaitQueueVersion(i: AwaitQueueVersionInput): Promise<QueueVersionProof> }>(
    KIND.queueProof(timeoutSeconds),
  );
  return controller.awaitQueueVersion.executeWithOptions({ summary: `is ${queue} polled by ${version}?` }, [
    { taskQueue: queue, version, timeoutSeconds, ...o },
  ]);
}

export async function updateWorkerHost(raw: WorkerUpdateInput): Promise<UpgradeResult> {
  const input = validateInput(WorkerUpdateInputSchema, raw);
  const { host, version } = input;
  const queue = hostQueue(host, input.hostQueue);
  upsertSearchAttributes({
    [SEARCH_ATTRIBUTES.host]: [host],
    [SEARCH_ATTRIBUTES.toVersion]: [version],
    ...(input.fleetId ? { [SEARCH_ATTRIBUTES.fleetId]: [input.fleetId] } : {}),
  });
  const steps: StepRecord[] = [];
  const step = async <T>(name: string, detail: string, fn: () => Promise<T>): Promise<T> => {
    const rec: StepRecord = { name, status: 'running', startedAt: workflowTime(), detail };
    steps.push(rec);
    try {
      const r = await fn();
      rec.status = 'done';
      return r;
    } catch (err) {
      rec.status = 'failed';
      rec.detail = clip(`${detail}: ${failureText(err)}`);
      throw err;
    } finally {
      rec.endedAt = workflowTime();
    }
  };
  const end = (outcome: UpgradeOutcome, ok: boolean, message: string, from?: string, to?: string, fail?: string) => {
    const result: UpgradeResult = {
      kind: 'upgrade',
      host,
      outcome,
      ok,
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
      artifacts: [],
      steps,
      message: clip(message, 600),
      // The switch is what failed (not proven, reverted, or not made); the steps say how it was found out.
      ...(fail ? { failure: { step: 'switch', error: clip(fail) } } : {}),
    };
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.outcome]: [outcome] });
    if (ok) return result;
    throw ApplicationFailure.create({
      type: `WorkerUpdate:${outcome}`,
      message: result.message,
      nonRetryable: true,
      details: [result],
    });
  };

  const upgrader = onHost(queue, KIND.upgrader, input.answerSeconds);
  let switched;
  try {
    switched = await step('switch', `install and switch ${host}'s worker to ${version}`, () =>
      upgrader.updateUpgrader.executeWithOptions({ summary: `${host}: switch the worker to ${version}` }, [
        { version },
      ]),
    );
  } catch (err) {
    const why = failureText(err);
    return end(
      'failed-unchanged',
      false,
      `${host}'s worker was not switched to ${version}: ${why}`,
      undefined,
      undefined,
      why,
    );
  }
  const { from } = switched;
  if (switched.alreadyCurrent)
    return end('already-current', true, `${host}'s worker already runs ${version}.`, from, version);
  const since = workflowTime();

  let proofError: string;
  try {
    const proof = await step('prove', `${queue} polled by a worker of ${version}`, () =>
      proveQueue(queue, version, input.proofSeconds, { since, ...(isVersion(from) ? { previous: from } : {}) }),
    );
    return end(
      'upgraded',
      true,
      `${host}'s worker moved from ${from} to ${version} (${proof.identity}).`,
      from,
      version,
    );
  } catch (err) {
    proofError = failureText(err);
  }

  // Not proven: ask whatever worker runs on the host now what its launcher did (once it decided).
  let outcome;
  try {
    for (let asked = 1; ; asked++) {
      outcome = await step('outcome', `what ${host}'s launcher did with ${version}`, () =>
        upgrader.upgraderSwitchOutcome.executeWithOptions({ summary: `${host}: outcome of the switch to ${version}` }, [
          { version },
        ]),
      );
      if (!outcome.pending || asked >= OUTCOME_ASKS) break;
      await sleep(OUTCOME_WAIT_MS);
    }
  } catch (err) {
    const why = `${proofError}; the host did not say what became of the switch: ${failureText(err)}`;
    return end('failed', false, `${host}'s worker did not prove ${version}: ${why}`, from, undefined, why);
  }
  if (outcome.reverted && outcome.current !== version) {
    const why = `${version} did not poll; the launcher reverted ${host} to ${outcome.reverted.to}: ${outcome.reverted.reason}`;
    return end(
      'rolled-back',
      false,
      `${host}'s worker is back on ${outcome.current}: ${why}`,
      from,
      outcome.current,
      why,
    );
  }
  const why = `${proofError}; the host's launcher reports ${outcome.current} current and no revert${outcome.pending ? ' (the switch is still pending)' : ''}`;
  return end('failed', false, `${host}'s worker did not prove ${version}: ${why}`, from, outcome.current, why);
}
