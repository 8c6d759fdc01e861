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
import { execa } from 'execa';
import { connectTemporal } from '../client/temporal.js';
import { readAgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { startDevServer } from '../worker/agent/dev-server.js';
import { hostWorkflowId } from '../workflows/types.js';
import { createSimHost } from '../test/fixtures/host/sim-host.js';
import { startReleaseServer } from '../test/fixtures/releases/server.js';
import { findTemporalCli, projectCacheDir } from '../worker/agent/temporal-cli.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
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

/** The NODE_OPTIONS that deploy/defenseclaw-upgrade-worker.service gives the host worker. */
function shippedNodeOptions(): string {
  const unit = fs.readFileSync(path.join(ROOT, 'deploy', 'defenseclaw-upgrade-worker.service'), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1]?.trim() ?? '';
}

/** A worker with nothing of ours: the SDK's own cost, for comparison. */
async function bareSdkWorker(address: string, nodeOptions: string) {
  const program = [
    "const { NativeConnection, Worker } = require('@temporalio/worker');",
    '(async () => {',
    `  const connection = await NativeConnection.connect({ address: ${JSON.stringify(address)} });`,
    "  const w = await Worker.create({ connection, taskQueue: 'bench-bare-sdk', activities: { a: async () => 1 } });",
    "  console.log('polling'); await w.run();",
    '})();',
  ].join('\n');
  const child = spawn(process.execPath, ['-e', program], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: nodeOptions },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return measureIdle(child);
}

async function hostWorker(address: string, withWorkflows: boolean, nodeOptions = process.env.IDLE_NODE_OPTIONS) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-idle-'));
  const child = spawn(process.execPath, [MAIN, 'worker', ...(withWorkflows ? ['--with-workflows'] : [])], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      DEFENSECLAW_HOST: `idle-${withWorkflows ? 'full' : 'acts'}-${process.pid}`,
      DEFENSECLAW_LOG_LEVEL: 'WARN',
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    return await measureIdle(child);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** Once the worker polls: let it settle, sample its idle cost, stop it. */
async function measureIdle(child: ChildProcess) {
  try {
    await waitForLine(child, /polling/);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    return await idleCost([child.pid!]);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
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
    const unitOptions = shippedNodeOptions();
    const shipped = await hostWorker(server.address, false, unitOptions);
    // The floor: the Temporal SDK's native core and an activity worker with one no-op activity.
    const floor = await bareSdkWorker(server.address, unitOptions);
    return [
      `idle host worker (${SETTLE_S} s settle, ${SAMPLE_S} s sample, RSS peak, CPU % of one core)`,
      `  before: activities + workflow bundle:  ${mb(full.rssMb)} RSS, ${pct(full.cpuPercent)} CPU`,
      `  after:  activities only:               ${mb(acts.rssMb)} RSS, ${pct(acts.cpuPercent)} CPU   (target <= 90 MB, <= 0.1%)`,
      `  after, as the systemd unit runs it:    ${mb(shipped.rssMb)} RSS, ${pct(shipped.cpuPercent)} CPU   (NODE_OPTIONS=${unitOptions})`,
      `  floor: the bare SDK, one no-op activity: ${mb(floor.rssMb)} RSS, ${pct(floor.cpuPercent)} CPU`,
    ];
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The local agent, as a user has it after `defenseclaw-upgrade`: awake (dev server + agent) for
 * its idle period after a run, then asleep (no process); and a sleeping agent woken by the CLI
 * for a new upgrade, timed from the command's start to the first activity's start.
 */
export async function benchAgent(): Promise<string[]> {
  const releases = await startReleaseServer();
  const host = await createSimHost({ version: '0.3.0' });
  const idleS = Number(process.env.IDLE_AGENT_SECONDS ?? SETTLE_S + SAMPLE_S + 4);
  const env: Record<string, string> = {
    ...host.env,
    ...releases.env(),
    DEFENSECLAW_HOST: 'bench-idle-agent',
    DEFENSECLAW_AGENT_IDLE_SECONDS: String(idleS),
    DEFENSECLAW_CACHE_DIR: projectCacheDir(process.env),
    NO_COLOR: '1',
  };
  if (process.env.TEMPORAL_CLI_PATH) env.TEMPORAL_CLI_PATH = process.env.TEMPORAL_CLI_PATH;
  const cli = (args: string[]) => execa(process.execPath, [MAIN, ...args], { env, extendEnv: false, reject: false });
  const dataDir = env.DEFENSECLAW_HOME!;
  try {
    const first = await cli(['upgrade', '--yes', '--json', '--version', '0.3.1']);
    if (first.exitCode !== 0) throw new Error(`bench agent upgrade failed: ${first.stderr}`);
    const info = (await readAgentInfo(dataDir))!;
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const awake = await idleCost([info.pid, info.serverPid!]);
    const node = await idleCost([info.pid], 2);
    // Asleep: wait for it to exit by itself.
    const deadline = Date.now() + (idleS + 30) * 1000;
    while (isAlive(info.pid) || (info.serverPid && isAlive(info.serverPid))) {
      if (Date.now() > deadline) throw new Error('the agent did not sleep');
      await new Promise((r) => setTimeout(r, 250));
    }
    const slept = (await readAgentInfo(dataDir))!;
    // Wake for a new run.
    const t0 = Date.now();
    const second = await cli(['upgrade', '--yes', '--json', '--version', '0.4.0']);
    if (second.exitCode !== 0) throw new Error(`bench agent wake upgrade failed: ${second.stderr}`);
    const woke = (await readAgentInfo(dataDir))!;
    const c = await connectTemporal({ address: woke.address!, useEnvConfig: false });
    let firstStep = NaN;
    try {
      const h = await c.client.workflow.getHandle(hostWorkflowId('bench-idle-agent')).fetchHistory();
      const started = h.events?.find((e) => e.activityTaskStartedEventAttributes);
      const t = started?.eventTime;
      if (t) firstStep = Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) - t0;
    } finally {
      await c.close();
    }
    return [
      'local agent (dev server + agent process)',
      `  awake (before this change: always):    ${mb(awake.rssMb)} RSS (agent ${mb(node.rssMb)}), ${pct(awake.cpuPercent)} CPU, forever`,
      `  after:  awake for ${idleS} s after a run (default 300), then asleep: ${slept.asleep ? '0 MB, 0% CPU (no process)' : 'DID NOT SLEEP'}`,
      `  wake a sleeping agent to the first step of a run: ${(firstStep / 1000).toFixed(2)} s (target <= 3 s)`,
    ];
  } finally {
    await cli(['agent', 'stop']);
    await host.cleanup();
    await releases.close();
  }
}

async function main(): Promise<void> {
  const lines = [...(await benchHostWorkers()), ...(await benchAgent())];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`bench-idle failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
