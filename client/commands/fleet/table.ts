/** The fleet table: a header with counts, a row per host (fits 80 columns), the failures with their reasons. */
import type { CurrentSteps, GoneWorkers } from './progress.js';
import { stripVTControlCharacters } from 'node:util';
import Table from 'cli-table3';
import {
  FAILED_STATES,
  HOST_STATES,
  countStates,
  type FleetHostRecord,
  type FleetHostState,
  type FleetProgress,
} from '../../../workflows/fleet/fleet-types.js';
import { color, duration } from '../../render/format.js';
import { componentPrefix } from './component.js';
import { type UpgraderVersions } from './fleet-upgraders.js';

const PAINT: Record<FleetHostState, (s: string) => string> = {
  waiting: color.dim,
  upgrading: color.cyan,
  healthy: color.green,
  'rolled-back': color.yellow,
  failed: color.red,
  skipped: color.dim,
  unreachable: color.red,
};

export interface RenderOptions {
  now: number;
  steps?: CurrentSteps;
  /** Hosts in flight whose worker is gone: shown as `worker gone`, not as upgrading. */
  gone?: GoneWorkers;
  /** Per host, the upgrader version its worker reports: adds a `worker` column (— when unknown). */
  upgraders?: UpgraderVersions;
  /** Show every host (default: all when they fit, else the interesting ones). */
  all?: boolean;
  maxRows?: number;
  /** Terminal width to fit (default 80). */
  width?: number;
}

/** The order rows are shown in when not all fit: what needs attention first. */
const ATTENTION: FleetHostState[] = [
  'upgrading',
  'failed',
  'unreachable',
  'rolled-back',
  'waiting',
  'healthy',
  'skipped',
];

/** A header with counts, a table of hosts (fits 80 columns), the failures with their reasons. */
export function renderFleet(p: FleetProgress, o: RenderOptions): string {
  const width = Math.max(60, Math.min(o.width ?? 80, 200));
  const lines: string[] = [];
  const flags = [p.paused ? color.yellow('PAUSED') : '', p.aborted ? color.red('ABORTED') : '']
    .filter(Boolean)
    .join(' ');
  const target = p.version ?? p.requestedVersion ?? 'latest';
  lines.push(
    fit(
      `${color.bold(`Fleet ${p.fleetId}`)} → ${componentPrefix(p.component)}${color.bold(target)}  ${p.phase}${flags ? `  ${flags}` : ''}`,
      width,
    ),
  );
  const c = p.counts ?? countStates(p.hosts);
  const counts = HOST_STATES.filter((s) => c[s] > 0 || s === 'healthy' || s === 'waiting')
    .map((s) => `${PAINT[s](s)} ${c[s]}`)
    .join('  ');
  lines.push(fit(counts, width));
  const bake =
    p.phase === 'bake' && p.bakeEndsAt ? `  bake ends in ${duration(Math.max(0, p.bakeEndsAt - o.now))}` : '';
  lines.push(
    fit(
      color.dim(
        `failures ${p.failures} (budget ${p.settings.maxFailures}) · window ${p.settings.batch} · canary ${p.settings.canary} · run ${p.run + 1}${bake}`,
      ),
      width,
    ),
  );

  const maxRows = o.all ? Infinity : (o.maxRows ?? 30);
  let rows: FleetHostRecord[] = p.hosts;
  let hidden = 0;
  if (rows.length > maxRows) {
    const rank = (h: FleetHostRecord) => ATTENTION.indexOf(h.state);
    rows = p.hosts
      .map((h, i) => ({ h, i }))
      .sort((a, b) => rank(a.h) - rank(b.h) || a.i - b.i)
      .slice(0, maxRows)
      .sort((a, b) => a.i - b.i)
      .map((x) => x.h);
    hidden = p.hosts.length - rows.length;
  }
  // With the upgrader versions: a `worker` column, paid for by a narrower step column.
  const widths = o.upgraders ? [13, 11, 16, 8, 10] : [13, 12, 16, 10];
  const hostWidth = Math.max(12, width - widths.reduce((a, b) => a + b, 0) - (widths.length + 2));
  const table = new Table({
    head: ['host', 'state', 'step', 'version', ...(o.upgraders ? ['worker'] : []), 'time'],
    colWidths: [hostWidth, ...widths],
    style: { head: [], border: [], compact: true },
    truncate: '…',
  });
  for (const h of rows) {
    const step = h.step ?? o.steps?.get(h.host) ?? '';
    const versions =
      h.before || h.after ? `${h.before ?? '?'} → ${h.after ?? (h.state === 'upgrading' ? '…' : '?')}` : '';
    const end = h.endedAt ?? (h.state === 'upgrading' ? o.now : undefined);
    const took = h.startedAt !== undefined && end !== undefined ? duration(Math.max(0, end - h.startedAt)) : '';
    const state = o.gone?.has(h.host) ? color.red('worker gone') : PAINT[h.state](h.state);
    const upgrader = o.upgraders ? [o.upgraders.get(h.host) ?? '—'] : [];
    table.push([h.host + (h.canary ? '*' : ''), state, step, versions, ...upgrader, took]);
  }
  lines.push(table.toString());
  if (hidden > 0) lines.push(color.dim(fit(`… ${hidden} more hosts not shown (--all shows every host)`, width)));
  if (p.settings.canary > 0) lines.push(color.dim('* canary'));

  const troubled = p.hosts.filter((h) => FAILED_STATES.includes(h.state) && h.reason);
  if (troubled.length) {
    lines.push(color.bold('Failures:'));
    for (const h of troubled.slice(0, o.all ? Infinity : 10)) {
      lines.push(fit(`  ${PAINT[h.state](h.host)} ${h.state}: ${h.reason}`, width));
    }
    if (!o.all && troubled.length > 10) lines.push(color.dim(`  … ${troubled.length - 10} more`));
  }
  if (o.gone?.size) {
    lines.push(color.bold('Workers gone (the run waits for them; restart the host worker):'));
    for (const [host, why] of [...o.gone].slice(0, o.all ? Infinity : 10)) lines.push(fit(`  ${host}: ${why}`, width));
  }
  if (p.stopReason && !p.message) lines.push(fit(`${color.yellow('stopping:')} ${p.stopReason}`, width));
  if (p.message) {
    const paint =
      p.verdict === 'succeeded' ? color.green : p.verdict === 'completed-with-failures' ? color.yellow : color.red;
    lines.push(
      ...wrap(`${(p.verdict ?? '').toUpperCase()} ${p.message}`, width).map((l, i) => (i === 0 ? paint(l) : l)),
    );
  }
  return lines.join('\n');
}

/** Word-wraps plain text to `width` columns (a word longer than a line is cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const w = word.length > width ? `${word.slice(0, width - 1)}…` : word;
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Cuts a line (which may hold colour codes) to `width` visible columns. */
function fit(line: string, width: number): string {
  const plain = stripVTControlCharacters(line);
  if (plain.length <= width) return line;
  return `${plain.slice(0, width - 1)}…`;
}
