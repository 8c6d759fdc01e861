/**
 * A ring rollout's late hosts (their worker did not answer when their ring ran): handed over as
 * they are found to one catchUpHosts child (`<rolloutId>.catch-up`, started with the first ones,
 * signalled with the next), one call at a time and in order; after the last ring, told to finish
 * (or to halt) and waited for.
 */
import { ParentClosePolicy, startChild, type ChildWorkflowHandle } from '@temporalio/workflow';
import type { ReleaseTicket } from '../release-ticket.js';
import { workflowTime } from '../clock.js';
import { failureText } from '../run.js';
import { addLateHostsSignal, haltCatchUpSignal, lastRingSignal, type catchUpHosts } from './catch-up.js';
import { componentArgs } from './fleet-component.js';
import { ticketArgs } from './fleet-ticket.js';
import { clip } from './fleet-types.js';
import { sharedQueue } from './ring-fleet.js';
import type { LateHostReport, Ring, RingReport, ValidRingRolloutInput } from './ring-types.js';

export class LateHosts {
  /** Every late host and how it fares (the rollout's progress shows this very array). */
  readonly reports: LateHostReport[] = [];
  private catchUp?: ChildWorkflowHandle<typeof catchUpHosts>;
  private pending: Array<{ host: string; ring: string; deadline: number }> = [];
  private flushing?: Promise<void>;

  /** `release`: the resolved version and the rollout's ticket, read when the catch-up starts. */
  constructor(
    private readonly input: ValidRingRolloutInput,
    private readonly release: () => { version: string; ticket?: ReleaseTicket },
  ) {}

  /** Hands late hosts to the catch-up child (started with the first ones). */
  handOver(ring: Ring, rep: RingReport, hosts: string[]): void {
    if (!hosts.length) return;
    rep.late.push(...hosts);
    const deadline = workflowTime() + this.input.plan.catchUpSeconds * 1000;
    const late = hosts.map((host) => ({ host, ring: ring.name, deadline }));
    for (const l of late) this.reports.push({ ...l, state: 'waiting' });
    this.pending.push(...late);
    this.flushing ??= this.send();
  }

  /** Starts the catch-up child or signals it, one call at a time, in order. */
  private async send(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.pending.length);
      if (!this.catchUp) {
        const { version, ticket } = this.release();
        this.catchUp = await startChild<typeof catchUpHosts>('catchUpHosts', {
          workflowId: `${this.input.rolloutId}.catch-up`,
          args: [
            {
              rolloutId: this.input.rolloutId,
              version,
              healthTimeoutSeconds: this.input.plan.healthTimeoutSeconds,
              hosts: batch,
              requestedBy: this.input.requestedBy ?? this.input.rolloutId,
              ...ticketArgs(ticket),
              ...sharedQueue(this.input),
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
    this.flushing = undefined;
  }

  /**
   * After the last ring: lets the catch-up finish (or halts it), then records who caught up.
   * `started` runs first when there is a catch-up to wait for.
   */
  async finish(halted: boolean, started: () => void): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.catchUp) return;
    started();
    await this.catchUp.signal(halted ? haltCatchUpSignal : lastRingSignal);
    try {
      const reports = await this.catchUp.result();
      this.reports.splice(0, this.reports.length, ...reports);
    } catch (err) {
      for (const l of this.reports) {
        if (l.state === 'waiting') {
          l.state = 'never-caught-up';
          l.reason = clip(`the catch-up failed: ${failureText(err)}`);
        }
      }
    }
  }
}
