/**
 * workflows/proxies.ts: how a workflow reaches activities (the activities themselves live in
 * activities/), and every timeout and retry, set here once, per kind of work (KIND).
 *
 *   onHost(queue, KIND.x, answerSeconds?)  a host's activities on that host's task queue (the
 *                                          one way to reach a host's queue); with answerSeconds,
 *                                          a worker that does not pick an activity up in time fails
 *                                          it with a SCHEDULE_TO_START timeout (notPickedUp in
 *                                          fleet/fleet-host.ts), so a host without a worker is noticed
 *   onController<A>(KIND.x)                the controller's activities, on the workflow's own queue
 *   quick, network, heartbeating,          the host upgrade's steps (upgradeHost, rollbackHost and
 *   compensating, holding                  their hops): onHost on the run's host queue, which the
 *                                          workflow names once, before its first activity, with
 *                                          routeActivitiesTo(input.hostQueue). A run without a host
 *                                          queue in its input (every run recorded before host workers
 *                                          became activity-only) schedules them on its own queue.
 */
import {
  ActivityCancellationType,
  proxyActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
} from '@temporalio/workflow';
import { taskQueueForHost } from './types.js';
import type { Activities } from '../activities/host/index.js';

declare const named: unique symbol;
/** The options of one kind of work below: the only options onHost and onController take. */
export type Kind = Readonly<Omit<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'>> & {
  readonly [named]: true;
};
const kind = (options: Omit<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'>): Kind => options as Kind;

/**
 * Every host activity heartbeats (activities/host/index.ts), so the host upgrade's kinds have a
 * heartbeat timeout of seconds: a killed worker is noticed quickly and the next attempt runs on a live one.
 */
const heartbeatTimeout = '5s';

export const KIND = {
  // The host upgrade's steps.

  /** Quick local steps (a rename, reading a version): short timeout, a few retries. */
  quick: kind({
    startToCloseTimeout: '2m',
    heartbeatTimeout,
    retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 3 },
  }),
  /** Calls to the release API: retried on network errors; refusals (404, rate limit) are not. */
  network: kind({
    startToCloseTimeout: '3m',
    heartbeatTimeout,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 5 },
  }),
  /**
   * Steps that heartbeat while they work (downloads, commands, polling): a killed worker is
   * noticed within seconds and the next attempt resumes from the last heartbeat.
   */
  heartbeating: kind({
    startToCloseTimeout: '30m',
    heartbeatTimeout,
    retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 6 },
  }),
  /** Undo steps: idempotent, so they may be retried more; they must not give up easily. */
  compensating: kind({
    startToCloseTimeout: '10m',
    heartbeatTimeout,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 8 },
  }),
  /**
   * An activity that holds something for the whole run (DefenseClaw's upgrade locks): it heartbeats
   * until the run cancels it, and a retry on the next worker re-takes what the dead one held.
   */
  holding: kind({
    startToCloseTimeout: '24h',
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 20 },
  }),

  // The fleet's calls to a host's worker (each with answerSeconds).

  /** The release resolved once for a whole rollout, on one host's worker (fleetRollout, ringRollout). */
  resolve: kind({
    startToCloseTimeout: '3m',
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 3 },
  }),
  /** Is the host's worker there (checkHost before a fleet starts its child)? */
  probe: kind({
    startToCloseTimeout: '30s',
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', maximumAttempts: 2 },
  }),
  /** A late host's worker back yet (catchUpHosts)? One attempt: the next probe is the retry. */
  lateProbe: kind({ startToCloseTimeout: '30s', retry: { maximumAttempts: 1 } }),
  /** A short read on the host: its installed version (probeRing), what it runs (inventoryBatch). */
  read: kind({
    startToCloseTimeout: '1m',
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', maximumAttempts: 2 },
  }),
  /** A late host that came back: its installed version (catchUpHosts). */
  lateRead: kind({ startToCloseTimeout: '1m', retry: { initialInterval: '1s', maximumAttempts: 2 } }),
  /** A ring's promotion gate read on one host while it soaks (soakRing): the operator check may take minutes; a gateway restarting is retried. */
  gate: kind({
    startToCloseTimeout: '11m',
    heartbeatTimeout: '15s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 3 },
  }),
  /** A canary still healthy at the end of the bake: waitHealthy for up to `timeoutSeconds`. */
  bakeCheck: (timeoutSeconds: number) =>
    kind({
      startToCloseTimeout: `${timeoutSeconds + 60}s`,
      heartbeatTimeout: '15s',
      retry: { initialInterval: '1s', maximumAttempts: 2 },
    }),
  /**
   * The upgrader's own activities (a worker update, issue 18). `updateUpgrader` installs side by
   * side and switches (a download and maybe an `npm install`: minutes), then its worker restarts:
   * an attempt cut short by that restart is retried on the restarted worker, which answers at once
   * (already switched).
   */
  upgrader: kind({
    startToCloseTimeout: '15m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 4 },
  }),

  // The controller's own activities (on the workflow's own queue).

  /** A channel check's reads and writes (checkChannel). */
  channel: kind({
    startToCloseTimeout: '3m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 4 },
  }),
  /** What the controller knows for an inventory (fleetInventory, inventoryBatch). */
  visibility: kind({
    startToCloseTimeout: '5m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 3 },
  }),
  /** A ring rollout's event to the webhook: retried for minutes, then dropped (ring-events.ts). */
  notify: kind({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
  }),
  /** The proof that a queue is polled by a version, waited for up to `timeoutSeconds`. */
  queueProof: (timeoutSeconds: number) =>
    kind({
      startToCloseTimeout: `${timeoutSeconds + 60}s`,
      heartbeatTimeout: '15s',
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
} as const;

/** A host's task queue: its own, or the one every host of a rollout shares (a plan's `taskQueue`). */
export function hostQueue(host: string, shared?: string): string {
  return shared ?? taskQueueForHost(host);
}

/**
 * A host's activities on `queue` (undefined: the workflow's own queue), with the options of `k`;
 * with `answerSeconds`, a worker must pick each one up within that many seconds.
 */
export function onHost(queue: string | undefined, k: Kind, answerSeconds?: number): ActivityInterfaceFor<Activities> {
  return proxyActivities<Activities>({
    ...k,
    ...(queue ? { taskQueue: queue } : {}),
    ...(answerSeconds !== undefined ? { scheduleToStartTimeout: `${Math.max(1, answerSeconds)}s` } : {}),
  });
}

/** The controller's activities `A`, on the workflow's own queue (where the controller's worker polls). */
export function onController<A extends object>(k: Kind): ActivityInterfaceFor<A> {
  return proxyActivities<A>({ ...k });
}

// -------------------------------------------------------------------------------------------------
// The host upgrade's steps, on the run's host queue

/**
 * The host queue of the running workflow. Module state is per workflow execution: the SDK gives
 * each workflow its own module cache (also with reuseV8Context).
 */
let runQueue: string | undefined;

/** Sends every step of this run (quick, network, …) to the host's task queue (undefined: the workflow's own). */
export function routeActivitiesTo(queue: string | undefined): void {
  runQueue = queue;
}

/** onHost(the run's host queue, k), read at each call. */
function thisHost(k: Kind): ActivityInterfaceFor<Activities> {
  let cached: { queue: string | undefined; proxy: ActivityInterfaceFor<Activities> } | undefined;
  return new Proxy({} as ActivityInterfaceFor<Activities>, {
    get(_target, name) {
      if (!cached || cached.queue !== runQueue) cached = { queue: runQueue, proxy: onHost(runQueue, k) };
      return Reflect.get(cached.proxy, name);
    },
  });
}

export const quick = thisHost(KIND.quick);
export const network = thisHost(KIND.network);
export const heartbeating = thisHost(KIND.heartbeating);
export const compensating = thisHost(KIND.compensating);
export const holding = thisHost(KIND.holding);
