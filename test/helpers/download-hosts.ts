/**
 * Many light simulated hosts on ONE shared task queue (the fleet input's `taskQueue`), to count what
 * a rollout asks of its release source. One worker serves them all with the REAL release activities
 * of one host configuration (resolve, ticket, pre-flight HEADs, downloads checked against their
 * digests, the signature, extracting and staging the gateway), each host's run in its own staging
 * folder; what would change a live host (backup, stop, install, Python environment, migrations,
 * start, health) is simulated, each answering as a healthy host (of `installed`) would.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createActivities } from '../../activities/host/index.js';
import { loadHostConfig, type HostConfig } from '../../worker/host-config.js';
import type { ReleaseServer } from '../fixtures/releases/server.js';

export interface DownloadHosts {
  /** The shared task queue (FleetInput.taskQueue). */
  queue: string;
  config: HostConfig;
  /** How many times each real release activity ran, by name. */
  calls: Map<string, number>;
  stop(): Promise<void>;
}

let pools = 0;

export async function startDownloadHosts(o: {
  connection: NativeConnection;
  namespace: string;
  releases: ReleaseServer;
  /** More of the host's environment (e.g. DEFENSECLAW_RELEASE_MIRROR). */
  env?: Record<string, string>;
  /** The version every host reports installed (default 0.3.0). */
  installed?: string;
}): Promise<DownloadHosts> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-download-hosts-'));
  const queue = `download-hosts-${process.pid}-${++pools}`;
  const config = loadHostConfig({
    ...process.env,
    HOME: home,
    DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
    DEFENSECLAW_BIN_DIR: path.join(home, '.local', 'bin'),
    ...o.releases.env(),
    ...o.env,
    DEFENSECLAW_HOST: 'download-hosts',
    DEFENSECLAW_TASK_QUEUE: queue,
  });
  await fs.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await fs.mkdir(config.binDir, { recursive: true });
  const real = createActivities(config);
  const calls = new Map<string, number>();
  const counted = <K extends keyof typeof real>(name: K): (typeof real)[K] =>
    ((...args: never[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return (real[name] as (...a: never[]) => Promise<unknown>)(...args);
    }) as (typeof real)[K];
  const activities = {
    ...real,
    resolveRelease: counted('resolveRelease'),
    issueReleaseTicket: counted('issueReleaseTicket'),
    resolveFromTicket: counted('resolveFromTicket'),
    downloadArtifact: counted('downloadArtifact'),
    verifySignature: counted('verifySignature'),
    // Simulated: what a live host would change.
    checkHost: async (i: { host: string }) => ({ host: i.host }),
    readInstalledVersion: async () => ({ version: o.installed ?? '0.3.0' }),
    prepareVenv: async () => ({ venvId: 'venv-simulated', tool: 'uv' as const, offline: true }),
    discardVenv: async () => undefined,
    createBackup: async (i: { backupId: string }) => ({ backupId: i.backupId, files: 1, bytes: 1 }),
    stopGateway: async () => ({ wasRunning: true, stateBefore: 'running' }),
    installGateway: async () => undefined,
    switchVenv: async () => undefined,
    prepareMigrations: async () => ({ prepared: false, reason: 'simulated host' }),
    runMigrations: async () => ({ ran: 0, required: [] }),
    startGateway: async () => ({ alreadyRunning: false }),
    restartOpenclaw: async () => ({}),
    waitHealthy: async () => ({ state: 'running', polls: 1 }),
    // DefenseClaw's own upgrade lock and receipt queue are one per host: these hosts share one home,
    // so they are simulated too.
    checkNativeRecords: async () => ({ lock: 'free', journals: 'none' as const, receiptQueue: 0 }),
    acquireNativeLock: async (i: { token?: string }) => ({
      token: i.token ?? randomBytes(32).toString('hex'),
      pid: process.pid,
    }),
    holdNativeLock: async () => ({ held: true }),
    releaseNativeLock: async () => ({ released: true }),
    writeUpgradeReceipt: async (i: { receipt: { receipt_id: string; status: string } }) => ({
      receiptId: i.receipt.receipt_id,
      status: i.receipt.status,
      written: true,
    }),
    awaitReceiptAcknowledged: async () => ({ acknowledged: true, waitedMs: 0 }),
    gatewayReadyHandshake: async () => ({ ready: true as const, output: 'simulated' }),
  } as typeof real;
  const worker = await Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: queue,
    activities,
    maxConcurrentActivityTaskExecutions: 60,
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  running.catch(() => undefined);
  return {
    queue,
    config,
    calls,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}
