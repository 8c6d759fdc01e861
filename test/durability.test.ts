/**
 * Durability: the upgrade survives its worker being SIGKILLed at every step boundary and in the
 * middle of the download, the binary swap and the health polling; it survives the Temporal dev
 * server being SIGKILLed and restarted on the same SQLite file; and a cancel either changes
 * nothing (before the stop) or is compensated back to the exact pre-upgrade state (after it).
 *
 * Workers run in processes of their own (helpers/worker-process.ts). A crashing worker kills
 * itself at the chosen point (helpers/crash-activities.ts); a clean one is then started on the
 * same host and must bring the run to the same host state as an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { resultOf } from '../client/watch.js';
import { startDevServer, type DevServer } from '../worker/agent/dev-server.js';
import { resolveWorkflowCode } from '../worker/worker.js';
import { installRuntime } from '../worker/runtime.js';
import { progressQuery } from '../workflows/definitions.js';
import {
  hostWorkflowId,
  taskQueueForHost,
  type UpgradeInput,
  type UpgradeOptions,
  type UpgradeProgress,
  type UpgradeResult,
} from '../workflows/types.js';
import { createSimHost, type Faults, type HostSnapshot, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import type { CrashMarker } from './helpers/crash-activities.js';
import { startTestEnvironment, temporalCliPath } from './helpers/temporal.js';

installRuntime({ level: 'WARN' });

const FROM = '0.3.0';
const TO = '0.4.0';
const WORKER_SCRIPT = fileURLToPath(new URL('./helpers/worker-process.js', import.meta.url));
const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
/** Protected-era releases whose latest needs the 0.8.4 bridge: a two-hop chain. */
let chainReleases: ReleaseServer;
/** Serves asset bytes at ~1 KiB/s, so that a kill lands in the middle of a download. */
let slowReleases: ReleaseServer;
let tmp: string;
/** The current workflow code, bundled once: every worker process loads it in a second or two. */
let workflowBundlePath: string;
const children = new Set<ChildProcess>();
const rigs: Rig[] = [];
const figures: Array<{ name: string; readyMs: number; resumeMs: number; nextStepMs: number; totalMs: number }> = [];

// ---------------------------------------------------------------------------------------------------------------
// A host, its workers (as processes) and its upgrade

interface WorkerProc {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface ActivityLogEntry {
  name: string;
  at: number;
  pid: number;
}

let hostCount = 0;

class Rig {
  readonly name = `dur-${process.pid}-${++hostCount}`;
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly marker: string;
  readonly activityLog: string;
  private workers = 0;

  constructor(
    readonly sim: SimHost,
    source: ReleaseServer,
    readonly temporal: { address: string; namespace: string; client: Client },
    dir: string,
  ) {
    this.dir = dir;
    this.env = { ...sim.env, ...source.env(), DEFENSECLAW_HOST: this.name };
    this.marker = path.join(dir, 'crash.marker');
    this.activityLog = path.join(dir, 'activities.jsonl');
  }

  static async create(
    opts: {
      faults?: Faults;
      source?: ReleaseServer;
      temporal?: Rig['temporal'];
      version?: string;
      extraEnv?: Record<string, string>;
    } = {},
  ): Promise<Rig> {
    const sim = await createSimHost({ faults: opts.faults, version: opts.version });
    const dir = await fs.mkdtemp(path.join(tmp, 'rig-'));
    const rig = new Rig(
      sim,
      opts.source ?? releases,
      opts.temporal ?? { address: env.address, namespace: env.namespace ?? 'default', client: env.client },
      dir,
    );
    Object.assign(rig.env, opts.extraEnv);
    rigs.push(rig);
    return rig;
  }

  /** Starts a worker process for this host (crashing as `crash` says) and waits until it polls. */
  async worker(crash?: string): Promise<WorkerProc> {
    const n = ++this.workers;
    const config = path.join(this.dir, `worker-${n}.json`);
    await fs.writeFile(
      config,
      JSON.stringify({
        address: this.temporal.address,
        namespace: this.temporal.namespace,
        env: this.env,
        workflowBundlePath,
      }),
      { mode: 0o600 },
    );
    const log = await fs.open(path.join(this.dir, `worker-${n}.log`), 'a');
    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DCU_CRASH_MARKER: this.marker,
      DCU_ACTIVITY_LOG: this.activityLog,
    };
    delete childEnv.DCU_CRASH;
    if (crash) childEnv.DCU_CRASH = crash;
    const child = spawn(process.execPath, [WORKER_SCRIPT, config], {
      env: childEnv,
      stdio: ['ignore', 'pipe', log.fd],
    });
    await log.close();
    children.add(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      });
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${n} of ${this.name} not ready in 60 s`)), 60_000);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (/READY \d+/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`worker ${n} of ${this.name} exited before it was ready (${JSON.stringify(e)})`));
      });
    }).catch(async (err: Error) => {
      const tail = await this.workerLog(n);
      throw new Error(`${err.message}\n${tail}`);
    });
    return { child, pid: child.pid!, exited };
  }

  async workerLog(n: number): Promise<string> {
    const text = await fs.readFile(path.join(this.dir, `worker-${n}.log`), 'utf8').catch(() => '');
    return text.split('\n').slice(-30).join('\n');
  }

  /** Graceful stop of a worker process (SIGTERM, SIGKILL after 10 s). */
  async stop(w: WorkerProc): Promise<void> {
    if (w.child.exitCode !== null || w.child.signalCode !== null) return;
    w.child.kill('SIGTERM');
    const timer = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
    await w.exited;
    clearTimeout(timer);
  }

  async upgrade(options: Partial<UpgradeOptions> = {}, version: string | null = TO): Promise<WorkflowHandle> {
    const input: UpgradeInput = {
      host: this.name,
      ...(version ? { version } : {}),
      options: {
        healthTimeoutSeconds: 30,
        onFailure: 'rollback',
        requireConfirmation: false,
        confirmTimeoutSeconds: 900,
        ...options,
      },
      requestedBy: 'durability-test',
    };
    return this.temporal.client.workflow.start('upgradeHost', {
      taskQueue: taskQueueForHost(this.name),
      workflowId: hostWorkflowId(this.name),
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
  }

  async crashMarker(): Promise<CrashMarker | undefined> {
    const text = await fs.readFile(this.marker, 'utf8').catch(() => undefined);
    return text ? (JSON.parse(text) as CrashMarker) : undefined;
  }

  async activities(): Promise<ActivityLogEntry[]> {
    const text = await fs.readFile(this.activityLog, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ActivityLogEntry);
  }
}

/** Waits until the run's progress satisfies `ok` (polling the `progress` query). */
async function waitForProgress(
  handle: WorkflowHandle,
  ok: (p: UpgradeProgress) => boolean,
  timeoutMs = 90_000,
): Promise<UpgradeProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: UpgradeProgress | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(progressQuery).catch(() => last);
    if (last && ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`progress never matched; last: ${JSON.stringify(last?.steps.slice(-3))}`);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// The host state an uninterrupted run ends in

interface EndState {
  pre: HostSnapshot;
  post: HostSnapshot;
  cursor: string[];
  venvs: string[];
}

let reference: EndState;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The host ended as the uninterrupted reference run did: the same entries changed (type, mode,
 * package version), and where an entry's content does not depend on the host (the binary, the
 * migrated JSON files, the cursor) its bytes are the same too.
 */
function compareToReference(state: EndState): string[] {
  const problems: string[] = [];
  const keys = new Set([...Object.keys(reference.post), ...Object.keys(state.post)]);
  for (const k of keys) {
    const refChanged = !same(reference.pre[k], reference.post[k]);
    const changed = !same(state.pre[k], state.post[k]);
    if (refChanged !== changed) {
      problems.push(
        `${k}: ${changed ? 'changed' : 'unchanged'}, the uninterrupted run ${refChanged ? 'changed' : 'kept'} it`,
      );
      continue;
    }
    if (!changed) continue;
    const r = reference.post[k];
    const s = state.post[k];
    if (r?.type !== s?.type || r?.mode !== s?.mode || r?.version !== s?.version) {
      problems.push(`${k}: ${JSON.stringify(s)} instead of ${JSON.stringify(r)}`);
    } else if (
      // The cursor records when each migration ran (applied_at): it is compared by what it applied, below.
      !k.endsWith('.migration_state.json') &&
      reference.pre[k]?.sha256 === state.pre[k]?.sha256 &&
      r?.sha256 !== s?.sha256
    ) {
      problems.push(`${k}: content differs from the uninterrupted run`);
    }
  }
  if (!same(state.cursor, reference.cursor)) {
    problems.push(`cursor ${JSON.stringify(state.cursor)} instead of ${JSON.stringify(reference.cursor)}`);
  }
  const shape = (v: string[]) => v.map((n) => n.replace(/-[A-Za-z0-9]+$/, '-*').replace(/upgrade-\S+$/, '<backup>'));
  if (!same(shape(state.venvs), shape(reference.venvs))) {
    problems.push(
      `venvs/ holds ${JSON.stringify(state.venvs)}; the uninterrupted run left ${JSON.stringify(reference.venvs)}`,
    );
  }
  return problems;
}

async function endState(sim: SimHost, pre: HostSnapshot): Promise<EndState> {
  return {
    pre,
    post: await sim.snapshot(),
    cursor: (await sim.migrationState())?.applied ?? [],
    venvs: (await fs.readdir(path.join(sim.dataDir, 'venvs')).catch(() => [] as string[])).sort(),
  };
}

/** Upgraded, healthy on 0.4.0, one daemon, one backup, nothing staged left: as an uninterrupted run. */
async function assertUpgraded(rig: Rig, r: UpgradeResult, state: EndState): Promise<void> {
  const { sim } = rig;
  assert.equal(r.outcome, 'upgraded', r.message);
  assert.equal(r.from, FROM);
  assert.equal(r.to, TO);
  assert.equal(await sim.gatewayVersion(), TO);
  const health = await sim.health();
  assert.equal(health?.gateway.state, 'running');
  assert.equal(health?.provenance?.binary_version, TO);
  assert.equal((await sim.daemonPids()).length, 1, 'exactly one gateway daemon');
  assert.equal(await sim.venvPackageVersion(), TO);
  assert.equal(await sim.cliVersion(), `defenseclaw ${TO}`);
  assert.equal(new Set(state.cursor).size, state.cursor.length, 'each migration recorded once');
  assert.deepEqual(await fs.readdir(path.join(sim.dataDir, 'staging')), [], 'no staging folder left');
  assert.deepEqual((await fs.readdir(sim.binDir)).sort(), ['defenseclaw', 'defenseclaw-gateway'], 'no staged binary');
  assert.deepEqual(await fs.readdir(path.join(sim.dataDir, 'backups')), [r.backupId], 'exactly one backup');
  const problems = compareToReference(state);
  assert.deepEqual(problems, [], 'the host state differs from an uninterrupted run');
}

// ---------------------------------------------------------------------------------------------------------------

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-durability-'));
  // The prebuilt bundle when it is as new as the compiled workflows; otherwise bundle them once
  // here rather than in every worker process.
  const code = resolveWorkflowCode();
  workflowBundlePath = path.join(tmp, 'workflow-bundle.cjs');
  if ('workflowBundle' in code) await fs.copyFile(code.workflowBundle.codePath, workflowBundlePath);
  else {
    const { code: js } = await bundleWorkflowCode({ workflowsPath: code.workflowsPath, logger: quietLogger });
    await fs.writeFile(workflowBundlePath, js);
  }
  [env, releases, slowReleases, chainReleases] = await Promise.all([
    startTestEnvironment(),
    startReleaseServer(),
    startReleaseServer({ throttleBytesPerSec: 1024 }),
    startReleaseServer({ versions: ['0.8.3', '0.8.4', '0.8.5'] }),
  ]);
  // The reference: one uninterrupted run, in a worker process like every other case.
  const rig = await Rig.create();
  const pre = await rig.sim.snapshot();
  const w = await rig.worker();
  const r = await withTimeout(resultOf(await rig.upgrade()), 120_000, 'reference run');
  reference = await endState(rig.sim, pre);
  await rig.stop(w);
  assert.equal(r.outcome, 'upgraded', r.message);
  assert.ok(reference.cursor.length > 0);
  assert.equal(reference.venvs.length, 2, `venvs/ after an upgrade: ${reference.venvs.join(', ')}`);
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(rigs.map((r) => r.sim.cleanup()));
  await Promise.all([releases?.close(), slowReleases?.close(), chainReleases?.close()]);
  await env?.teardown();
  if (figures.length) {
    const rows = figures
      .sort((a, b) => b.resumeMs - a.resumeMs)
      .map(
        (f) =>
          `  ${f.name.padEnd(40)} kill→new worker ${f.readyMs} ms, kill→retry ${f.resumeMs} ms (ready→retry ${f.resumeMs - f.readyMs} ms), kill→next step ${f.nextStepMs} ms, run ${f.totalMs} ms`,
      );
    const longest = figures[0]!;
    process.stdout.write(
      `# kill-to-resume (from the SIGKILL to the first activity on the new worker):\n${rows.map((r) => `#${r}`).join('\n')}\n` +
        `# longest kill-to-resume: ${longest.resumeMs} ms (${longest.name})\n`,
    );
  }
  if (process.env.DCU_KEEP_LOGS !== '1') await fs.rm(tmp, { recursive: true, force: true });
});

interface CrashCase {
  crash: string;
  phase: CrashMarker['phase'];
  faults?: Faults;
  slow?: boolean;
  options?: Partial<UpgradeOptions>;
  check?: (rig: Rig) => Promise<void>;
}

const CRASHES: CrashCase[] = [
  // The slow ones first, so that they do not run alone at the end.
  {
    crash: 'downloadArtifact:mid:1500:tar.gz',
    phase: 'mid',
    slow: true,
    check: async () => {
      const resumed = slowReleases.requests.filter(
        (q) => q.kind === 'asset' && q.path.endsWith('.tar.gz') && /^bytes=[1-9][0-9]*-$/.test(q.range ?? ''),
      );
      assert.ok(resumed.length > 0, 'the retried download resumed with a Range request');
    },
  },
  { crash: 'waitHealthy:mid:1500', phase: 'mid', faults: { gateway: { [TO]: { healthDelayMs: 8000 } } } },
  // One kill at every step boundary of the runbook, and inside the steps that do more than one thing.
  { crash: 'resolveRelease:before:0', phase: 'before' },
  { crash: 'detectPlatform:before:0', phase: 'before' },
  { crash: 'createStaging:after:0', phase: 'after' },
  { crash: 'preflight:after:0', phase: 'after' },
  { crash: 'verifySignature:before:0', phase: 'before' },
  { crash: 'stageGateway:after:0', phase: 'after' },
  { crash: 'prepareVenv:after:0', phase: 'after' },
  { crash: 'createBackup:mid:rename', phase: 'mid' },
  { crash: 'stopGateway:before:0', phase: 'before' },
  { crash: 'stopGateway:after:0', phase: 'after' },
  { crash: 'installGateway:mid:rename', phase: 'mid' },
  { crash: 'installGateway:after:0', phase: 'after' },
  { crash: 'switchVenv:after:0', phase: 'after' },
  { crash: 'runMigrations:after:0', phase: 'after' },
  { crash: 'startGateway:after:0', phase: 'after' },
  { crash: 'removeStaging:before:0', phase: 'before' },
];

describe('durability', { concurrency: 3 }, () => {
  for (const c of CRASHES) {
    it(
      `worker SIGKILLed at ${c.crash}: a new worker finishes the upgrade as if nothing happened`,
      { timeout: 240_000 },
      async (t) => {
        const rig = await Rig.create({ faults: c.faults, source: c.slow ? slowReleases : releases });
        const pre = await rig.sim.snapshot();
        const t0 = Date.now();
        const crashing = await rig.worker(c.crash);
        const handle = await rig.upgrade(c.options);
        const died = await withTimeout(crashing.exited, 120_000, `the worker crashing at ${c.crash}`);
        assert.equal(died.signal, 'SIGKILL', `the crashing worker died by SIGKILL (${JSON.stringify(died)})`);
        const marker = await rig.crashMarker();
        assert.equal(marker?.phase, c.phase, `crashed ${c.phase} ${c.crash.split(':')[0]}`);
        const clean = await rig.worker();
        const readyMs = Date.now() - marker!.killedAt;
        const r = await withTimeout(resultOf(handle), 150_000, 'the upgrade after the crash');
        const totalMs = Date.now() - t0;
        await assertUpgraded(rig, r, await endState(rig.sim, pre));
        await c.check?.(rig);
        await rig.stop(clean);
        const after = (await rig.activities()).filter((a) => a.pid === clean.pid);
        assert.ok(after.length >= 1, 'the new worker ran the rest of the upgrade');
        const resumeMs = after[0]!.at - marker!.killedAt;
        // The workflow moved on: the next activity, or its end when the killed one was the last.
        const closeTime = (await handle.describe()).closeTime?.getTime();
        const nextStepMs = (after[1]?.at ?? closeTime ?? NaN) - marker!.killedAt;
        figures.push({ name: c.crash, readyMs, resumeMs, nextStepMs, totalMs });
        // Bounded, not tight: heartbeats (5 s) must notice the dead worker, not a start-to-close timeout (minutes).
        assert.ok(resumeMs < 30_000, `the work resumed ${resumeMs} ms after the kill`);
        t.diagnostic(
          `kill→new worker ready ${readyMs} ms, kill→retry ${resumeMs} ms, kill→next step ${nextStepMs} ms, whole run ${totalMs} ms`,
        );
      },
    );
  }

  it(
    'the Temporal dev server SIGKILLed mid-upgrade and restarted on the same SQLite file: the upgrade completes',
    { timeout: 240_000 },
    async (t) => {
      const cliPath = await temporalCliPath();
      const dbFile = path.join(tmp, 'server', 'temporal.db');
      let server: DevServer = await startDevServer({ cliPath, dbFile, ui: false, stopGraceMs: 5000 });
      const connect = async (s: DevServer) => {
        const connection = await Connection.connect({ address: s.address });
        return { connection, client: new Client({ connection, namespace: s.namespace }) };
      };
      let c1 = await connect(server);
      try {
        const rig = await Rig.create({
          faults: { gateway: { [TO]: { healthDelayMs: 4000 } } },
          temporal: { address: server.address, namespace: server.namespace, client: c1.client },
        });
        const pre = await rig.sim.snapshot();
        const w = await rig.worker();
        const handle = await rig.upgrade();
        // Inside the downtime window: the new gateway started and is still `starting`.
        await waitForProgress(handle, (p) => p.steps.some((s) => s.name === 'health' && s.status === 'running'));
        const port = server.port;
        server.kill();
        await server.exited;
        await c1.connection.close().catch(() => undefined);
        const down = Date.now();
        await sleep(1000);
        server = await startDevServer({ cliPath, dbFile, port, ui: false, stopGraceMs: 5000 });
        t.diagnostic(`dev server down ${Date.now() - down} ms (restart ${server.startMs} ms)`);
        c1 = await connect(server);
        const r = await withTimeout(
          resultOf(c1.client.workflow.getHandle(handle.workflowId)),
          150_000,
          'the upgrade after the server restart',
        );
        await assertUpgraded(rig, r, await endState(rig.sim, pre));
        assert.equal(w.child.exitCode, null, 'the worker rode out the outage');
        await rig.stop(w);
      } finally {
        await c1.connection.close().catch(() => undefined);
        await server.stop();
      }
    },
  );

  it(
    'cancel while the run waits for confirmation (before the stop): nothing changes',
    { timeout: 180_000 },
    async () => {
      const rig = await Rig.create();
      const pre = await rig.sim.snapshot();
      const daemons = await rig.sim.daemonPids();
      const w = await rig.worker();
      const handle = await rig.upgrade({ requireConfirmation: true });
      await waitForProgress(handle, (p) => p.phase === 'awaiting-confirmation');
      await handle.cancel();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(
        err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure,
        `cancelled: ${String(err)}`,
      );
      const p = await handle.query(progressQuery);
      assert.equal(p.outcome, 'cancelled');
      assert.ok(!p.steps.some((s) => s.name === 'stop' || s.name === 'backup'), 'never stopped or backed up');
      await rig.stop(w);
      assert.deepEqual(await rig.sim.snapshot(), pre);
      assert.deepEqual(await rig.sim.daemonPids(), daemons, 'the same gateway daemon still runs: never stopped');
      assert.equal((await rig.sim.health())?.provenance?.binary_version, FROM);
      assert.deepEqual(await fs.readdir(path.join(rig.sim.dataDir, 'staging')), []);
      assert.deepEqual(
        await fs.readdir(path.join(rig.sim.dataDir, 'venvs')).catch(() => []),
        [],
        'prepared venv discarded',
      );
      assert.deepEqual(await fs.readdir(path.join(rig.sim.dataDir, 'backups')).catch(() => []), [], 'no backup made');
      assert.deepEqual((await fs.readdir(rig.sim.binDir)).sort(), ['defenseclaw', 'defenseclaw-gateway']);
    },
  );

  it(
    'cancel after the stop (while /health is polled): compensation restores the pre-upgrade state',
    { timeout: 180_000 },
    async () => {
      const rig = await Rig.create({ faults: { gateway: { [TO]: { health: 'starting' } } } });
      const pre = await rig.sim.snapshot();
      const w = await rig.worker();
      const handle = await rig.upgrade({ healthTimeoutSeconds: 120 });
      await waitForProgress(handle, (p) => p.steps.some((s) => s.name === 'health' && s.status === 'running'));
      assert.equal(await rig.sim.gatewayVersion(), TO, 'the new binary was in place when the cancel came');
      await handle.cancel();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(
        err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure,
        `cancelled: ${String(err)}`,
      );
      const p = await handle.query(progressQuery);
      assert.equal(p.outcome, 'rolled-back', p.message);
      assert.match(p.message ?? '', /was cancelled; rolled back to 0\.3\.0/);
      await rig.stop(w);
      assert.deepEqual(await rig.sim.snapshot(), pre);
      assert.equal(await rig.sim.gatewayVersion(), FROM);
      const health = await rig.sim.health();
      assert.equal(health?.gateway.state, 'running');
      assert.equal(health?.provenance?.binary_version, FROM);
      assert.equal(await rig.sim.venvPackageVersion(), FROM);
      assert.deepEqual(await fs.readdir(path.join(rig.sim.dataDir, 'staging')), []);
    },
  );

  it(
    'a bridge chain (0.8.3 → 0.8.4 → 0.8.5) SIGKILLed inside the second hop’s window resumes at that hop and step',
    { timeout: 300_000 },
    async () => {
      const rig = await Rig.create({
        version: '0.8.3',
        source: chainReleases,
        extraEnv: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' },
      });
      // Killed after the second hop's binary swap, before its migrations ran (the match picks hop 2's call).
      const crashing = await rig.worker('runMigrations:before:0:"toVersion":"0.8.5"');
      const handle = await rig.upgrade({}, null);
      const died = await withTimeout(crashing.exited, 180_000, 'the worker crashing in hop 2');
      assert.equal(died.signal, 'SIGKILL');
      assert.equal(await rig.sim.gatewayVersion(), '0.8.5', 'killed inside hop 2: its binary was already swapped');
      const clean = await rig.worker();
      const r = await withTimeout(resultOf(handle), 180_000, 'the chain after the crash');
      await rig.stop(clean);
      assert.equal(r.outcome, 'upgraded', r.message);
      assert.match(r.message, /from 0\.8\.3 to 0\.8\.5 through 0\.8\.4 \(bridge\)/);
      assert.equal(await rig.sim.gatewayVersion(), '0.8.5');
      assert.equal((await rig.sim.health())?.provenance?.binary_version, '0.8.5');
      // Nothing was done twice: hop 1 ran once, and the new worker started at hop 2's migrations.
      const byNew = (await rig.activities()).filter((a) => a.pid === clean.pid).map((a) => a.name);
      // Beside it, the new worker re-takes DefenseClaw's upgrade lock that the dead one held (issue 20).
      assert.ok(byNew.includes('holdNativeLock'), `the new worker re-took the lock: ${byNew.join(', ')}`);
      const steps = byNew.filter((n) => n !== 'holdNativeLock');
      assert.equal(steps[0], 'runMigrations', `the new worker resumed at hop 2's migrations: ${byNew.join(', ')}`);
      for (const name of ['createBackup', 'stopGateway', 'installGateway', 'resolveRelease']) {
        assert.ok(!byNew.includes(name), `${name} was not run again`);
      }
      assert.equal(r.steps.filter((s) => s.name === 'backup').length, 2, 'one backup per hop');
      assert.equal((await fs.readdir(path.join(rig.sim.dataDir, 'backups'))).length, 2);
      const cursor = (await rig.sim.migrationState())?.applied ?? [];
      assert.equal(new Set(cursor).size, cursor.length, 'each migration recorded once');
      assert.ok(cursor.includes('0.8.5'));
    },
  );
});
