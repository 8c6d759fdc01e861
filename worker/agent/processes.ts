/**
 * The local agent's processes, by pid: alive, which program it runs (the agent or its dev server,
 * so that a recycled pid is never signalled), waiting for an exit, terminating, and whether an
 * address answers.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { execa } from 'execa';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when pid is a running (non-zombie) process. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return false;
    } catch {
      return false;
    }
  }
  return true;
}

async function commandLine(pid: number): Promise<string[] | undefined> {
  if (process.platform === 'linux') {
    try {
      return (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    } catch {
      return undefined;
    }
  }
  const r = await execa('ps', ['-p', String(pid), '-o', 'command='], { reject: false });
  return r.exitCode === 0 && typeof r.stdout === 'string' && r.stdout.trim() ? r.stdout.trim().split(/\s+/) : undefined;
}

/** True when pid runs agent-main (so a recycled pid is never signalled). */
export async function isAgentProcess(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const argv = await commandLine(pid);
  return Boolean(argv?.some((a) => a.endsWith(`${path.sep}agent-main.js`) || a === 'agent-main.js'));
}

export async function isDevServerProcess(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const argv = await commandLine(pid);
  return Boolean(argv?.includes('start-dev') && argv.includes('server'));
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

/** SIGTERM, then SIGKILL after graceMs. Returns true when it had to use SIGKILL. */
export async function terminate(pid: number, graceMs: number): Promise<boolean> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  if (await waitForExit(pid, graceMs)) return false;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  await waitForExit(pid, 5000);
  return true;
}

/** True when a Temporal frontend answers at address (within timeoutMs). */
export async function addressAnswers(address: string, timeoutMs = 2000): Promise<boolean> {
  const connection = Connection.lazy({ address, connectTimeout: timeoutMs });
  try {
    await connection.ensureConnected();
    return true;
  } catch {
    return false;
  } finally {
    await connection.close().catch(() => undefined);
  }
}
