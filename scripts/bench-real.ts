/**
 * npm run bench -- real: the real DefenseClaw gateway's downtime (issue 21), on real builds from
 * ../shared/realdc, for 0.4.0 → 0.5.0 and 0.8.4 → 0.8.10 (0.8.4 is the protected era's bridge).
 *
 * Each run, on ONE real host and under ONE /health probe every 20 ms (the longest stretch without a
 * healthy answer, per phase):
 *   1. a bare `defenseclaw-gateway stop; defenseclaw-gateway start` of FROM
 *   2. our upgrade FROM → TO, through Temporal (a dev server, the real host worker)
 *   3. a bare restart of TO
 * The floor of an upgrade is FROM's own stop plus TO's own start: the slower bare restart stands for
 * it; the target is our outage ≤ 1.3 × that. Medians of BENCH_RUNS (default 3) runs. Where the window
 * goes is read from the workflow's step records and its history (each activity's dispatch, its run,
 * and the workflow task that schedules the next one).
 *
 * Runs itself again under a reaping subreaper (scripts/subreaper.ts) and says which.
 * BENCH_PAIRS=0.4.0-0.5.0 picks pairs; BENCH_EAGER=1 starts the dev server with
 * system.enableActivityEagerExecution=true.
 */
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import type { temporal } from '@temporalio/proto';
import { installRuntime } from '../worker/runtime.js';
import { createRealHost, type RealHost } from '../test/fixtures/host/real-host.js';
import { realBuildsFor } from '../test/fixtures/releases/eras.js';
import { Harness, type HostUnderTest } from '../test/helpers/harness.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import type { StepRecord } from '../workflows/types.js';
import { reaperNote, reexecUnderReaper } from './subreaper.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PROBE_MS = 20;
const HEALTHY = ['running', 'disabled'];
const PAIRS = [
  { from: '0.4.0', to: '0.5.0', env: {} },
  { from: '0.8.4', to: '0.8.10', env: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' } },
] as const;

type Event = temporal.api.history.v1.IHistoryEvent;

/** One /health probe every 20 ms; every stretch without a healthy answer, with its start and end. */
function outageProbe(port: number) {
  let stop = false;
  let downSince: number | undefined;
  const outages: Array<{ start: number; end: number }> = [];
  const loop = (async () => {
    while (!stop) {
      const t = performance.now();
      let ok = false;
      try {
        const res = await request(`http://127.0.0.1:${port}/health`, { headersTimeout: 500, bodyTimeout: 500 });
        const body = (await res.body.json()) as { gateway?: { state?: string } };
        ok = res.statusCode === 200 && HEALTHY.includes(body.gateway?.state ?? '');
      } catch {
        ok = false;
      }
      const now = performance.now();
      if (!ok && downSince === undefined) downSince = now;
      if (ok && downSince !== undefined) {
        outages.push({ start: downSince, end: now });
        downSince = undefined;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, PROBE_MS - (performance.now() - t))));
    }
  })();
  return {
    /** The longest outage that began in [from, to). */
    longest(from: number, to: number): number {
      return Math.max(0, ...outages.filter((o) => o.start >= from && o.start < to).map((o) => o.end - o.start));
    },
    async done(): Promise<void> {
      stop = true;
      await loop;
      if (downSince !== undefined) throw new Error('the gateway was not healthy at the end of the run');
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** A bare `stop; start` of the host's gateway, until healthy; answers the commands' own times. */
async function bareRestart(host: RealHost): Promise<{ stop: number; start: number }> {
  const t0 = performance.now();
  const s = await host.gateway(['stop']);
  const t1 = performance.now();
  const r = await host.gateway(['start']);
  const t2 = performance.now();
  if (s.exitCode !== 0 || r.exitCode !== 0) throw new Error(`bare restart failed: ${s.stderr}${r.stderr}`);
  await host.waitState(HEALTHY, 60_000);
  return { stop: t1 - t0, start: t2 - t1 };
}

const eventTime = (e: Event) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);

interface ActivityTiming {
  name: string;
  /** scheduled → started: the task's way to the host worker. */
  dispatch: number;
  /** started → completed: the activity itself. */
  run: number;
  /** completed → the next activity scheduled: the workflow task in between. */
  turn: number;
}

/** The window's activities (stopGateway … the last health check) from a run's history. */
function windowActivities(events: Event[]): ActivityTiming[] {
  const acts: Array<{ name: string; sched: number; started?: number; closed?: number }> = [];
  const byId = new Map<string, (typeof acts)[number]>();
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const a = { name: s.activityType?.name ?? '?', sched: eventTime(e) };
      acts.push(a);
      byId.set(String(e.eventId), a);
      continue;
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st) byId.get(String(st.scheduledEventId))!.started = eventTime(e);
    const c = e.activityTaskCompletedEventAttributes;
    if (c) byId.get(String(c.scheduledEventId))!.closed = eventTime(e);
  }
  const first = acts.findIndex((a) => a.name === 'stopGateway');
  let last = -1;
  acts.forEach((a, i) => {
    if (a.name === 'waitHealthy' || a.name === 'gatewayReadyHandshake') last = i;
  });
  if (first < 0 || last < first) return [];
  return acts.slice(first, last + 1).map((a, i, all) => ({
    name: a.name,
    dispatch: (a.started ?? a.sched) - a.sched,
    run: (a.closed ?? a.started ?? a.sched) - (a.started ?? a.sched),
    turn: all[i + 1] ? all[i + 1]!.sched - (a.closed ?? a.sched) : 0,
  }));
}

/** The window's step records (stop … health), workflow time. */
function windowSteps(steps: StepRecord[]): Array<{ label: string; ms: number }> {
  const i = steps.findIndex((s) => s.name === 'stop');
  let j = -1;
  steps.forEach((s, k) => {
    if (s.name === 'health') j = k;
  });
  return steps.slice(i, j + 1).map((s) => ({
    label: `${s.name}: ${(s.detail ?? '').slice(0, 60)}`,
    ms: (s.endedAt ?? 0) - (s.startedAt ?? 0),
  }));
}

interface RunFigures {
  bareFrom: number;
  bareTo: number;
  ours: number;
  bareFromCmds: { stop: number; start: number };
  bareToCmds: { stop: number; start: number };
  steps: Array<{ label: string; ms: number }>;
  activities: ActivityTiming[];
}

async function oneRun(h: Harness, pair: (typeof PAIRS)[number]): Promise<RunFigures> {
  const host: HostUnderTest<RealHost> = await h.hostOf(await createRealHost({ version: pair.from as '0.4.0' }), {
    extraEnv: pair.env,
  });
  const probe = outageProbe(host.sim.port);
  try {
    await sleep(100);
    const a = performance.now();
    const bareFromCmds = await bareRestart(host.sim);
    await sleep(60);
    const b = performance.now();
    const handle = await host.upgrade({ version: pair.to, options: { healthTimeoutSeconds: 90 } });
    const r = await host.result(handle);
    if (r.outcome !== 'upgraded') throw new Error(`real bench upgrade ${pair.from} → ${pair.to}: ${r.message}`);
    await sleep(60);
    const c = performance.now();
    const bareToCmds = await bareRestart(host.sim);
    await sleep(60);
    const d = performance.now();
    await probe.done();
    const history = await handle.fetchHistory();
    return {
      bareFrom: probe.longest(a, b),
      ours: probe.longest(b, c),
      bareTo: probe.longest(c, d),
      bareFromCmds,
      bareToCmds,
      steps: windowSteps(r.steps),
      activities: windowActivities(history.events ?? []),
    };
  } finally {
    await probe.done().catch(() => undefined);
    await host.stopWorker();
    await host.sim.cleanup();
  }
}

function report(pair: (typeof PAIRS)[number], runs: RunFigures[]): string[] {
  const bareFrom = median(runs.map((r) => r.bareFrom));
  const bareTo = median(runs.map((r) => r.bareTo));
  const ours = median(runs.map((r) => r.ours));
  const ratio = ours / Math.max(bareFrom, bareTo);
  const med = (f: (r: RunFigures) => number) => median(runs.map(f));
  const lines = [
    `${pair.from} → ${pair.to}: bare FROM ${ms(bareFrom)}, bare TO ${ms(bareTo)}, our outage ${ms(ours)}, ratio ${ratio.toFixed(2)} (target ≤ 1.3)`,
    `  each run (bare FROM / ours / bare TO): ${runs.map((r) => `${r.bareFrom.toFixed(0)}/${r.ours.toFixed(0)}/${r.bareTo.toFixed(0)}`).join(', ')} ms`,
    `  the bare commands: FROM stop ${ms(med((r) => r.bareFromCmds.stop))} + start ${ms(med((r) => r.bareFromCmds.start))}; TO stop ${ms(med((r) => r.bareToCmds.stop))} + start ${ms(med((r) => r.bareToCmds.start))}`,
    '  the window by the workflow step records (workflow time, medians):',
  ];
  const steps = runs[0]!.steps;
  steps.forEach((s, i) => lines.push(`    ${s.label.padEnd(72)} ${ms(med((r) => r.steps[i]?.ms ?? NaN)).padStart(8)}`));
  lines.push('  the window by activity (history, medians): dispatch = scheduled→started, run = started→completed,');
  lines.push('  turn = completed→next scheduled (the workflow task between two activities)');
  const acts = runs[0]!.activities;
  acts.forEach((a, i) => {
    const m = (f: (t: ActivityTiming) => number) => ms(med((r) => (r.activities[i] ? f(r.activities[i]!) : NaN)));
    lines.push(
      `    ${a.name.padEnd(24)} dispatch ${m((t) => t.dispatch).padStart(7)}  run ${m((t) => t.run).padStart(8)}  turn ${m((t) => t.turn).padStart(7)}`,
    );
  });
  const sum = (f: (t: ActivityTiming) => number) => med((r) => r.activities.reduce((s, t) => s + f(t), 0));
  lines.push(
    `    in all: activities ${ms(sum((t) => t.run))}, Temporal between them ${ms(sum((t) => t.dispatch + t.turn))} (${acts.length} activities)`,
  );
  return lines;
}

export async function benchReal(): Promise<void> {
  const code = await reexecUnderReaper(['real']);
  if (code !== undefined) {
    process.exitCode = code;
    return;
  }
  installRuntime({ level: 'WARN' });
  const wanted = process.env.BENCH_PAIRS?.split(',');
  const eager = process.env.BENCH_EAGER === '1';
  const out = [
    `real DefenseClaw gateway (../shared/realdc): one /health probe every ${PROBE_MS} ms, medians of ${RUNS} runs`,
    `  ${reaperNote()}`,
    `  Temporal dev server, activity eager execution ${eager ? 'ENABLED (system.enableActivityEagerExecution)' : 'off (default)'}`,
  ];
  for (const pair of PAIRS) {
    if (wanted && !wanted.includes(`${pair.from}-${pair.to}`)) continue;
    const env = await startTestEnvironment(
      eager ? { dynamicConfig: { 'system.enableActivityEagerExecution': 'true' } } : {},
    );
    const h = await Harness.start(
      { versions: [pair.from, pair.to], realBuilds: realBuildsFor(pair.from, pair.to) },
      { use: env },
    );
    const runs: RunFigures[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const r = await oneRun(h, pair);
        runs.push(r);
        process.stderr.write(
          `real ${pair.from} → ${pair.to} run ${i + 1}/${RUNS}: bare FROM ${ms(r.bareFrom)}, ours ${ms(r.ours)}, bare TO ${ms(r.bareTo)}\n`,
        );
      }
    } finally {
      await h.close();
    }
    out.push(...report(pair, runs));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
