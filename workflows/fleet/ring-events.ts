/**
 * The events of a ring rollout, sent to the controller's webhook by the notifyRollout activity
 * (on the controller's own queue, where its URL is configured). Sending never holds the rollout:
 * each event is a retried activity that runs beside it; the rollout waits for the last ones only
 * before it returns. An event that still fails after its retries is logged and dropped.
 *
 * `eventId` is `<rolloutId>:<kind>:<host, ring or "rollout">:<n>` (n counts that kind for that
 * ring or host from 1): the same on every retry and on replay, so a receiver keeps the first.
 */
import { log } from '@temporalio/workflow';
import type { NotifyActivities } from '../../activities/controller/notify.js';
import { workflowTime } from '../clock.js';
import { KIND, onController } from '../proxies.js';
import type { RolloutEvent, RolloutEventKind, RolloutVerdict } from './ring-types.js';

export interface EventFields {
  ring?: string;
  host?: string;
  verdict?: RolloutVerdict;
  message: string;
  /** rollout-waiting-for-window: the next opening (epoch ms). */
  opensAt?: number;
}

export class RolloutEvents {
  private readonly pending = new Set<Promise<void>>();
  private readonly counts = new Map<string, number>();
  private readonly acts = onController<NotifyActivities>(KIND.notify);

  constructor(
    private readonly rolloutId: string,
    private readonly version: () => string | undefined,
  ) {}

  /** Queues one event; returns at once. */
  emit(kind: RolloutEventKind, f: EventFields): void {
    const subject = f.host ?? f.ring ?? 'rollout';
    const key = `${kind}:${subject}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    const event: RolloutEvent = {
      schema: 1,
      eventId: `${this.rolloutId}:${kind}:${subject}:${n}`,
      kind,
      rolloutId: this.rolloutId,
      ...(this.version() ? { version: this.version() } : {}),
      ...(f.ring ? { ring: f.ring } : {}),
      ...(f.host ? { host: f.host } : {}),
      ...(f.verdict ? { verdict: f.verdict } : {}),
      message: f.message.slice(0, 2000),
      at: new Date(workflowTime()).toISOString(),
      ...(f.opensAt !== undefined ? { opensAt: new Date(f.opensAt).toISOString() } : {}),
    };
    const p: Promise<void> = this.acts.notifyRollout
      .executeWithOptions({ summary: `notify ${kind} ${subject}` }, [event])
      .then(
        () => undefined,
        (err: unknown) => {
          log.warn('a rollout event was not delivered', { eventId: event.eventId, error: String(err).slice(0, 200) });
        },
      )
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Waits for every event queued so far (delivered or given up). */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }
}
