/**
 * npm run bench -- idle   (also part of a plain `npm run bench`)
 *
 * What the upgrader costs a host while it does nothing, measured the same way for each shape:
 * the process (and the local agent's dev server) is started, left ~IDLE_SETTLE_S to settle, then
 * sampled over IDLE_SAMPLE_S seconds from /proc: resident memory (VmRSS, the largest sample) and
 * CPU (utime + stime over the window, in % of one core).
 *
 *   host worker, activities and workflows: `defenseclaw-upgrade worker --with-workflows`, i.e. what
 *       every host ran before issue 13 (the whole workflow bundle on the host's queue);
 *   host worker, activities only: `defenseclaw-upgrade worker`, now;
 *   local agent awake: the dev server + the agent's workers, after a run;
 *   local agent asleep: after its idle period, with no run open (no process left);
 *   wake: a sleeping agent to the first step of a new run, as `defenseclaw-upgrade` does it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevServer } from '../worker/dev-server.js';
import { findTemporalCli } from '../worker/temporal-cli.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');
const SETTLE_S = Number(process.env.IDLE_SETTLE_S ?? 8);
const SAMPLE_S = Number(process.env.IDLE_SAMPLE_S ?? 10);
const TICKS = 100; // USER_HZ on Linux

/** Resident memory in MB and CPU ticks (utime + stime) of a pid, from /proc. */
export function procSample(pid: number): { rssMb: number; ticks: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssMb: rss ? Number(rss[1]) / 1024 : 0, ticks };
  } catch {
    return undefined;
  }
}

/** Sums RSS and CPU of the pids over the sample window. */
export async function idleCost(
  pids: number[],
  seconds = SAMPLE_S,
): Promise<{ rssMb: number; cpuPercent: number; alive: number }> {
  const first = pids.map(procSample);
  let peak = 0;
  const t0 = performance.now();
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const rss = pids.map(procSample).reduce((s, x) => s + (x?.rssMb ?? 0), 0);
    peak = Math.max(peak, rss);
  }
  const wall = (performance.now() - t0) / 1000;
  const last = pids.map(procSample);
  let ticks = 0;
  let alive = 0;
  last.forEach((x, i) => {
    if (!x) return;
    alive += 1;
    ticks += x.ticks - (first[i]?.ticks ?? x.ticks);
  });
  return { rssMb: peak, cpuPercent: (ticks / TICKS / wall) * 100, alive };
}

function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const on = (b: Buffer) => {
      out += b.toString();
      if (re.test(out)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code} before ${re}:\n${out}`));
    });
  });
}

async function hostWorker(address: string, withWorkflows: boolean) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-idle-'));
  const child = spawn(process.execPath, [MAIN, 'worker', ...(withWorkflows ? ['--with-workflows'] : [])], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      DEFENSECLAW_HOST: `idle-${withWorkflows ? 'full' : 'acts'}-${process.pid}`,
      DEFENSECLAW_LOG_LEVEL: 'WARN',
      ...(process.env.IDLE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.IDLE_NODE_OPTIONS } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await waitForLine(child, /polling/);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    return await idleCost([child.pid!]);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const mb = (x: number) => `${x.toFixed(0)} MB`;
const pct = (x: number) => `${x.toFixed(2)}%`;

export async function benchHostWorkers(): Promise<string[]> {
  const cliPath = await findTemporalCli({});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-idle-srv-'));
  const server = await startDevServer({ cliPath, dbFile: path.join(dir, 't.db'), ui: false });
  try {
    const full = await hostWorker(server.address, true);
    const acts = await hostWorker(server.address, false);
    return [
      `idle host worker (${SETTLE_S} s settle, ${SAMPLE_S} s sample, RSS peak, CPU % of one core)`,
      `  before: activities + workflow bundle:  ${mb(full.rssMb)} RSS, ${pct(full.cpuPercent)} CPU`,
      `  after:  activities only:               ${mb(acts.rssMb)} RSS, ${pct(acts.cpuPercent)} CPU   (target <= 90 MB, <= 0.1%)`,
    ];
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const lines = await benchHostWorkers();
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`bench-idle failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
