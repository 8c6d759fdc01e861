/**
 * Health: poll the gateway's `/health` until `gateway.state` is running (or disabled) and,
 * when the gateway reports its provenance, its binary version is the one we expect.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import YAML from 'yaml';
import { z } from 'zod';
import type { HostConfig } from '../worker/host-config.js';
import { LIMITS, VersionSchema } from '../workflows/types.js';
import { FailureType, cancellationSignal, heartbeat, lastHeartbeat, refuse, sleep, validated } from './support.js';

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

/** Healthy: running or disabled, and the reported binary version (when present) is the target. */
export function isHealthy(h: HealthReading, version?: string): boolean {
  if (h.state !== 'running' && h.state !== 'disabled') return false;
  return !version || h.binaryVersion === undefined || h.binaryVersion === version;
}

const GatewayApiConfig = z.object({
  gateway: z
    .object({
      api_port: z.number().int().min(1).max(65535).default(18970),
      api_bind: z.string().max(255).default('127.0.0.1'),
      token: z.string().max(4096).optional(),
    })
    .partial()
    .default({}),
});

/** The API port, bind address and token from config.yaml (the token never leaves this module). */
export async function readGatewayApi(config: HostConfig): Promise<{ port: number; host: string; token?: string }> {
  const file = path.join(config.dataDir, 'config.yaml');
  let parsed: unknown = {};
  try {
    // logLevel silent: yaml's warnings quote the source (the token's line) on stderr.
    parsed = YAML.parse(await fs.readFile(file, 'utf8'), { maxAliasCount: 100, logLevel: 'silent' }) ?? {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw refuse(FailureType.InvalidInput, 'config.yaml is not valid YAML; cannot find the gateway API port');
    }
  }
  const r = GatewayApiConfig.safeParse(parsed);
  if (!r.success)
    throw refuse(FailureType.InvalidInput, 'config.yaml has an invalid gateway section (api_port, api_bind)');
  const g = r.data.gateway;
  const bind = g.api_bind ?? '127.0.0.1';
  // Health is read on loopback: a wildcard bind is reached there too.
  const host = bind === '0.0.0.0' || bind === '' ? '127.0.0.1' : bind === '::' ? '::1' : bind;
  return { port: g.api_port ?? 18970, host, token: g.token };
}

export async function readHealth(config: HostConfig, timeoutMs = 2000): Promise<HealthReading> {
  const api = await readGatewayApi(config);
  const host = api.host.includes(':') ? `[${api.host}]` : api.host;
  try {
    const res = await request(`http://${host}:${api.port}/health`, {
      headers: api.token ? { authorization: `Bearer ${api.token}` } : {},
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
  })
  .strict();

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
  let last: HealthReading = { state: 'unreachable' };
  for (;;) {
    last = await readHealth(config);
    polls++;
    heartbeat({ deadline, polls, state: last.state } satisfies HealthBeat);
    if (isHealthy(last, input.version)) return { state: last.state, polls };
    if (Date.now() >= deadline) break;
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())), cancellationSignal());
  }
  const versionNote =
    last.binaryVersion && input.version && last.binaryVersion !== input.version
      ? `, reporting version ${last.binaryVersion} instead of ${input.version}`
      : '';
  throw refuse(
    FailureType.HealthTimeout,
    `the gateway did not become healthy within ${input.timeoutSeconds} s (last state: ${last.state}${versionNote})`,
  );
}
