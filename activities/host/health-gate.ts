/**
 * A ring's promotion gate, read on one host: every subsystem's state and the named counters from
 * the gateway's `/health` (no credentials, the address from config.yaml: see health.ts), and,
 * when asked, the operator's own check from this host's configuration (DEFENSECLAW_UPGRADE_CHECK).
 *
 * The real /health (internal/gateway/health.go, 0.4.0+) has one object per subsystem (`gateway`,
 * `watcher`, `api`, `guardrail`, `telemetry`, `ai_discovery`, `sinks`, optional `sandbox`), each
 * with a `state`, and a `connector` object with its own state and counters (`requests`,
 * `errors`, `tool_inspections`, `tool_blocks`, `subprocess_blocks`). Counter names are dotted
 * paths into that JSON: `connector.errors`. This activity only reads; the workflow compares.
 */
import { request } from 'undici';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { collectSecrets } from '../../worker/host-secrets.js';
import { CounterNameSchema, RING_LIMITS } from '../../workflows/fleet/ring-types.js';
import { run } from '../exec.js';
import { readGatewayApi } from './health.js';
import { FailureType, cancellationSignal, refuse, scrub, validated } from '../support.js';

const ReadGateInput = z
  .object({
    counters: z.array(CounterNameSchema).max(RING_LIMITS.counters),
    operatorCheck: z.boolean(),
  })
  .strict();
export type ReadGateInput = z.input<typeof ReadGateInput>;

export interface GateReading {
  /** Subsystem name → state, for every object in /health that has a string `state`. */
  subsystems: Record<string, string>;
  /** Counter → value; null when /health has no number there. */
  counters: Record<string, number | null>;
  /** The operator check, when asked for. */
  check?: { ok: boolean; exitCode: number; output: string };
}

const MAX_SUBSYSTEMS = 32;
const CHECK_OUTPUT_CHARS = 300;

/** The subsystems and counters of one /health body (pure: for tests too). */
export function gateFromHealth(body: unknown, counters: readonly string[]): Omit<GateReading, 'check'> {
  const subsystems: Record<string, string> = {};
  if (body && typeof body === 'object') {
    for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
      if (Object.keys(subsystems).length >= MAX_SUBSYSTEMS) break;
      if (!/^[a-z][a-z0-9_]{0,39}$/.test(name) || !value || typeof value !== 'object') continue;
      const state = (value as Record<string, unknown>).state;
      if (typeof state === 'string' && /^[a-z_-]{1,32}$/.test(state)) subsystems[name] = state;
    }
  }
  const values: Record<string, number | null> = {};
  for (const c of counters) {
    let v: unknown = body;
    for (const key of c.split('.')) {
      v = v && typeof v === 'object' && Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
    }
    values[c] = typeof v === 'number' && Number.isFinite(v) ? v : null;
  }
  return { subsystems, counters: values };
}

async function fetchHealth(config: HostConfig, timeoutMs = 5000): Promise<unknown> {
  const api = await readGatewayApi(config);
  const host = api.host.includes(':') ? `[${api.host}]` : api.host;
  let res;
  try {
    res = await request(`http://${host}:${api.port}/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (err) {
    // Retried: a gateway restarting for a moment is not a failed gate yet.
    throw new Error(`the gateway's /health is unreachable (${(err as Error).message.slice(0, 120)})`);
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`the gateway's /health answered HTTP ${res.statusCode}`);
  }
  const text = await res.body.text();
  if (text.length > 1024 * 1024) throw refuse(FailureType.TooLarge, 'the /health answer is larger than 1 MiB');
  try {
    return JSON.parse(text);
  } catch {
    throw new Error("the gateway's /health answer is not JSON");
  }
}

/** Runs the host's own check (argv from its configuration, no shell, bounded time); output scrubbed and clipped. */
async function operatorCheck(config: HostConfig): Promise<GateReading['check']> {
  const check = config.operatorCheck;
  if (!check) {
    return {
      ok: false,
      exitCode: -1,
      output: 'no operator check is configured on this host (DEFENSECLAW_UPGRADE_CHECK)',
    };
  }
  const [file, ...args] = check.argv;
  let r;
  try {
    r = await run(file!, args, {
      env: config.commandEnv,
      timeoutMs: check.timeoutMs,
      cwd: config.dataDir,
      signal: cancellationSignal(),
    });
  } catch (err) {
    return {
      ok: false,
      exitCode: -1,
      output: clipOutput(config, `could not run the check: ${(err as Error).message}`),
    };
  }
  const output = r.timedOut ? `timed out after ${check.timeoutMs} ms; ${r.output}` : r.output;
  return { ok: r.exitCode === 0 && !r.timedOut, exitCode: r.exitCode, output: clipOutput(config, output) };
}

function clipOutput(config: HostConfig, text: string): string {
  const clean = scrub(text, [...collectSecrets({ dataDir: config.dataDir }), config.githubToken()])
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > CHECK_OUTPUT_CHARS ? `${clean.slice(-CHECK_OUTPUT_CHARS)}` : clean;
}

/** Activity: the gate's reading on this host. */
export async function readGate(config: HostConfig, rawInput: unknown): Promise<GateReading> {
  const input = validated(ReadGateInput, rawInput, 'readGate');
  const reading: GateReading = gateFromHealth(await fetchHealth(config), input.counters);
  if (input.operatorCheck) reading.check = await operatorCheck(config);
  return reading;
}
