/**
 * The state of one host run (upgrade or rollback): its steps with workflow-time timings, the
 * `progress` query, the `confirm` Update, search attributes, and how it ends. The workflow
 * files use this so that they read like the runbook.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  TemporalFailure,
  TimeoutFailure,
  condition,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { workflowTime } from './clock.js';
import { confirmUpdate, progressQuery } from './definitions.js';
import type { z } from 'zod';
import {
  InvalidInputError,
  SEARCH_ATTRIBUTES,
  parseWith,
  type ArtifactInfo,
  type ConfirmAnswer,
  type Phase,
  type SignatureStatus,
  type StepRecord,
  type UpgradeOutcome,
  type UpgradePlan,
  type UpgradeProgress,
  type UpgradeResult,
} from './types.js';

/** Outcomes that complete the workflow; every other outcome fails it (visible as Failed in the UI). */
const SUCCESS: UpgradeOutcome[] = ['upgraded', 'restored', 'already-current', 'declined'];

export class HostRun {
  readonly steps: StepRecord[] = [];
  phase: Phase = 'starting';
  from?: string;
  to?: string;
  plan?: UpgradePlan;
  backupId?: string;
  artifacts: ArtifactInfo[] = [];
  signature?: SignatureStatus;
  migrationsRun?: number;
  /** Things the run went on despite (a migration under policy warn, openclaw not restarted). */
  warnings: string[] = [];
  outcome?: UpgradeOutcome;
  message?: string;
  private answer?: ConfirmAnswer;

  constructor(
    readonly kind: 'upgrade' | 'rollback',
    readonly host: string,
    fleetId?: string,
  ) {
    setHandler(progressQuery, () => this.progress());
    setHandler(
      confirmUpdate,
      (answer) => {
        this.answer = answer;
        return { accepted: answer.approve };
      },
      {
        validator: (answer) => {
          if (this.phase !== 'awaiting-confirmation' || this.answer)
            throw new Error('this run is not waiting for a confirmation');
          if (typeof answer?.approve !== 'boolean') throw new Error('approve must be true or false');
        },
      },
    );
    upsertSearchAttributes({
      [SEARCH_ATTRIBUTES.host]: [host],
      ...(fleetId ? { [SEARCH_ATTRIBUTES.fleetId]: [fleetId] } : {}),
    });
  }

  progress(): UpgradeProgress {
    return {
      kind: this.kind,
      host: this.host,
      phase: this.phase,
      from: this.from,
      to: this.to,
      steps: this.steps,
      plan: this.plan,
      backupId: this.backupId,
      outcome: this.outcome,
      message: this.message,
    };
  }

  setVersions(from: string, to: string): void {
    this.from = from;
    this.to = to;
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.fromVersion]: [from], [SEARCH_ATTRIBUTES.toVersion]: [to] });
  }

  /** Runs one named step: records it (with its UI summary) and its timing, success or failure. */
  async step<T>(name: string, summary: string, fn: (summary: { summary: string }) => Promise<T>): Promise<T> {
    const rec: StepRecord = { name, status: 'running', startedAt: workflowTime(), detail: summary };
    this.steps.push(rec);
    setCurrentDetails(`${this.kind} ${this.host}: ${summary}`);
    try {
      const r = await fn({ summary });
      rec.status = 'done';
      return r;
    } catch (err) {
      rec.status = 'failed';
      rec.detail = `${summary}: ${failureText(err)}`;
      throw err;
    } finally {
      rec.endedAt = workflowTime();
    }
  }

  /**
   * The signature step says plainly what was not verified, with a skipped mark instead of a plain
   * success: no signature at all, or no cosign to check the Sigstore chain and transparency log.
   */
  noteSignature(status: SignatureStatus): void {
    const rec = this.steps[this.steps.length - 1];
    if (!rec || rec.name !== 'verify' || status === 'verified') return;
    rec.status = 'skipped';
    rec.detail =
      status === 'unsigned'
        ? 'signature: SKIPPED, the release publishes no checksums.txt signature'
        : status === 'checked-locally'
          ? 'signature: cosign SKIPPED (not installed); certificate identity and signature checked locally, Sigstore chain and transparency log NOT verified'
          : 'signature: SKIPPED, cosign is not installed';
  }

  /** Rewrites what the step just run says (from its result, or why it was skipped), and marks it skipped when asked. */
  amendLastStep(detail: (was: string) => string, skipped = false): void {
    const rec = this.steps[this.steps.length - 1];
    if (!rec) return;
    rec.detail = detail(rec.detail ?? '');
    if (skipped) rec.status = 'skipped';
  }

  skip(name: string, why: string): void {
    const t = workflowTime();
    this.steps.push({ name, status: 'skipped', startedAt: t, endedAt: t, detail: why });
  }

  /** Shows the plan and waits for an operator's answer (Update `confirm`); false when declined or timed out. */
  async confirm(plan: UpgradePlan, timeoutSeconds: number): Promise<boolean> {
    this.plan = plan;
    this.phase = 'awaiting-confirmation';
    const rec: StepRecord = {
      name: 'confirm',
      status: 'running',
      startedAt: workflowTime(),
      detail: 'waiting for confirmation',
    };
    this.steps.push(rec);
    const answered = await condition(() => this.answer !== undefined, `${timeoutSeconds}s`);
    rec.endedAt = workflowTime();
    const ok = answered && this.answer!.approve;
    rec.status = ok ? 'done' : 'skipped';
    rec.detail = !answered
      ? `no answer within ${timeoutSeconds} s`
      : ok
        ? `approved${by(this.answer)}`
        : `declined${by(this.answer)}`;
    this.phase = 'upgrading';
    return ok;
  }

  /** The run's current details (the UI's): its outcome, once it has one (steps after it, e.g. a lock's release, say theirs). */
  showOutcome(): void {
    if (this.outcome) setCurrentDetails(`${this.kind} ${this.host}: ${this.outcome}`);
  }

  /** The run's result; also recorded as the Outcome search attribute. */
  result(outcome: UpgradeOutcome, message: string, extra: Partial<UpgradeResult> = {}): UpgradeResult {
    this.outcome = outcome;
    this.message = message;
    this.phase = 'finished';
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.outcome]: [outcome] });
    this.showOutcome();
    return {
      kind: this.kind,
      host: this.host,
      outcome,
      ok: SUCCESS.includes(outcome),
      from: this.from,
      to: this.to,
      backupId: this.backupId,
      artifacts: this.artifacts,
      signature: this.signature,
      steps: this.steps,
      migrationsRun: this.migrationsRun,
      message,
      ...extra,
    };
  }

  /**
   * Ends the run: success outcomes complete the workflow with the result; any other fails it
   * with the result attached (the client and a fleet parent read it from the failure details).
   */
  finish(result: UpgradeResult): UpgradeResult {
    // The audit line of the worker's JSON log (workflowId and runId come with the workflow logger).
    log.info(`${this.kind} ${this.host} finished: ${result.outcome}`, {
      host: this.host,
      from: result.from,
      to: result.to,
      outcome: result.outcome,
      backupId: result.backupId,
      artifacts: result.artifacts.map((a) => `${a.name} sha256:${a.sha256}`),
      failedStep: result.failure?.step,
    });
    if (result.ok) return result;
    throw ApplicationFailure.create({
      type: result.outcome,
      message: result.message,
      nonRetryable: true,
      details: [result],
    });
  }
}

function by(a?: ConfirmAnswer): string {
  return a?.by ? ` by ${a.by}` : '';
}

/** The message of a failure, from the innermost cause an activity reported. */
export function failureText(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  if (e instanceof CancelledFailure) return 'cancelled';
  if (e instanceof TimeoutFailure) return `timed out (${e.timeoutType})`;
  if (e instanceof TemporalFailure || e instanceof Error) return e.message;
  return String(e);
}

/** The failure type an activity refused with (e.g. HealthTimeout), if any. */
export function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

/** A workflow's input through its schema; a refusal fails the run at once (never a retried task). */
export function validateInput<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  try {
    return parseWith(schema, raw, 'input');
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
}

/** The result a failed child workflow attached to its failure (its first detail), if any. */
export function childResultOf<T>(err: unknown): T | undefined {
  if (!(err instanceof ChildWorkflowFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.details?.[0]) return cause.details[0] as T;
  return undefined;
}

export { isCancellation };
