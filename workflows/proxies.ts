/**
 * workflows/proxies.ts: the activity proxies (proxyActivities) workflows call, grouped by how they
 * behave when things go wrong (the activities themselves live in activities/).
 *
 * Timeouts and retries are set here, per kind of work, once.
 *
 * Where they run: a workflow that runs on the controller's (or the local agent's) task queue
 * routes every activity to its host's own queue with routeActivitiesTo(hostQueue), once, before
 * its first activity. A run without a host queue in its input (every run recorded before host
 * workers became activity-only) schedules them on the workflow's own queue, as it always did.
 */
import {
  ActivityCancellationType,
  proxyActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
} from '@temporalio/workflow';
import { taskQueueForHost } from './types.js';
import type { Activities } from '../activities/host/index.js';

/**
 * The host queue of the running workflow. Module state is per workflow execution: the SDK gives
 * each workflow its own module cache (also with reuseV8Context).
 */
let hostQueue: string | undefined;

/** Sends every activity of this workflow to the host's task queue (undefined: the workflow's own). */
export function routeActivitiesTo(queue: string | undefined): void {
  hostQueue = queue;
}

/** The task queue activities go to, when routed. */
export function routedQueue(): string | undefined {
  return hostQueue;
}

/** proxyActivities whose task queue is read at each call: the host's queue once routed. */
function routed(options: ActivityOptions): ActivityInterfaceFor<Activities> {
  const direct = proxyActivities<Activities>(options);
  let cached: { queue: string; proxy: ActivityInterfaceFor<Activities> } | undefined;
  return new Proxy(direct, {
    get(_target, name) {
      if (typeof name !== 'string') return Reflect.get(direct, name);
      if (!hostQueue) return direct[name as keyof Activities];
      if (cached?.queue !== hostQueue) {
        cached = { queue: hostQueue, proxy: proxyActivities<Activities>({ ...options, taskQueue: hostQueue }) };
      }
      return cached.proxy[name as keyof Activities];
    },
  });
}

/**
 * Every activity heartbeats (activities/host/index.ts), so every kind below has a heartbeat timeout of
 * seconds: a killed worker is noticed quickly and the next attempt runs on a live one.
 */
const heartbeatTimeout = '5s';

/** Quick local steps (a rename, reading a version): short timeout, a few retries. */
export const quick = routed({
  startToCloseTimeout: '2m',
  heartbeatTimeout,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 3 },
});

/** Calls to the release API: retried on network errors; refusals (404, rate limit) are not. */
export const network = routed({
  startToCloseTimeout: '3m',
  heartbeatTimeout,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 5 },
});

/**
 * Steps that heartbeat while they work (downloads, commands, polling): a killed worker is
 * noticed within seconds and the next attempt resumes from the last heartbeat.
 */
export const heartbeating = routed({
  startToCloseTimeout: '30m',
  heartbeatTimeout,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 6 },
});

/** Undo steps: idempotent, so they may be retried more; they must not give up easily. */
export const compensating = routed({
  startToCloseTimeout: '10m',
  heartbeatTimeout,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 8 },
});

/**
 * An activity that holds something for the whole run (DefenseClaw's upgrade locks): it heartbeats
 * until the run cancels it, and a retry on the next worker re-takes what the dead one held.
 */
export const holding = routed({
  startToCloseTimeout: '24h',
  heartbeatTimeout,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 20 },
});

/**
 * Activities sent to one host's own queue from a workflow that runs elsewhere (ring rollouts):
 * a worker that does not pick one up within `answerSeconds` fails it with a SCHEDULE_TO_START
 * timeout (see notPickedUp in fleet/fleet.ts), so a host without a worker is noticed. `queue` replaces
 * the host's own queue when the rollout serves every host from one (a plan's `taskQueue`).
 */
export function onHost(
  host: string,
  answerSeconds: number,
  options: Omit<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'>,
  queue?: string,
): ActivityInterfaceFor<Activities> {
  return proxyActivities<Activities>({
    ...options,
    taskQueue: queue ?? taskQueueForHost(host),
    scheduleToStartTimeout: `${Math.max(1, answerSeconds)}s`,
  });
}

/** A host's worker's activities about its own upgrader (issue 18). */
export type UpgraderActivities = Pick<Activities, 'updateUpgrader' | 'upgraderSwitchOutcome'>;

/**
 * The upgrader's own activities on a host's queue (a worker update). `updateUpgrader` installs side
 * by side and switches (a download and maybe an `npm install`: minutes), then its worker restarts:
 * an attempt cut short by that restart is retried on the restarted worker, which answers at once
 * (already switched). A worker that does not pick one up within `answerSeconds` fails it with a
 * SCHEDULE_TO_START timeout (notPickedUp in fleet/fleet.ts).
 */
export function upgraderOnHost(queue: string, answerSeconds: number): ActivityInterfaceFor<UpgraderActivities> {
  return proxyActivities<UpgraderActivities>({
    taskQueue: queue,
    scheduleToStartTimeout: `${Math.max(1, answerSeconds)}s`,
    startToCloseTimeout: '15m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 4 },
  });
}
