/**
 * The local agent's files under $DEFENSECLAW_HOME/agent/ (directory 0700, files 0600): where they
 * are, what agent.json holds, and how they are read and written (atomically).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ReleaseSource } from '../host-config.js';

export type AgentState = 'starting' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** What agent.json holds (non-secret). */
export interface AgentInfo {
  state: AgentState;
  pid: number;
  /** The defenseclaw-upgrade version the agent runs (absent: an agent started before 0.2). */
  upgraderVersion?: string;
  /** The dev server's pid (so a crashed agent's server can be cleaned up). */
  serverPid?: number;
  address?: string;
  namespace?: string;
  uiUrl?: string;
  taskQueue?: string;
  host?: string;
  releases?: ReleaseSource;
  startedAt: string;
  readyAt?: string;
  stoppedAt?: string;
  /** Milliseconds the dev server took to answer. */
  serverStartMs?: number;
  dbFile?: string;
  logFile?: string;
  error?: string;
  /** Set by ensureAgent: true when a running agent was reused. */
  reused?: boolean;
  /** Set when it stopped by itself after an idle period (no open run, no schedule): the next command wakes it. */
  asleep?: boolean;
}

export interface AgentPaths {
  dir: string;
  pidFile: string;
  infoFile: string;
  logFile: string;
  lockFile: string;
  /** Touched by every command that uses the agent: the idle period counts from it too. */
  wakeFile: string;
  temporalDir: string;
  dbFile: string;
}

export function agentPaths(dataDir: string): AgentPaths {
  const dir = path.join(dataDir, 'agent');
  const temporalDir = path.join(dataDir, 'temporal');
  return {
    dir,
    pidFile: path.join(dir, 'agent.pid'),
    infoFile: path.join(dir, 'agent.json'),
    logFile: path.join(dir, 'agent.log'),
    lockFile: path.join(dir, 'start.lock'),
    wakeFile: path.join(dir, 'agent.wake'),
    temporalDir,
    dbFile: path.join(temporalDir, 'temporal.db'),
  };
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/** Creates a directory 0700 (and tightens an existing one). */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
}

/** Writes a file 0600 atomically (temp file + rename). */
export async function writePrivateFile(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await fsp.writeFile(tmp, data, { mode: 0o600 });
  await fsp.chmod(tmp, 0o600);
  await fsp.rename(tmp, file);
}

export async function readAgentInfo(dataDir: string): Promise<AgentInfo | undefined> {
  try {
    const parsed = JSON.parse(await fsp.readFile(agentPaths(dataDir).infoFile, 'utf8')) as AgentInfo;
    return typeof parsed?.pid === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function agentInfoText(info: AgentInfo): string {
  const { reused: _reused, ...stored } = info;
  return `${JSON.stringify(stored, null, 2)}\n`;
}

export async function writeAgentInfo(dataDir: string, info: AgentInfo): Promise<void> {
  await writePrivateFile(agentPaths(dataDir).infoFile, agentInfoText(info));
}

/** writeAgentInfo for a process's last words (an uncaught error: no more awaiting). */
export function writeAgentInfoSync(dataDir: string, info: AgentInfo): void {
  const file = agentPaths(dataDir).infoFile;
  const tmp = `${file}.tmp-${process.pid}-last`;
  fs.writeFileSync(tmp, agentInfoText(info), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number((await fsp.readFile(file, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
