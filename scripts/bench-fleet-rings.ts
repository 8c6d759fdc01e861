/**
 * Part (c) of the fleet benchmark: a ring rollout (issue 14) of BENCH_FLEET_C_HOSTS (2000) stub
 * hosts in BENCH_FLEET_C_RINGS (3) rings: the first rings take BENCH_FLEET_C_SHARES per cent of
 * the hosts (default 1,10 for three rings, equal shares otherwise), the last ring the rest. Each
 * ring runs BENCH_FLEET_C_BATCH (100) hosts at a time and soaks BENCH_FLEET_C_SOAK (5) seconds
 * watching the default gate (every /health subsystem). Every host is a stub on ONE shared task
 * queue (the plan's `taskQueue`), each activity a BENCH_FLEET_STUB_MS sleep; the real ringRollout
 * runs in the fleet worker process (`defenseclaw-upgrade fleet worker`), with its real children
 * (probeRing, fleetRollout, soakRing per ring) and the real upgradeHost per host.
 *
 * Prints: wall time against the ideal (Σ over rings of waves × the measured median per-host time,
 * plus the soaks), the history length of the ringRollout parent (and per 1,000 hosts), of each
 * ring's fleetRollout child (every continue-as-new run), probe and soak child, the controller's
 * RSS at 500 / 1000 / 2000 hosts done and at the end, and the releases-API lookups (issueReleaseTicket
 * calls counted at the stubs: must be 1).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ServiceError, WorkflowIdConflictPolicy, type WorkflowHandle } from '@temporalio/client';
import { spawnFleetWorker } from '../test/helpers/fleet-sim.js';
import { fleetProgressQuery, FLEET_TASK_QUEUE, type FleetResult } from '../workflows/fleet/fleet-types.js';
import type { ringRollout } from '../workflows/fleet/rings.js';
import {
  WORKFLOW_RINGS,
  ringProgressQuery,
  type RingProgress,
  type RingRolloutResult,
} from '../workflows/fleet/ring-types.js';
import * as bench from './bench-fleet-common.js';

const C_HOSTS = bench.num('BENCH_FLEET_C_HOSTS', 2000);
const C_RINGS = bench.num('BENCH_FLEET_C_RINGS', 3);
const C_BATCH = bench.num('BENCH_FLEET_C_BATCH', 100);
const C_SOAK = bench.num('BENCH_FLEET_C_SOAK', 5);

/** Hosts per ring: the configured shares of the first rings, the rest in the last. */
export function ringSizes(hosts: number, rings: number, shares?: string): number[] {
  const given = shares
    ?.split(',')
    .map(Number)
    .filter((x) => Number.isFinite(x) && x > 0);
  const pcts = given?.length ? given : rings === 3 ? [1, 10] : Array<number>(rings - 1).fill(100 / rings);
  const sizes = pcts.slice(0, rings - 1).map((p) => Math.max(1, Math.floor((hosts * p) / 100)));
  const rest = hosts - sizes.reduce((a, b) => a + b, 0);
  if (rest < 1) throw new Error(`BENCH_FLEET_C_SHARES leave no host for the last ring`);
  return [...sizes, rest];
}

interface RingFigures {
  name: string;
  hosts: number;
  waves: number;
  fleet: number[];
  probe: number[];
  soak: number[];
}

export interface PartC {
  hosts: number;
  batch: number;
  soakSeconds: number;
  verdict: string;
  wallMs: number;
  medianHostMs: number;
  p90HostMs: number;
  idealMs: number;
  overhead: number;
  parentHistory: number[];
  rings: RingFigures[];
  rss: Array<[number | string, number | undefined]>;
  releaseLookups: number;
  calls: Record<string, number>;
}

/**
 * The rollout's result, waited for again when the long poll for it fails (a loaded server may drop
 * it after minutes): the rollout goes on regardless.
 */
async function resultOf(handle: WorkflowHandle<typeof ringRollout>): Promise<RingRolloutResult> {
  for (let tries = 1; ; tries++) {
    try {
      return await handle.result();
    } catch (err) {
      if (!(err instanceof ServiceError) || tries >= 10) throw err;
      bench.log(`    (the wait for the result failed: ${err.message}; waiting again)`);
    }
  }
}

/** Hosts finished so far: rings that ended, plus the running ring's fleet child as it reports. */
async function hostsDone(env: TestWorkflowEnvironment, p: RingProgress): Promise<number> {
  let done = 0;
  for (const r of p.rings) {
    if (r.endedAt !== undefined) done += r.upgraded + r.failed;
    else if (r.state === 'upgrading' || r.state === 'soaking') {
      for (const id of r.fleetIds) {
        const f = await env.client.workflow
          .getHandle(id)
          .query(fleetProgressQuery)
          .catch(() => undefined);
        if (f) done += f.hosts.length - f.counts.waiting - f.counts.upgrading;
      }
    }
  }
  return done;
}

export async function partC(env: TestWorkflowEnvironment): Promise<PartC> {
  const queue = `bench-ring-hosts-${process.pid}`;
  const calls = new Map<string, number>();
  const stub = await bench.startStubWorker(env, queue, Math.max(200, C_BATCH * 2), calls);
  const proc = spawnFleetWorker(env.address, env.namespace ?? 'default');
  try {
    await proc.ready;
    const sizes = ringSizes(C_HOSTS, C_RINGS, process.env.BENCH_FLEET_C_SHARES);
    let n = 0;
    const rings = sizes.map((size, i) => ({
      name: `r${i + 1}`,
      hosts: Array.from({ length: size }, () => `ring-stub-${++n}`),
      batch: { count: C_BATCH },
      maxFailures: { count: 0 },
      soakSeconds: C_SOAK,
    }));
    const id = `bench-c-${process.pid}`;
    bench.log(
      `\n(c) ring rollout of ${C_HOSTS} stub hosts in ${rings.length} rings (${sizes.join(' / ')}), batch ${C_BATCH}, soak ${C_SOAK} s; one shared queue (${queue}), each activity a ${bench.STUB_MS} ms sleep`,
    );
    const rss: PartC['rss'] = [[0, await bench.rssMiB(proc.child.pid)]];
    const start = Date.now();
    const handle = await env.client.workflow.start<typeof ringRollout>(WORKFLOW_RINGS, {
      taskQueue: FLEET_TASK_QUEUE,
      workflowId: id,
      args: [{ rolloutId: id, plan: { rings, unreachableSeconds: 120, taskQueue: queue } }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    let settled: RingRolloutResult | undefined;
    let failed: unknown;
    const done = resultOf(handle).then(
      (r) => (settled = r),
      (e) => (failed = e ?? new Error('failed')),
    );
    const marks = [500, 1000, 2000].filter((m) => m < C_HOSTS);
    let lastState = '';
    while (!settled && !failed) {
      await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
      const p = await handle.query(ringProgressQuery).catch(() => undefined);
      if (!p) continue;
      const state = p.rings.map((r) => `${r.name} ${r.state}`).join(', ');
      if (state !== lastState) bench.log(`    ${bench.sec(Date.now() - start)}: ${state}`);
      lastState = state;
      if (!marks.length) continue;
      const finished = await hostsDone(env, p);
      while (marks.length && finished >= marks[0]!) {
        const m = marks.shift()!;
        const r = await bench.rssMiB(proc.child.pid);
        rss.push([m, r]);
        bench.log(`    ${m} hosts done after ${bench.sec(Date.now() - start)}: controller RSS ${r} MiB`);
      }
    }
    if (failed) throw failed;
    const wall = Date.now() - start;
    const r = settled!;
    rss.push([`${C_HOSTS} (end)`, await bench.rssMiB(proc.child.pid)]);
    bench.log(`    rollout ended after ${bench.sec(wall)} (${r.verdict}): controller RSS ${rss.at(-1)![1]} MiB`);
    bench.log(`    ${r.message}`);

    const times: number[] = [];
    const figures: RingFigures[] = [];
    for (const [i, ring] of r.rings.entries()) {
      for (const fid of ring.fleetIds) {
        const fr: FleetResult = await env.client.workflow.getHandle(fid).result();
        times.push(...bench.perHost(fr.hosts));
      }
      const waves = Math.ceil(sizes[i]! / C_BATCH);
      const hist = async (wid: string) => bench.runHistories(env.client, wid);
      figures.push({
        name: ring.name,
        hosts: ring.hosts,
        waves,
        fleet: (await Promise.all(ring.fleetIds.map(hist))).flat(),
        probe: await hist(`${id}.${ring.name}.probe`),
        soak: await hist(`${id}.${ring.name}.soak`),
      });
    }
    const med = bench.median(times);
    const waves = figures.reduce((a, f) => a + f.waves, 0);
    const ideal = waves * med + rings.length * C_SOAK * 1000;
    return {
      hosts: C_HOSTS,
      batch: C_BATCH,
      soakSeconds: C_SOAK,
      verdict: r.verdict,
      wallMs: wall,
      medianHostMs: med,
      p90HostMs: bench.pct(times, 90),
      idealMs: ideal,
      overhead: wall / ideal,
      parentHistory: await bench.runHistories(env.client, id),
      rings: figures,
      rss,
      releaseLookups: calls.get('issueReleaseTicket') ?? 0,
      calls: Object.fromEntries(calls),
    };
  } finally {
    await proc.stop();
    await stub.stop();
  }
}

export function reportC(c: PartC): void {
  const waves = c.rings.reduce((a, f) => a + f.waves, 0);
  const parent = c.parentHistory.reduce((a, b) => a + b, 0);
  bench.log(`\n(c) ring rollout of ${c.hosts} stub hosts (one shared queue, ${bench.STUB_MS} ms per activity)`);
  bench.log(
    `  ${c.rings.length} rings (${c.rings.map((r) => `${r.name} ${r.hosts}`).join(', ')}), batch ${c.batch} → ${waves} waves, soak ${c.soakSeconds} s each; verdict ${c.verdict}`,
  );
  bench.log(
    `  wall ${bench.sec(c.wallMs)}; per-host upgrade median ${bench.sec(c.medianHostMs)}, p90 ${bench.sec(c.p90HostMs)}`,
  );
  bench.log(
    `  ideal (Σ waves × median + soaks = ${waves} × ${bench.sec(c.medianHostMs)} + ${c.rings.length} × ${c.soakSeconds} s) ${bench.sec(c.idealMs)}; ratio wall/ideal = ${c.overhead.toFixed(2)}`,
  );
  bench.log(
    `  ringRollout parent: ${c.parentHistory.length} run${c.parentHistory.length === 1 ? '' : 's'}, history ${c.parentHistory.join(', ')} events (${((parent * 1000) / c.hosts).toFixed(1)} per 1,000 hosts)`,
  );
  for (const r of c.rings) {
    bench.log(
      `  ring ${r.name} (${r.hosts} hosts, ${r.waves} waves): fleetRollout ${r.fleet.length} run${r.fleet.length === 1 ? '' : 's'}, history per run ${r.fleet.join(', ')}; probeRing ${r.probe.join(', ')}; soakRing ${r.soak.join(', ') || '-'}`,
    );
  }
  bench.log(`  controller RSS (MiB) by hosts done: ${c.rss.map(([n, r]) => `${n}: ${r ?? '?'}`).join(', ')}`);
  bench.log(`  releases-API lookups (issueReleaseTicket calls at the stubs): ${c.releaseLookups}`);
  bench.log(
    `  stub calls: ${Object.entries(c.calls)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
}
