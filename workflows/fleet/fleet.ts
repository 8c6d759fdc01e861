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
 * host starts, the ones in flight finish (fleet-host.ts). Pause / resume / abort are Updates
 * (fleet-control.ts); `progress` is a query (fleet-report.ts). Each run starts at most
 * `hostsPerRun` children, drains, and continues as new carrying the state, so history stays
 * bounded for thousands of hosts.
 *
 * Issue 14: the release is resolved once into a ticket that every child gets, so hosts make no
 * releases-API calls (fleet-ticket.ts); host starts are spread by a per-host jitter (jitter.ts).
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { workflowTime } from '../clock.js';
import { failureText, validateInput } from '../run.js';
import {
  FAILED_STATES,
  FleetInputSchema,
  clip,
  fleetProgressQuery,
  maintenanceWindowSignal,
  resolveLimit,
  type FleetHostRecord,
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
import { fleetComponent, type FleetComponent } from './fleet-component.js';
import { registerControls } from './fleet-control.js';
import { endHost, notPickedUp, recheckCanary, upgradeChild } from './fleet-host.js';
import { describeVerdict, detailsText, failureCount, fleetProgress, skipReason } from './fleet-report.js';
import { SEARCH_ATTRIBUTES } from '../types.js';
import { KIND, hostQueue, onHost } from '../proxies.js';

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
    registerControls(this.state, this.inFlight, () => this.details());
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
    const acts = onHost(queue, KIND.resolve, this.input.unreachableSeconds);
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
      if (i >= 0 && notPickedUp(err)) endHost(this.state.hosts[i]!, 'unreachable', { reason: why });
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
      await Promise.all(
        baking.map((i) =>
          recheckCanary(this.state.hosts[i]!, this.state.version!, this.input, this.component, (host) =>
            this.childPlacement(host),
          ),
        ),
      );
    }
    for (const i of baking) this.state.hosts[i]!.step = undefined;
    return this.canaryFailed() === undefined;
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
        if (rec.state === 'upgrading') endHost(rec, 'failed', { reason: failureText(err) });
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
        return endHost(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
      if (this.failures() > this.maxFailures || this.canaryFailed())
        return endHost(rec, 'skipped', {
          reason: 'not started: the rollout stopped starting hosts during its jitter',
        });
      rec.step = 'probe';
    }

    const probe = onHost(queue, KIND.probe, this.input.unreachableSeconds);
    try {
      await probe.checkHost.executeWithOptions({ summary: `probe ${host}'s worker` }, [{ host }]);
    } catch (err) {
      if (isCancellation(err))
        return endHost(rec, 'skipped', { outcome: 'cancelled', reason: 'aborted before it started' });
      if (notPickedUp(err)) {
        return endHost(rec, 'unreachable', {
          reason: `no worker picked up work on ${queue} within ${this.input.unreachableSeconds} s`,
        });
      }
      return endHost(rec, 'failed', { reason: `probe: ${failureText(err)}` });
    }

    rec.step = undefined;
    await upgradeChild(rec, this.state.version!, this.component);
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private canaryStop(bad: FleetHostRecord): FleetResult {
    this.state.stopReason = clip(`canary ${bad.host} ${bad.state}${bad.reason ? `: ${bad.reason}` : ''}`);
    return this.finish('canary-failed');
  }

  private finish(verdict: FleetVerdict): FleetResult {
    const reasonForSkip = skipReason(verdict, this.failures(), this.maxFailures);
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
    this.message = describeVerdict(this.input, this.state, this.maxFailures, verdict);
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

  // ---------------------------------------------------------------------------------------------
  // Control and progress

  progress(): FleetProgress {
    return fleetProgress(this.input, this.state, this, {
      verdict: this.verdict,
      message: this.message,
      endedAt: this.endedAt,
      inFlight: this.inFlight.size,
      historyLength: workflowInfo().historyLength,
    });
  }

  private details(): void {
    setCurrentDetails(detailsText(this.input, this.state, this.maxFailures));
  }

  // ---------------------------------------------------------------------------------------------

  private failures(): number {
    return failureCount(this.state.hosts);
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
    return hostQueue(host, this.input.taskQueue);
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
