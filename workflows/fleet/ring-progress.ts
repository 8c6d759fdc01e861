/**
 * What a ring rollout reports of itself, as pure functions over its state: the progress it starts
 * from (ringProgress), the one-line status (setCurrentDetails), the rings a finished rollout never
 * started, and the closing message of each verdict.
 */
import type { SoakResult } from './ring-soak.js';
import { clip, type FleetHostRecord } from './fleet-types.js';
import { componentArgs } from './fleet-component.js';
import type { LateHostReport, RingProgress, RolloutVerdict, ValidRingRolloutInput } from './ring-types.js';

/** The progress of a rollout about to resolve its release: every ring pending. */
export function initialProgress(input: ValidRingRolloutInput, late: LateHostReport[], startedAt: number): RingProgress {
  return {
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
    late,
    startedAt,
    historyLength: 0,
  };
}

/** The rollout's status line: phase, current ring, rings passed, late hosts. */
export function statusLine(input: ValidRingRolloutInput, progress: RingProgress, late: LateHostReport[]): string {
  const r = progress.rings;
  const cur = progress.current !== undefined ? r[progress.current] : undefined;
  return (
    `rollout ${input.rolloutId} → ${progress.version ?? input.version ?? 'latest'}: ${progress.phase}` +
    (cur ? `; ring ${cur.name} ${cur.state}` : '') +
    `; ${r.filter((x) => x.state === 'passed').length}/${r.length} rings passed; ${late.length} late`
  );
}

/** Marks the rings the rollout never started `skipped`, saying why. */
export function skipPending(progress: RingProgress, verdict: RolloutVerdict): void {
  for (const r of progress.rings) {
    if (r.state === 'pending') {
      r.state = 'skipped';
      r.reason =
        verdict === 'resolve-failed' ? 'not started: the release was not resolved' : 'not started: the rollout halted';
    }
  }
}

/** The closing message of a rollout with this verdict. */
export function describeRollout(
  input: ValidRingRolloutInput,
  progress: RingProgress,
  late: LateHostReport[],
  verdict: RolloutVerdict,
): string {
  const id = input.rolloutId;
  const v = progress.version ?? input.version ?? 'the latest release';
  const rings = progress.rings;
  const passed = rings.filter((r) => r.state === 'passed').length;
  const halted = rings.find((r) => r.state === 'halted' || r.state === 'rolled-back');
  const sum = (k: 'held' | 'pinned' | 'current') => rings.reduce((n, r) => n + r[k].length, 0);
  const notes = [
    sum('held') ? `${sum('held')} held` : '',
    sum('pinned') ? `${sum('pinned')} pinned below ${v}` : '',
    sum('current') ? `${sum('current')} already current` : '',
  ].filter(Boolean);
  const caught = late.filter((l) => l.state === 'caught-up').map((l) => l.host);
  const never = late.filter((l) => l.state !== 'caught-up').map((l) => l.host);
  const lateText = [
    caught.length ? ` Caught up: ${list(caught)}.` : '',
    never.length ? ` Never caught up: ${list(never)}.` : '',
  ].join('');
  const skippedText = notes.length ? ` Left alone: ${notes.join(', ')}.` : '';
  switch (verdict) {
    case 'succeeded':
      return `rollout ${id}: ${passed}/${rings.length} rings on ${v} and healthy.${skippedText}${lateText}`;
    case 'nothing-to-do':
      return `rollout ${id}: nothing to do for ${v}${progress.message ? ` (${progress.message})` : ''}.${skippedText}`;
    case 'resolve-failed':
      return `rollout ${id} did not start: ${progress.message ?? 'the release could not be resolved'}.`;
    default:
      return `rollout ${id} HALTED at ring ${halted?.name ?? '?'} (${verdict}): ${halted?.reason ?? ''}. ${passed} ring${passed === 1 ? '' : 's'} passed before it.${skippedText}${lateText}`;
  }
}

/** Why a ring's soak failed: its first five failing hosts. */
export function describeGateFailures(soak: SoakResult): string {
  const shown = soak.failures
    .slice(0, 5)
    .map((f) => `${f.host}: ${f.reason}`)
    .join('; ');
  const more = soak.failures.length > 5 ? `; and ${soak.failures.length - 5} more` : '';
  return `the gate failed during the soak: ${shown}${more}`;
}

/** A ring's failed hosts, the first five with their reasons. */
export function describeFailures(failed: FleetHostRecord[]): string {
  const shown = failed
    .slice(0, 5)
    .map((h) => `${h.host} ${h.state}${h.reason ? ` (${clip(h.reason, 80)})` : ''}`)
    .join('; ');
  return failed.length > 5 ? `${shown}; and ${failed.length - 5} more` : shown;
}

function list(hosts: string[]): string {
  return hosts.length > 10 ? `${hosts.slice(0, 10).join(', ')} and ${hosts.length - 10} more` : hosts.join(', ');
}
