/**
 * A fleet simulator: N simulated DefenseClaw hosts on this machine (createSimHost each: own HOME,
 * own gateway port, own venv), each with its real worker on its own task queue, all sharing one
 * NativeConnection; faults per host. Plus the fleet worker, in this process or as a separate
 * `defenseclaw-upgrade fleet worker` process (the one a test may kill).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkflowIdConflictPolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../../activities/host/index.js';
import { loadHostConfig, type HostConfig } from '../../worker/host-config.js';
import { createHostWorker, resolveWorkflowCode } from '../../worker/worker.js';
import type { fleetRollout } from '../../workflows/fleet/fleet.js';
import { FLEET_TASK_QUEUE, type FleetInput } from '../../workflows/fleet/fleet-types.js';
import { SEARCH_ATTRIBUTES, WORKFLOW_FLEET } from '../../workflows/types.js';
import { createSimHost, type Faults, type SimHost, type SimHostOptions } from '../fixtures/host/sim-host.js';
import type { ReleaseServer } from '../fixtures/releases/server.js';

export type Activities = ReturnType<typeof createActivities>;

export interface FleetHostSpec extends SimHostOptions {
  /** Start this host's worker (default true). false: nobody polls its queue (an unreachable host). */
  worker?: boolean;
  /** Replace some of the host's activities (e.g. a slow step). */
  wrap?: (a: Activities) => Partial<Activities>;
  /** More of the host's own environment (e.g. DEFENSECLAW_RELEASE_MIRROR). */
  env?: Record<string, string>;
  /** Activities this host's worker does not register (a worker of an earlier release). */
  omit?: (keyof Activities)[];
}

export interface FleetSimOptions {
  connection: NativeConnection;
  namespace: string;
  releases: ReleaseServer;
  /** How many hosts, or one spec per host. */
  hosts: number | FleetHostSpec[];
  /** Host name prefix (default `f<pid>-<counter>`); hosts are `<prefix>-<i>`, i from 1. */
  prefix?: string;
  /** Hosts created at the same time (each builds a venv; default 3). */
  concurrency?: number;
}

export interface FleetSimHost {
  name: string;
  sim: SimHost;
  config: HostConfig;
  worker?: Worker;
  running?: Promise<void>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  setFaults(f: Faults): Promise<void>;
}

let fleets = 0;

/** Runs `fn` over `items` with at most `n` at a time; results in order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length && errors.length === 0) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, lane));
  if (errors.length) throw errors[0];
  return out;
}

export class FleetSim {
  private constructor(
    readonly opts: FleetSimOptions,
    readonly hosts: FleetSimHost[],
  ) {}

  get names(): string[] {
    return this.hosts.map((h) => h.name);
  }

  host(name: string): FleetSimHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no simulated host ${name}`);
    return h;
  }

  static async create(opts: FleetSimOptions): Promise<FleetSim> {
    const specs: FleetHostSpec[] =
      typeof opts.hosts === 'number' ? Array.from({ length: opts.hosts }, () => ({})) : opts.hosts;
    const prefix = opts.prefix ?? `f${process.pid}-${++fleets}`;
    const made: FleetSimHost[] = [];
    try {
      await mapLimit(specs, opts.concurrency ?? 3, async (spec, i) => {
        const h = await makeHost(opts, spec, `${prefix}-${i + 1}`);
        made[i] = h;
        return h;
      });
    } catch (err) {
      await Promise.all(made.filter(Boolean).map((h) => h.stopWorker().then(() => h.sim.cleanup())));
      throw err;
    }
    return new FleetSim(opts, made);
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.stopWorker()));
    await mapLimit(this.hosts, 8, (h) => h.sim.cleanup());
  }
}

async function makeHost(opts: FleetSimOptions, spec: FleetHostSpec, name: string): Promise<FleetSimHost> {
  const sim = await createSimHost(spec);
  const config = loadHostConfig({ ...sim.env, ...opts.releases.env(), ...spec.env, DEFENSECLAW_HOST: name });
  const h: FleetSimHost = {
    name,
    sim,
    config,
    async startWorker() {
      if (h.worker && h.worker.getState() === 'RUNNING') return;
      const base = createActivities(config);
      const activities: Partial<Activities> = spec.wrap ? { ...base, ...spec.wrap(base) } : { ...base };
      for (const name of spec.omit ?? []) delete activities[name];
      const worker = await createHostWorker({
        connection: opts.connection,
        namespace: opts.namespace,
        hostConfig: config,
        activities,
        shutdownGraceTime: '1s',
      });
      h.worker = worker;
      h.running = worker.run();
      h.running.catch(() => undefined);
    },
    async stopWorker() {
      const w = h.worker;
      if (!w) return;
      if (w.getState() === 'RUNNING') w.shutdown();
      await h.running?.catch(() => undefined);
      h.worker = undefined;
      h.running = undefined;
    },
    setFaults: (f) => sim.setFaults(f),
  };
  try {
    if (spec.worker !== false) await h.startWorker();
  } catch (err) {
    await sim.cleanup();
    throw err;
  }
  return h;
}

// -------------------------------------------------------------------------------------------------
// The fleet worker and starting a rollout

/** The fleet worker in this process (no activities), on the fleet queue. */
export async function startFleetWorker(
  connection: NativeConnection,
  namespace: string,
  taskQueue = FLEET_TASK_QUEUE,
): Promise<{ worker: Worker; running: Promise<void>; stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    ...resolveWorkflowCode(),
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  running.catch(() => undefined);
  return {
    worker,
    running,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
    },
  };
}

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'client', 'main.js');

export interface FleetWorkerProcess {
  child: ChildProcess;
  /** Resolves once the worker said it polls. */
  ready: Promise<void>;
  output(): string;
  /** SIGKILL: no graceful shutdown, as a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** `defenseclaw-upgrade fleet worker` as its own process, pointed at the given server. */
/** Every fleet worker process spawned here and not yet exited: a cancelled test must not leave one behind. */
const liveFleetWorkers = new Set<ChildProcess>();

/** SIGKILLs every fleet worker process still running (for a test file's `after`). */
export function killFleetWorkers(): void {
  for (const child of liveFleetWorkers) child.kill('SIGKILL');
}

export function spawnFleetWorker(address: string, namespace: string, taskQueue = FLEET_TASK_QUEUE): FleetWorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
  delete env.TEMPORAL_PROFILE;
  const child = spawn(process.execPath, [MAIN, 'fleet', 'worker', '--task-queue', taskQueue], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveFleetWorkers.add(child);
  let out = '';
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      liveFleetWorkers.delete(child);
      resolve();
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('fleet worker polling')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`fleet worker exited (${code}) before polling: ${out.slice(-2000)}`)),
    );
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Starts a rollout the way the CLI does (fleet queue, fleet ID as workflow ID, search attributes). */
export async function startFleet(
  client: Client,
  input: FleetInput,
  taskQueue = FLEET_TASK_QUEUE,
): Promise<WorkflowHandle<typeof fleetRollout>> {
  return client.workflow.start<typeof fleetRollout>(WORKFLOW_FLEET, {
    taskQueue,
    workflowId: input.fleetId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    typedSearchAttributes: [
      { key: defineSearchAttributeKey(SEARCH_ATTRIBUTES.fleetId, 'KEYWORD'), value: input.fleetId },
    ],
  });
}
