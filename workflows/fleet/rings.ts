/**
 * ringRollout: one release through ordered rings of hosts, like a runbook.
 *
 *   resolve the target once (on the first eligible host's own worker)
 *   → for each ring, in order:
 *       leave out held and pinned hosts, and hosts already on the target or newer (probeRing child)
 *       hosts whose worker does not answer are late: handed to the catch-up (catchUpHosts child)
 *       wait for the ring's maintenance window                       (rollout-waiting-for-window)
 *       run the ring as a fleetRollout child `<rolloutId>.<ring>`    (ring-started)
 *         (canary 0, the ring's batch and budget, the resolved version: every per-host rule of a
 *         fleet applies); when the window closes mid-ring the child is told to start no new host,
 *         in-flight hosts finish, and it goes on when the window reopens
 *       over budget → halt: ring-over-budget                          (ring-halted)
 *       soak `soakSeconds` watching the gates (soakRing child)
 *       gate failed → halt: gate-failed, and with autoRollbackRing roll the ring back  (ring-halted)
 *   → wait for the catch-up of late hosts, then a verdict             (rollout-finished)
 *
 * Pinning: a `hold` pin leaves the host alone; a version pin lets a rollout upgrade the host only
 * to a target at or below the pin (a newer target skips it, reported `pinned`); nothing is ever
 * downgraded. Each ring's work runs in children, so this workflow's history grows by a few dozen
 * events per ring, whatever the number of hosts. `ringProgress` answers where it stands. The
 * result is returned (not thrown) for every verdict; `ok` is true only for `succeeded` and
 * `nothing-to-do`.
 *
 * Its parts: ring-fleet.ts (a ring's fleetRollout child, kept in its window, and its verdict),
 * ring-rollback.ts (a failed gate's rollback), ring-late.ts (the catch-up of late hosts),
 * ring-progress.ts (progress, status line and closing message).
 */
import type { ReleaseTicket } from '../release-ticket.js';
import { rolloutTicket } from './fleet-ticket.js';
import {
  ApplicationFailure,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { KIND, hostQueue, onHost } from '../proxies.js';
import { workflowTime } from '../clock.js';
import { clip, resolveLimit } from './fleet-types.js';
import { notPickedUp } from './fleet-host.js';
import { checkTimeZone, describeWindow, windowState } from './maintenance-window.js';
import { RolloutEvents } from './ring-events.js';
import { fleetHalt, runRingFleet, sharedQueue } from './ring-fleet.js';
import { LateHosts } from './ring-late.js';
import type { probeRing } from './ring-probe.js';
import { describeGateFailures, describeRollout, initialProgress, skipPending, statusLine } from './ring-progress.js';
import { rollBackRing } from './ring-rollback.js';
import type { SoakResult, soakRing } from './ring-soak.js';
import type { proveWorkers } from './worker-proof.js';
import {
  RingRolloutInputSchema,
  ringProgressQuery,
  type Pin,
  type Ring,
  type RingProgress,
  type RingReport,
  type RingRolloutInput,
  type RingRolloutResult,
  type RolloutVerdict,
  type ValidRingRolloutInput,
} from './ring-types.js';
import { failureText, validateInput } from '../run.js';
import { SEARCH_ATTRIBUTES, compareVersions } from '../types.js';

/** Hosts tried in turn to resolve the release when the first ones' workers do not answer. */
const RESOLVERS = 5;

export async function ringRollout(raw: RingRolloutInput): Promise<RingRolloutResult> {
  const input = validateInput(RingRolloutInputSchema, raw);
  for (const ring of input.plan.rings) {
    if (!ring.window) continue;
    try {
      checkTimeZone(ring.window.timeZone);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`ring ${ring.name}: ${(err as Error).message}`, 'InvalidInput');
    }
  }
  return new Rollout(input).run();
}

class Rollout {
  private readonly progress: RingProgress;
  private readonly events: RolloutEvents;
  private resolver?: string;
  /** The rollout's one release lookup (release-ticket.ts). */
  private ticket?: ReleaseTicket;
  private readonly late: LateHosts;

  constructor(readonly input: ValidRingRolloutInput) {
    this.late = new LateHosts(input, () => ({ version: this.progress.version!, ticket: this.ticket }));
    this.progress = initialProgress(input, this.late.reports, workflowTime());
    this.events = new RolloutEvents(input.rolloutId, () => this.progress.version);
    setHandler(ringProgressQuery, () => ({ ...this.progress, historyLength: workflowInfo().historyLength }));
  }

  async run(): Promise<RingRolloutResult> {
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.fleetId]: [this.input.rolloutId] });
    this.details();
    const resolved = await this.resolve();
    if (resolved !== true) return this.finish(resolved);
    this.progress.phase = 'rings';
    let verdict: RolloutVerdict | undefined;
    let ranAny = false;
    for (let i = 0; i < this.input.plan.rings.length && !verdict; i++) {
      this.progress.current = i;
      const outcome = await this.ring(this.input.plan.rings[i]!, this.progress.rings[i]!);
      if (outcome === 'ran') ranAny = true;
      else if (outcome !== 'nothing') verdict = outcome;
    }
    this.progress.current = undefined;
    if (!verdict) verdict = ranAny || this.late.reports.length ? 'succeeded' : 'nothing-to-do';
    await this.late.finish(verdict !== 'succeeded' && verdict !== 'nothing-to-do', () => {
      this.progress.phase = 'catch-up';
      this.details();
    });
    return this.finish(verdict);
  }

  // ---------------------------------------------------------------------------------------------
  // Resolve

  /**
   * Resolves the target once, on the worker of the first host that is not held; when that worker
   * does not answer (a late host), on the next one's, up to RESOLVERS hosts.
   */
  private async resolve(): Promise<true | RolloutVerdict> {
    const candidates = this.input.plan.rings.flatMap((r) => r.hosts.filter((h) => this.pinOf(h, r) !== 'hold'));
    if (!candidates.length) {
      this.progress.message = 'every host is held';
      return 'nothing-to-do';
    }
    if (this.input.component === 'worker') {
      // An upgrader version, named outright: nothing to resolve, no ticket (fleet-component.ts).
      this.progress.version = this.input.version!;
      this.resolver = candidates[0];
      upsertSearchAttributes({ [SEARCH_ATTRIBUTES.toVersion]: [this.progress.version] });
      return true;
    }
    const seconds = this.input.plan.unreachableSeconds;
    const wanted = this.input.version ?? 'the latest release';
    const silent: string[] = [];
    for (const resolver of candidates.slice(0, RESOLVERS)) {
      const acts = onHost(hostQueue(resolver, this.input.plan.taskQueue), KIND.resolve, seconds);
      try {
        // One lookup for the whole rollout: every ring, and every late host, gets this ticket.
        this.ticket = await rolloutTicket(
          acts,
          { version: this.input.version },
          `resolve ${wanted} once for the rollout, on ${resolver}'s worker`,
        );
        const release = this.ticket;
        this.progress.version = release.version;
        this.resolver = resolver;
        upsertSearchAttributes({ [SEARCH_ATTRIBUTES.toVersion]: [release.version] });
        return true;
      } catch (err) {
        if (notPickedUp(err)) {
          silent.push(resolver);
          continue;
        }
        this.progress.message = clip(`could not resolve ${wanted} on ${resolver}'s worker: ${failureText(err)}`);
        return 'resolve-failed';
      }
    }
    this.progress.message = clip(
      `could not resolve ${wanted}: no worker answered within ${seconds} s on ${silent.join(', ')}`,
    );
    return 'resolve-failed';
  }

  // ---------------------------------------------------------------------------------------------
  // One ring

  private async ring(ring: Ring, rep: RingReport): Promise<'ran' | 'nothing' | RolloutVerdict> {
    const target = this.progress.version!;
    rep.startedAt = workflowTime();

    // Who this ring leaves out: held, pinned below the target, already there, late.
    const eligible: string[] = [];
    for (const host of ring.hosts) {
      const pin = this.pinOf(host, ring);
      if (pin === 'hold') rep.held.push(host);
      else if (pin !== undefined && compareVersions(target, pin) > 0) rep.pinned.push(host);
      else eligible.push(host);
    }
    const toRun: string[] = [];
    const late: string[] = [];
    if (eligible.length) {
      const probes = await this.child<typeof probeRing>('probeRing', `${this.input.rolloutId}.${ring.name}.probe`, {
        hosts: eligible,
        unreachableSeconds: this.input.plan.unreachableSeconds,
        ...sharedQueue(this.input),
      });
      for (const p of probes) {
        if (p.unreachable) late.push(p.host);
        // The probe reads DefenseClaw's version: it says nothing of a worker's (updateUpgrader answers alreadyCurrent).
        else if (!this.input.component && p.version && compareVersions(p.version, target) >= 0)
          rep.current.push(p.host);
        else toRun.push(p.host);
      }
    }
    this.late.handOver(ring, rep, late);

    if (!toRun.length) {
      rep.state = 'skipped';
      rep.endedAt = workflowTime();
      rep.reason = late.length ? `no host to upgrade now; ${late.length} late` : 'no host to upgrade';
      this.details();
      return late.length ? 'ran' : 'nothing';
    }

    // The maintenance window, then the ring itself.
    await this.waitForWindow(ring, rep);
    const fleetId = `${this.input.rolloutId}.${ring.name}`;
    rep.fleetIds.push(fleetId);
    rep.budget = resolveLimit(ring.maxFailures, toRun.length, 0);
    rep.state = 'upgrading';
    rep.opensAt = undefined;
    this.details();
    this.events.emit('ring-started', {
      ring: ring.name,
      message: `ring ${ring.name}: upgrading ${toRun.length} host${toRun.length === 1 ? '' : 's'} to ${target} (budget ${rep.budget} failure${rep.budget === 1 ? '' : 's'})`,
    });
    const result = await runRingFleet({
      input: this.input,
      ring,
      rep,
      fleetId,
      hosts: toRun,
      version: this.progress.version,
      ticket: this.ticket,
      resolver: this.resolver,
      waiting: (opensAt) => this.waiting(ring, rep, opensAt),
      report: () => this.details(),
    });

    const records = result?.hosts ?? [];
    const healthy = records.filter((h) => h.state === 'healthy').map((h) => h.host);
    const failed = records.filter((h) => h.state === 'failed' || h.state === 'rolled-back');
    rep.upgraded = healthy.length;
    rep.failed = failed.length;
    this.late.handOver(
      ring,
      rep,
      records.filter((h) => h.state === 'unreachable').map((h) => h.host),
    );

    const halt = fleetHalt(result, rep, fleetId, failed);
    if (halt) return this.halt(ring, rep, halt.verdict, halt.why);

    // Soak, with the gates.
    if (ring.soakSeconds > 0 && healthy.length) {
      rep.state = 'soaking';
      rep.soakEndsAt = workflowTime() + ring.soakSeconds * 1000;
      this.details();
      const soak = await this.soak(ring, fleetId, healthy);
      if (soak && !soak.ok) {
        const out = this.halt(ring, rep, 'gate-failed', describeGateFailures(soak));
        // A worker rollout has nothing to roll back from here: each host's launcher owns its way back.
        if (this.input.plan.autoRollbackRing && !this.input.component)
          await rollBackRing(this.input, ring, rep, healthy, () => this.details());
        return out;
      }
    }
    rep.state = 'passed';
    rep.endedAt = workflowTime();
    rep.reason = `${rep.upgraded} upgraded${rep.failed ? `, ${rep.failed} failed (budget ${rep.budget})` : ''}`;
    this.details();
    return 'ran';
  }

  /**
   * The soak of a ring's upgraded hosts: DefenseClaw's gates (soakRing), or a plain wait without
   * gates; for a worker rollout, the wait and then each host's queue still polled by the version.
   */
  private async soak(ring: Ring, fleetId: string, hosts: string[]): Promise<SoakResult | undefined> {
    const g = this.input.plan.gates;
    if (this.input.component === 'worker') {
      await sleep(ring.soakSeconds * 1000);
      return this.child<typeof proveWorkers>('proveWorkers', `${fleetId}.proof`, {
        hosts,
        version: this.progress.version!,
        ...sharedQueue(this.input),
      });
    }
    if (g.subsystems || g.counters.length || g.operatorCheck) {
      return this.child<typeof soakRing>('soakRing', `${fleetId}.soak`, {
        ring: ring.name,
        hosts,
        soakSeconds: ring.soakSeconds,
        gates: g,
        unreachableSeconds: this.input.plan.unreachableSeconds,
        ...sharedQueue(this.input),
      });
    }
    await sleep(ring.soakSeconds * 1000);
    return undefined;
  }

  /** Waits (timers only) until the ring's window is open; each wait is announced once. */
  private async waitForWindow(ring: Ring, rep: RingReport): Promise<void> {
    for (;;) {
      const w = windowState(ring.window, workflowTime());
      if (w.open) return;
      this.waiting(ring, rep, w.opensAt!);
      await sleep(Math.max(1000, w.opensAt! - workflowTime()));
    }
  }

  private waiting(ring: Ring, rep: RingReport, opensAt: number): void {
    rep.state = 'waiting-for-window';
    rep.opensAt = opensAt;
    this.details();
    this.events.emit('rollout-waiting-for-window', {
      ring: ring.name,
      opensAt,
      message: `ring ${ring.name} waits for its window (${describeWindow(ring.window!)}); it opens at ${new Date(opensAt).toISOString()}`,
    });
  }

  private halt(ring: Ring, rep: RingReport, verdict: RolloutVerdict, why: string): RolloutVerdict {
    rep.state = 'halted';
    rep.endedAt = workflowTime();
    rep.reason = clip(why, 600);
    this.details();
    this.events.emit('ring-halted', {
      ring: ring.name,
      verdict,
      message: `ring ${ring.name} halted the rollout (${verdict}): ${rep.reason}`,
    });
    return verdict;
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private async finish(verdict: RolloutVerdict): Promise<RingRolloutResult> {
    this.progress.phase = 'finished';
    this.progress.verdict = verdict;
    this.progress.endedAt = workflowTime();
    skipPending(this.progress, verdict);
    this.progress.message = describeRollout(this.input, this.progress, this.late.reports, verdict);
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.outcome]: [verdict] });
    this.details();
    this.events.emit('rollout-finished', { verdict, message: this.progress.message });
    await this.events.flush();
    const ok = verdict === 'succeeded' || verdict === 'nothing-to-do';
    return {
      ...this.progress,
      historyLength: workflowInfo().historyLength,
      version: this.progress.version ?? this.input.version ?? 'latest',
      verdict,
      message: this.progress.message,
      ok,
    };
  }

  // ---------------------------------------------------------------------------------------------

  /** A host's pin; a worker rollout honours `hold` only (version pins name DefenseClaw versions). */
  private pinOf(host: string, ring: Ring): Pin | undefined {
    const pin = this.input.plan.pins[host] ?? ring.pin;
    return this.input.component === 'worker' && pin !== 'hold' ? undefined : pin;
  }

  private async child<W extends (arg: never) => Promise<unknown>>(
    type: string,
    workflowId: string,
    arg: Parameters<W>[0],
  ): Promise<Awaited<ReturnType<W>>> {
    const handle = await startChild(type, {
      workflowId,
      args: [arg],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
    return (await handle.result()) as Awaited<ReturnType<W>>;
  }

  private details(): void {
    setCurrentDetails(statusLine(this.input, this.progress, this.late.reports));
  }
}
