/**
 * `--component defenseclaw|worker` of `fleet` and `fleet rollout` (issue 18): what a rollout moves.
 * `worker` moves every host's own defenseclaw-upgrade worker to the upgrader version `--version`
 * names (required: nothing resolves an upgrader release); the default moves DefenseClaw.
 */
import { Option } from 'commander';
import {
  ROLLOUT_COMPONENTS,
  hostWorkflowId,
  workerUpdateWorkflowId,
  type RolloutComponent,
} from '../../../workflows/types.js';
import { UsageError } from '../../errors.js';

export function componentOption(): Option {
  return new Option(
    '--component <component>',
    "what moves: defenseclaw (the default) or worker (each host's own defenseclaw-upgrade worker, to --version)",
  );
}

/** The workflow input's `component` (absent for DefenseClaw, as before), checked against `--version`. */
export function componentFromFlag(value: string | undefined, version: string | undefined): { component?: 'worker' } {
  if (value === undefined || value === 'defenseclaw') return {};
  if (!(ROLLOUT_COMPONENTS as readonly string[]).includes(value))
    throw new UsageError(`--component must be defenseclaw or worker, got ${JSON.stringify(value.slice(0, 40))}`);
  if (version === undefined)
    throw new UsageError('--component worker needs --version X.Y.Z (the upgrader version to move the workers to)');
  return { component: 'worker' };
}

/** The target line of a plan for the confirmation. */
export function targetText(component: RolloutComponent | undefined, version: string | undefined, resolver: string) {
  if (component === 'worker')
    return `${version} of defenseclaw-upgrade, for each host's worker (each proven by its queue; a host's launcher reverts a version that does not poll)`;
  return `${version ?? 'the latest release'} (resolved once by ${resolver})`;
}

/** `workers ` before a version in a summary or a status line, for a worker rollout only (DefenseClaw's read as before). */
export function componentPrefix(component: RolloutComponent | undefined): string {
  return component === 'worker' ? 'workers ' : '';
}

/** The workflow ID of a host's run in a rollout of `component` (for its current step, its worker's state). */
export function hostRunId(component: RolloutComponent | undefined, host: string): string {
  return component === 'worker' ? workerUpdateWorkflowId(host) : hostWorkflowId(host);
}
