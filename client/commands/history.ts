/**
 * `history`: past upgrades and rollbacks from Temporal's visibility store. The query is built
 * only from validated values (host names, versions), never from raw input.
 */
import Table from 'cli-table3';
import {
  HostNameSchema,
  SEARCH_ATTRIBUTES,
  VersionSchema,
  WORKFLOW_ROLLBACK,
  WORKFLOW_UPGRADE,
} from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { UsageError } from '../errors.js';
import { color, duration } from '../render/format.js';
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

/** A table that fits 80 columns, then each run's workflow ID and UI link on a line of its own. */
export function renderHistory(rows: HistoryRow[]): string {
  const table = new Table({
    head: ['#', 'started (UTC)', 'host', 'kind', 'from → to', 'outcome', 'took'],
    colWidths: [4, 18, 14, 10, 17, 16, 10],
    style: { head: [], border: [], compact: true },
  });
  rows.forEach((r, i) => {
    const paint = r.status === 'Completed' ? color.green : r.status === 'Running' ? color.cyan : color.red;
    table.push([
      `${i + 1}`,
      r.startTime.slice(0, 16).replace('T', ' '),
      (r.host ?? '').slice(0, 16),
      r.type,
      `${r.from ?? '?'} → ${r.to ?? '?'}`,
      paint(r.outcome.slice(0, 16)),
      duration(r.durationMs),
    ]);
  });
  const refs = rows.map((r, i) =>
    color.dim(`${String(i + 1).padStart(3)}  ${r.workflowId}  ${r.runId}${r.ui ? `\n     ${r.ui}` : ''}`),
  );
  return `${table.toString()}\n${refs.join('\n')}`;
}
