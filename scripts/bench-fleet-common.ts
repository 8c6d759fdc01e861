/**
 * What the parts of the fleet benchmark (bench-fleet.ts, bench-fleet-rings.ts) share: reading
 * settings, printing, statistics, the RSS of a process, the history lengths of a continue-as-new
 * chain, and the stub host activities (each a sleep of BENCH_FLEET_STUB_MS, counted per name).
 */
import fs from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { resolveWorkflowCode } from '../worker/worker.js';
import type { Activities } from '../activities/host/index.js';
import type { FleetHostRecord } from '../workflows/fleet/fleet-types.js';

export const num = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

export const STUB_MS = num('BENCH_FLEET_STUB_MS', 50);

export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

export const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function rssMiB(pid: number | undefined): Promise<number | undefined> {
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
export async function runHistories(client: Client, workflowId: string): Promise<number[]> {
  const lengths: Array<{ start: number; len: number }> = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const d = await client.workflow.getHandle(workflowId, w.runId).describe();
    lengths.push({ start: d.startTime.getTime(), len: d.historyLength });
  }
  return lengths.sort((a, b) => a.start - b.start).map((x) => x.len);
}

export function perHost(hosts: FleetHostRecord[]): number[] {
  return hosts
    .filter((h) => h.startedAt !== undefined && h.endedAt !== undefined)
    .map((h) => h.endedAt! - h.startedAt!);
}

/** Every activity upgradeHost and a ring rollout call on hosts, as a stub that sleeps STUB_MS and answers a plausible value;
 * `calls` counts the calls by activity name. */
export function stubActivities(calls?: Map<string, number>): Activities {
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
    readGate: async () => (await nap(), { subsystems: { gateway: 'running' }, counters: {} }),
  };
  if (!calls) return stubs as unknown as Activities;
  const counted = Object.fromEntries(
    Object.entries(stubs).map(([name, fn]) => [
      name,
      (...args: never[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (fn as (...a: never[]) => unknown)(...args);
      },
    ]),
  );
  return counted as unknown as Activities;
}

/** One worker serving every stub host on `queue` (the stub activities, and the host workflows). */
export async function startStubWorker(
  env: TestWorkflowEnvironment,
  queue: string,
  concurrency: number,
  calls?: Map<string, number>,
): Promise<{ stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: queue,
    activities: stubActivities(calls),
    ...resolveWorkflowCode(),
    maxConcurrentActivityTaskExecutions: concurrency,
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  return {
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
    },
  };
}
