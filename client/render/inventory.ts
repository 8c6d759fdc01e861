/**
 * The fleet inventory as a table grouped by version (counts first, then the hosts) or as JSON.
 * Pure: tests render results directly.
 */
import Table from 'cli-table3';
import {
  groupByVersion,
  hostsBehind,
  type HostInventory,
  type InventoryResult,
} from '../../workflows/fleet/inventory-types.js';
import { color } from './format.js';

export interface InventoryView {
  result: InventoryResult;
  /** `--behind`: the version hosts are compared with (already resolved from `latest`). */
  behind?: string;
  /** Where the inventory came from (`live`, or `cached, refreshed …`). */
  source?: string;
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

function health(h: HostInventory): string {
  if (!h.health) return '';
  const bad = Object.entries(h.health.subsystems)
    .filter(([name, s]) => name !== 'gateway' && s !== 'running' && s !== 'disabled')
    .map(([name, s]) => `${name} ${s}`);
  return bad.length ? `${h.health.state} (${bad.join(', ')})` : h.health.state;
}

function activity(h: HostInventory): string {
  if (h.inFlight) return `${h.inFlight.kind} in flight`;
  if (h.lastOutcome) {
    const to = h.lastOutcome.toVersion ? ` ${h.lastOutcome.toVersion}` : '';
    return `last ${h.lastOutcome.kind}${to}: ${h.lastOutcome.outcome}`;
  }
  return '';
}

function detail(h: HostInventory): string {
  if (h.status === 'unreachable')
    return h.unreachableSince ? `unreachable since ${h.unreachableSince}` : 'unreachable (no poll seen)';
  if (h.status === 'error') return `error: ${h.error ?? ''}`;
  return activity(h);
}

/** The hosts shown: every host, or with `behind` only those older than it. */
export function shownHosts(v: InventoryView): HostInventory[] {
  return v.behind ? hostsBehind(v.result.hosts, v.behind) : v.result.hosts;
}

export function renderInventory(v: InventoryView): string {
  const all = v.result.hosts;
  const hosts = shownHosts(v);
  const groups = groupByVersion(hosts);
  const out: string[] = [];
  const took = Date.parse(v.result.finishedAt) - Date.parse(v.result.startedAt);
  out.push(
    color.bold(`Inventory of ${plural(all.length, 'host')}`) +
      ` (${v.source ?? 'live'}, read ${v.result.finishedAt}${Number.isFinite(took) ? `, ${(took / 1000).toFixed(1)} s` : ''})`,
  );
  if (v.result.latest) out.push(`latest release: ${v.result.latest}`);
  if (v.result.latestError) out.push(color.yellow(`latest release not resolved: ${v.result.latestError}`));
  if (v.behind) out.push(`${plural(hosts.length, 'host')} behind ${v.behind}`);
  out.push('');
  const width = Math.max(7, ...groups.map((g) => g.version.length));
  for (const g of groups) out.push(`  ${g.version.padEnd(width)}  ${plural(g.hosts.length, 'host')}`);
  if (!hosts.length) return `${out.join('\n')}\n`;
  const table = new Table({
    head: ['version', 'host', 'health', 'wheel', 'era', 'upgrader', 'activity'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const g of groups) {
    for (const h of g.hosts) {
      table.push([g.version, h.host, health(h), h.wheelVersion ?? '', h.era ?? '', h.upgraderVersion ?? '', detail(h)]);
    }
  }
  out.push('', table.toString());
  return `${out.join('\n')}\n`;
}

export function inventoryJson(v: InventoryView): string {
  const hosts = shownHosts(v);
  const counts: Record<string, number> = {};
  for (const g of groupByVersion(hosts)) counts[g.version] = g.hosts.length;
  return `${JSON.stringify({
    source: v.source ?? 'live',
    startedAt: v.result.startedAt,
    finishedAt: v.result.finishedAt,
    ...(v.result.latest ? { latest: v.result.latest } : {}),
    ...(v.behind ? { behind: v.behind } : {}),
    total: v.result.hosts.length,
    counts,
    hosts,
  })}\n`;
}
