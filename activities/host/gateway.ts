/**
 * The gateway daemon: its version, a stop that is proven (pid gone, watchdog gone, nothing came
 * back, `status` non-zero), a start, and OpenClaw's best-effort restart. The pid files it keeps are
 * read in gateway-process.ts.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import type { HostConfig } from '../../worker/host-config.js';
import { run, which } from '../exec.js';
import { z } from 'zod';
import { LIMITS, isVersion } from '../../workflows/types.js';
import {
  gatewayPidFile,
  isGatewayProcess,
  isWatchdogProcess,
  readGatewayPid,
  readWatchdogPid,
  watchdogPidFile,
  type GatewayPidInfo,
} from './gateway-process.js';
import { readGatewayApi, readHealth } from './health.js';
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

/** How often a stop looks whether a process is gone (the gateway's own `stop` looks every 100 ms). */
const GONE_POLL_MS = 5;
/** How long our SIGTERM is given before the gateway's own `stop` takes over (its 10 s, then SIGKILL). */
const OWN_TERM_GRACE_MS = 3_000;

async function waitGone(alive: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive() && Date.now() < deadline) await sleep(GONE_POLL_MS);
  return !alive();
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Whether anything answers HTTP at the gateway's /health address: what `defenseclaw-gateway status`
 * asks (internal/cli/status.go, 0.4.0 … 0.8.10: GET /health at the configured bind and port, exit 0
 * when it answers), without starting a process for it.
 */
async function healthAnswers(config: HostConfig): Promise<boolean> {
  const api = await readGatewayApi(config);
  const host = api.host.includes(':') ? `[${api.host}]` : api.host;
  try {
    const res = await request(`http://${host}:${api.port}/health`, { headersTimeout: 5000, bodyTimeout: 5000 });
    await res.body.dump();
    return true;
  } catch {
    return false;
  }
}

/** Removes gateway.pid if it still records exactly `info` (the gateway's own removePIDFileIfStarted, 0.8.10). */
async function removePidFileOf(dataDir: string, info: GatewayPidInfo): Promise<void> {
  const now = await readGatewayPid(dataDir);
  if (now && now.pid === info.pid && now.executable === info.executable && now.startTime === info.startTime) {
    await fs.rm(gatewayPidFile(dataDir), { force: true });
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
 * Activity: stops the gateway and proves it: the pid file's process is gone, no watchdog is left to
 * bring the old binary back, no gateway came back, and nothing answers /health on its port (what
 * `status` checks). Answers the state `/health` reported just before the stop (an upgrade judges
 * `reconnecting` against it). Safe to run again.
 *
 * The gateway's own `stop` (internal/cli/daemon.go runStop, internal/daemon Stop, 0.4.0 … 0.8.10)
 * SIGTERMs the watchdog, then SIGTERMs the gateway and looks every 100 ms whether its pid is gone
 * (kill(pid, 0): until the host's init has reaped it), then removes gateway.pid. We send the same
 * signals in the same order to the same processes, the watchdog by its command line and the gateway
 * by its pid file's identity (the recorded executable), waiting for the watchdog to be gone before the
 * gateway is signalled, and look every 5 ms; an exited process holds no port, so once it has exited
 * (reaped or not) we remove gateway.pid if it still records that process, as `stop` does once the pid
 * has vanished, and the watchdog's pid file as its runWatchdogStop does: the gateway's own `stop` would
 * find nothing left to do, so it is not run, and the host's init may reap as late as it likes. When a
 * process outlived our SIGTERM (3 s for the gateway, 1 s for the watchdog), or the gateway was not
 * running, the gateway's own `stop` runs as before: it sends its own SIGTERM and escalates to SIGKILL
 * (a second SIGTERM is harmless, the gateway keeps its handler registered, internal/cli/sidecar.go).
 */
export async function stopGateway(config: HostConfig): Promise<{ wasRunning: boolean; stateBefore: string }> {
  const [before, info, watchdog] = await Promise.all([
    readHealth(config, 1000).catch(() => ({ state: 'unreachable' })),
    readGatewayPid(config.dataDir),
    readWatchdogPid(config.dataDir),
  ]);
  const wasRunning = isGatewayProcess(info);
  if (watchdog !== undefined && isWatchdogProcess(watchdog)) {
    signal(watchdog, 'SIGTERM');
    await waitGone(() => isWatchdogProcess(watchdog), 1_000);
  }
  const watchdogGone = watchdog === undefined || !isWatchdogProcess(watchdog);
  let exited = false;
  if (info && wasRunning) {
    signal(info.pid, 'SIGTERM');
    // Exited (a zombie not yet reaped counts): its pid file goes, as `stop` removes it once the pid
    // has vanished; so `stop` need not wait for the host's init to reap it.
    exited = await waitGone(() => isGatewayProcess(info), OWN_TERM_GRACE_MS);
    if (exited) await removePidFileOf(config.dataDir, info);
  }
  // Both gone by the very signals `stop` sends: what it would still do is remove the watchdog's pid
  // file (runWatchdogStop), done here. Otherwise (not running, a watchdog or gateway that outlived
  // its SIGTERM) the gateway's own `stop` runs and escalates as it does.
  let r = { exitCode: 0, timedOut: false };
  if (exited && watchdogGone) {
    if (watchdog !== undefined && (await readWatchdogPid(config.dataDir)) === watchdog) {
      await fs.rm(watchdogPidFile(config.dataDir), { force: true });
    }
  } else {
    r = await run(gatewayBinary(config), ['stop'], {
      env: config.commandEnv,
      timeoutMs: STOP_TIMEOUT_MS,
      signal: cancellationSignal(),
    });
  }
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
  const [answers, now] = await Promise.all([healthAnswers(config), readGatewayPid(config.dataDir)]);
  assertNoGatewayCameBack(now);
  if (answers) {
    throw refuse(
      FailureType.StopNotProven,
      'the gateway did not stop: something still answers /health on its port (`defenseclaw-gateway status` reports it running)',
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
