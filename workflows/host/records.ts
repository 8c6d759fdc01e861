/**
 * DefenseClaw's own upgrade records, kept by the run (issue 20), behind patched('defenseclaw-records'):
 *
 *   pre-flight   refuse (nothing changed) on a recovery journal, a live native lock, a full receipt queue
 *   before the backup   take DefenseClaw's upgrade.lock and advisory flock; hold them until the run ends
 *   after the backup    a `pending` receipt (targets from 0.8.4), the id from the workflow's uuid4
 *   after migrations    its migration status and count
 *   end of the hop      its terminal status and failure code (receiptEnding); on a 0.8.5+ gateway,
 *                       wait (bounded) for the gateway to record it and delete it
 *   end of the run      any receipt still pending made terminal; the locks released
 *
 * Every write is a recorded activity whose content the workflow decided: a resumed run writes the
 * same bytes again (a no-op), never a second receipt.
 */
import { CancellationScope, uuid4 } from '@temporalio/workflow';
import { NOT_REGISTERED, notRegistered } from './older-worker.js';
import type { Receipt } from '../../activities/host/upgrade-receipt.js';
import { compensating, holding, quick } from '../proxies.js';
import { workflowTime } from '../clock.js';
import { failureText, type HostRun } from '../run.js';
import { compareVersions, type UpgradeOutcome, type UpgradeResult } from '../types.js';

/** patched() id of this feature. */
export const DEFENSECLAW_RECORDS = 'defenseclaw-records';
/** Receipts exist from 0.8.4 (cli/defenseclaw/upgrade_receipt.py); a 0.8.5+ gateway consumes them. */
const RECEIPTS_FROM = '0.8.4';
const CONSUMER_FROM = '0.8.5';
/** `defenseclaw-gateway upgrade-wait-ready` exists from 0.8.7 (internal/cli/daemon.go). */
export const HANDSHAKE_FROM = '0.8.7';
/** How long a run waits for a 0.8.5+ gateway to acknowledge (delete) a terminal receipt. */
const ACK_SECONDS = 15;

export interface RecordedReceipt {
  receiptId: string;
  from: string;
  to: string;
  status: Receipt['status'];
  failureCode: Receipt['failure_code'];
  /** The gateway recorded it in its audit store and deleted it (undefined: not waited for). */
  acknowledged?: boolean;
}

export interface RecordsState {
  lockToken?: string;
  hold?: { scope: CancellationScope; done: Promise<unknown> };
  pending?: Receipt;
  recorded: RecordedReceipt[];
}

export const receiptsFor = (to: string) => compareVersions(to, RECEIPTS_FROM) >= 0;

/** The status and failure code DefenseClaw records for how one hop of ours ended (README table). */
export function receiptEnding(
  outcome: UpgradeOutcome | undefined,
  failure: { step: string; error: string } | undefined,
  degraded: boolean,
): Pick<Receipt, 'status' | 'failure_code'> {
  if (outcome === 'upgraded' || outcome === undefined) {
    if (!failure) return { status: degraded ? 'partial' : 'succeeded', failure_code: '' };
  }
  // A prepared migration (issue 21) that failed before the stop is a migration failure too.
  const prepared = failure?.step === 'stage' && /\(prepared before the stop/.test(failure.error);
  const step = prepared ? 'migrate' : (failure?.step ?? 'unknown');
  const error = prepared ? failure.error.replace(/^prepare migrations [^:]*: /, '') : failure?.error;
  const code: Receipt['failure_code'] =
    step === 'stop' || step === 'install'
      ? 'install_failed'
      : step === 'migrate'
        ? /^required /.test(error ?? '')
          ? 'required_migration_failed'
          : 'migration_failed'
        : step === 'start'
          ? 'startup_failed'
          : step === 'health'
            ? 'health_check_failed'
            : 'interrupted';
  return { status: outcome === 'rolled-back' ? 'rolled_back' : 'failed', failure_code: code };
}

/** Python's `datetime.now(utc).isoformat()` with Z: microseconds. */
const isoMicros = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Pre-flight: refuses on DefenseClaw's journals, a live claim, a full queue. Answers false (and
 * says so) when this host's worker predates these records: the run then goes on without them.
 */
export async function checkRecords(run: HostRun, records: RecordsState, to: string): Promise<boolean> {
  try {
    await run.step('preflight', "check DefenseClaw's upgrade lock, recovery journals and receipt queue", (o) =>
      quick.checkNativeRecords.executeWithOptions(
        { ...o, retry: { maximumAttempts: 3, nonRetryableErrorTypes: [NOT_REGISTERED] } },
        [{ ...(records.lockToken ? { heldToken: records.lockToken } : {}), receipts: receiptsFor(to) }],
      ),
    );
    return true;
  } catch (err) {
    if (!notRegistered(err)) throw err;
    run.amendLastStep(
      () => "DefenseClaw's locks, journals and receipts: SKIPPED, this host's worker predates them",
      true,
    );
    run.warnings.push("this host's worker predates DefenseClaw's upgrade records: no lock taken, no receipt written");
    return false;
  }
}

/** Takes DefenseClaw's locks (once per run) and holds them in a heartbeating activity until release. */
export async function takeLock(run: HostRun, records: RecordsState): Promise<void> {
  if (records.lockToken) return;
  const { token } = await run.step('lock', "take DefenseClaw's upgrade.lock and advisory flock", (o) =>
    quick.acquireNativeLock.executeWithOptions(o, [{}]),
  );
  records.lockToken = token;
  // Not cancelled with the workflow (the compensation still runs under the lock): only release() ends it.
  await CancellationScope.nonCancellable(async () => {
    const scope = new CancellationScope();
    const done = scope.run(() =>
      holding.holdNativeLock.executeWithOptions({ summary: "hold DefenseClaw's upgrade locks" }, [{ token }]),
    );
    done.catch(() => undefined);
    records.hold = { scope, done };
  });
}

/** Releases the locks (every ending: the caller's finally). */
export async function releaseLock(run: HostRun, records: RecordsState): Promise<void> {
  const token = records.lockToken;
  if (!token) return;
  await CancellationScope.nonCancellable(async () => {
    const released = await run
      .step('lock', "release DefenseClaw's upgrade locks", (o) =>
        compensating.releaseNativeLock.executeWithOptions(o, [{ token }]),
      )
      .then(
        () => true,
        () => false,
      );
    // The hold ends on its own once the claim is gone; cancelled only if the release failed.
    if (!released) records.hold?.scope.cancel();
    await records.hold?.done.catch(() => undefined);
  });
  records.lockToken = undefined;
  records.hold = undefined;
}

/** The pending receipt, after the backup and before the stop (targets from 0.8.4). */
export async function beginReceipt(
  run: HostRun,
  records: RecordsState,
  hop: { from: string; to: string },
  artifactsVerified: boolean,
): Promise<void> {
  if (!receiptsFor(hop.to)) return;
  const receipt: Receipt = {
    schema_version: 1,
    receipt_id: uuid4(),
    created_at: isoMicros(workflowTime()),
    completed_at: null,
    from_version: hop.from,
    target_version: hop.to,
    status: 'pending',
    migration_status: 'pending',
    migration_count: null,
    artifacts_verified: artifactsVerified,
    failure_code: '',
  };
  await run.step('receipt', `DefenseClaw receipt ${receipt.receipt_id}: pending ${hop.from} → ${hop.to}`, (o) =>
    quick.writeUpgradeReceipt.executeWithOptions(o, [{ receipt }]),
  );
  records.pending = receipt;
}

/** The migration status and count on the pending receipt. */
export async function receiptMigrations(run: HostRun, records: RecordsState, count: number, degraded: boolean) {
  const r = records.pending;
  if (!r) return;
  const receipt: Receipt = { ...r, migration_status: degraded ? 'degraded' : 'completed', migration_count: count };
  await run.step(
    'receipt',
    `DefenseClaw receipt ${r.receipt_id}: migrations ${receipt.migration_status} (${count})`,
    (o) => quick.writeUpgradeReceipt.executeWithOptions(o, [{ receipt }]),
  );
  records.pending = receipt;
}

/**
 * Makes the pending receipt terminal for how the hop ended; when a 0.8.5+ gateway now runs, waits
 * (bounded) for it to record the receipt in its audit store and delete it.
 */
export async function endReceipt(
  run: HostRun,
  records: RecordsState,
  ended: { outcome?: UpgradeOutcome; failure?: UpgradeResult['failure']; degraded: boolean; running?: string },
): Promise<void> {
  const r = records.pending;
  if (!r) return;
  records.pending = undefined;
  const end = receiptEnding(ended.outcome, ended.failure, ended.degraded);
  const receipt: Receipt = {
    ...r,
    ...end,
    completed_at: isoMicros(Math.max(workflowTime(), Date.parse(r.created_at))),
  };
  const rec: RecordedReceipt = {
    receiptId: r.receipt_id,
    from: r.from_version,
    to: r.target_version,
    status: end.status,
    failureCode: end.failure_code,
  };
  await CancellationScope.nonCancellable(async () => {
    const what = `${end.status}${end.failure_code ? `/${end.failure_code}` : ''}`;
    try {
      await run.step('receipt', `DefenseClaw receipt ${r.receipt_id}: ${what}`, (o) =>
        compensating.writeUpgradeReceipt.executeWithOptions(o, [{ receipt }]),
      );
    } catch (err) {
      run.warnings.push(`the DefenseClaw receipt ${r.receipt_id} could not be completed: ${failureText(err)}`);
      return;
    }
    records.recorded.push(rec);
    const consumer = ended.running && compareVersions(ended.running, CONSUMER_FROM) >= 0;
    if (!consumer || (end.status === 'failed' && receipt.artifacts_verified)) return; // kept by design (recovery authority)
    const ack = await run
      .step(
        'receipt',
        `wait for DefenseClaw ${ended.running} to record receipt ${r.receipt_id} in its audit store`,
        (o) =>
          quick.awaitReceiptAcknowledged.executeWithOptions(o, [
            { receiptId: r.receipt_id, timeoutSeconds: ACK_SECONDS },
          ]),
      )
      .catch(() => ({ acknowledged: false }));
    rec.acknowledged = ack.acknowledged;
  });
}

/** The run's end: a receipt still pending made terminal from how the run ended, then the locks released. */
export async function closeRecords(run: HostRun, records: RecordsState): Promise<void> {
  if (records.pending) {
    const failure = run.steps.filter((s) => s.status === 'failed').pop();
    await endReceipt(run, records, {
      outcome: run.outcome,
      failure: { step: failure?.name ?? 'unknown', error: failure?.detail ?? '' },
      degraded: false,
    });
  }
  await releaseLock(run, records);
  run.showOutcome();
}
