/**
 * fleetRollout: one release to many hosts, as one durable parent workflow.
 *
 *   resolve the target once (on the controller's / first canary's own worker)
 *   → canaries (each an upgradeHost child on its host's queue) → bake → re-check their health
 *   → the rest through a sliding window of at most `batch` hosts in flight
 *   → a verdict
 *
 * Every host is probed on its own task queue before its child starts: a host with no worker is
 * reported unreachable after `unreachableSeconds` instead of waiting forever (a child workflow
 * on a queue nobody polls never gets its first task, so nothing else would notice). A host that
 * already runs an upgrade or rollback (its fixed workflow ID is taken) fails as "busy". Failed
 * hosts roll themselves back (the child's own policy); when failures exceed the budget no new
 * host starts, the ones in flight finish. Pause / resume / abort are Updates; `progress` is a
 * query. Each run starts at most `hostsPerRun` children, drains, and continues as new carrying
 * the state, so history stays bounded for thousands of hosts.
 *
 * Issue 14: the release is resolved once into a ticket that every child gets, so hosts make no
 * releases-API calls (fleet-ticket.ts); host starts are spread by a per-host jitter (jitter.ts).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  TimeoutFailure,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../../activities/host/index.js';
import { workflowTime } from '../clock.js';
import { childResultOf, failureText, validateInput } from '../run.js';
import {
  ControlRequestSchema,
  FAILED_STATES,
  FleetInputSchema,
  abortUpdate,
  clip,
  countStates,
  fleetProgressQuery,
  maintenanceWindowSignal,
  pauseUpdate,
  resolveLimit,
  resumeUpdate,
  type ControlEvent,
  type ControlRequest,
  type FleetControlAnswer,
  type FleetHostRecord,
  type FleetHostState,
  type FleetInput,
  type FleetProgress,
  type FleetResult,
  type FleetState,
  type FleetVerdict,
  type ValidFleetInput,
} from './fleet-types.js';
import { rolloutTicket, ticketArgs } from './fleet-ticket.js';
import { waitJitter } from './jitter.js';
import { RELEASE_TICKET, type ReleaseTicket } from '../release-ticket.js';
import type { rollbackHost } from '../host/rollback.js';
import { fleetComponent, type FleetComponent } from './fleet-component.js';
import {
  SEARCH_ATTRIBUTES,
  WORKFLOW_ROLLBACK,
  hostWorkflowId,
  isVersion,
  taskQueueForHost,
  type UpgradeResult,
} from '../types.js';

/** Stop starting children in a run past this many events (Temporal warns at 10k). */
const HISTORY_SOFT_LIMIT = 7000;
/** patched() id: children run on the controller's queue, their activities on each host's (issue 13). */
const CHILDREN_ON_CONTROLLER = 'children-on-controller-queue';

export async function fleetRollout(rawInput: FleetInput): Promise<FleetResult> {
  return new Fleet(validateInput(FleetInputSchema, rawInput)).run();
}

class Fleet {
  readonly state: FleetState;
  readonly total: number;
  readonly batch: number;
  readonly maxFailures: number;
  readonly resolver: string;
  private readonly inFlight = new Map<number, CancellationScope>();
  /** What changes on each host: DefenseClaw, or the host's own worker (fleet-component.ts). */
  private readonly component: FleetComponent;
  /** The release every host gets (issue 14); absent in runs recorded before tickets. */
  private ticket?: ReleaseTicket;
  private startedThisRun = 0;
  private verdict?: FleetVerdict;
  private message?: string;
  private endedAt?: number;

  constructor(readonly input: ValidFleetInput) {
    this.total = input.hosts.length;
    this.batch = resolveLimit(input.batch, this.total, 1);
    this.maxFailures = resolveLimit(input.maxFailures, this.total, 0);
    this.resolver = input.controller ?? input.hosts[0]!;
    this.ticket = input.ticket;
    this.component = fleetComponent({
      input,
      queueOf: (host) => this.queueOf(host),
      placement: (host) => this.childPlacement(host),
      ticket: () => this.ticket,
      notPickedUp,
    });
    this.state = (input.state as FleetState | undefined) ?? {
      phase: 'resolve',
      paused: false,
      aborted: false,
      startedAt: workflowTime(),
      runs: 0,
      controls: [],
      hosts: input.hosts.map((host, i) =>
        i < input.canary ? { host, state: 'waiting', canary: true } : { host, state: 'waiting' },
      ),
    };

    setHandler(fleetProgressQuery, () => this.progress());
    setHandler(pauseUpdate, (req) => this.control('pause', req), {
      validator: (req) => this.checkControl('pause', req),
    });
    setHandler(resumeUpdate, (req) => this.control('resume', req), {
      validator: (req) => this.checkControl('resume', req),
    });
    setHandler(abortUpdate, (req) => this.control('abort', req), {
      validator: (req) => this.checkControl('abort', req),
    });
    setHandler(maintenanceWindowSignal, (w) => {
      this.state.windowClosed = w?.open === false ? true : undefined;
      this.details();
    });
  }

  async run(): Promise<FleetResult> {
    const { fleetId } = this.input;
    upsertSearchAttributes({
      [SEARCH_ATTRIBUTES.fleetId]: [fleetId],
      ...(this.state.version ? { [SEARCH_ATTRIBUTES.toVersion]: [this.state.version] } : {}),
    });
    this.details();

    if (this.state.phase === 'resolve') {
      if (!(await this.resolve())) return this.finish('resolve-failed');
      this.state.phase = this.input.canary > 0 ? 'canary' : 'rollout';
    }

    if (this.state.phase === 'canary' || this.state.phase === 'bake') {
      const canaries = this.indices((r) => r.canary === true);
      if (this.state.phase === 'canary') {
        await this.window(canaries, () => this.state.aborted || this.canaryFailed() !== undefined);
        if (this.state.aborted) return this.finish('aborted');
        const bad = this.canaryFailed();
        if (bad) return this.canaryStop(bad);
        this.state.phase = 'bake';
      }
      if (!(await this.bake(canaries))) {
        if (this.state.aborted) return this.finish('aborted');
        return this.canaryStop(this.canaryFailed()!);
      }
      this.state.phase = 'rollout';
    }

    if (this.state.phase === 'rollout') {
      const rest = this.indices((r) => r.state === 'waiting');
      const drained = await this.window(rest, () => this.state.aborted || this.failures() > this.maxFailures, true);
      if (drained === 'rotate') {
        this.state.runs += 1;
        await condition(allHandlersFinished);
        return continueAsNew<typeof fleetRollout>({ ...this.input, ...ticketArgs(this.ticket), state: this.state });
      }
    }
    if (this.state.aborted) return this.finish('aborted');
    if (this.failures() > this.maxFailures) return this.finish('failure-budget-exceeded');
    return this.finish(this.failures() > 0 ? 'completed-with-failures' : 'succeeded');
  }

  // ---------------------------------------------------------------------------------------------
  // Phases

  /** Resolves the target once, on the resolver host's own worker (the one that trusts a release source). */
  private async resolve(): Promise<boolean> {
    if (this.component.given) {
      // The input names the version outright (a worker rollout): nothing to look up.
      this.state.version = this.component.given;
      upsertSearchAttributes({ [SEARCH_ATTRIBUTES.toVersion]: [this.component.given] });
      return true;
    }
    const queue = this.queueOf(this.resolver);
    const acts = proxyActivities<Activities>({
      taskQueue: queue,
      scheduleToStartTimeout: `${this.input.unreachableSeconds}s`,
      startToCloseTimeout: '3m',
      heartbeatTimeout: '10s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 3 },
    });
    const wanted = this.input.version ?? 'the latest release';
    try {
      let version: string;
      if (patched(RELEASE_TICKET)) {
        const summary = `resolve ${wanted} once for every host, on ${this.resolver}'s worker`;
        this.ticket = await rolloutTicket(acts, this.input, summary);
        version = this.ticket.version;
      } else {
        const summary = `resolve ${wanted} on ${this.resolver}'s worker`;
        version = (await acts.resolveRelease.executeWithOptions({ summary }, [{ version: this.input.version }]))
          .version;
      }
      this.state.version = version;
      upsertSearchAttributes({ [SEARCH_ATTRIBUTES.toVersion]: [version] });
      return true;
    } catch (err) {
      const why = notPickedUp(err)
        ? `no worker picked up work on ${queue} within ${this.input.unreachableSeconds} s`
        : failureText(err);
      this.state.stopReason = clip(`could not resolve ${wanted} on ${this.resolver}'s worker: ${why}`);
      const i = this.input.hosts.indexOf(this.resolver);
      if (i >= 0 && notPickedUp(err)) this.end(this.state.hosts[i]!, 'unreachable', { reason: why });
      return false;
    }
  }

  /** Waits `bakeSeconds` (an abort cuts it short), then proves every canary still healthy. */
  private async bake(canaries: number[]): Promise<boolean> {
    const baking = canaries.filter((i) => this.state.hosts[i]!.state === 'healthy');
    if (this.input.bakeSeconds > 0) {
      if (this.state.bakeStartedAt === undefined) {
        this.state.bakeStartedAt = workflowTime();
        this.state.bakeEndsAt = this.state.bakeStartedAt + this.input.bakeSeconds * 1000;
      }
      for (const i of baking) this.state.hosts[i]!.step = 'bake';
      const left = Math.max(0, this.state.bakeEndsAt! - workflowTime());
      if (left > 0) await condition(() => this.state.aborted, left);
      if (this.state.aborted) {
        for (const i of baking) this.state.hosts[i]!.step = undefined;
        return false;
      }
      await Promise.all(baking.map((i) => this.recheck(i)));
    }
    for (const i of baking) this.state.hosts[i]!.step = undefined;
    return this.canaryFailed() === undefined;
  }

  /** A canary at the end of the bake, re-checked on its own worker; a relapse of DefenseClaw is rolled back. */
  private async recheck(i: number): Promise<void> {
    const rec = this.state.hosts[i]!;
    rec.step = 'bake-check';
    const checked = await this.component.recheck(rec.host, this.state.version!);
    if ('ok' in checked) return;
    if ('unreachable' in checked) return this.end(rec, 'unreachable', { reason: checked.unreachable });
    rec.reason = clip(checked.relapsed);
    if (!checked.rollBack) return this.end(rec, 'failed', { reason: checked.relapsed });
    // It relapsed: put it back on its backup, like any failed host.
    rec.step = 'rollback';
    const reason = rec.reason;
    try {
      const child = await startChild<typeof rollbackHost>(WORKFLOW_ROLLBACK, {
        workflowId: hostWorkflowId(rec.host),
        taskQueue: this.childPlacement(rec.host).taskQueue,
        args: [
          {
            host: rec.host,
            healthTimeoutSeconds: this.input.healthTimeoutSeconds,
            requestedBy: this.input.requestedBy,
            ...this.childPlacement(rec.host).input,
          },
        ],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        staticSummary: `Roll back canary ${rec.host} (fleet ${this.input.fleetId})`,
      });
      const r = await child.result().catch((err: unknown) => resultOf(err));
      if (r?.ok) {
        this.end(rec, 'rolled-back', { after: r.to, outcome: 'rolled-back', reason: `${reason}; rolled back` });
      } else {
        this.end(rec, 'failed', { outcome: r?.outcome, reason: `${reason}; the rollback failed: ${r?.message ?? ''}` });
      }
    } catch (err) {
      this.end(rec, 'failed', { reason: `${reason}; could not start the rollback: ${failureText(err)}` });
    }
  }

  /**
   * Runs hosts through a sliding window of `batch`: a new one starts as soon as one ends, unless
   * paused, or `stop()` says so. With `rotate`, it also stops starting once this run has started
   * enough children (or its history grew long) and answers 'rotate' if hosts are left.
   */
  private async window(indices: number[], stop: () => boolean, rotate = false): Promise<'done' | 'rotate'> {
    const mustRotate = () =>
      rotate &&
      (this.startedThisRun >= this.input.hostsPerRun ||
        workflowInfo().continueAsNewSuggested ||
        workflowInfo().historyLength > HISTORY_SOFT_LIMIT);
    let next = 0;
    while (next < indices.length) {
      await condition(
        () =>
          stop() || mustRotate() || (!this.state.paused && !this.state.windowClosed && this.inFlight.size < this.batch),
      );
      if (stop() || mustRotate()) break;
      const i = indices[next++]!;
      if (this.state.hosts[i]!.state === 'waiting') this.launch(i);
    }
    await condition(() => this.inFlight.size === 0);
    const left = indices.slice(next).some((i) => this.state.hosts[i]!.state === 'waiting');
    return left && !stop() && mustRotate() ? 'rotate' : 'done';
  }

  private launch(i: number): void {
    const scope = new CancellationScope();
    this.inFlight.set(i, scope);
    this.startedThisRun += 1;
    scope
      .run(() => this.upgradeOne(this.state.hosts[i]!))
      .catch((err: unknown) => {
        const rec = this.state.hosts[i]!;
        if (rec.state === 'upgrading') this.end(rec, 'failed', { reason: failureText(err) });
      })
      .finally(() => {
        this.inFlight.delete(i);
        this.details();
      });
  }

  /** One host: probe its worker, then its upgradeHost child on its own queue. */
  private async upgradeOne(rec: FleetHostRecord): Promise<void> {
    const { host } = rec;
    const queue = this.queueOf(host);
    rec.state = 'upgrading';
    rec.step = this.input.jitterMs > 0 ? 'jitter' : 'probe';
    rec.startedAt = workflowTime();
    rec.reason = undefined;
    if (this.input.jitterMs > 0) {
      // A host still waiting out its jitter has not started: an abort or a stop skips it.
      const waited = await waitJitter(host, this.input.jitterMs);
      if (!waited || this.state.aborted)
        return this.end(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
      if (this.failures() > this.maxFailures || this.canaryFailed())
        return this.end(rec, 'skipped', {
          reason: 'not started: the rollout stopped starting hosts during its jitter',
        });
      rec.step = 'probe';
    }

    const probe = proxyActivities<Activities>({
      taskQueue: queue,
      scheduleToStartTimeout: `${this.input.unreachableSeconds}s`,
      startToCloseTimeout: '30s',
      heartbeatTimeout: '10s',
      retry: { initialInterval: '1s', maximumAttempts: 2 },
    });
    try {
      await probe.checkHost.executeWithOptions({ summary: `probe ${host}'s worker` }, [{ host }]);
    } catch (err) {
      if (isCancellation(err))
        return this.end(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
      if (notPickedUp(err)) {
        return this.end(rec, 'unreachable', {
          reason: `no worker picked up work on ${queue} within ${this.input.unreachableSeconds} s`,
        });
      }
      return this.end(rec, 'failed', { reason: `probe: ${failureText(err)}` });
    }

    rec.step = undefined;
    const version = this.state.version!;
    let child;
    try {
      child = await this.component.start(host, version);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        return this.end(rec, 'failed', {
          outcome: 'busy',
          reason: this.component.busy(host),
        });
      }
      if (isCancellation(err))
        return this.end(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
      return this.end(rec, 'failed', { reason: `could not start the upgrade: ${failureText(err)}` });
    }

    let result: UpgradeResult | undefined;
    try {
      result = await child.result();
    } catch (err) {
      result = resultOf(err);
      if (!result) {
        const cancelled = isCancellation(err);
        return this.end(rec, 'failed', {
          outcome: cancelled ? 'cancelled' : undefined,
          reason: cancelled
            ? `cancelled by the abort; the host compensated its own changes (see \`defenseclaw-upgrade status --host ${host}\`)`
            : failureText(err),
        });
      }
    }
    this.applyResult(rec, result);
  }

  private applyResult(rec: FleetHostRecord, r: UpgradeResult): void {
    const from = isVersion(r.from) ? r.from : undefined;
    if (from) rec.before = from;
    const why = r.failure ? `${r.failure.step}: ${r.failure.error}` : r.message;
    if (r.ok) return this.end(rec, 'healthy', { after: r.to, outcome: r.outcome });
    switch (r.outcome) {
      case 'rolled-back':
        return this.end(rec, 'rolled-back', { after: from, outcome: r.outcome, reason: why });
      case 'failed-unchanged':
        return this.end(rec, 'failed', { after: from, outcome: r.outcome, reason: why });
      case 'rollback-failed':
        return this.end(rec, 'failed', {
          outcome: r.outcome,
          reason: `${why}; ROLLBACK FAILED: ${r.compensation?.hostState ?? r.message}`,
        });
      default:
        return this.end(rec, 'failed', { outcome: r.outcome, reason: why });
    }
  }

  private end(
    rec: FleetHostRecord,
    state: FleetHostState,
    o: { after?: string; outcome?: FleetHostRecord['outcome']; reason?: string } = {},
  ): void {
    rec.state = state;
    rec.step = undefined;
    if (o.after !== undefined && isVersion(o.after)) rec.after = o.after;
    if (o.outcome) rec.outcome = o.outcome;
    if (o.reason !== undefined) rec.reason = clip(o.reason);
    rec.startedAt ??= workflowTime();
    rec.endedAt = workflowTime();
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private canaryStop(bad: FleetHostRecord): FleetResult {
    this.state.stopReason = clip(`canary ${bad.host} ${bad.state}${bad.reason ? `: ${bad.reason}` : ''}`);
    return this.finish('canary-failed');
  }

  private finish(verdict: FleetVerdict): FleetResult {
    const reasonForSkip =
      verdict === 'failure-budget-exceeded'
        ? `not started: ${this.failures()} failures exceed the budget of ${this.maxFailures}`
        : verdict === 'aborted'
          ? `not started: the rollout was aborted`
          : verdict === 'canary-failed'
            ? `not started: the canary failed`
            : verdict === 'resolve-failed'
              ? 'not started: the release could not be resolved'
              : 'not started';
    if (verdict === 'failure-budget-exceeded' && !this.state.stopReason) {
      this.state.stopReason = `${this.failures()} failures exceed the budget of ${this.maxFailures}`;
    }
    for (const rec of this.state.hosts) {
      if (rec.state === 'waiting') {
        rec.state = 'skipped';
        rec.reason = reasonForSkip;
      }
    }
    this.state.phase = 'finished';
    this.endedAt = workflowTime();
    this.verdict = verdict;
    this.message = this.describe(verdict);
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.outcome]: [verdict] });
    this.details();
    const result: FleetResult = { ...this.progress(), verdict, message: this.message, ok: verdict === 'succeeded' };
    if (result.ok) return result;
    throw ApplicationFailure.create({
      type: `Fleet:${verdict}`,
      message: this.message,
      nonRetryable: true,
      details: [result],
    });
  }

  private describe(verdict: FleetVerdict): string {
    const c = countStates(this.state.hosts);
    const id = this.input.fleetId;
    const v = this.state.version ?? this.input.version ?? 'the latest release';
    const failed = this.state.hosts.filter((h) => FAILED_STATES.includes(h.state));
    const list = failed
      .slice(0, 5)
      .map((h) => `${h.host} ${h.state}${h.reason ? ` (${clip(h.reason, 80)})` : ''}`)
      .join('; ');
    const more = failed.length > 5 ? `; and ${failed.length - 5} more` : '';
    const failures = failed.length ? ` Failed: ${list}${more}.` : '';
    const skipped = c.skipped ? ` ${c.skipped} host${c.skipped === 1 ? '' : 's'} skipped, left as they were.` : '';
    const on = `${c.healthy}/${this.total} hosts on ${v} and healthy`;
    switch (verdict) {
      case 'succeeded':
        return `fleet ${id}: all ${this.total} hosts on ${v} and healthy.`;
      case 'completed-with-failures':
        return `fleet ${id} completed with ${failed.length} failure${failed.length === 1 ? '' : 's'} (budget ${this.maxFailures}): ${on}.${failures}`;
      case 'failure-budget-exceeded':
        return `fleet ${id} STOPPED: ${failed.length} failures exceed the budget of ${this.maxFailures}; hosts in flight finished; ${on}.${skipped}${failures}`;
      case 'canary-failed':
        return `fleet ${id} STOPPED at the canary: ${this.state.stopReason ?? 'a canary failed'}.${skipped}${failures}`;
      case 'aborted': {
        const who = [...this.state.controls].reverse().find((e) => e.action === 'abort');
        const by = who?.by ? ` by ${who.by}` : '';
        const why = who?.reason ? ` (${who.reason})` : '';
        return `fleet ${id} ABORTED${by}${why}: ${on}.${skipped}${failures}`;
      }
      case 'resolve-failed':
        return `fleet ${id} did not start: ${this.state.stopReason ?? 'the release could not be resolved'}.${skipped}`;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Control and progress

  private checkControl(action: ControlEvent['action'], req: ControlRequest | undefined): void {
    const r = ControlRequestSchema.safeParse(req ?? {});
    if (!r.success) throw new Error(`invalid ${action} request`);
    if (this.state.phase === 'finished') throw new Error('the rollout has finished');
    if (this.state.aborted) throw new Error('the rollout was already aborted');
    if (action === 'pause' && this.state.paused) throw new Error('the rollout is already paused');
    if (action === 'resume' && !this.state.paused) throw new Error('the rollout is not paused');
    if (action !== 'abort' && r.data.cancelInFlight !== undefined) throw new Error('cancelInFlight is for abort only');
  }

  private control(action: ControlEvent['action'], req: ControlRequest | undefined): FleetControlAnswer {
    const r = ControlRequestSchema.parse(req ?? {});
    this.state.controls.push({ action, at: workflowTime(), by: r.by, reason: r.reason });
    if (this.state.controls.length > 20) this.state.controls.splice(0, this.state.controls.length - 20);
    if (action === 'pause') this.state.paused = true;
    if (action === 'resume') this.state.paused = false;
    if (action === 'abort') {
      this.state.aborted = true;
      this.state.paused = false;
      this.state.stopReason = clip(`aborted${r.by ? ` by ${r.by}` : ''}${r.reason ? `: ${r.reason}` : ''}`);
      if (r.cancelInFlight) {
        this.state.cancelInFlight = true;
        for (const scope of this.inFlight.values()) scope.cancel();
      }
    }
    this.details();
    const c = countStates(this.state.hosts);
    return {
      paused: this.state.paused,
      aborted: this.state.aborted,
      phase: this.state.phase,
      inFlight: this.inFlight.size,
      waiting: c.waiting,
    };
  }

  progress(): FleetProgress {
    const info = workflowInfo();
    return {
      fleetId: this.input.fleetId,
      ...(this.input.component === 'worker' ? { component: this.input.component } : {}),
      phase: this.state.phase,
      version: this.state.version,
      requestedVersion: this.input.version,
      paused: this.state.paused,
      aborted: this.state.aborted,
      stopReason: this.state.stopReason,
      verdict: this.verdict,
      message: this.message,
      settings: {
        canary: this.input.canary,
        batch: this.batch,
        maxFailures: this.maxFailures,
        bakeSeconds: this.input.bakeSeconds,
        healthTimeoutSeconds: this.input.healthTimeoutSeconds,
        unreachableSeconds: this.input.unreachableSeconds,
        hostsPerRun: this.input.hostsPerRun,
        resolver: this.resolver,
        taskQueue: this.input.taskQueue,
        jitterMs: this.input.jitterMs,
      },
      counts: countStates(this.state.hosts),
      failures: this.failures(),
      inFlight: this.inFlight.size,
      startedAt: this.state.startedAt,
      endedAt: this.endedAt,
      bakeStartedAt: this.state.bakeStartedAt,
      bakeEndsAt: this.state.bakeEndsAt,
      run: this.state.runs,
      historyLength: info.historyLength,
      controls: this.state.controls,
      hosts: this.state.hosts,
    };
  }

  private details(): void {
    const c = countStates(this.state.hosts);
    const flags = `${this.state.paused ? ' PAUSED' : ''}${this.state.windowClosed ? ' WINDOW CLOSED' : ''}${this.state.aborted ? ' ABORTED' : ''}`;
    setCurrentDetails(
      `fleet ${this.input.fleetId} → ${this.state.version ?? this.input.version ?? 'latest'}: ${this.state.phase}${flags}; ` +
        `${c.healthy} healthy, ${c.upgrading} upgrading, ${c.waiting} waiting, ${this.failures()} failed (budget ${this.maxFailures}), ${c.skipped} skipped`,
    );
  }

  // ---------------------------------------------------------------------------------------------

  private failures(): number {
    let n = 0;
    for (const h of this.state.hosts) if (FAILED_STATES.includes(h.state)) n += 1;
    return n;
  }

  private canaryFailed(): FleetHostRecord | undefined {
    return this.state.hosts.find((h) => h.canary && FAILED_STATES.includes(h.state));
  }

  private indices(pred: (r: FleetHostRecord) => boolean): number[] {
    const out: number[] = [];
    this.state.hosts.forEach((r, i) => {
      if (pred(r)) out.push(i);
    });
    return out;
  }

  private queueOf(host: string): string {
    return this.input.taskQueue ?? taskQueueForHost(host);
  }

  /**
   * Where a host's child run goes. Host workers run activities only (issue 13): the child runs
   * here, on the controller's queue, and sends its activities to the host's queue. A fleet recorded
   * before that started its children on each host's queue, and replays so.
   */
  private childPlacement(host: string): { taskQueue: string; input: { hostQueue?: string } } {
    if (patched(CHILDREN_ON_CONTROLLER)) {
      return { taskQueue: workflowInfo().taskQueue, input: { hostQueue: this.queueOf(host) } };
    }
    return { taskQueue: this.queueOf(host), input: {} };
  }
}

/** True when an activity timed out waiting for a worker to pick it up (nobody polls the queue). */
export function notPickedUp(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}

/** The UpgradeResult a failed child attached to its failure (see HostRun.finish). */
function resultOf(err: unknown): UpgradeResult | undefined {
  return childResultOf<UpgradeResult>(err);
}
