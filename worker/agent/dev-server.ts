/**
 * The embedded Temporal dev server (`temporal server start-dev`) as a child process: loopback only,
 * SQLite-backed, with the project's search attributes registered at start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/types.js';
import { scrubEnv } from './temporal-cli.js';

export const LOOPBACK = '127.0.0.1';

export interface DevServerOptions {
  /** The Temporal CLI binary (see findTemporalCli). */
  cliPath: string;
  /** SQLite file; created (with its directory, 0700) when missing. */
  dbFile: string;
  /** gRPC port; a free loopback port when absent. */
  port?: number;
  /** UI port; a free loopback port when absent and the UI is on. */
  uiPort?: number;
  /** Serve the Web UI (default true). */
  ui?: boolean;
  /** Namespace created at start (default "default", which always exists). */
  namespace?: string;
  /** Append the server's stdout/stderr to this file (0600); otherwise keep the last lines in memory. */
  logFile?: string;
  /** Only loopback is supported. */
  ip?: typeof LOOPBACK;
  /** How long to wait for the server to answer (default 30 s). */
  startTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL in stop() (default 10 s). */
  stopGraceMs?: number;
  /** Environment for the child (default: this process's); secrets and TEMPORAL_* are removed. */
  env?: NodeJS.ProcessEnv;
}

export interface DevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  uiUrl: string | undefined;
  namespace: string;
  pid: number;
  port: number;
  uiPort: number | undefined;
  dbFile: string;
  /** Milliseconds from spawn to answering. */
  startMs: number;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after the grace. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL at once (for tests that simulate a crash). */
  kill(): void;
  /** The last lines the server printed (when no logFile was given). */
  recentOutput(): string;
}

/** The one-line error for a port that is taken. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(readonly port: number) {
    super(`port ${port} is in use; choose another with --temporal-port or stop what uses it`);
  }
}

/** True when nothing listens on ip:port (we can bind it). */
export function isPortFree(port: number, ip: string = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: ip, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the OS considers free on ip right now. */
export function freePort(ip: string = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: ip, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** `preferred` when it is free, else any free port. */
export async function preferPort(preferred: number, ip: string = LOOPBACK, avoid: number[] = []): Promise<number> {
  if (!avoid.includes(preferred) && (await isPortFree(preferred, ip))) return preferred;
  for (let i = 0; i < 5; i++) {
    const p = await freePort(ip);
    if (!avoid.includes(p)) return p;
  }
  return freePort(ip);
}

function validPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`invalid ${what} ${p}: expected 1-65535`);
  return p;
}

/** The search attributes the project needs, as `--search-attribute` values. */
export function searchAttributeArgs(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).flatMap((name) => ['--search-attribute', `${name}=Keyword`]);
}

function tcpAnswers(port: number, ip: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: ip });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `temporal server start-dev` and waits until it answers for the namespace. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? LOOPBACK;
  if (ip !== LOOPBACK) throw new Error(`the embedded dev server binds ${LOOPBACK} only (got ${String(ip)})`);
  const ui = opts.ui ?? true;
  const namespace = opts.namespace ?? 'default';
  const dbFile = path.resolve(opts.dbFile);

  // Ports: an explicit one must be free; otherwise pick.
  let port: number;
  if (opts.port !== undefined) {
    port = validPort(opts.port, 'port');
    if (!(await isPortFree(port, ip))) throw new PortInUseError(port);
  } else {
    port = await freePort(ip);
  }
  let uiPort: number | undefined;
  if (ui) {
    if (opts.uiPort !== undefined) {
      uiPort = validPort(opts.uiPort, 'UI port');
      if (uiPort === port || !(await isPortFree(uiPort, ip))) throw new PortInUseError(uiPort);
    } else {
      uiPort = await preferPort(port + 1000 <= 65535 ? port + 1000 : 0, ip, [port]);
    }
  }

  await fsp.mkdir(path.dirname(dbFile), { recursive: true, mode: 0o700 });

  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    ip,
    '--port',
    String(port),
    ...(ui ? ['--ui-port', String(uiPort)] : ['--headless']),
    '--namespace',
    namespace,
    ...searchAttributeArgs(),
    // No call home from a security tool's local server (the SDK's test servers set this too).
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    '--log-level',
    'warn',
  ];

  // The server needs no credentials, and TEMPORAL_* client settings must not steer it.
  const env = scrubEnv(opts.env ?? process.env);
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_')) delete env[k];

  let logFd: number | undefined;
  let logStart = 0;
  if (opts.logFile) {
    await fsp.mkdir(path.dirname(opts.logFile), { recursive: true, mode: 0o700 });
    logFd = fs.openSync(opts.logFile, 'a', 0o600);
    fs.fchmodSync(logFd, 0o600);
    logStart = fs.fstatSync(logFd).size;
  }
  const tail: string[] = [];
  let tailLen = 0;
  const keep = (chunk: Buffer) => {
    tail.push(chunk.toString('utf8'));
    tailLen += chunk.length;
    while (tailLen > 16_384 && tail.length > 1) tailLen -= tail.shift()!.length;
  };
  const recentOutput = () => {
    if (opts.logFile) {
      try {
        // Only what this server wrote (the file may hold earlier runs).
        const buf = fs.readFileSync(opts.logFile);
        return buf.subarray(Math.max(logStart, buf.length - 4096)).toString('utf8');
      } catch {
        return '';
      }
    }
    return tail.join('');
  };

  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(opts.cliPath, args, {
      stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
      env,
      cwd: path.dirname(dbFile),
    });
  } finally {
    if (logFd !== undefined) fs.closeSync(logFd);
  }
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exitInfo ??= { code: null, signal: null };
      resolve(exitInfo);
    });
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });

  const address = `${ip}:${port}`;
  const kill = () => {
    if (!exitInfo) child.kill('SIGKILL');
  };
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (exitInfo) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => kill(), opts.stopGraceMs ?? 10_000);
      await exited;
      clearTimeout(timer);
    })());

  const describeExit = () => {
    const last = recentOutput()
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-3)
      .join(' | ');
    if (spawnError) return `could not run ${opts.cliPath}: ${spawnError.message}`;
    const how = exitInfo?.signal ? `signal ${exitInfo.signal}` : `code ${exitInfo?.code}`;
    return `temporal server start-dev exited with ${how} before answering${last ? `: ${last}` : ''}`;
  };

  try {
    await waitUntilServing({
      address,
      port,
      ip,
      namespace,
      deadline: Date.now() + (opts.startTimeoutMs ?? 30_000),
      hasExited: () => exitInfo !== undefined,
      describeExit,
    });
  } catch (err) {
    await stop();
    // A port taken between our check and the server's bind shows up as an early exit:
    // "Error: can't set frontend port 7233: listen tcp 127.0.0.1:7233: bind: address already in use".
    const taken = /can't set \w+ port (\d+):[^\n]*address already in use/i.exec(recentOutput());
    if (taken) throw new PortInUseError(Number(taken[1]));
    throw err;
  }
  const startMs = Math.round(performance.now() - t0);
  // SQLite creates its files with the process umask; the history is nobody else's business.
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) {
    await fsp.chmod(f, 0o600).catch(() => undefined);
  }

  return {
    address,
    uiUrl: ui ? `http://${ip}:${uiPort}` : undefined,
    namespace,
    pid: child.pid!,
    port,
    uiPort,
    dbFile,
    startMs,
    exited,
    stop,
    kill,
    recentOutput,
  };
}

async function waitUntilServing(o: {
  address: string;
  port: number;
  ip: string;
  namespace: string;
  deadline: number;
  hasExited: () => boolean;
  describeExit: () => string;
}): Promise<void> {
  // The TCP port first (cheap polling; gRPC's reconnect backoff would add a second or more).
  while (!(await tcpAnswers(o.port, o.ip))) {
    if (o.hasExited()) throw new Error(o.describeExit());
    if (Date.now() > o.deadline) throw new Error(`temporal dev server did not open ${o.address} in time`);
    await sleep(40);
  }
  // Then the namespace, through the SDK's connection.
  const connection = Connection.lazy({ address: o.address, connectTimeout: 2000 });
  try {
    let last: unknown;
    for (;;) {
      if (o.hasExited()) throw new Error(o.describeExit());
      if (Date.now() > o.deadline) {
        throw new Error(`temporal dev server at ${o.address} did not answer in time: ${String(last)}`);
      }
      try {
        await connection.withDeadline(Date.now() + 2000, () =>
          connection.workflowService.describeNamespace({ namespace: o.namespace }),
        );
        return;
      } catch (err) {
        last = err instanceof Error ? err.message : err;
        await sleep(100);
      }
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

// Registering them on an existing cluster: worker/search-attributes.ts (the host worker needs
// nothing else of this file).
export { ensureSearchAttributes } from '../search-attributes.js';
