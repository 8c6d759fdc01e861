/**
 * The gateway daemon: its version, a stop that is proven (pid gone, watchdog gone, nothing came
 * back, `status` non-zero), a start, and OpenClaw's best-effort restart. The pid files it keeps are
 * read in gateway-process.ts.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HostConfig } from '../../worker/host-config.js';
import { run, which } from '../exec.js';
import { z } from 'zod';
import { LIMITS, isVersion } from '../../workflows/types.js';
import {
  isGatewayProcess,
  isWatchdogProcess,
  readGatewayPid,
  readWatchdogPid,
  type GatewayPidInfo,
} from './gateway-process.js';
import { readHealth } from './health.js';
import { FailureType, activityContext, cancellationSignal, refuse, sleep, validated } from '../support.js';

/** Allow about 30 s for a stop (host contract; the real `stop` waits 10 s, then SIGKILL). */
export const STOP_TIMEOUT_MS = 30_000;

export function gatewayBinary(config: HostConfig): string {
  return path.join(config.binDir, 'defenseclaw-gateway');
}

/** Parses `defenseclaw-gateway version 0.5.0 (commit=…, built=…)`; older outputs carry one X.Y.Z. */
export function parseGatewayVersion(output: string): string | undefined {
  const m = /\bversion\s+v?(\d+\.\d+\.\d+)\b/.exec(output) ?? /\b(\d+\.\d+\.\d+)\b/.exec(output);
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

async function statusRunning(config: HostConfig): Promise<boolean> {
  const r = await run(gatewayBinary(config), ['status'], { env: config.commandEnv, timeoutMs: 15_000 });
  return r.exitCode === 0;
}

async function waitGone(alive: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive() && Date.now() < deadline) await sleep(100);
  return !alive();
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Refuses when the pid file names a live gateway after a proven stop: something restarted it. */
export function assertNoGatewayCameBack(info: GatewayPidInfo | undefined): void {
  if (info && isGatewayProcess(info)) {
    throw refuse(
      FailureType.StopNotProven,
      `a gateway (pid ${info.pid}) came back after \`defenseclaw-gateway stop\`: something restarts it (a watchdog or a service manager); stop that first`,
    );
  }
}

/**
 * Activity: stops the gateway through its own `stop` (which stops its watchdog first) and proves
 * it: the pid file's process is gone, no watchdog is left to bring the old binary back, no gateway
 * came back, and `status` exits non-zero. Answers the state `/health`
 * reported just before the stop (an upgrade judges `reconnecting` against it). Safe to run again.
 */
export async function stopGateway(config: HostConfig): Promise<{ wasRunning: boolean; stateBefore: string }> {
  const before = await readHealth(config, 1000).catch(() => ({ state: 'unreachable' }));
  const info = await readGatewayPid(config.dataDir);
  const watchdog = await readWatchdogPid(config.dataDir);
  const wasRunning = isGatewayProcess(info);
  const r = await run(gatewayBinary(config), ['stop'], {
    env: config.commandEnv,
    timeoutMs: STOP_TIMEOUT_MS,
    signal: cancellationSignal(),
  });
  if (info && !(await waitGone(() => isGatewayProcess(info), 5_000))) {
    throw refuse(
      FailureType.StopNotProven,
      `the gateway did not stop: pid ${info.pid} is still alive after \`defenseclaw-gateway stop\` (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`,
    );
  }
  // `stop` stops the watchdog first; one that outlived it must not bring the old binary back.
  if (watchdog !== undefined && isWatchdogProcess(watchdog)) {
    activityContext()?.log.warn(`the gateway's watchdog (pid ${watchdog}) outlived \`stop\`; stopping it`);
    signal(watchdog, 'SIGTERM');
    if (!(await waitGone(() => isWatchdogProcess(watchdog), 3_000))) signal(watchdog, 'SIGKILL');
    if (!(await waitGone(() => isWatchdogProcess(watchdog), 2_000))) {
      throw refuse(FailureType.StopNotProven, `the gateway's watchdog (pid ${watchdog}) could not be stopped`);
    }
  }
  // A gateway that came back (a service manager, a watchdog) is caught here and again right before the
  // swap (installGateway), so the proof adds no waiting to the downtime window.
  const running = await statusRunning(config);
  assertNoGatewayCameBack(await readGatewayPid(config.dataDir));
  if (running) {
    throw refuse(
      FailureType.StopNotProven,
      'the gateway did not stop: `defenseclaw-gateway status` still reports it running',
    );
  }
  return { wasRunning, stateBefore: before.state };
}

const StartInput = z
  .object({ healthTimeoutSeconds: z.number().int().min(1).max(LIMITS.healthTimeoutSeconds.max) })
  .strict();
export type StartInput = z.input<typeof StartInput>;

/** Activity: starts the gateway (no-op when it already runs). Allows max(health timeout, 60) + 30 s. */
export async function startGateway(config: HostConfig, rawInput: unknown): Promise<{ alreadyRunning: boolean }> {
  const input = validated(StartInput, rawInput, 'startGateway');
  const timeoutSeconds = Math.max(input.healthTimeoutSeconds, 60) + 30;
  // Idempotent without a second process in the downtime window: a live pid means it runs.
  if (isGatewayProcess(await readGatewayPid(config.dataDir))) return { alreadyRunning: true };
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
