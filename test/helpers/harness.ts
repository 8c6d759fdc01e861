/**
 * Integration harness: a real Temporal dev server (shared per test file), the GitHub-like
 * release server, simulated DefenseClaw hosts, and each host's real worker on its own task
 * queue, configured exactly as a user would configure one (environment variables). As in a
 * cluster, host workers run activities only; the workflows run on one controller worker on the
 * fleet queue (where the CLI starts them when TEMPORAL_ADDRESS is set).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import { createActivities } from '../../activities/host/index.js';
import { createControllerActivities } from '../../activities/controller/controller.js';
import { loadHostConfig, type HostConfig } from '../../worker/host-config.js';
import { createHostWorker, createWorkflowWorker } from '../../worker/worker.js';
import { FLEET_TASK_QUEUE } from '../../workflows/fleet/fleet-types.js';
import { resultOf } from '../../client/watch.js';
import {
  hostWorkflowId,
  type RollbackInput,
  type UpgradeInput,
  type UpgradeOptions,
  type UpgradeResult,
} from '../../workflows/types.js';
import { createSimHost, type SimHost, type SimHostOptions } from '../fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer, type StartReleaseServerOptions } from '../fixtures/releases/server.js';
import { startTestEnvironment, temporalCliPath } from './temporal.js';

const run = promisify(execFile);

export type Activities = ReturnType<typeof createActivities>;

/**
 * The Temporal a harness runs on: a dev server (TestWorkflowEnvironment) or any cluster that
 * offers the same (helpers/cluster.ts), with the environment the Temporal CLI needs to reach it.
 */
export type TemporalEnv = Pick<
  TestWorkflowEnvironment,
  'address' | 'namespace' | 'client' | 'nativeConnection' | 'teardown'
> & {
  cliEnv?: Record<string, string>;
};

export interface HostUnderTest<H extends HostFixture = SimHost> {
  name: string;
  sim: H;
  config: HostConfig;
  worker: Worker;
  running: Promise<void>;
  /** Starts an upgrade workflow as the CLI does: on the controller's queue, its activities on this host's. */
  upgrade(opts?: { version?: string; options?: Partial<UpgradeOptions> }): Promise<WorkflowHandle>;
  rollback(input?: Partial<RollbackInput>): Promise<WorkflowHandle>;
  /** Waits for a run's end and answers its result (completed or failed with a result). */
  result(handle: WorkflowHandle): Promise<UpgradeResult>;
  stopWorker(): Promise<void>;
}

/** What a worker needs of a host fixture: its environment, and a way to clean it up. */
export interface HostFixture {
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export class Harness {
  private hosts: Array<HostUnderTest<HostFixture>> = [];
  private count = 0;

  /** The controller's workflow worker (no activities). */
  private controller?: Promise<{ worker: Worker; running: Promise<void> }>;

  private constructor(
    readonly env: TemporalEnv,
    readonly releases: ReleaseServer,
  ) {}

  /** Where the workflows run: the controller's queue. */
  readonly workflowQueue = FLEET_TASK_QUEUE;

  /**
   * Starts (once) the controller's workflow worker, with the controller's own activities configured
   * from the release server's environment plus `extraEnv` (the first call's); a test that runs
   * fleets too needs no other on this queue.
   */
  ensureController(extraEnv: Record<string, string> = {}): Promise<unknown> {
    this.controller ??= (async () => {
      const config = loadHostConfig({
        HOME: process.env.HOME,
        ...this.releases.env(),
        DEFENSECLAW_HOST: 'controller',
        ...extraEnv,
      });
      const worker = await createWorkflowWorker({
        connection: this.env.nativeConnection,
        namespace: this.env.namespace ?? 'default',
        taskQueue: this.workflowQueue,
        shutdownGraceTime: '1s',
        activities: createControllerActivities(process.env, config),
      });
      const running = worker.run();
      running.catch(() => undefined);
      return { worker, running };
    })();
    return this.controller;
  }

  /**
   * A dev server (in memory, or on `dbFilename` to inspect the store) and a release server; or the
   * given Temporal (`use`, torn down by close()) instead of the dev server.
   */
  static async start(
    releaseOpts: StartReleaseServerOptions = {},
    temporal: { dbFilename?: string; use?: TemporalEnv } = {},
  ): Promise<Harness> {
    const [env, releases] = await Promise.all([
      temporal.use ?? startTestEnvironment(temporal),
      startReleaseServer(releaseOpts),
    ]);
    return new Harness(env, releases);
  }

  get client() {
    return this.env.client;
  }

  /** A simulated host with its own worker; `wrap` may replace activities (one fault at a time). */
  async host(
    opts: SimHostOptions & {
      extraEnv?: Record<string, string>;
      wrap?: (a: Activities) => Partial<Activities>;
      /** The worker's own connection (default: the harness's). */
      connection?: NativeConnection;
    } = {},
  ): Promise<HostUnderTest> {
    return this.hostOf(await createSimHost(opts), opts);
  }

  /** A worker for a host fixture built elsewhere (e.g. a real DefenseClaw host), configured from its environment. */
  async hostOf<H extends HostFixture>(
    sim: H,
    opts: {
      extraEnv?: Record<string, string>;
      wrap?: (a: Activities) => Partial<Activities>;
      connection?: NativeConnection;
    } = {},
  ): Promise<HostUnderTest<H>> {
    await this.ensureController();
    const workflowQueue = this.workflowQueue;
    const name = `sim-${process.pid}-${++this.count}`;
    const config = loadHostConfig({ ...sim.env, ...this.releases.env(), DEFENSECLAW_HOST: name, ...opts.extraEnv });
    const base = createActivities(config);
    const activities = opts.wrap ? { ...base, ...opts.wrap(base) } : base;
    const worker = await createHostWorker({
      connection: opts.connection ?? this.env.nativeConnection,
      namespace: this.env.namespace ?? 'default',
      hostConfig: config,
      activities,
      shutdownGraceTime: '1s',
    });
    const running = worker.run();
    const client = this.client;
    const h: HostUnderTest<H> = {
      name,
      sim,
      config,
      worker,
      running,
      async upgrade(o = {}) {
        const input: UpgradeInput = {
          host: name,
          version: o.version,
          options: {
            healthTimeoutSeconds: 20,
            onFailure: 'rollback',
            requireConfirmation: false,
            confirmTimeoutSeconds: 900,
            ...o.options,
          },
          requestedBy: 'test',
          hostQueue: config.taskQueue,
        };
        return client.workflow.start('upgradeHost', {
          taskQueue: workflowQueue,
          workflowId: hostWorkflowId(name),
          args: [input],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        });
      },
      async rollback(input = {}) {
        return client.workflow.start('rollbackHost', {
          taskQueue: workflowQueue,
          workflowId: hostWorkflowId(name),
          args: [{ host: name, healthTimeoutSeconds: 20, hostQueue: config.taskQueue, ...input }],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        });
      },
      result: (handle) => resultOf(handle),
      async stopWorker() {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
      },
    };
    this.hosts.push(h);
    return h;
  }

  /** The workflow's history as `temporal workflow show --output json` exports it. */
  async exportHistory(workflowId: string, runId?: string): Promise<string> {
    const cli = await temporalCliPath();
    const args = [
      'workflow',
      'show',
      '--address',
      this.env.address,
      '--namespace',
      this.env.namespace ?? 'default',
      '--workflow-id',
      workflowId,
      '--output',
      'json',
    ];
    if (runId) args.push('--run-id', runId);
    const { stdout } = await run(cli, args, { maxBuffer: 64 * 1024 * 1024, env: this.cliEnv() });
    return stdout;
  }

  /** `temporal workflow list --query Q --output json`, parsed. */
  async listWorkflows(query: string): Promise<Array<{ execution: { workflowId: string }; type: { name: string } }>> {
    const cli = await temporalCliPath();
    const args = [
      'workflow',
      'list',
      '--address',
      this.env.address,
      '--namespace',
      this.env.namespace ?? 'default',
      '--query',
      query,
      '--output',
      'json',
    ];
    const { stdout } = await run(cli, args, { maxBuffer: 16 * 1024 * 1024, env: this.cliEnv() });
    return stdout.trim() ? JSON.parse(stdout) : [];
  }

  private cliEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.env.cliEnv };
  }

  async close(): Promise<void> {
    for (const h of this.hosts) await h.stopWorker();
    const controller = await this.controller?.catch(() => undefined);
    if (controller) {
      if (controller.worker.getState() === 'RUNNING') controller.worker.shutdown();
      await controller.running.catch(() => undefined);
    }
    await Promise.all(this.hosts.map((h) => h.sim.cleanup()));
    await this.releases.close();
    await this.env.teardown();
  }
}
