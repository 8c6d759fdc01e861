/**
 * The local agent: an embedded Temporal dev server (SQLite under $DEFENSECLAW_HOME/temporal) and
 * this host's worker, in one detached process started by the CLI and reused by later commands.
 *
 * Files under $DEFENSECLAW_HOME/agent/ (directory 0700, files 0600):
 *   agent.pid   the agent's pid while it runs
 *   agent.json  its state and where it answers (never a secret)
 *   agent.log   its log and the dev server's output
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPortFree, PortInUseError } from './dev-server.js';
import { loadHostConfig, type HostConfigOverrides, type ReleaseSource } from '../host-config.js';
import { addressAnswers, isAgentProcess, isAlive, isDevServerProcess, sleep, terminate } from './processes.js';
import { findTemporalCli } from './temporal-cli.js';
import { WORKER_GLIBC_TUNABLES, WORKER_NODE_OPTIONS } from '../runtime-tuning.js';
import {
  agentPaths,
  ensurePrivateDir,
  readAgentInfo,
  readPid,
  writeAgentInfo,
  writePrivateFile,
  type AgentInfo,
  type AgentPaths,
} from './agent-files.js';

/** Seconds without an open run or schedule after which the agent exits (DEFENSECLAW_AGENT_IDLE_SECONDS; 0: never). */
export function agentIdleSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DEFENSECLAW_AGENT_IDLE_SECONDS?.trim();
  if (!raw) return DEFAULT_AGENT_IDLE_SECONDS;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 7 * 24 * 3600 ? n : DEFAULT_AGENT_IDLE_SECONDS;
}
export const DEFAULT_AGENT_IDLE_SECONDS = 300;

/** What agent-main receives on its command line (non-secret; the environment carries the rest). */
export interface AgentLaunchConfig {
  cliPath: string;
  temporalPort?: number;
  uiPort?: number;
  hostOverrides?: HostConfigOverrides;
  namespace: string;
}

/** Thrown when a running agent serves something else than what was asked. */
export class AgentConflictError extends Error {
  override readonly name = 'AgentConflictError';
}

export const AGENT_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'agent-main.js');
export const AGENT_NAMESPACE = 'default';

// ---------------------------------------------------------------------------------------------
// Status, stop
// ---------------------------------------------------------------------------------------------

export interface AgentStatus {
  /** The agent process is alive and its server answers. */
  running: boolean;
  /** The agent process is alive (maybe still starting or wedged). */
  alive: boolean;
  answering: boolean;
  info?: AgentInfo;
  paths: AgentPaths;
}

export async function agentStatus(dataDir: string): Promise<AgentStatus> {
  const paths = agentPaths(dataDir);
  const info = await readAgentInfo(dataDir);
  const pid = (await readPid(paths.pidFile)) ?? info?.pid;
  const alive = pid !== undefined && (await isAgentProcess(pid));
  const answering = alive && info?.state === 'ready' && info.address ? await addressAnswers(info.address) : false;
  return { running: alive && answering, alive, answering, info, paths };
}

export interface StopResult {
  /** An agent process was running and is gone now. */
  stopped: boolean;
  pid?: number;
  /** It did not exit on SIGTERM in time and was killed. */
  forced: boolean;
}

/** Stops the agent (SIGTERM, SIGKILL after the grace) and cleans up after a crashed one. */
export async function stopAgent(dataDir: string, opts: { graceMs?: number } = {}): Promise<StopResult> {
  const paths = agentPaths(dataDir);
  const info = await readAgentInfo(dataDir);
  const pid = (await readPid(paths.pidFile)) ?? info?.pid;
  let stopped = false;
  let forced = false;
  if (pid !== undefined && (await isAgentProcess(pid))) {
    forced = await terminate(pid, opts.graceMs ?? 20_000);
    stopped = true;
  }
  // The dev server of an agent that crashed or had to be killed.
  if (info?.serverPid !== undefined && (await isDevServerProcess(info.serverPid))) {
    forced = (await terminate(info.serverPid, 5000)) || forced;
  }
  await fsp.rm(paths.pidFile, { force: true });
  if (info && info.state !== 'stopped') {
    await writeAgentInfo(dataDir, { ...info, state: 'stopped', stoppedAt: new Date().toISOString() }).catch(
      () => undefined,
    );
  }
  return { stopped, pid, forced };
}

// ---------------------------------------------------------------------------------------------
// ensureAgent
// ---------------------------------------------------------------------------------------------

export interface EnsureAgentOptions {
  /** The user's environment: host config, GITHUB_TOKEN for the worker, TEMPORAL_CLI_PATH, … */
  env?: NodeJS.ProcessEnv;
  hostOverrides?: HostConfigOverrides;
  /** Explicit ports (an explicit port in use is an error); default 7233/8233 when free. */
  temporalPort?: number;
  uiPort?: number;
  /** How long to wait for a new agent to be ready (default 60 s). */
  timeoutMs?: number;
  /** Progress lines (default: none, except the Temporal CLI download's, which go to stderr). */
  log?: (line: string) => void;
}

function sameReleases(a: ReleaseSource | undefined, b: ReleaseSource): boolean {
  return (
    !!a &&
    a.apiBase === b.apiBase &&
    a.downloadBase === b.downloadBase &&
    a.repo === b.repo &&
    [...a.allowedHosts].sort().join(',') === [...b.allowedHosts].sort().join(',')
  );
}

function describeReleases(r: ReleaseSource | undefined): string {
  return r ? `${r.repo} at ${r.apiBase}` : 'an unknown source';
}

function checkCompatible(info: AgentInfo, want: { host: string; taskQueue: string; releases: ReleaseSource }): void {
  if (!sameReleases(info.releases, want.releases)) {
    throw new AgentConflictError(
      `the running agent (pid ${info.pid}) takes releases from ${describeReleases(info.releases)}, not ${describeReleases(want.releases)}; run \`defenseclaw-upgrade agent stop\` first`,
    );
  }
  if (info.host !== want.host || info.taskQueue !== want.taskQueue) {
    throw new AgentConflictError(
      `the running agent (pid ${info.pid}) serves host ${info.host} (queue ${info.taskQueue}), not ${want.host}; run \`defenseclaw-upgrade agent stop\` first`,
    );
  }
}

async function logTail(file: string, lines = 5): Promise<string> {
  try {
    const buf = await fsp.readFile(file);
    return buf
      .subarray(Math.max(0, buf.length - 8192))
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-lines)
      .join(' | ');
  } catch {
    return '';
  }
}

/** Takes the start lock (one starter at a time); stale locks (dead owner, too old) are taken over. */
async function acquireStartLock(file: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await fsp.open(file, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => fsp.rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readPid(file);
    const age = Date.now() - ((await fsp.stat(file).catch(() => undefined))?.mtimeMs ?? 0);
    if (owner === undefined || !isAlive(owner) || age > timeoutMs + 30_000) {
      await fsp.rm(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another defenseclaw-upgrade (pid ${owner}) is starting the agent`);
    await sleep(100);
  }
}

/** Rotates agent.log when it grew past 10 MB. */
async function rotateLog(file: string): Promise<void> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (st && st.size > 10 * 1024 * 1024) await fsp.rename(file, `${file}.1`).catch(() => undefined);
}

/**
 * Returns the running agent when it is alive, answers and serves the same host and release
 * source; otherwise starts a new one (detached) and waits until it is ready.
 */
async function touch(file: string): Promise<void> {
  const now = new Date();
  try {
    await fsp.utimes(file, now, now);
  } catch {
    await writePrivateFile(file, '').catch(() => undefined);
  }
}

export async function ensureAgent(opts: EnsureAgentOptions = {}): Promise<AgentInfo> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const hostConfig = loadHostConfig(env, opts.hostOverrides);
  const dataDir = hostConfig.dataDir;
  const paths = agentPaths(dataDir);
  const want = { host: hostConfig.host, taskQueue: hostConfig.taskQueue, releases: hostConfig.releases };

  await ensurePrivateDir(dataDir);
  await ensurePrivateDir(paths.dir);

  // A command is about to use the agent: its idle period starts again now.
  await touch(paths.wakeFile);
  const reuse = async (): Promise<AgentInfo | undefined> => {
    const st = await agentStatus(dataDir);
    if (!st.running || !st.info) return undefined;
    checkCompatible(st.info, want);
    return { ...st.info, reused: true };
  };

  const existing = await reuse();
  if (existing) return existing;

  const release = await acquireStartLock(paths.lockFile, timeoutMs);
  try {
    // Someone else may have started it while we waited for the lock.
    const started = await reuse();
    if (started) return started;

    // Whatever is left is dead, wedged or half-started: clean it up first.
    const st = await agentStatus(dataDir);
    if (st.alive || st.info?.serverPid !== undefined) {
      if (st.alive) log(`the agent (pid ${st.info?.pid}) does not answer; restarting it`);
      await stopAgent(dataDir, { graceMs: 10_000 });
    }
    await fsp.rm(paths.pidFile, { force: true });

    // Explicit ports are checked here so the user gets the one-line error, not a log excerpt.
    for (const p of [opts.temporalPort, opts.uiPort]) {
      if (p !== undefined && !(await isPortFree(p))) throw new PortInUseError(p);
    }
    // Its own progress lines (stderr by default): a first-time download can take a while.
    const cliPath = await findTemporalCli({ env, log: opts.log });
    await ensurePrivateDir(paths.temporalDir);
    await rotateLog(paths.logFile);

    const launch: AgentLaunchConfig = {
      cliPath,
      temporalPort: opts.temporalPort,
      uiPort: opts.uiPort,
      hostOverrides: opts.hostOverrides,
      namespace: AGENT_NAMESPACE,
    };
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
    // The agent must see the same data dir as this process resolved.
    childEnv.DEFENSECLAW_HOME = dataDir;
    // The service's malloc tuning (runtime-tuning.ts), unless the operator set their own.
    childEnv.GLIBC_TUNABLES ??= WORKER_GLIBC_TUNABLES;

    const logFd = fs.openSync(paths.logFile, 'a', 0o600);
    fs.fchmodSync(logFd, 0o600);
    let child;
    try {
      // A small young generation keeps an idle agent's resident memory down (npm run bench -- idle).
      child = spawn(process.execPath, [WORKER_NODE_OPTIONS, AGENT_MAIN, '--config', JSON.stringify(launch)], {
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: childEnv,
        cwd: dataDir,
      });
    } finally {
      fs.closeSync(logFd);
    }
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    child.once('exit', (code, signal) => (exit = { code, signal }));
    child.once('error', (err) => (spawnError = err));
    child.unref();
    const pid = child.pid;
    log(
      st.info?.asleep
        ? `waking the local agent (asleep since ${st.info.stoppedAt ?? '?'}; pid ${pid})`
        : `starting the local agent (pid ${pid}); log: ${paths.logFile}`,
    );

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError) throw new Error(`could not start the agent: ${spawnError.message}`);
      const info = await readAgentInfo(dataDir);
      if (info && info.pid === pid) {
        if (info.state === 'ready') return { ...info, reused: false };
        if (info.state === 'failed') {
          throw new Error(`the local agent failed to start: ${info.error ?? 'unknown error'} (log: ${paths.logFile})`);
        }
      }
      if (exit) {
        const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
        const tail = await logTail(paths.logFile);
        throw new Error(
          `the local agent exited with ${how} while starting${tail ? `: ${tail}` : ''} (log: ${paths.logFile})`,
        );
      }
      if (Date.now() > deadline) {
        if (pid !== undefined) await stopAgent(dataDir, { graceMs: 5000 });
        throw new Error(
          `the local agent was not ready within ${Math.round(timeoutMs / 1000)} s (log: ${paths.logFile})`,
        );
      }
      await sleep(100);
    }
  } finally {
    await release();
  }
}
