/**
 * The fleet benchmark (`node dist/scripts/bench-fleet.js`, or `npm run bench -- fleet`).
 * Not a timed test: it prints figures and ratios.
 *
 * (a) real hosts: BENCH_FLEET_A_HOSTS (100) simulated hosts (own HOME, venv, gateway), each with
 *     its real worker on its own task queue in this process, the real upgradeHost workflow,
 *     BENCH_FLEET_A_BATCH (100) in flight. Wall time vs ideal = waves × median per-host time
 *     (the per-host time measured in the same rollout), and the parent's history length per run.
 * (b) stub hosts: BENCH_FLEET_B_HOSTS (2000) hosts on ONE SHARED task queue (the fleet input's
 *     `taskQueue`), served by one worker whose activities are stubs that each sleep
 *     BENCH_FLEET_STUB_MS (50) ms, running the real upgradeHost workflow; BENCH_FLEET_B_BATCH
 *     (100) in flight. Wall vs ideal, history length per run (bounded by continue-as-new), and
 *     the RSS of the fleet worker process at 500 / 1000 / 2000 hosts done.
 *
 * (c) rings: a ring rollout of BENCH_FLEET_C_HOSTS (2000) stub hosts in rings, each ring a
 *     fleetRollout child, a soak between rings (bench-fleet-rings.ts).
 *
 * Every part runs the fleet workflow in its own process (`defenseclaw-upgrade fleet worker`), as a
 * deployment would. BENCH_FLEET_PART=a|b|c runs one part only (default: all three).
 */
import os from 'node:os';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { startReleaseServer } from '../test/fixtures/releases/server.js';
import { FleetSim, spawnFleetWorker, startFleet, type FleetWorkerProcess } from '../test/helpers/fleet-sim.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import { fleetProgressQuery, type FleetResult } from '../workflows/fleet/fleet-types.js';
import {
  STUB_MS,
  log,
  median,
  num,
  pct,
  perHost,
  rssMiB,
  runHistories,
  sec,
  startStubWorker,
} from './bench-fleet-common.js';
import { partC, reportC } from './bench-fleet-rings.js';

const A_HOSTS = num('BENCH_FLEET_A_HOSTS', 100);
const A_BATCH = num('BENCH_FLEET_A_BATCH', 100);
const B_HOSTS = num('BENCH_FLEET_B_HOSTS', 2000);
const B_BATCH = num('BENCH_FLEET_B_BATCH', 100);
const PART = process.env.BENCH_FLEET_PART ?? 'all';

interface Figures {
  hosts: number;
  batch: number;
  waves: number;
  wallMs: number;
  medianHostMs: number;
  p90HostMs: number;
  idealMs: number;
  overhead: number;
  runs: number;
  histories: number[];
  verdict: string;
}

function report(name: string, f: Figures): void {
  log(`\n${name}`);
  log(`  hosts ${f.hosts}, batch ${f.batch} → ${f.waves} wave${f.waves === 1 ? '' : 's'}; verdict ${f.verdict}`);
  log(`  wall ${sec(f.wallMs)}; per-host upgrade median ${sec(f.medianHostMs)}, p90 ${sec(f.p90HostMs)}`);
  log(`  ideal (waves × median) ${sec(f.idealMs)}; overhead ratio wall/ideal = ${f.overhead.toFixed(2)}`);
  log(
    `  fleet workflow: ${f.runs} run${f.runs === 1 ? '' : 's'} (continue-as-new); history length per run: ${f.histories.join(', ')} (max ${Math.max(...f.histories)})`,
  );
}

async function figures(
  env: TestWorkflowEnvironment,
  id: string,
  r: FleetResult,
  wallMs: number,
  batch: number,
): Promise<Figures> {
  const times = perHost(r.hosts);
  const waves = Math.ceil(r.hosts.length / batch);
  const med = median(times);
  const histories = await runHistories(env.client, id);
  return {
    hosts: r.hosts.length,
    batch,
    waves,
    wallMs,
    medianHostMs: med,
    p90HostMs: pct(times, 90),
    idealMs: waves * med,
    overhead: wallMs / (waves * med),
    runs: histories.length,
    histories,
    verdict: r.verdict,
  };
}

// -------------------------------------------------------------------------------------------------

async function partA(env: TestWorkflowEnvironment): Promise<Figures> {
  const releases = await startReleaseServer();
  let sim: FleetSim | undefined;
  let proc: FleetWorkerProcess | undefined;
  try {
    const t0 = Date.now();
    log(`(a) creating ${A_HOSTS} simulated hosts (venv + gateway each) with their workers…`);
    sim = await FleetSim.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      releases,
      hosts: A_HOSTS,
      prefix: `bench-a-${process.pid}`,
      concurrency: 4,
    });
    log(
      `    ${A_HOSTS} hosts ready in ${sec(Date.now() - t0)}; RSS of this process ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`,
    );
    proc = spawnFleetWorker(env.address, env.namespace ?? 'default');
    await proc.ready;
    const id = `bench-a-${process.pid}`;
    const start = Date.now();
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts: sim.names,
      canary: 0,
      bakeSeconds: 0,
      batch: { count: A_BATCH },
      maxFailures: { count: A_HOSTS },
      healthTimeoutSeconds: 300,
      unreachableSeconds: 300,
    });
    const r = await fleetResultOf(handle);
    const wall = Date.now() - start;
    let upgraded = 0;
    for (const n of sim.names) if ((await sim.host(n).sim.gatewayVersion()) === '0.4.0') upgraded += 1;
    log(`    ${upgraded}/${A_HOSTS} gateways report 0.4.0; ${r.counts.healthy} healthy, ${r.failures} failed`);
    for (const h of r.hosts.filter((x) => x.state !== 'healthy').slice(0, 5))
      log(`    ${h.host}: ${h.state} ${h.reason ?? ''}`);
    return await figures(env, id, r, wall, A_BATCH);
  } finally {
    await proc?.stop();
    await sim?.close();
    await releases.close();
  }
}

async function partB(env: TestWorkflowEnvironment): Promise<Figures & { rss: Array<[number, number | undefined]> }> {
  const queue = `bench-stub-hosts-${process.pid}`;
  const stub = await startStubWorker(env, queue, Math.max(200, B_BATCH * 2));
  const proc = spawnFleetWorker(env.address, env.namespace ?? 'default');
  try {
    await proc.ready;
    const hosts = Array.from({ length: B_HOSTS }, (_, i) => `stub-${i + 1}`);
    const id = `bench-b-${process.pid}`;
    log(
      `\n(b) ${B_HOSTS} stub hosts on one shared queue (${queue}), each activity a ${STUB_MS} ms sleep, batch ${B_BATCH}`,
    );
    const rss: Array<[number, number | undefined]> = [[0, await rssMiB(proc.child.pid)]];
    const start = Date.now();
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts,
      canary: 0,
      bakeSeconds: 0,
      batch: { count: B_BATCH },
      maxFailures: { count: 0 },
      taskQueue: queue,
      unreachableSeconds: 120,
    });
    let settled: FleetResult | undefined;
    let failed: unknown;
    const done = fleetResultOf(handle).then(
      (r) => (settled = r),
      (e) => (failed = e ?? new Error('failed')),
    );
    const marks = [500, 1000, 1500, 2000].filter((m) => m < B_HOSTS);
    while (!settled && !failed) {
      await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
      const p = await handle.query(fleetProgressQuery).catch(() => undefined);
      if (!p) continue;
      const finished = p.hosts.length - p.counts.waiting - p.counts.upgrading;
      while (marks.length && finished >= marks[0]!) {
        const m = marks.shift()!;
        const r = await rssMiB(proc.child.pid);
        rss.push([m, r]);
        log(
          `    ${m} hosts done after ${sec(Date.now() - start)}: fleet worker RSS ${r} MiB, run ${p.run + 1}, history ${p.historyLength}`,
        );
      }
    }
    if (failed) throw failed;
    const wall = Date.now() - start;
    const r = settled!;
    rss.push([B_HOSTS, await rssMiB(proc.child.pid)]);
    log(`    ${B_HOSTS} hosts done after ${sec(wall)}: fleet worker RSS ${rss.at(-1)![1]} MiB`);
    const f = await figures(env, id, r, wall, B_BATCH);
    return { ...f, rss };
  } finally {
    await proc.stop();
    await stub.stop();
  }
}

async function main(): Promise<void> {
  log(
    `fleet benchmark on ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const env = await startTestEnvironment();
  try {
    const summary: Record<string, unknown> = {};
    if (PART === 'a' || PART === 'all') {
      const a = await partA(env);
      report(`(a) ${a.hosts} simulated hosts, real per-host task queues, real upgrade workflow`, a);
      summary.a = a;
    }
    if (PART === 'b' || PART === 'all') {
      const b = await partB(env);
      report(`(b) ${b.hosts} stub hosts (one shared queue, ${STUB_MS} ms per activity)`, b);
      log(`  fleet worker RSS (MiB) by hosts done: ${b.rss.map(([n, r]) => `${n}: ${r ?? '?'}`).join(', ')}`);
      summary.b = b;
    }
    if (PART === 'c' || PART === 'all') {
      const c = await partC(env);
      reportC(c);
      summary.c = c;
    }
    log(`\n${JSON.stringify(summary)}`);
  } finally {
    await env.teardown();
  }
}

main().catch((err) => {
  process.stderr.write(`bench-fleet failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
