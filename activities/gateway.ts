/**
 * The gateway daemon: its version, a stop that is proven (pid gone, `status` non-zero), a
 * start, and OpenClaw's best-effort restart.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HostConfig } from '../worker/host-config.js';
import { run, which } from './exec.js';
import { z } from 'zod';
import { LIMITS, isVersion } from '../workflows/types.js';
import { FailureType, activityContext, cancellationSignal, refuse, sleep, validated } from './support.js';

/** Allow about 30 s for a stop (host contract). */
export const STOP_TIMEOUT_MS = 30_000;

export function gatewayBinary(config: HostConfig): string {
  return path.join(config.binDir, 'defenseclaw-gateway');
}

function pidFile(config: HostConfig): string {
  return path.join(config.dataDir, 'gateway.pid');
}

/** Parses `defenseclaw version 0.3.0` (or any output carrying one X.Y.Z). */
export function parseGatewayVersion(output: string): string | undefined {
  const m = /\b(\d+\.\d+\.\d+)\b/.exec(output);
  return m && isVersion(m[1]) ? m[1] : undefined;
}

/** Activity: the version the installed gateway reports. */
export async function readInstalledVersion(config: HostConfig): Promise<{ version: string }> {
  const bin = gatewayBinary(config);
  const st = await fs.lstat(bin).catch(() => undefined);
  if (!st) throw refuse(FailureType.NotFound, `no gateway installed at ${bin}`);
  if (!st.isFile()) throw refuse(FailureType.UnsafePath, `${bin} is not a regular file`);
  const r = await run(bin, ['--version'], { env: config.commandEnv, timeoutMs: 30_000 });
  const version = parseGatewayVersion(r.output);
  if (r.exitCode !== 0 || !version) {
    throw refuse(
      FailureType.CommandFailed,
      `defenseclaw-gateway --version did not report a version (exit ${r.exitCode})`,
    );
  }
  return { version };
}

async function readPid(config: HostConfig): Promise<number | undefined> {
  const text = await fs.readFile(pidFile(config), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
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

async function statusRunning(config: HostConfig): Promise<boolean> {
  const r = await run(gatewayBinary(config), ['status'], { env: config.commandEnv, timeoutMs: 15_000 });
  return r.exitCode === 0;
}

/**
 * Activity: stops the gateway and proves it: the pid from the pid file is gone and `status`
 * exits non-zero. Safe to run again (stopping a stopped gateway is a no-op).
 */
export async function stopGateway(config: HostConfig): Promise<{ wasRunning: boolean }> {
  const pid = await readPid(config);
  const wasRunning = pid !== undefined && pidAlive(pid);
  const r = await run(gatewayBinary(config), ['stop'], {
    env: config.commandEnv,
    timeoutMs: STOP_TIMEOUT_MS,
    signal: cancellationSignal(),
  });
  const deadline = Date.now() + 5_000;
  while (pid !== undefined && pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pid !== undefined && pidAlive(pid)) {
    throw refuse(
      FailureType.StopNotProven,
      `the gateway did not stop: pid ${pid} is still alive after \`defenseclaw-gateway stop\` (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`,
    );
  }
  if (await statusRunning(config)) {
    throw refuse(
      FailureType.StopNotProven,
      'the gateway did not stop: `defenseclaw-gateway status` still reports it running',
    );
  }
  return { wasRunning };
}

const StartInput = z
  .object({ healthTimeoutSeconds: z.number().int().min(1).max(LIMITS.healthTimeoutSeconds.max) })
  .strict();

/** Activity: starts the gateway (no-op when it already runs). Allows max(health timeout, 60) + 30 s. */
export async function startGateway(config: HostConfig, rawInput: unknown): Promise<{ alreadyRunning: boolean }> {
  const input = validated(StartInput, rawInput, 'startGateway');
  const timeoutSeconds = Math.max(input.healthTimeoutSeconds, 60) + 30;
  // Idempotent without a second process in the downtime window: a live pid means it runs.
  const pid = await readPid(config);
  if (pid !== undefined && pidAlive(pid)) return { alreadyRunning: true };
  const r = await run(gatewayBinary(config), ['start'], {
    env: config.commandEnv,
    timeoutMs: timeoutSeconds * 1000,
    signal: cancellationSignal(),
  });
  if (r.exitCode !== 0) {
    if (await statusRunning(config)) return { alreadyRunning: true };
    throw refuse(
      FailureType.CommandFailed,
      `defenseclaw-gateway start failed (exit ${r.exitCode}): ${lastLine(r.output)}`,
    );
  }
  return { alreadyRunning: false };
}

function lastLine(output: string): string {
  return output.split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 300) ?? '';
}

/** Activity: `openclaw gateway restart`, best effort: a missing openclaw or a disabled service is a warning. */
export async function restartOpenclaw(config: HostConfig): Promise<{ warning?: string }> {
  const openclaw = await which('openclaw', config.commandEnv);
  if (!openclaw) return { warning: 'openclaw is not installed; skipped `openclaw gateway restart`' };
  const r = await run(openclaw, ['gateway', 'restart'], { env: config.commandEnv, timeoutMs: 60_000 });
  if (/gateway service disabled/i.test(r.output))
    return { warning: 'openclaw gateway service is disabled; not restarted' };
  if (r.exitCode !== 0) {
    activityContext()?.log.warn(`openclaw gateway restart exited ${r.exitCode}`);
    return { warning: `openclaw gateway restart exited ${r.exitCode}: ${lastLine(r.output)}` };
  }
  return {};
}
