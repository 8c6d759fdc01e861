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
 */
import type { ReleaseTicket } from '../release-ticket.js';
import { rolloutTicket, ticketArgs } from './fleet-ticket.js';
import {
  ApplicationFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { onHost } from '../proxies.js';
import { addLateHostsSignal, haltCatchUpSignal, lastRingSignal, type catchUpHosts } from './catch-up.js';
import { workflowTime } from '../clock.js';
import { componentArgs } from './fleet-component.js';
import { clip, maintenanceWindowSignal, resolveLimit, type FleetHostRecord, type FleetResult } from './fleet-types.js';
import { notPickedUp, type fleetRollout } from './fleet.js';
import { checkTimeZone, describeWindow, windowState } from './maintenance-window.js';
import { RolloutEvents } from './ring-events.js';
import type { probeRing } from './ring-probe.js';
import type { SoakResult, soakRing } from './ring-soak.js';
import type { proveWorkers } from './worker-proof.js';
import {
  RingRolloutInputSchema,
  ringProgressQuery,
  type LateHostReport,
  type Pin,
  type Ring,
  type RingProgress,
  type RingReport,
  type RingRolloutInput,
  type RingRolloutResult,
  type RolloutVerdict,
  type ValidRingRolloutInput,
} from './ring-types.js';
import type { rollbackHost } from '../host/rollback.js';
import { childResultOf, failureText, validateInput } from '../run.js';
import {
  SEARCH_ATTRIBUTES,
  WORKFLOW_FLEET,
  WORKFLOW_ROLLBACK,
  compareVersions,
  hostWorkflowId,
  taskQueueForHost,
  type UpgradeResult,
} from '../types.js';

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
  private catchUp?: ChildWorkflowHandle<typeof catchUpHosts>;
  private readonly late: LateHostReport[] = [];

  constructor(readonly input: ValidRingRolloutInput) {
    this.progress = {
      rolloutId: input.rolloutId,
      ...componentArgs(input.component),
      requestedVersion: input.version,
      channel: input.channel,
      phase: 'resolve',
      rings: input.plan.rings.map((r) => ({
        name: r.name,
        state: 'pending',
        hosts: r.hosts.length,
        upgraded: 0,
        failed: 0,
        budget: 0,
        held: [],
        pinned: [],
        current: [],
        late: [],
        fleetIds: [],
        ...(r.window ? { window: r.window } : {}),
      })),
      late: this.late,
      startedAt: workflowTime(),
      historyLength: 0,
    };
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
    if (!verdict) verdict = ranAny || this.late.length ? 'succeeded' : 'nothing-to-do';
    await this.waitCatchUp(verdict !== 'succeeded' && verdict !== 'nothing-to-do');
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
      const acts = onHost(
        resolver,
        seconds,
        {
          startToCloseTimeout: '3m',
          heartbeatTimeout: '10s',
          retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 3 },
        },
        this.input.plan.taskQueue,
      );
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
        ...this.sharedQueue(),
      });
      for (const p of probes) {
        if (p.unreachable) late.push(p.host);
        // The probe reads DefenseClaw's version: it says nothing of a worker's (updateUpgrader answers alreadyCurrent).
        else if (!this.input.component && p.version && compareVersions(p.version, target) >= 0)
          rep.current.push(p.host);
        else toRun.push(p.host);
      }
    }
    this.handOver(ring, rep, late);

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
    const result = await this.runRing(ring, rep, fleetId, toRun);

    const records = result?.hosts ?? [];
    const healthy = records.filter((h) => h.state === 'healthy').map((h) => h.host);
    const failed = records.filter((h) => h.state === 'failed' || h.state === 'rolled-back');
    rep.upgraded = healthy.length;
    rep.failed = failed.length;
    this.handOver(
      ring,
      rep,
      records.filter((h) => h.state === 'unreachable').map((h) => h.host),
    );

    const verdict = result?.verdict;
    if (verdict === 'aborted') return this.halt(ring, rep, 'aborted', `its fleet rollout ${fleetId} was aborted`);
    if (verdict === 'resolve-failed' || !result) {
      return this.halt(
        ring,
        rep,
        'ring-over-budget',
        `its fleet rollout ${fleetId} failed: ${result?.message ?? rep.reason ?? 'no result'}`,
      );
    }
    if (rep.failed > rep.budget || verdict === 'failure-budget-exceeded' || verdict === 'canary-failed') {
      return this.halt(
        ring,
        rep,
        'ring-over-budget',
        `${rep.failed} failure${rep.failed === 1 ? '' : 's'} over a budget of ${rep.budget}: ${describeFailures(failed)}`,
      );
    }

    // Soak, with the gates.
    if (ring.soakSeconds > 0 && healthy.length) {
      rep.state = 'soaking';
      rep.soakEndsAt = workflowTime() + ring.soakSeconds * 1000;
      this.details();
      const soak = await this.soak(ring, fleetId, healthy);
      if (soak && !soak.ok) {
        const list = soak.failures
          .slice(0, 5)
          .map((f) => `${f.host}: ${f.reason}`)
          .join('; ');
        const more = soak.failures.length > 5 ? `; and ${soak.failures.length - 5} more` : '';
        const out = this.halt(ring, rep, 'gate-failed', `the gate failed during the soak: ${list}${more}`);
        // A worker rollout has nothing to roll back from here: each host's launcher owns its way back.
        if (this.input.plan.autoRollbackRing && !this.input.component) await this.rollBack(ring, rep, healthy);
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
        ...this.sharedQueue(),
      });
    }
    if (g.subsystems || g.counters.length || g.operatorCheck) {
      return this.child<typeof soakRing>('soakRing', `${fleetId}.soak`, {
        ring: ring.name,
        hosts,
        soakSeconds: ring.soakSeconds,
        gates: g,
        unreachableSeconds: this.input.plan.unreachableSeconds,
        ...this.sharedQueue(),
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

  /**
   * The ring's fleetRollout child, kept inside the window: when the window closes it is told to
   * start no new host (in-flight hosts finish); when it reopens, to go on.
   */
  private async runRing(
    ring: Ring,
    rep: RingReport,
    fleetId: string,
    hosts: string[],
  ): Promise<FleetResult | undefined> {
    const plan = this.input.plan;
    let child: ChildWorkflowHandle<typeof fleetRollout>;
    try {
      child = await startChild<typeof fleetRollout>(WORKFLOW_FLEET, {
        workflowId: fleetId,
        args: [
          {
            fleetId,
            hosts,
            version: this.progress.version,
            canary: 0,
            batch: { count: resolveLimit(ring.batch, hosts.length, 1) },
            maxFailures: { count: resolveLimit(ring.maxFailures, hosts.length, 0) },
            bakeSeconds: 0,
            healthTimeoutSeconds: plan.healthTimeoutSeconds,
            unreachableSeconds: plan.unreachableSeconds,
            controller: this.resolver,
            requestedBy: this.input.requestedBy ?? this.input.rolloutId,
            jitterMs: plan.jitterMs,
            ...ticketArgs(this.ticket),
            ...this.sharedQueue(),
            ...componentArgs(this.input.component),
          },
        ],
        // A closed ring of an earlier rollout with the same ID (a channel schedule's rollouts are all
        // `rollout-<schedule>`) is no obstacle; one still running is, and the ring says so.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        staticSummary: `Ring ${ring.name} of ${this.input.rolloutId}: ${hosts.length} hosts to ${this.progress.version}`,
      });
    } catch (err) {
      rep.reason = clip(`could not start the ring: ${failureText(err)}`);
      return undefined;
    }
    let result: FleetResult | undefined;
    let done = false;
    const ended = child.result().then(
      (r) => {
        result = r;
      },
      (err: unknown) => {
        result = childResultOf<FleetResult>(err);
        if (!result) rep.reason = clip(failureText(err));
      },
    );
    void ended.finally(() => {
      done = true;
    });
    while (!done && ring.window) {
      const w = windowState(ring.window, workflowTime());
      if (w.open) {
        await condition(() => done, Math.max(1000, (w.closesAt ?? workflowTime() + 86_400_000) - workflowTime()));
        if (done || windowState(ring.window, workflowTime()).open) continue;
        await child.signal(maintenanceWindowSignal, { open: false });
        this.waiting(ring, rep, windowState(ring.window, workflowTime()).opensAt!);
      } else {
        await condition(() => done, Math.max(1000, w.opensAt! - workflowTime()));
        if (done || !windowState(ring.window, workflowTime()).open) continue;
        await child.signal(maintenanceWindowSignal, { open: true });
        rep.state = 'upgrading';
        rep.opensAt = undefined;
        this.details();
      }
    }
    await ended;
    return result;
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

  /** Rolls back the ring's upgraded hosts (each a rollbackHost child on its host's fixed workflow ID). */
  private async rollBack(ring: Ring, rep: RingReport, hosts: string[]): Promise<void> {
    const results = await Promise.all(
      hosts.map(async (host) => {
        try {
          const child = await startChild<typeof rollbackHost>(WORKFLOW_ROLLBACK, {
            workflowId: hostWorkflowId(host),
            args: [
              {
                host,
                healthTimeoutSeconds: this.input.plan.healthTimeoutSeconds,
                requestedBy: this.input.requestedBy ?? this.input.rolloutId,
                hostQueue: this.input.plan.taskQueue ?? taskQueueForHost(host),
              },
            ],
            workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
            parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
            staticSummary: `Roll back ${host}: ring ${ring.name}'s gate failed (${this.input.rolloutId})`,
          });
          const r = await child.result().catch((err: unknown) => childResultOf<UpgradeResult>(err));
          return r?.ok ? undefined : `${host}: ${r?.message ?? 'the rollback failed'}`;
        } catch (err) {
          return `${host}: could not start the rollback: ${failureText(err)}`;
        }
      }),
    );
    const bad = results.filter((r): r is string => r !== undefined);
    rep.state = bad.length ? 'halted' : 'rolled-back';
    rep.reason = clip(
      `${rep.reason ?? ''}; ${bad.length ? `rollback failed on ${bad.length}: ${bad.slice(0, 3).join('; ')}` : `${hosts.length} host${hosts.length === 1 ? '' : 's'} rolled back`}`,
      600,
    );
    this.details();
  }

  // ---------------------------------------------------------------------------------------------
  // Late hosts

  /** Hands late hosts to the catch-up child (started with the first ones). */
  private handOver(ring: Ring, rep: RingReport, hosts: string[]): void {
    if (!hosts.length) return;
    rep.late.push(...hosts);
    const deadline = workflowTime() + this.input.plan.catchUpSeconds * 1000;
    const late = hosts.map((host) => ({ host, ring: ring.name, deadline }));
    for (const l of late) this.late.push({ ...l, state: 'waiting' });
    this.pendingLate.push(...late);
    this.flushLate ??= this.sendLate();
  }

  private pendingLate: Array<{ host: string; ring: string; deadline: number }> = [];
  private flushLate?: Promise<void>;

  /** Starts the catch-up child or signals it, one call at a time, in order. */
  private async sendLate(): Promise<void> {
    while (this.pendingLate.length) {
      const batch = this.pendingLate.splice(0, this.pendingLate.length);
      if (!this.catchUp) {
        this.catchUp = await startChild<typeof catchUpHosts>('catchUpHosts', {
          workflowId: `${this.input.rolloutId}.catch-up`,
          args: [
            {
              rolloutId: this.input.rolloutId,
              version: this.progress.version!,
              healthTimeoutSeconds: this.input.plan.healthTimeoutSeconds,
              hosts: batch,
              requestedBy: this.input.requestedBy ?? this.input.rolloutId,
              ...ticketArgs(this.ticket),
              ...this.sharedQueue(),
              ...componentArgs(this.input.component),
            },
          ],
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `Late hosts of ${this.input.rolloutId}`,
        });
      } else {
        await this.catchUp.signal(addLateHostsSignal, batch);
      }
    }
    this.flushLate = undefined;
  }

  /** After the last ring: lets the catch-up finish (or halts it), then records who caught up. */
  private async waitCatchUp(halted: boolean): Promise<void> {
    while (this.flushLate) await this.flushLate;
    if (!this.catchUp) return;
    this.progress.phase = 'catch-up';
    this.details();
    await this.catchUp.signal(halted ? haltCatchUpSignal : lastRingSignal);
    try {
      const reports = await this.catchUp.result();
      this.late.splice(0, this.late.length, ...reports);
    } catch (err) {
      for (const l of this.late) {
        if (l.state === 'waiting') {
          l.state = 'never-caught-up';
          l.reason = clip(`the catch-up failed: ${failureText(err)}`);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private async finish(verdict: RolloutVerdict): Promise<RingRolloutResult> {
    this.progress.phase = 'finished';
    this.progress.verdict = verdict;
    this.progress.endedAt = workflowTime();
    for (const r of this.progress.rings) {
      if (r.state === 'pending') {
        r.state = 'skipped';
        r.reason =
          verdict === 'resolve-failed'
            ? 'not started: the release was not resolved'
            : 'not started: the rollout halted';
      }
    }
    this.progress.message = this.describe(verdict);
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

  private describe(verdict: RolloutVerdict): string {
    const id = this.input.rolloutId;
    const v = this.progress.version ?? this.input.version ?? 'the latest release';
    const rings = this.progress.rings;
    const passed = rings.filter((r) => r.state === 'passed').length;
    const halted = rings.find((r) => r.state === 'halted' || r.state === 'rolled-back');
    const sum = (k: 'held' | 'pinned' | 'current') => rings.reduce((n, r) => n + r[k].length, 0);
    const notes = [
      sum('held') ? `${sum('held')} held` : '',
      sum('pinned') ? `${sum('pinned')} pinned below ${v}` : '',
      sum('current') ? `${sum('current')} already current` : '',
    ].filter(Boolean);
    const caught = this.late.filter((l) => l.state === 'caught-up').map((l) => l.host);
    const never = this.late.filter((l) => l.state !== 'caught-up').map((l) => l.host);
    const lateText = [
      caught.length ? ` Caught up: ${list(caught)}.` : '',
      never.length ? ` Never caught up: ${list(never)}.` : '',
    ].join('');
    const skippedText = notes.length ? ` Left alone: ${notes.join(', ')}.` : '';
    switch (verdict) {
      case 'succeeded':
        return `rollout ${id}: ${passed}/${rings.length} rings on ${v} and healthy.${skippedText}${lateText}`;
      case 'nothing-to-do':
        return `rollout ${id}: nothing to do for ${v}${this.progress.message ? ` (${this.progress.message})` : ''}.${skippedText}`;
      case 'resolve-failed':
        return `rollout ${id} did not start: ${this.progress.message ?? 'the release could not be resolved'}.`;
      default:
        return `rollout ${id} HALTED at ring ${halted?.name ?? '?'} (${verdict}): ${halted?.reason ?? ''}. ${passed} ring${passed === 1 ? '' : 's'} passed before it.${skippedText}${lateText}`;
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** The plan's one task queue for every host, for each child's input (nothing: each host's own queue). */
  private sharedQueue(): { taskQueue?: string } {
    return this.input.plan.taskQueue ? { taskQueue: this.input.plan.taskQueue } : {};
  }

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
    const r = this.progress.rings;
    const cur = this.progress.current !== undefined ? r[this.progress.current] : undefined;
    setCurrentDetails(
      `rollout ${this.input.rolloutId} → ${this.progress.version ?? this.input.version ?? 'latest'}: ${this.progress.phase}` +
        (cur ? `; ring ${cur.name} ${cur.state}` : '') +
        `; ${r.filter((x) => x.state === 'passed').length}/${r.length} rings passed; ${this.late.length} late`,
    );
  }
}

function list(hosts: string[]): string {
  return hosts.length > 10 ? `${hosts.slice(0, 10).join(', ')} and ${hosts.length - 10} more` : hosts.join(', ');
}

function describeFailures(failed: FleetHostRecord[]): string {
  const shown = failed
    .slice(0, 5)
    .map((h) => `${h.host} ${h.state}${h.reason ? ` (${clip(h.reason, 80)})` : ''}`)
    .join('; ');
  return failed.length > 5 ? `${shown}; and ${failed.length - 5} more` : shown;
}
