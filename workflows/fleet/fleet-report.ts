/**
 * What a fleet rollout says about itself, as pure functions over its state: the `progress`
 * query's answer, the one-line current details, the verdict's message, and why a host that
 * never started was skipped.
 */
import {
  FAILED_STATES,
  clip,
  countStates,
  type FleetHostRecord,
  type FleetProgress,
  type FleetState,
  type FleetVerdict,
  type ValidFleetInput,
} from './fleet-types.js';

/** The settings a rollout resolved from its input (fleet.ts). */
export interface FleetLimits {
  readonly batch: number;
  readonly maxFailures: number;
  readonly resolver: string;
}

/** Everything the `progress` query reports besides input, state and limits. */
export interface FleetRunFacts {
  verdict?: FleetVerdict;
  message?: string;
  endedAt?: number;
  inFlight: number;
  historyLength: number;
}

/** Hosts that ended failed, rolled back or unreachable. */
export function failureCount(hosts: readonly FleetHostRecord[]): number {
  let n = 0;
  for (const h of hosts) if (FAILED_STATES.includes(h.state)) n += 1;
  return n;
}

/** The reason written on each host still waiting when the rollout ends with `verdict`. */
export function skipReason(verdict: FleetVerdict, failures: number, maxFailures: number): string {
  return verdict === 'failure-budget-exceeded'
    ? `not started: ${failures} failures exceed the budget of ${maxFailures}`
    : verdict === 'aborted'
      ? `not started: the rollout was aborted`
      : verdict === 'canary-failed'
        ? `not started: the canary failed`
        : verdict === 'resolve-failed'
          ? 'not started: the release could not be resolved'
          : 'not started';
}

/** The verdict's message: the rollout's result, in one paragraph. */
export function describeVerdict(
  input: ValidFleetInput,
  state: FleetState,
  maxFailures: number,
  verdict: FleetVerdict,
): string {
  const total = input.hosts.length;
  const c = countStates(state.hosts);
  const id = input.fleetId;
  const v = state.version ?? input.version ?? 'the latest release';
  const failed = state.hosts.filter((h) => FAILED_STATES.includes(h.state));
  const list = failed
    .slice(0, 5)
    .map((h) => `${h.host} ${h.state}${h.reason ? ` (${clip(h.reason, 80)})` : ''}`)
    .join('; ');
  const more = failed.length > 5 ? `; and ${failed.length - 5} more` : '';
  const failures = failed.length ? ` Failed: ${list}${more}.` : '';
  const skipped = c.skipped ? ` ${c.skipped} host${c.skipped === 1 ? '' : 's'} skipped, left as they were.` : '';
  const on = `${c.healthy}/${total} hosts on ${v} and healthy`;
  switch (verdict) {
    case 'succeeded':
      return `fleet ${id}: all ${total} hosts on ${v} and healthy.`;
    case 'completed-with-failures':
      return `fleet ${id} completed with ${failed.length} failure${failed.length === 1 ? '' : 's'} (budget ${maxFailures}): ${on}.${failures}`;
    case 'failure-budget-exceeded':
      return `fleet ${id} STOPPED: ${failed.length} failures exceed the budget of ${maxFailures}; hosts in flight finished; ${on}.${skipped}${failures}`;
    case 'canary-failed':
      return `fleet ${id} STOPPED at the canary: ${state.stopReason ?? 'a canary failed'}.${skipped}${failures}`;
    case 'aborted': {
      const who = [...state.controls].reverse().find((e) => e.action === 'abort');
      const by = who?.by ? ` by ${who.by}` : '';
      const why = who?.reason ? ` (${who.reason})` : '';
      return `fleet ${id} ABORTED${by}${why}: ${on}.${skipped}${failures}`;
    }
    case 'resolve-failed':
      return `fleet ${id} did not start: ${state.stopReason ?? 'the release could not be resolved'}.${skipped}`;
  }
}

/** The `progress` query's answer. */
export function fleetProgress(
  input: ValidFleetInput,
  state: FleetState,
  limits: FleetLimits,
  facts: FleetRunFacts,
): FleetProgress {
  return {
    fleetId: input.fleetId,
    ...(input.component === 'worker' ? { component: input.component } : {}),
    phase: state.phase,
    version: state.version,
    requestedVersion: input.version,
    paused: state.paused,
    aborted: state.aborted,
    stopReason: state.stopReason,
    verdict: facts.verdict,
    message: facts.message,
    settings: {
      canary: input.canary,
      batch: limits.batch,
      maxFailures: limits.maxFailures,
      bakeSeconds: input.bakeSeconds,
      healthTimeoutSeconds: input.healthTimeoutSeconds,
      unreachableSeconds: input.unreachableSeconds,
      hostsPerRun: input.hostsPerRun,
      resolver: limits.resolver,
      taskQueue: input.taskQueue,
      jitterMs: input.jitterMs,
    },
    counts: countStates(state.hosts),
    failures: failureCount(state.hosts),
    inFlight: facts.inFlight,
    startedAt: state.startedAt,
    endedAt: facts.endedAt,
    bakeStartedAt: state.bakeStartedAt,
    bakeEndsAt: state.bakeEndsAt,
    run: state.runs,
    historyLength: facts.historyLength,
    controls: state.controls,
    hosts: state.hosts,
  };
}

/** The workflow's current details: one line for the Web UI. */
export function detailsText(input: ValidFleetInput, state: FleetState, maxFailures: number): string {
  const c = countStates(state.hosts);
  const flags = `${state.paused ? ' PAUSED' : ''}${state.windowClosed ? ' WINDOW CLOSED' : ''}${state.aborted ? ' ABORTED' : ''}`;
  return (
    `fleet ${input.fleetId} → ${state.version ?? input.version ?? 'latest'}: ${state.phase}${flags}; ` +
    `${c.healthy} healthy, ${c.upgrading} upgrading, ${c.waiting} waiting, ${failureCount(state.hosts)} failed (budget ${maxFailures}), ${c.skipped} skipped`
  );
}
