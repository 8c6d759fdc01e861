/**
 * `history`: past upgrades and rollbacks from Temporal's visibility store. The query is built
 * only from validated values (host names, versions), never from raw input.
 */
import {
  HostNameSchema,
  SEARCH_ATTRIBUTES,
  VersionSchema,
  WORKFLOW_ROLLBACK,
  WORKFLOW_UPGRADE,
} from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { UsageError } from '../errors.js';
import { color } from '../render/format.js';
import { uiLink } from '../temporal.js';
import { flag } from './shared.js';

export interface HistoryFlags {
  host?: string;
  version?: string;
  failed?: boolean;
  limit?: string;
  json?: boolean;
}

export function historyQuery(flags: HistoryFlags): string {
  const clauses = [`WorkflowType IN ('${WORKFLOW_UPGRADE}', '${WORKFLOW_ROLLBACK}')`];
  if (flags.host) clauses.push(`${SEARCH_ATTRIBUTES.host} = '${flag(HostNameSchema, flags.host, '--host')}'`);
  if (flags.version) {
    const v = flag(VersionSchema, flags.version, '--version');
    clauses.push(`(${SEARCH_ATTRIBUTES.fromVersion} = '${v}' OR ${SEARCH_ATTRIBUTES.toVersion} = '${v}')`);
  }
  if (flags.failed) clauses.push(`ExecutionStatus IN ('Failed', 'Canceled', 'Terminated', 'TimedOut')`);
  return clauses.join(' AND ');
}

export interface HistoryRow {
  workflowId: string;
  runId: string;
  type: string;
  host?: string;
  from?: string;
  to?: string;
  outcome: string;
  status: string;
  startTime: string;
  closeTime?: string;
  durationMs?: number;
  ui?: string;
}

export async function historyCommand(flags: HistoryFlags): Promise<number> {
  const limit = Number(flags.limit ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be from 1 to 10000');
  const query = historyQuery(flags);
  const target = await connectTarget({});
  try {
    const rows: HistoryRow[] = [];
    for await (const w of target.client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
      const sa = (w.searchAttributes ?? {}) as Record<string, unknown[]>;
      const first = (k: string) => (sa[k]?.[0] as string | undefined) ?? undefined;
      rows.push({
        workflowId: w.workflowId,
        runId: w.runId,
        type: w.type === WORKFLOW_ROLLBACK ? 'rollback' : 'upgrade',
        host: first(SEARCH_ATTRIBUTES.host),
        from: first(SEARCH_ATTRIBUTES.fromVersion),
        to: first(SEARCH_ATTRIBUTES.toVersion),
        outcome: first(SEARCH_ATTRIBUTES.outcome) ?? w.status.name.toLowerCase(),
        status: w.status.name,
        startTime: w.startTime.toISOString(),
        closeTime: w.closeTime?.toISOString(),
        durationMs: w.closeTime ? w.closeTime.getTime() - w.startTime.getTime() : undefined,
        ui: target.uiBase ? uiLink(target.uiBase, target.namespace, w.workflowId, w.runId) : undefined,
      });
      if (rows.length >= limit) break;
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    if (!rows.length) {
      process.stdout.write('no matching runs\n');
      return 0;
    }
    process.stdout.write(`${renderHistory(rows)}\n`);
    return 0;
  } finally {
    await target.close();
  }
}

const WIDTH = 80;

/** Pads or cuts a plain string to exactly `width` columns (cut with an ellipsis). */
function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const chars = [...text];
  if (chars.length > width) return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
  const pad = ' '.repeat(width - chars.length);
  return align === 'right' ? pad + text : text + pad;
}

/**
 * A borderless table that fits 80 columns (host names are cut to fit, with an ellipsis), then
 * each run's workflow ID, run ID and UI link on lines of their own. How long a run took is in
 * `--json` and `show`.
 */
export function renderHistory(rows: HistoryRow[]): string {
  const num = String(rows.length).length;
  const fixed = { started: 16, kind: 8, versions: 15, outcome: 16 };
  const gaps = 2 * 5;
  const host = WIDTH - gaps - num - fixed.started - fixed.kind - fixed.versions - fixed.outcome;
  const line = (cells: string[]) => cells.join('  ').trimEnd();
  const head = line([
    fit('#', num, 'right'),
    fit('started (UTC)', fixed.started),
    fit('host', host),
    fit('kind', fixed.kind),
    fit('from → to', fixed.versions),
    'outcome',
  ]);
  const body = rows.map((r, i) => {
    const paint = r.status === 'COMPLETED' ? color.green : r.status === 'RUNNING' ? color.cyan : color.red;
    return line([
      fit(String(i + 1), num, 'right'),
      fit(r.startTime.slice(0, 16).replace('T', ' '), fixed.started),
      fit(r.host ?? '', host),
      fit(r.type, fixed.kind),
      fit(`${r.from ?? '?'} → ${r.to ?? '?'}`, fixed.versions),
      paint(fit(r.outcome, fixed.outcome).trimEnd()),
    ]);
  });
  const refs = rows.map((r, i) =>
    color.dim(
      `${String(i + 1).padStart(num)}  ${r.workflowId}  ${r.runId}${r.ui ? `\n${' '.repeat(num + 2)}${r.ui}` : ''}`,
    ),
  );
  return [color.bold(head), ...body, '', ...refs].join('\n');
}
