/**
 * Health: poll the gateway's `/health` (no credentials, at the address the gateway really binds)
 * until `gateway.state` is healthy and `provenance.binary_version` is the version we expect.
 *
 * Healthy: `running`, or `disabled` (standalone: `gateway.fleet_mode: disabled` or a connector other
 * than OpenClaw, 0.4.0+). `reconnecting` means the gateway serves but OpenClaw is not connected (with
 * the default OpenClaw connector and no OpenClaw running it never leaves it); it counts as healthy only
 * when the run accepts it (see `acceptReconnecting`). `error`, `starting`, `stopped` never do.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { parseYamlStrict } from '../yaml-file.js';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { LIMITS, VersionSchema } from '../../workflows/types.js';
import { FailureType, cancellationSignal, heartbeat, lastHeartbeat, refuse, sleep, validated } from '../support.js';

const STATES = ['starting', 'running', 'reconnecting', 'stopped', 'error', 'disabled'] as const;

const Subsystem = z.object({
  state: z.enum(STATES),
  since: z.string().nullish(),
  last_error: z.string().nullish(),
});

export const HealthBody = z.object({
  gateway: Subsystem,
  provenance: z
    .object({ binary_version: z.string().max(64).optional() })
    .partial()
    .optional(),
});

export interface HealthReading {
  state: (typeof STATES)[number] | 'unreachable' | 'invalid';
  binaryVersion?: string;
  lastError?: string;
}

/** Reads one health answer; anything unexpected is `invalid`, never an exception. */
export function parseHealth(body: unknown): HealthReading {
  const r = HealthBody.safeParse(body);
  if (!r.success) return { state: 'invalid' };
  return {
    state: r.data.gateway.state,
    binaryVersion: r.data.provenance?.binary_version,
    lastError: r.data.gateway.last_error?.slice(0, 200) ?? undefined,
  };
}

/**
 * Healthy: running or disabled (or reconnecting when accepted), and, when a version is expected,
 * `provenance.binary_version` is that version (every gateway since 0.3.0 reports it: a gateway that
 * does not is not the one we installed).
 */
export function isHealthy(h: HealthReading, version?: string, acceptReconnecting = false): boolean {
  const ok = h.state === 'running' || h.state === 'disabled' || (acceptReconnecting && h.state === 'reconnecting');
  if (!ok) return false;
  return !version || h.binaryVersion === version;
}

const GatewayApiConfig = z.object({
  gateway: z
    .object({
      api_port: z.number().int().min(1).max(65535),
      api_bind: z.string().max(255),
    })
    .partial()
    .nullish(),
  openshell: z
    .object({ mode: z.string().max(64) })
    .partial()
    .nullish(),
  guardrail: z
    .object({ host: z.string().max(255) })
    .partial()
    .nullish(),
});

/** Where the gateway serves `/health` (`internal/cli/watchdog.go` watchdogHealthURL, 0.4.0 … 0.8.10). */
export function healthAddress(parsed: unknown): { port: number; host: string } {
  const r = GatewayApiConfig.safeParse(parsed ?? {});
  if (!r.success) {
    throw refuse(FailureType.InvalidInput, 'config.yaml has an invalid gateway section (api_port, api_bind)');
  }
  const { gateway, openshell, guardrail } = r.data;
  let bind = gateway?.api_bind || '127.0.0.1';
  if (!gateway?.api_bind && openshell?.mode === 'standalone' && guardrail?.host && guardrail.host !== 'localhost') {
    bind = guardrail.host;
  }
  // A wildcard bind is reached on loopback.
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '::1' : bind;
  return { port: gateway?.api_port || 18970, host };
}

/** The API address from config.yaml. No credential is read: `/health` needs none at any tag. */
export async function readGatewayApi(config: HostConfig): Promise<{ port: number; host: string }> {
  const file = path.join(config.dataDir, 'config.yaml');
  let parsed: unknown = {};
  try {
    // logLevel silent: yaml's warnings quote the source (a secret's line) on stderr.
    parsed = parseYamlStrict(await fs.readFile(file, 'utf8')) ?? {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw refuse(FailureType.InvalidInput, 'config.yaml is not valid YAML; cannot find the gateway API port');
    }
  }
  return healthAddress(parsed);
}

export async function readHealth(config: HostConfig, timeoutMs = 2000): Promise<HealthReading> {
  const api = await readGatewayApi(config);
  const host = api.host.includes(':') ? `[${api.host}]` : api.host;
  try {
    const res = await request(`http://${host}:${api.port}/health`, {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { state: 'invalid', lastError: `HTTP ${res.statusCode}` };
    }
    const text = await res.body.text();
    if (text.length > 1024 * 1024) return { state: 'invalid' };
    return parseHealth(JSON.parse(text));
  } catch {
    return { state: 'unreachable' };
  }
}

const WaitHealthyInput = z
  .object({
    version: VersionSchema.optional(),
    timeoutSeconds: z.number().int().min(1).max(LIMITS.healthTimeoutSeconds.max),
    /** Count `reconnecting` (OpenClaw not connected) as healthy. */
    acceptReconnecting: z.boolean().optional(),
  })
  .strict();
export type WaitHealthyInput = z.input<typeof WaitHealthyInput>;

/** How long waitHealthy polls every 20 ms before it settles to every 250 ms. */
const FAST_POLL_FOR_MS = 2_000;

interface HealthBeat {
  deadline: number;
  polls: number;
  state: string;
}

/**
 * Activity: polls `/health` until healthy or the deadline. A retried attempt (the worker was
 * killed) keeps the deadline of the first attempt, carried in its heartbeat.
 */
export async function waitHealthy(config: HostConfig, rawInput: unknown): Promise<{ state: string; polls: number }> {
  const input = validated(WaitHealthyInput, rawInput, 'waitHealthy');
  const prior = lastHeartbeat<HealthBeat>();
  const deadline = prior?.deadline ?? Date.now() + input.timeoutSeconds * 1000;
  let polls = prior?.polls ?? 0;
  const began = Date.now();
  let last: HealthReading = { state: 'unreachable' };
  for (;;) {
    last = await readHealth(config);
    polls++;
    heartbeat({ deadline, polls, state: last.state } satisfies HealthBeat);
    if (isHealthy(last, input.version, input.acceptReconnecting)) return { state: last.state, polls };
    if (Date.now() >= deadline) break;
    // Right after a start the gateway comes up within moments: look every 20 ms for the first 2 s.
    const every = Date.now() - began < FAST_POLL_FOR_MS ? 20 : 250;
    await sleep(Math.min(every, Math.max(0, deadline - Date.now())), cancellationSignal());
  }
  const versionNote =
    input.version && last.binaryVersion !== input.version && last.state !== 'unreachable'
      ? `, reporting version ${last.binaryVersion ?? '(none)'} instead of ${input.version}`
      : '';
  const reconnectNote =
    last.state === 'reconnecting' && !input.acceptReconnecting
      ? '; reconnecting means OpenClaw is not connected: start OpenClaw, or pass --reconnecting accept'
      : '';
  throw refuse(
    FailureType.HealthTimeout,
    `the gateway did not become healthy within ${input.timeoutSeconds} s (last state: ${last.state}${versionNote})${reconnectNote}`,
  );
}
