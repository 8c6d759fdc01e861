/**
 * Watching a host run: polls the workflow's `progress` query, shows download progress from the
 * pending activity's heartbeat, asks for the confirmation when the workflow waits for it, and
 * turns the workflow's end (completed or failed with a result) into an UpgradeResult.
 * Ctrl-C only stops watching: the run goes on in Temporal.
 */
import { confirm } from '@inquirer/prompts';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, defaultPayloadConverter, TerminatedFailure } from '@temporalio/common';
import logUpdate from 'log-update';
import { confirmUpdate, progressQuery } from '../workflows/definitions.js';
import type { UpgradeProgress, UpgradeResult } from '../workflows/types.js';
import { renderPlan, renderProgress, stepLine, type DownloadState } from './render/steps.js';
import { color } from './render/format.js';

export interface WatchOptions {
  /** Draw the live view (a TTY and not --json). */
  live: boolean;
  /** Ask the operator when the run waits for confirmation. */
  answerConfirmation: boolean;
  /** Who confirms, for the audit trail. */
  by?: string;
  /** Printed when the operator presses Ctrl-C. */
  detachHint: string;
  /**
   * Called about every second with the time the run last answered (client/supervise.ts): notices
   * a worker that is gone, restarts the local one; throwing ends the watch with that error.
   */
  supervise?: (answeredAt: number, final?: boolean) => Promise<void>;
}

const POLL_MS = 300;
const QUERY_DEADLINE_MS = 5000;

export async function watchRun(handle: WorkflowHandle, opts: WatchOptions): Promise<UpgradeResult> {
  let settled: { result?: UpgradeResult; error?: unknown } | undefined;
  // Supervised, the server may go away with the agent and come back: keep waiting for the end.
  let outages = 0;
  const outcome = (): Promise<unknown> =>
    resultOf(handle).then(
      (result) => (settled ??= { result }),
      async (error: unknown) => {
        if (opts.supervise && !settled && (error as Error)?.name !== 'WorkflowNotFoundError' && outages++ < 600) {
          await sleep(1000);
          return outcome();
        }
        return (settled ??= { error });
      },
    );
  const done = outcome();
  let answeredAt = 0;
  const supervising = opts.supervise
    ? (async () => {
        while (!settled) {
          try {
            await opts.supervise!(answeredAt);
          } catch (error) {
            settled ??= { error };
            return;
          }
          await Promise.race([done, sleep(1000)]);
        }
      })()
    : undefined;
  const onSigint = () => {
    if (opts.live) logUpdate.done();
    process.stderr.write(`\n${opts.detachHint}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  let asked = false;
  let last: UpgradeProgress | undefined;
  try {
    while (!settled) {
      const p = await progress(handle);
      if (p) {
        last = p;
        answeredAt = Date.now();
      }
      if (p?.phase === 'awaiting-confirmation' && p.plan && opts.answerConfirmation && !asked) {
        asked = true;
        if (opts.live) {
          logUpdate(renderProgress(p, Date.now()));
          logUpdate.done();
        }
        process.stdout.write(`${renderPlan(p.plan)}\n`);
        const approve = await confirm({ message: `Upgrade ${p.host} to ${p.to}?`, default: false });
        await handle.executeUpdate(confirmUpdate, { args: [{ approve, by: opts.by }] }).catch((err) => {
          process.stderr.write(`could not send the answer: ${(err as Error).message}\n`);
        });
        continue;
      }
      if (opts.live && p) logUpdate(renderProgress(p, Date.now(), await downloadState(handle, p)));
      await Promise.race([done, sleep(POLL_MS)]);
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  await supervising;
  // The run may end right after a restart, before the next check: let the supervisor say so.
  if (!settled.error) await opts.supervise?.(Date.now(), true).catch(() => undefined);
  const final = settled.error ? last : ((await progress(handle)) ?? last);
  if (opts.live) {
    if (final) logUpdate(renderProgress(final, Date.now()));
    logUpdate.done();
  }
  if (settled.error) throw settled.error;
  return settled.result!;
}

/** The run's result: from its completion, or from the details of its failure. */
export async function resultOf(handle: WorkflowHandle): Promise<UpgradeResult> {
  try {
    return (await handle.result()) as UpgradeResult;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause;
      if (cause instanceof ApplicationFailure && cause.details?.[0]) return cause.details[0] as UpgradeResult;
      const p = await handle.query(progressQuery).catch(() => undefined);
      const outcome =
        cause instanceof CancelledFailure
          ? 'cancelled'
          : cause instanceof TerminatedFailure
            ? 'failed-unchanged'
            : 'failed-unchanged';
      return {
        kind: p?.kind ?? 'upgrade',
        host: p?.host ?? '?',
        outcome: p?.outcome ?? outcome,
        ok: false,
        from: p?.from,
        to: p?.to,
        backupId: p?.backupId,
        artifacts: p?.plan?.artifacts ?? [],
        steps: p?.steps ?? [],
        message: p?.message ?? cause?.message ?? err.message,
      };
    }
    throw err;
  }
}

async function downloadState(handle: WorkflowHandle, p: UpgradeProgress): Promise<DownloadState | undefined> {
  if (!p.steps.some((s) => s.name === 'download' && s.status === 'running')) return undefined;
  const d = await handle.describe().catch(() => undefined);
  const pending = d?.raw.pendingActivities?.find((a) => a.activityType?.name === 'downloadArtifact');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload as never) as DownloadState;
  } catch {
    return undefined;
  }
}

/** The steps of a finished run, one line each (for pipes, logs and after the live view). */
export function stepsSummary(r: UpgradeResult): string {
  const end = Math.max(0, ...r.steps.map((s) => s.endedAt ?? 0));
  return r.steps.map((s) => stepLine(s, end)).join('\n');
}

export function outcomeLine(r: UpgradeResult): string {
  const paint = r.ok
    ? color.green
    : r.outcome === 'rolled-back' || r.outcome === 'restarted'
      ? color.yellow
      : color.red;
  return `${paint(r.outcome.toUpperCase())} ${r.message}`;
}

/** The run's progress, or undefined when it does not answer within a few seconds (no worker). */
function progress(handle: WorkflowHandle): Promise<UpgradeProgress | undefined> {
  return handle.client
    .withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(progressQuery))
    .catch(() => undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
