/**
 * The client's connection to Temporal.
 *
 * A remote cluster is configured the way every Temporal tool is (@temporalio/envconfig):
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_GRPC_META_*,
 * TEMPORAL_PROFILE and the config file (TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml).
 * Without any of those, the CLI uses the local agent and passes its address here.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import { diagnoseTls } from '../worker/tls-diagnosis.js';

export interface ConnectTemporalOptions {
  /** host:port; overrides TEMPORAL_ADDRESS / the profile. */
  address?: string;
  /** Overrides TEMPORAL_NAMESPACE / the profile (default "default"). */
  namespace?: string;
  /** Environment to read (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** UI base URL (the local agent's); TEMPORAL_UI_URL overrides it. */
  uiBase?: string;
  /**
   * Apply env-config (TLS, API key, metadata, profile). Default true; the CLI passes false for the
   * local agent's plain loopback server, so a remote cluster's credentials never go there.
   */
  useEnvConfig?: boolean;
  /** How long to wait for the server (default 5000 ms). */
  connectTimeoutMs?: number;
}

export interface TemporalConnection {
  client: Client;
  connection: Connection;
  namespace: string;
  address: string;
  uiBase?: string;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** The one-line error for a cluster that does not answer. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
  constructor(
    readonly address: string,
    readonly reason: string,
    fix = 'check TEMPORAL_ADDRESS',
  ) {
    super(`cannot reach Temporal at ${address}: ${reason}; ${fix}`);
  }
}

/** A configuration the SDK refused (bad profile, unreadable TLS file, …): one line. */
export class TemporalConfigError extends Error {
  override readonly name = 'TemporalConfigError';
}

const DEFAULT_ADDRESS = 'localhost:7233';
const DEFAULT_NAMESPACE = 'default';

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function configFilePath(env: NodeJS.ProcessEnv): string | undefined {
  if (env.TEMPORAL_CONFIG_FILE) return env.TEMPORAL_CONFIG_FILE;
  if (process.platform === 'darwin') {
    return env.HOME ? path.join(env.HOME, 'Library', 'Application Support', 'temporalio', 'temporal.toml') : undefined;
  }
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : undefined;
  const base = xdg ?? path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'temporalio', 'temporal.toml');
}

/**
 * True when the environment points at a Temporal cluster of its own (TEMPORAL_ADDRESS, a
 * TEMPORAL_PROFILE, or a config file whose default profile names an address), so the CLI should
 * not bring up the local agent.
 */
export function temporalConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.TEMPORAL_ADDRESS?.trim() || env.TEMPORAL_PROFILE?.trim()) return true;
  const file = configFilePath(env);
  if (!file || !fs.existsSync(file)) return false;
  try {
    const profile = loadClientConfigProfile({ overrideEnvVars: stringEnv(env), disableEnv: true });
    return Boolean(profile.address);
  } catch {
    return true; // a config file that does not parse should be reported by connectTemporal, not ignored
  }
}

/** The UI base for a cluster: TEMPORAL_UI_URL, else the given one, else Temporal Cloud's for *.tmprl.cloud. */
export function uiBaseFor(address: string, env: NodeJS.ProcessEnv = process.env, given?: string): string | undefined {
  const fromEnv = env.TEMPORAL_UI_URL?.trim();
  const base = fromEnv || given || (/\.tmprl\.cloud(:\d+)?$/i.test(address) ? 'https://cloud.temporal.io' : undefined);
  return base ? base.replace(/\/+$/, '') : undefined;
}

/** The Web UI page of a workflow run's history. */
export function uiLink(uiBase: string, namespace: string, workflowId: string, runId?: string): string {
  const base = uiBase.replace(/\/+$/, '');
  const run = runId ? `/${encodeURIComponent(runId)}` : '';
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}${run}/history`;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** The reason a connection attempt failed, in a few words. */
function reasonOf(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const msg = e instanceof Error ? e.message : String(e);
    const line = firstLine(msg)
      .replace(/^\d+ [A-Z_]+: /, '')
      .trim();
    if (line && !parts.some((p) => p.includes(line) || line.includes(p))) parts.push(line);
    e = (e as { cause?: unknown }).cause;
  }
  const reason = parts.slice(-2).join(': ') || 'unknown error';
  return /deadline/i.test(reason) ? `no answer in time (${reason})` : reason;
}

/** Splits host:port (IPv6 in brackets; port 7233 when absent). */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
  if (!m) return { host: address, port: 7233 };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 7233 };
}

const TCP_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

/**
 * A plain TCP connect to the address: gRPC retries a refused connection until its deadline and
 * then only says "Failed to connect before the deadline", so this gives the real reason fast.
 * Resolves undefined when the port accepts connections.
 */
function tcpProbe(address: string, timeoutMs: number): Promise<string | undefined> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (reason: string | undefined) => {
      s.destroy();
      resolve(reason);
    };
    s.setTimeout(timeoutMs, () => done(`no answer within ${Math.round(timeoutMs / 1000)} s`));
    s.once('connect', () => done(undefined));
    s.once('error', (err: NodeJS.ErrnoException) => done(TCP_REASONS[err.code ?? ''] ?? firstLine(err.message)));
  });
}

function usesProxy(env: NodeJS.ProcessEnv): boolean {
  return ['grpc_proxy', 'https_proxy', 'http_proxy', 'GRPC_PROXY', 'HTTPS_PROXY', 'HTTP_PROXY'].some((k) => env[k]);
}

/** Connects a Client, failing fast (one line) when the cluster does not answer. */
export async function connectTemporal(opts: ConnectTemporalOptions = {}): Promise<TemporalConnection> {
  const env = opts.env ?? process.env;
  const useEnvConfig = opts.useEnvConfig ?? true;

  let profileNamespace: string | undefined;
  let options: ConnectionOptions = {};
  if (useEnvConfig) {
    try {
      const profile = loadClientConfigProfile({ overrideEnvVars: stringEnv(env) });
      const { connectionOptions, namespace } = toClientOptions(profile);
      profileNamespace = namespace;
      options = {
        address: connectionOptions.address,
        tls: connectionOptions.tls,
        apiKey: connectionOptions.apiKey,
        metadata: connectionOptions.metadata,
      };
    } catch (err) {
      throw new TemporalConfigError(
        `invalid Temporal client configuration: ${firstLine(String((err as Error).message ?? err))}`,
      );
    }
  }
  const address = opts.address ?? options.address ?? DEFAULT_ADDRESS;
  const namespace = opts.namespace ?? profileNamespace ?? DEFAULT_NAMESPACE;
  const clean = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ConnectionOptions;

  const timeoutMs = opts.connectTimeoutMs ?? 5000;
  const t0 = Date.now();
  if (!usesProxy(env)) {
    const why = await tcpProbe(address, timeoutMs);
    if (why) throw new TemporalUnreachableError(address, why);
  }
  const connection = Connection.lazy({
    ...clean,
    address,
    connectTimeout: Math.max(1000, timeoutMs - (Date.now() - t0)),
  });
  try {
    await connection.ensureConnected();
  } catch (err) {
    await connection.close().catch(() => undefined);
    // A refused TLS handshake looks like a timeout to gRPC: say which setting is missing.
    const tlsProblem = usesProxy(env) ? undefined : await diagnoseTls(address, clean);
    if (tlsProblem) throw new TemporalUnreachableError(address, tlsProblem.reason, tlsProblem.fix);
    throw new TemporalUnreachableError(address, reasonOf(err));
  }
  const client = new Client({ connection, namespace });
  return {
    client,
    connection,
    namespace,
    address,
    uiBase: uiBaseFor(address, env, opts.uiBase),
    close: () => connection.close(),
  };
}
