/**
 * The activities as workflows call them, grouped by how they behave when things go wrong.
 * Timeouts and retries are set here, per kind of work, once.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

/**
 * Every activity heartbeats (activities/index.ts), so every kind below has a heartbeat timeout of
 * seconds: a killed worker is noticed quickly and the next attempt runs on a live one.
 */
const heartbeatTimeout = '5s';

/** Quick local steps (a rename, reading a version): short timeout, a few retries. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 3 },
});

/** Calls to the release API: retried on network errors; refusals (404, rate limit) are not. */
export const network = proxyActivities<Activities>({
  startToCloseTimeout: '3m',
  heartbeatTimeout,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 5 },
});

/**
 * Steps that heartbeat while they work (downloads, commands, polling): a killed worker is
 * noticed within seconds and the next attempt resumes from the last heartbeat.
 */
export const heartbeating = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 6 },
});

/** Undo steps: idempotent, so they may be retried more; they must not give up easily. */
export const compensating = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 8 },
});
