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
 * Both parts run the fleet workflow in its own process (`defenseclaw-upgrade fleet worker`), as a
 * deployment would. BENCH_FLEET_PART=a|b runs one part only.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { fleetResultOf } from '../client/commands/fleet.js';
import { startReleaseServer } from '../test/fixtures/releases/server.js';
import { FleetSim, spawnFleetWorker, startFleet, type FleetWorkerProcess } from '../test/helpers/fleet-sim.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import { resolveWorkflowCode } from '../worker/worker.js';
import type { Activities } from '../activities/index.js';
import { fleetProgressQuery, type FleetHostRecord, type FleetResult } from '../workflows/fleet-types.js';

const num = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

const A_HOSTS = num('BENCH_FLEET_A_HOSTS', 100);
const A_BATCH = num('BENCH_FLEET_A_BATCH', 100);
const B_HOSTS = num('BENCH_FLEET_B_HOSTS', 2000);
const B_BATCH = num('BENCH_FLEET_B_BATCH', 100);
const STUB_MS = num('BENCH_FLEET_STUB_MS', 50);
const PART = process.env.BENCH_FLEET_PART ?? 'both';

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function rssMiB(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** History length of every run in the continue-as-new chain of a workflow ID. */
async function runHistories(client: Client, workflowId: string): Promise<number[]> {
  const lengths: Array<{ start: number; len: number }> = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const d = await client.workflow.getHandle(workflowId, w.runId).describe();
    lengths.push({ start: d.startTime.getTime(), len: d.historyLength });
  }
  return lengths.sort((a, b) => a.start - b.start).map((x) => x.len);
}

function perHost(hosts: FleetHostRecord[]): number[] {
  return hosts
    .filter((h) => h.startedAt !== undefined && h.endedAt !== undefined)
    .map((h) => h.endedAt! - h.startedAt!);
}

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

/** Every activity upgradeHost calls, as a stub that sleeps STUB_MS and answers a plausible value. */
function stubActivities(): Activities {
  const nap = () => new Promise<void>((r) => setTimeout(r, STUB_MS));
  const sha = 'a'.repeat(64);
  const stubs = {
    checkHost: async (i: { host: string }) => (await nap(), { host: i.host }),
    resolveRelease: async (i: { version?: string }) => (
      await nap(),
      { version: i.version ?? '0.4.0', assets: [], signed: false }
    ),
    issueReleaseTicket: async (i: { version?: string }) => (
      await nap(),
      { version: i.version ?? '0.4.0', era: 'goreleaser', assets: [{ name: 'checksums.txt', size: 1000 }] }
    ),
    resolveFromTicket: async (i: { release: { version: string } }) => (
      await nap(),
      { version: i.release.version, assets: [], signed: false }
    ),
    readInstalledVersion: async () => (await nap(), { version: '0.3.0' }),
    detectPlatform: async () => (await nap(), { os: 'linux', arch: 'amd64' }),
    createStaging: async () => (await nap(), { stagingId: 'staging-1' }),
    preflight: async (i: { names: string[] }) => (await nap(), i.names.map((name) => ({ name, size: 1000 }))),
    downloadArtifact: async (i: { name: string; size: number }) => (
      await nap(),
      { name: i.name, size: i.size, sha256: sha }
    ),
    verifySignature: async () => (await nap(), { signature: 'unsigned' }),
    stageGateway: async () => (await nap(), { sha256: sha }),
    prepareVenv: async () => (await nap(), { venvId: 'venv-1', tool: 'uv' }),
    removeStaging: async () => nap(),
    discardVenv: async () => nap(),
    createBackup: async (i: { backupId: string }) => (await nap(), { backupId: i.backupId, files: 1, bytes: 1 }),
    stopGateway: async () => (await nap(), { wasRunning: true }),
    installGateway: async () => nap(),
    switchVenv: async () => nap(),
    runMigrations: async () => (await nap(), { ran: 1 }),
    startGateway: async () => (await nap(), { alreadyRunning: false }),
    restartOpenclaw: async () => (await nap(), {}),
    waitHealthy: async () => (await nap(), { state: 'running', polls: 1 }),
  };
  return stubs as unknown as Activities;
}

async function partB(env: TestWorkflowEnvironment): Promise<Figures & { rss: Array<[number, number | undefined]> }> {
  const queue = `bench-stub-hosts-${process.pid}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: queue,
    activities: stubActivities(),
    ...resolveWorkflowCode(),
    maxConcurrentActivityTaskExecutions: Math.max(200, B_BATCH * 2),
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
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
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
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
    if (PART === 'a' || PART === 'both') {
      const a = await partA(env);
      report(`(a) ${a.hosts} simulated hosts, real per-host task queues, real upgrade workflow`, a);
      summary.a = a;
    }
    if (PART === 'b' || PART === 'both') {
      const b = await partB(env);
      report(`(b) ${b.hosts} stub hosts (one shared queue, ${STUB_MS} ms per activity)`, b);
      log(`  fleet worker RSS (MiB) by hosts done: ${b.rss.map(([n, r]) => `${n}: ${r ?? '?'}`).join(', ')}`);
      summary.b = b;
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
