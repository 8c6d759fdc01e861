/**
 * Pause / resume / abort of a fleet rollout (Updates): the validator that refuses a request
 * before it enters history, and the handler that applies an accepted one to the state.
 */
import { setHandler, type CancellationScope } from '@temporalio/workflow';
import { workflowTime } from '../clock.js';
import {
  ControlRequestSchema,
  abortUpdate,
  clip,
  countStates,
  pauseUpdate,
  resumeUpdate,
  type ControlEvent,
  type ControlRequest,
  type FleetControlAnswer,
  type FleetState,
} from './fleet-types.js';

/** Sets the pause / resume / abort Update handlers; `changed` runs after each accepted one. */
export function registerControls(
  state: FleetState,
  inFlight: ReadonlyMap<number, CancellationScope>,
  changed: () => void,
): void {
  setHandler(pauseUpdate, (req) => applyControl(state, 'pause', req, inFlight, changed), {
    validator: (req) => checkControl(state, 'pause', req),
  });
  setHandler(resumeUpdate, (req) => applyControl(state, 'resume', req, inFlight, changed), {
    validator: (req) => checkControl(state, 'resume', req),
  });
  setHandler(abortUpdate, (req) => applyControl(state, 'abort', req, inFlight, changed), {
    validator: (req) => checkControl(state, 'abort', req),
  });
}

/** The Update validator: throws when `action` does not apply to the rollout as it is. */
export function checkControl(state: FleetState, action: ControlEvent['action'], req: ControlRequest | undefined): void {
  const r = ControlRequestSchema.safeParse(req ?? {});
  if (!r.success) throw new Error(`invalid ${action} request`);
  if (state.phase === 'finished') throw new Error('the rollout has finished');
  if (state.aborted) throw new Error('the rollout was already aborted');
  if (action === 'pause' && state.paused) throw new Error('the rollout is already paused');
  if (action === 'resume' && !state.paused) throw new Error('the rollout is not paused');
  if (action !== 'abort' && r.data.cancelInFlight !== undefined) throw new Error('cancelInFlight is for abort only');
}

/**
 * The Update handler: records the request, applies it (an abort with `cancelInFlight` cancels the
 * hosts in flight), calls `changed`, and answers where the rollout stands.
 */
export function applyControl(
  state: FleetState,
  action: ControlEvent['action'],
  req: ControlRequest | undefined,
  inFlight: ReadonlyMap<number, CancellationScope>,
  changed: () => void,
): FleetControlAnswer {
  const r = ControlRequestSchema.parse(req ?? {});
  state.controls.push({ action, at: workflowTime(), by: r.by, reason: r.reason });
  if (state.controls.length > 20) state.controls.splice(0, state.controls.length - 20);
  if (action === 'pause') state.paused = true;
  if (action === 'resume') state.paused = false;
  if (action === 'abort') {
    state.aborted = true;
    state.paused = false;
    state.stopReason = clip(`aborted${r.by ? ` by ${r.by}` : ''}${r.reason ? `: ${r.reason}` : ''}`);
    if (r.cancelInFlight) {
      state.cancelInFlight = true;
      for (const scope of inFlight.values()) scope.cancel();
    }
  }
  changed();
  const c = countStates(state.hosts);
  return {
    paused: state.paused,
    aborted: state.aborted,
    phase: state.phase,
    inFlight: inFlight.size,
    waiting: c.waiting,
  };
}
