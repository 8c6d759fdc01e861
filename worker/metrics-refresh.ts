/**
 * What the controller's metrics say, refreshed in the controller process on an interval (cheap:
 * one query of the standing inventory, a few visibility counts, one page of newly closed host runs,
 * one query per rollout in flight): hosts per version and health, unreachable and behind hosts,
 * host runs by outcome, the outage of each upgrade as a histogram, rollouts and rings in flight.
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { fleetProgressQuery } from '../workflows/fleet/fleet-types.js';
import {
  STANDING_INVENTORY_ID,
  groupByVersion,
  hostsBehind,
  standingInventoryQuery,
} from '../workflows/fleet/inventory-types.js';
import { WORKFLOW_RINGS, ringProgressQuery } from '../workflows/fleet/ring-types.js';
import {
  SEARCH_ATTRIBUTES,
  WORKFLOW_FLEET,
  WORKFLOW_ROLLBACK,
  WORKFLOW_UPGRADE,
  type UpgradeResult,
} from '../workflows/types.js';

const OUTCOMES = [
  'upgraded',
  'restored',
  'already-current',
  'declined',
  'cancelled',
  'failed-unchanged',
  'rolled-back',
  'restarted',
  'stopped',
  'rollback-failed',
  'partial',
] as const;
const KINDS = { upgrade: WORKFLOW_UPGRADE, rollback: WORKFLOW_ROLLBACK } as const;
/** Rollouts in flight shown per rollout (a controller runs a handful at a time). */
const MAX_ROLLOUTS = 50;
/** Closed host runs read per refresh for the outage histogram. */
const MAX_CLOSED = 200;
const QUERY_MS = 5000;

function withTimeout<T>(p: Promise<T>, ms = QUERY_MS): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error('timed out')), ms))),
  ]).finally(() => clearTimeout(t));
}

/**
 * Seconds the gateway was down in a host run: from each `stop` step's start to the end of the
 * `health` step after it (a chain of hops stops the gateway once per hop); undefined when the run
 * never stopped it.
 */
export function outageSeconds(r: Pick<UpgradeResult, 'steps'> | undefined): number | undefined {
  let total = 0;
  let open: number | undefined;
  let last: number | undefined;
  let stopped = false;
  for (const s of r?.steps ?? []) {
    if (s.endedAt !== undefined) last = s.endedAt;
    if (s.name === 'stop' && s.startedAt !== undefined && s.status !== 'skipped') {
      open ??= s.startedAt;
      stopped = true;
    } else if (s.name === 'health' && open !== undefined && s.endedAt !== undefined) {
      total += s.endedAt - open;
      open = undefined;
    }
  }
  if (open !== undefined && last !== undefined) total += Math.max(0, last - open);
  return stopped ? total / 1000 : undefined;
}

export class ControllerMetrics {
  private readonly g: Record<string, Gauge> = {};
  private readonly outage: Histogram;
  private since: Date;
  private readonly counted = new Set<string>();

  constructor(
    private readonly client: Client,
    registry: Registry,
    now = new Date(),
  ) {
    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      (this.g[name] = new Gauge({ name, help, labelNames, registers: [registry] }));
    gauge(
      'defenseclaw_hosts',
      'Hosts per installed DefenseClaw gateway version (standing inventory; unreachable hosts excluded)',
      ['version'],
    );
    gauge('defenseclaw_hosts_by_health', 'Reachable hosts per gateway /health state (standing inventory)', ['state']);
    gauge('defenseclaw_hosts_unreachable', 'Hosts whose worker did not answer the last inventory');
    gauge('defenseclaw_hosts_behind_latest', 'Hosts on a gateway older than the latest release');
    gauge('defenseclaw_hosts_by_upgrader', 'Hosts per upgrader (defenseclaw-upgrade) version', ['version']);
    gauge('defenseclaw_latest_release_info', 'The latest release as the controller resolved it (value 1)', ['version']);
    gauge('defenseclaw_inventory_hosts', 'Hosts in the standing inventory');
    gauge('defenseclaw_inventory_age_seconds', 'Seconds since the standing inventory was last refreshed');
    gauge('defenseclaw_inventory_up', '1 when the standing inventory answered the last refresh of these metrics');
    gauge('defenseclaw_host_runs', 'Closed host upgrades and rollbacks in visibility, by outcome', ['kind', 'outcome']);
    gauge('defenseclaw_host_runs_in_flight', 'Host upgrades and rollbacks running now', ['kind']);
    gauge('defenseclaw_rollouts_in_flight', 'Fleet and ring rollouts running now', ['kind']);
    gauge('defenseclaw_rollout_hosts', 'Hosts of each running fleet rollout, by host state', ['rollout', 'state']);
    gauge('defenseclaw_rollout_info', 'Each running rollout (value 1) with its target and phase', [
      'rollout',
      'kind',
      'version',
      'phase',
    ]);
    gauge('defenseclaw_ring_state', 'Each ring of a running ring rollout (value 1) with its state', [
      'rollout',
      'ring',
      'state',
    ]);
    gauge('defenseclaw_ring_hosts', 'Hosts of each ring of a running ring rollout', ['rollout', 'ring']);
    gauge('defenseclaw_metrics_refresh_timestamp_seconds', 'When these metrics were last refreshed');
    this.outage = new Histogram({
      name: 'defenseclaw_upgrade_outage_seconds',
      help: 'Gateway outage per host run (stop to healthy), for runs closed since the controller started',
      labelNames: ['kind', 'outcome'],
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
      registers: [registry],
    });
    this.since = now;
  }

  async refresh(): Promise<void> {
    await Promise.all([
      this.inventory().catch(() => this.g.defenseclaw_inventory_up!.set(0)),
      this.runs().catch(() => undefined),
      this.closed().catch(() => undefined),
      this.rollouts().catch(() => undefined),
    ]);
    this.g.defenseclaw_metrics_refresh_timestamp_seconds!.set(Date.now() / 1000);
  }

  private async inventory(): Promise<void> {
    const state = await withTimeout(
      this.client.workflow.getHandle(STANDING_INVENTORY_ID).query(standingInventoryQuery),
    );
    const inv = state.latest;
    for (const name of [
      'defenseclaw_hosts',
      'defenseclaw_hosts_by_health',
      'defenseclaw_hosts_by_upgrader',
      'defenseclaw_latest_release_info',
    ])
      this.g[name]!.reset();
    this.g.defenseclaw_inventory_up!.set(1);
    if (!inv) return;
    const reachable = inv.hosts.filter((h) => h.status !== 'unreachable');
    for (const grp of groupByVersion(reachable))
      this.g.defenseclaw_hosts!.set({ version: grp.version }, grp.hosts.length);
    const count = (key: (h: (typeof reachable)[number]) => string | undefined, gauge: Gauge, label: string) => {
      const m = new Map<string, number>();
      for (const h of reachable) {
        const k = key(h) ?? 'unknown';
        m.set(k, (m.get(k) ?? 0) + 1);
      }
      for (const [k, n] of m) gauge.set({ [label]: k }, n);
    };
    count((h) => h.health?.state, this.g.defenseclaw_hosts_by_health!, 'state');
    count((h) => h.upgraderVersion, this.g.defenseclaw_hosts_by_upgrader!, 'version');
    this.g.defenseclaw_hosts_unreachable!.set(inv.hosts.length - reachable.length);
    this.g.defenseclaw_inventory_hosts!.set(inv.hosts.length);
    this.g.defenseclaw_inventory_age_seconds!.set(Math.max(0, (Date.now() - Date.parse(inv.finishedAt)) / 1000));
    if (inv.latest) {
      this.g.defenseclaw_latest_release_info!.set({ version: inv.latest }, 1);
      this.g.defenseclaw_hosts_behind_latest!.set(hostsBehind(inv.hosts, inv.latest).length);
    }
  }

  private async runs(): Promise<void> {
    const counts: Array<Promise<void>> = [];
    for (const [kind, type] of Object.entries(KINDS)) {
      for (const outcome of OUTCOMES) {
        const query = `WorkflowType = '${type}' AND ${SEARCH_ATTRIBUTES.outcome} = '${outcome}'`;
        counts.push(
          this.client.workflow
            .count(query)
            .then((r) => void this.g.defenseclaw_host_runs!.set({ kind, outcome }, r.count)),
        );
      }
      const running = `WorkflowType = '${type}' AND ExecutionStatus = 'Running'`;
      counts.push(
        this.client.workflow
          .count(running)
          .then((r) => void this.g.defenseclaw_host_runs_in_flight!.set({ kind }, r.count)),
      );
    }
    await Promise.all(counts);
  }

  /** Host runs closed since the last refresh: their outage into the histogram (each run once). */
  private async closed(): Promise<void> {
    const query =
      `WorkflowType IN ('${WORKFLOW_UPGRADE}', '${WORKFLOW_ROLLBACK}') AND ExecutionStatus != 'Running' ` +
      `AND CloseTime >= '${this.since.toISOString()}'`;
    let newest = this.since;
    let n = 0;
    for await (const w of this.client.workflow.list({ query, pageSize: 100 })) {
      if (++n > MAX_CLOSED) break;
      if (this.counted.has(w.runId)) continue;
      const handle = this.client.workflow.getHandle(w.workflowId, w.runId);
      const result = await withTimeout(handle.result() as Promise<UpgradeResult>).catch((err: unknown) =>
        err instanceof WorkflowFailedError
          ? ((err.cause as { details?: unknown[] } | undefined)?.details?.[0] as UpgradeResult | undefined)
          : undefined,
      );
      this.counted.add(w.runId);
      if (w.closeTime && w.closeTime > newest) newest = w.closeTime;
      const s = outageSeconds(result);
      if (s !== undefined && result)
        this.outage.observe({ kind: result.kind ?? 'upgrade', outcome: result.outcome ?? 'unknown' }, s);
    }
    if (newest > this.since) {
      this.since = newest;
      if (this.counted.size > 10_000) this.counted.clear();
    }
  }

  private async rollouts(): Promise<void> {
    const query = `WorkflowType IN ('${WORKFLOW_FLEET}', '${WORKFLOW_RINGS}') AND ExecutionStatus = 'Running'`;
    const running: Array<{ id: string; type: string }> = [];
    for await (const w of this.client.workflow.list({ query, pageSize: MAX_ROLLOUTS })) {
      running.push({ id: w.workflowId, type: w.type });
      if (running.length >= MAX_ROLLOUTS) break;
    }
    const gs = [
      'defenseclaw_rollout_hosts',
      'defenseclaw_rollout_info',
      'defenseclaw_ring_state',
      'defenseclaw_ring_hosts',
    ];
    const fresh = new Map<string, Array<[Record<string, string>, number]>>(gs.map((g) => [g, []]));
    const kinds = { fleet: 0, rings: 0 };
    await Promise.all(
      running.map(async ({ id, type }) => {
        const handle = this.client.workflow.getHandle(id);
        if (type === WORKFLOW_FLEET) {
          kinds.fleet += 1;
          const p = await withTimeout(handle.query(fleetProgressQuery)).catch(() => undefined);
          if (!p) return;
          fresh
            .get('defenseclaw_rollout_info')!
            .push([{ rollout: id, kind: 'fleet', version: p.version ?? '', phase: p.phase }, 1]);
          const states = new Map<string, number>();
          for (const h of p.hosts) states.set(h.state, (states.get(h.state) ?? 0) + 1);
          for (const [state, n] of states) fresh.get('defenseclaw_rollout_hosts')!.push([{ rollout: id, state }, n]);
        } else {
          kinds.rings += 1;
          const p = await withTimeout(handle.query(ringProgressQuery)).catch(() => undefined);
          if (!p) return;
          fresh
            .get('defenseclaw_rollout_info')!
            .push([{ rollout: id, kind: 'rings', version: p.version ?? '', phase: p.phase }, 1]);
          for (const r of p.rings) {
            fresh.get('defenseclaw_ring_state')!.push([{ rollout: id, ring: r.name, state: r.state }, 1]);
            fresh.get('defenseclaw_ring_hosts')!.push([{ rollout: id, ring: r.name }, r.hosts]);
          }
        }
      }),
    );
    for (const g of gs) {
      this.g[g]!.reset();
      for (const [labels, v] of fresh.get(g)!) this.g[g]!.set(labels, v);
    }
    for (const [kind, n] of Object.entries(kinds)) this.g.defenseclaw_rollouts_in_flight!.set({ kind }, n);
  }
}
