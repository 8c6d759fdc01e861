/**
 * The real gateway's process files, as `internal/daemon` and `internal/cli/watchdog.go` write them:
 *
 *   $DEFENSECLAW_HOME/gateway.pid    JSON {"pid":N,"executable":"/abs/path","start_time":unix} (0.4.0+;
 *                                    later tags add fields). A bare number is the legacy form.
 *   $DEFENSECLAW_HOME/watchdog.pid   a bare number, written by the watchdog itself.
 *
 * The gateway treats a pid as its own only when /proc/<pid>/exe is the recorded executable; so do we,
 * so that a recycled pid never passes for a running (or a stopped) gateway.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export interface GatewayPidInfo {
  pid: number;
  /** The executable the daemon was started from, when the pid file records it. */
  executable?: string;
  /** Unix seconds, when recorded. */
  startTime?: number;
}

const PidJson = z
  .object({
    pid: z
      .number()
      .int()
      .min(2)
      .max(2 ** 31),
    executable: z.string().max(4096).optional(),
    start_time: z.number().int().nonnegative().optional(),
  })
  .passthrough();

export function gatewayPidFile(dataDir: string): string {
  return path.join(dataDir, 'gateway.pid');
}

export function watchdogPidFile(dataDir: string): string {
  return path.join(dataDir, 'watchdog.pid');
}

/** Parses gateway.pid: the JSON form, or a bare pid (legacy). Anything else: undefined. */
export function parsePidFile(text: string): GatewayPidInfo | undefined {
  const t = text.trim();
  if (/^[0-9]{1,10}$/.test(t)) {
    const pid = Number(t);
    return pid > 1 && pid < 2 ** 31 ? { pid } : undefined;
  }
  try {
    const r = PidJson.safeParse(JSON.parse(t));
    if (!r.success) return undefined;
    return { pid: r.data.pid, executable: r.data.executable || undefined, startTime: r.data.start_time };
  } catch {
    return undefined;
  }
}

export async function readGatewayPid(dataDir: string): Promise<GatewayPidInfo | undefined> {
  const text = await fs.readFile(gatewayPidFile(dataDir), 'utf8').catch(() => '');
  return parsePidFile(text);
}

export async function readWatchdogPid(dataDir: string): Promise<number | undefined> {
  const text = await fs.readFile(watchdogPidFile(dataDir), 'utf8').catch(() => '');
  return parsePidFile(text)?.pid;
}

/** Whether a process runs. A zombie (dead, not yet reaped by its parent) does not. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (darwin): kill(0) is the answer
  }
}

/**
 * Whether the pid file's process is the gateway it names: alive, and (where /proc says) running the
 * recorded executable. A binary replaced on disk shows as "<path> (deleted)": still that process.
 */
export function isGatewayProcess(info: GatewayPidInfo | undefined): boolean {
  if (!info || !pidAlive(info.pid)) return false;
  if (!info.executable) return true;
  let exe: string;
  try {
    exe = readlinkSync(`/proc/${info.pid}/exe`);
  } catch {
    return true; // no /proc, or not ours to read: liveness is the answer, as the gateway itself decides
  }
  return exe === info.executable || exe === `${info.executable} (deleted)`;
}

/** Whether a pid runs a watchdog (its command line names `watchdog`), so we never signal a recycled pid. */
export function isWatchdogProcess(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((a) => /watchdog/.test(a));
  } catch {
    return false;
  }
}
