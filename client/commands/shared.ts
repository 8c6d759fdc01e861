/** What the host-run commands share: flag validation, start-or-attach, printing the end. */
import os from 'node:os';
import {
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type WorkflowHandle,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import {
  InvalidInputError,
  SEARCH_ATTRIBUTES,
  WORKFLOW_ROLLBACK,
  WORKFLOW_UPGRADE,
  hostWorkflowId,
  parseWith,
  type UpgradeResult,
} from '../../workflows/types.js';
import type { z } from 'zod';
import type { Target } from '../connect.js';
import { CliFailure, UsageError } from '../errors.js';
import { uiLink } from '../temporal.js';
import { StuckRunError, stuckAfterSeconds, superviseRun } from '../supervise.js';
import { outcomeLine, stepsSummary, watchRun } from '../watch.js';

export interface CommonFlags {
  json?: boolean;
  host?: string;
  taskQueue?: string;
  releasesUrl?: string;
  repo?: string;
  /** Seconds the run's worker may be gone before the run is reported stuck (--stuck-after). */
  stuckAfter?: string;
}

/** A flag validated with the shared schema; a refusal is a usage error (exit 2, nothing contacted). */
export function flag<S extends z.ZodType>(schema: S, value: unknown, name: string): z.output<S> {
  try {
    return parseWith(schema, value, name);
  } catch (err) {
    if (err instanceof InvalidInputError)
      throw new UsageError(err.message.replace(/^invalid /, `invalid ${name} `).replace(`${name} ${name}`, name));
    throw err;
  }
}

/** A whole number of seconds (within bounds, when given), named after its flag in the error. */
export function seconds(
  value: string | undefined,
  name: string,
  limits?: { min: number; max: number },
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n))
    throw new UsageError(`${name} must be a whole number of seconds, got ${JSON.stringify(value)}`);
  if (limits && (n < limits.min || n > limits.max)) {
    throw new UsageError(`${name} must be from ${limits.min} to ${limits.max} seconds, got ${value}`);
  }
  return n;
}

/** The local user, for the audit trail (never a credential). */
export function requestedBy(): string {
  const name = (() => {
    try {
      return os.userInfo().username;
    } catch {
      return 'unknown';
    }
  })();
  return `${name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60) || 'unknown'}@${os
    .hostname()
    .split('.')[0]!
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 60)}`;
}

export function interactiveTerminal(): boolean {
  return process.stdin.isTTY === true && process.stdout.isTTY === true;
}

/** The host's running run, if any. */
export async function runningRun(
  target: Target,
  workflowId: string,
): Promise<WorkflowExecutionDescription | undefined> {
  const d = await target.client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  return d?.status.name === 'RUNNING' ? d : undefined;
}

export function link(target: Target, workflowId: string, runId?: string): string | undefined {
  return target.uiBase ? uiLink(target.uiBase, target.namespace, workflowId, runId) : undefined;
}

/** Watches a run to its end and prints it. */
export async function followAndReport(
  target: Target,
  handle: WorkflowHandle,
  flags: CommonFlags & { answerConfirmation: boolean },
): Promise<UpgradeResult> {
  const live = !flags.json && process.stdout.isTTY === true;
  const ui = link(target, handle.workflowId);
  if (!flags.json && ui) process.stderr.write(`Temporal UI: ${ui}\n`);
  const supervise = superviseRun(target, handle, {
    stuckAfterS: stuckAfterSeconds(flags.stuckAfter),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  let result: UpgradeResult;
  try {
    result = await watchRun(handle, {
      live,
      answerConfirmation: flags.answerConfirmation,
      by: requestedBy(),
      detachHint: `Stopped watching; the run goes on. Watch it again with: defenseclaw-upgrade status${flags.host ? ` --host ${flags.host}` : ''}`,
      supervise,
    });
  } catch (err) {
    if (err instanceof StuckRunError) {
      if (flags.json) process.stdout.write(`${JSON.stringify({ ...err.report, ui }, null, 2)}\n`);
      else process.stdout.write(`STUCK ${err.report.message}\n`);
    }
    throw err;
  }
  printResult(result, { json: flags.json, live, ui });
  return result;
}

export function printResult(result: UpgradeResult, o: { json?: boolean; live: boolean; ui?: string }): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...result, ui: o.ui }, null, 2)}\n`);
    return;
  }
  if (!o.live && result.steps.length) process.stdout.write(`${stepsSummary(result)}\n`);
  process.stdout.write(`${outcomeLine(result)}\n`);
  if (o.ui) process.stdout.write(`Temporal UI: ${o.ui}\n`);
}

/**
 * The host's one workflow ID: attach to the run of this kind that is already going, refuse when
 * a run of another kind holds the host, otherwise start a new one (USE_EXISTING closes the race
 * of two CLIs starting at once).
 */
export async function startOrAttach(
  target: Target,
  kind: typeof WORKFLOW_UPGRADE | typeof WORKFLOW_ROLLBACK,
  start: { args: [unknown]; staticSummary: string; staticDetails: string[] },
): Promise<WorkflowHandle> {
  const workflowId = hostWorkflowId(target.host);
  const running = await runningRun(target, workflowId);
  if (running) {
    refuseOtherKind(running, kind, target.host);
    // stderr, so that --json output stays machine-readable.
    process.stderr
      .write(`${kind === WORKFLOW_UPGRADE ? 'An upgrade' : 'A rollback'} of ${target.host} is already running; attaching to it.
`);
    return target.client.workflow.getHandle(workflowId, running.runId);
  }
  return target.client.workflow.start(kind, {
    // The workflow runs on the agent's or controller's queue; its activities on the host's own.
    taskQueue: target.workflowQueue,
    workflowId,
    args: [{ ...(start.args[0] as object), hostQueue: target.taskQueue }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: start.staticSummary,
    staticDetails: start.staticDetails.join('\n'),
    typedSearchAttributes: [{ key: defineSearchAttributeKey(SEARCH_ATTRIBUTES.host, 'KEYWORD'), value: target.host }],
  });
}

export function refuseOtherKind(d: WorkflowExecutionDescription, want: string, host: string): void {
  if (d.type !== want) {
    throw new CliFailure(
      `a ${d.type === WORKFLOW_ROLLBACK ? 'rollback' : d.type === WORKFLOW_UPGRADE ? 'upgrade' : d.type} is running on ${host}; watch it with \`defenseclaw-upgrade status\` or stop it with \`defenseclaw-upgrade cancel\``,
    );
  }
}
