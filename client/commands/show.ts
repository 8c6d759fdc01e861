/** `show <workflow-id>`: one run's steps with times, attempts and errors, read from its history. */
import Table from 'cli-table3';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { connectTarget } from '../connect.js';
import { auditLines } from '../render/audit.js';
import { color, duration } from '../render/format.js';
import { uiLink } from '../temporal.js';
import { resultOf } from '../watch.js';

type Event = temporal.api.history.v1.IHistoryEvent;

export interface ActivityStep {
  activity: string;
  summary: string;
  scheduledAt: string;
  durationMs?: number;
  attempts: number;
  status: 'completed' | 'failed' | 'timed out' | 'cancelled' | 'running';
  error?: string;
}

function time(e: Event): number {
  const t = e.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

function summaryOf(e: Event): string | undefined {
  const p = e.userMetadata?.summary;
  if (!p) return undefined;
  try {
    return String(defaultPayloadConverter.fromPayload(p as never));
  } catch {
    return undefined;
  }
}

/** Pairs scheduled / started / closed activity events into steps. */
export function activitySteps(events: Event[]): ActivityStep[] {
  const steps = new Map<string, ActivityStep & { t0: number }>();
  for (const e of events) {
    const id = String(e.eventId ?? '');
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) {
      const name = sched.activityType?.name ?? '?';
      steps.set(id, {
        activity: name,
        summary: summaryOf(e) ?? name,
        scheduledAt: new Date(time(e)).toISOString(),
        attempts: 1,
        status: 'running',
        t0: time(e),
      });
      continue;
    }
    const close =
      (e.activityTaskCompletedEventAttributes && {
        a: e.activityTaskCompletedEventAttributes,
        s: 'completed' as const,
      }) ||
      (e.activityTaskFailedEventAttributes && { a: e.activityTaskFailedEventAttributes, s: 'failed' as const }) ||
      (e.activityTaskTimedOutEventAttributes && {
        a: e.activityTaskTimedOutEventAttributes,
        s: 'timed out' as const,
      }) ||
      (e.activityTaskCanceledEventAttributes && { a: e.activityTaskCanceledEventAttributes, s: 'cancelled' as const });
    const started = e.activityTaskStartedEventAttributes;
    const ref = String((close?.a ?? started)?.scheduledEventId ?? '');
    const step = steps.get(ref);
    if (!step) continue;
    if (started) step.attempts = started.attempt ?? 1;
    if (close) {
      step.status = close.s;
      step.durationMs = time(e) - step.t0;
      const failure = (
        close.a as { failure?: { message?: string | null; cause?: { message?: string | null } | null } | null }
      ).failure;
      if (failure) step.error = failure.cause?.message ?? failure.message ?? undefined;
    }
  }
  return [...steps.values()].map(({ t0: _t0, ...s }) => s);
}

export async function showCommand(workflowId: string, flags: { runId?: string; json?: boolean }): Promise<number> {
  const target = await connectTarget({});
  try {
    const handle = target.client.workflow.getHandle(workflowId, flags.runId);
    const d = await handle.describe();
    const history = await handle.fetchHistory();
    const steps = activitySteps(history.events ?? []);
    const closed = d.status.name !== 'RUNNING';
    const result = closed ? await resultOf(handle).catch(() => undefined) : undefined;
    const ui = target.uiBase ? uiLink(target.uiBase, target.namespace, workflowId, d.runId) : undefined;
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ workflowId, runId: d.runId, type: d.type, status: d.status.name, startTime: d.startTime, closeTime: d.closeTime, steps, result, ui }, null, 2)}\n`,
      );
      return 0;
    }
    process.stdout.write(`${color.bold(workflowId)}  ${d.type}  ${d.status.name}\n`);
    process.stdout.write(`started ${d.startTime.toISOString()}  run ${d.runId}\n`);
    // 47 + 10 + 7 + 11 columns and 5 borders: 80.
    const table = new Table({
      head: ['step', 'took', 'tries', 'result'],
      style: { head: [], border: [], compact: true },
      colWidths: [47, 10, 7, 11],
      wordWrap: true,
    });
    for (const s of steps) {
      const st =
        s.status === 'completed'
          ? color.green('ok')
          : s.status === 'running'
            ? color.cyan('running')
            : color.red(s.status);
      table.push([s.summary, duration(s.durationMs), String(s.attempts), st]);
      if (s.error) table.push([{ colSpan: 4, content: color.red(`  ${s.error}`), wordWrap: true }]);
    }
    process.stdout.write(`${table.toString()}\n`);
    if (result) process.stdout.write(`${wrap(`${result.outcome.toUpperCase()} ${result.message}`, 80)}\n`);
    for (const line of auditLines(result?.defenseclawReceipts)) process.stdout.write(`${wrap(line, 80)}\n`);
    if (ui) process.stdout.write(`Temporal UI: ${ui}\n`);
    return 0;
  } finally {
    await target.close();
  }
}

/** Wraps text at spaces to `width` columns (a longer word, e.g. a path, stays whole on its line). */
export function wrap(text: string, width: number): string {
  if (text.includes('\n'))
    return text
      .split('\n')
      .map((t) => wrap(t, width))
      .join('\n');
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/ +/)) {
    if (cur && [...cur].length + 1 + [...word].length > width) {
      lines.push(cur);
      cur = word;
    } else {
      cur = cur ? `${cur} ${word}` : word;
    }
  }
  if (cur) lines.push(cur);
  return lines.join('\n');
}
