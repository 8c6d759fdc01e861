/**
 * npm run bench -- idle, its first part: an idle host worker beside the Temporal SDK's own floor.
 *
 * Each round starts every shape at once on the same dev server (in a rotating order), waits until
 * each one polls, lets them settle IDLE_SETTLE_S, then samples all of them in one loop over the same
 * IDLE_SAMPLE_S window (scripts/idle-sample.ts), and stops them. IDLE_RUNS rounds (default 3);
 * each figure is the median over the rounds, with its [min-max] to show the machine's noise.
 *
 *   floor:       scripts/idle-floor.ts, the bare SDK with one no-op activity;
 *   host worker: `defenseclaw-upgrade worker`, as the launcher runs it (dist/client/main.js), on a
 *   HOME laid out as real DefenseClaw 0.8.10 leaves a host;
 *   both with the systemd unit's runtime tuning (deploy/defenseclaw-upgrade-worker.service:
 *   NODE_OPTIONS, GLIBC_TUNABLES), the target pair, and both with none (a worker started by
 *   hand); and, for the record, the worker with `--with-workflows` (every host before issue 13);
 *   and other builds' host workers named in IDLE_COMPARE (label=/path/to/dist/client/main.js,...),
 *   to see what a change bought.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevServer } from '../worker/agent/dev-server.js';
import { findTemporalCli } from '../worker/agent/temporal-cli.js';
import { median, sampleEach, type IdleCost } from './idle-sample.js';
import { createReal0810Home } from '../test/fixtures/host/real-0810-home.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.resolve(HERE, '..', 'client', 'main.js');
const FLOOR = path.resolve(HERE, 'idle-floor.js');
const ROOT = path.resolve(HERE, '..', '..');
// Past start-up and V8's first memory-reducing collections (~15-30 s after start), which are not idle.
export const SETTLE_S = Number(process.env.IDLE_SETTLE_S ?? 30);
export const SAMPLE_S = Number(process.env.IDLE_SAMPLE_S ?? 30);
const RUNS = Math.max(1, Number(process.env.IDLE_RUNS ?? 3));
const TARGET = 1.1;

/** The runtime's tuning that deploy/defenseclaw-upgrade-worker.service gives the host worker (NODE_OPTIONS, GLIBC_TUNABLES). */
export function shippedRuntimeEnv(): Record<string, string> {
  const unit = fs.readFileSync(path.join(ROOT, 'deploy', 'defenseclaw-upgrade-worker.service'), 'utf8');
  const out: Record<string, string> = {};
  for (const name of ['NODE_OPTIONS', 'GLIBC_TUNABLES']) {
    const v = new RegExp(`^Environment=${name}=(.*)$`, 'm').exec(unit)?.[1]?.trim();
    if (v) out[name] = v;
  }
  return out;
}

interface Shape {
  label: string;
  /** Starts the process with this environment (HOME, the cluster, NODE_OPTIONS). */
  args: (tag: string) => string[];
  /** NODE_OPTIONS and GLIBC_TUNABLES: the unit's, or none. */
  runtimeEnv: Record<string, string>;
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

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** One round: every shape started at once, sampled over one window, stopped. */
async function round(address: string, shapes: Shape[], n: number): Promise<IdleCost[]> {
  const { home } = createReal0810Home('dcu-idle-');
  // Rotate who starts first, so that no shape always starts on a busier machine.
  const order = shapes.map((_, i) => (i + n) % shapes.length);
  const children: ChildProcess[] = [];
  try {
    for (const i of order) {
      const tag = `idle-${i}-${process.pid}-${n}`;
      children[i] = spawn(process.execPath, shapes[i]!.args(tag), {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          TEMPORAL_ADDRESS: address,
          TEMPORAL_NAMESPACE: 'default',
          DEFENSECLAW_HOST: tag,
          DEFENSECLAW_LOG_LEVEL: 'WARN',
          ...shapes[i]!.runtimeEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    await Promise.all(children.map((c) => waitForLine(c, /polling/)));
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const costs = await sampleEach(
      children.map((c) => c.pid!),
      SAMPLE_S,
    );
    costs.forEach((c, i) => {
      if (!c.alive) throw new Error(`${shapes[i]!.label} exited during the idle window`);
    });
    return costs;
  } finally {
    await Promise.all(children.filter(Boolean).map(stop));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const spread = (xs: number[], digits: number) =>
  `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;

export async function benchHostWorkers(): Promise<string[]> {
  const unit = shippedRuntimeEnv();
  const worker = (extra: string[]) => () => [MAIN, 'worker', ...extra];
  const floor = (tag: string) => [FLOOR, tag];
  const shapes: Shape[] = [
    { label: "floor (bare SDK), unit's tuning", args: floor, runtimeEnv: unit },
    { label: "host worker, unit's tuning", args: worker([]), runtimeEnv: unit },
    { label: 'floor (bare SDK), no tuning', args: floor, runtimeEnv: {} },
    { label: 'host worker, no tuning', args: worker([]), runtimeEnv: {} },
    { label: 'host worker --with-workflows (pre-13)', args: worker(['--with-workflows']), runtimeEnv: {} },
    // Other builds' host workers beside these (IDLE_COMPARE=label=/path/to/dist/client/main.js,...).
    ...(process.env.IDLE_COMPARE ?? '')
      .split(',')
      .filter((x) => x.includes('='))
      .map((x) => {
        const [label, main] = [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)];
        return { label: `${label}, unit's tuning`, args: () => [main, 'worker'], runtimeEnv: unit };
      }),
  ];
  const cliPath = await findTemporalCli({});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-idle-srv-'));
  const server = await startDevServer({ cliPath, dbFile: path.join(dir, 't.db'), ui: false });
  const runs: IdleCost[][] = [];
  try {
    for (let n = 0; n < RUNS; n++) {
      runs.push(await round(server.address, shapes, n));
      const r = runs[n]!;
      process.stderr.write(
        `idle round ${n + 1}/${RUNS}: ${shapes.map((s, i) => `${s.label} ${r[i]!.rssMb.toFixed(0)} MB ${r[i]!.cpuPercent.toFixed(3)}%`).join('; ')}\n`,
      );
    }
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const rss = (i: number) => runs.map((r) => r[i]!.rssMb);
  const cpu = (i: number) => runs.map((r) => r[i]!.cpuPercent);
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a (floor 0)');
  const byRound = (of: (i: number) => number[], w: number, f: number) => {
    const xs = runs.map((_, n) => of(w)[n]! / of(f)[n]!).filter(Number.isFinite);
    return xs.length ? `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}` : 'n/a';
  };
  const ratioLine = (w: number, f: number, label: string) => {
    const m = median(rss(w)) / median(rss(f));
    const c = median(cpu(w)) / median(cpu(f));
    const ok = m <= TARGET && (c <= TARGET || !Number.isFinite(c)) ? `within ${TARGET}x` : `OVER ${TARGET}x`;
    return `  ${label.padEnd(48)}RSS ${ratio(median(rss(w)), median(rss(f)))} (rounds ${byRound(rss, w, f)}), CPU ${ratio(median(cpu(w)), median(cpu(f)))} (rounds ${byRound(cpu, w, f)}): ${ok}`;
  };
  return [
    `idle host worker beside the bare SDK: ${RUNS} rounds, the ${shapes.length} shapes side by side in each (${SETTLE_S} s settle, ${SAMPLE_S} s sample); median [min-max] over the rounds`,
    `  ${'shape'.padEnd(48)}${'RSS MB'.padEnd(18)}CPU % of one core`,
    ...shapes.map((s, i) => `  ${s.label.padEnd(48)}${spread(rss(i), 0).padEnd(18)}${spread(cpu(i), 3)}`),
    ratioLine(1, 0, 'ratio, as the unit runs it (target):'),
    ratioLine(3, 2, 'ratio, without tuning:'),
    `  (the unit's tuning: ${
      Object.entries(unit)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    }; the floor: scripts/idle-floor.ts)`,
  ];
}
