/**
 * This process's Temporal Runtime, shared by every worker it runs (host, fleet, agent): its logging
 * (scrubbed, to the terminal and a log file), the crash guard, and the connection to the cluster
 * with a one-line reason when it fails.
 */
import type { LogLevel, Logger } from '@temporalio/common';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import { NativeConnection, Runtime, type NativeConnectionOptions, type RuntimeOptions } from '@temporalio/worker';
import { installCrashGuard, type CrashGuardOptions } from './crash-guard.js';
import { withOnDemandLogFlush } from './log-collector.js';
import { diagnoseTls } from './tls-diagnosis.js';
import { LOG_LEVELS, Scrubber, createWorkerLogger, logDirFor, parseLogLevel, type WorkerLogger } from './logging.js';
import { collectSecrets } from './host-secrets.js';

/**
 * The logger for this process's own lines: the one installRuntime installed, used directly (the
 * Runtime's own logger holds entries ~100 ms to order them with core's, so a line logged just
 * before process.exit would be lost), else the Runtime's.
 */
export function runtimeLogger(): Logger {
  return installedLogger ?? Runtime.instance().logger;
}

/** Writes out the SDK's buffered log entries (workflow, activity, core); call before process.exit. */
export function flushRuntimeLogs(): void {
  try {
    Runtime._instance?.flushLogs();
  } catch {
    // nothing to flush
  }
}

export function guardWorkerProcess(onFatal?: CrashGuardOptions['onFatal']): void {
  installCrashGuard({
    logger: runtimeLogger(),
    scrub: (text) => installedLogger?.scrubber.text(text) ?? text,
    onFatal,
    flush: flushRuntimeLogs,
  });
}

export interface InstallRuntimeOptions {
  /** Terminal level (default DEFENSECLAW_LOG_LEVEL, else INFO). */
  level?: LogLevel;
  /** Where the human lines go (default: stderr). */
  write?: (line: string) => void;
  /**
   * This host's data directory: JSON lines go to <dataDir>/logs/worker.jsonl, and the gateway
   * token and device.key found there are scrubbed from every entry. Without it (and without
   * logDir) the Runtime logs to the terminal only.
   */
  dataDir?: string;
  /** The JSON lines directory (default <dataDir>/logs). */
  logDir?: string;
  /** File level (default DEFENSECLAW_LOG_FILE_LEVEL, else DEBUG: every activity's start and end). */
  fileLevel?: LogLevel;
  /** Rotation cap of the file (default 10 MiB, 5 rotated files kept). */
  maxBytes?: number;
  /** Added to every JSON record (e.g. { host }). */
  fields?: Record<string, unknown>;
  /** Secrets to scrub besides the ones read from env and dataDir. */
  secrets?: string[];
  /** The SDK's own metrics exporter (the controller's, see metrics.ts); default none. */
  metrics?: NonNullable<RuntimeOptions['telemetryOptions']>['metrics'];
  /** Environment for the levels and the credentials to scrub (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

let installedLogger: WorkerLogger | undefined;

/** The JSON lines file the Runtime's logger writes, when installRuntime set one up. */
export function runtimeLogFile(): string | undefined {
  return installedLogger?.logFile;
}

/**
 * Installs the process's Temporal Runtime with a logger that writes one human line per entry on
 * stderr and, given a data or log directory, one scrubbed JSON object per line to
 * <dataDir>/logs/worker.jsonl (core logs forwarded into both), and no signal handling of its own:
 * the caller owns shutdown. Returns the existing Runtime unchanged when one was already created.
 */
export function installRuntime(opts: InstallRuntimeOptions = {}): Runtime {
  if (Runtime._instance) return Runtime._instance;
  const env = opts.env ?? process.env;
  const level = opts.level ?? parseLogLevel(env.DEFENSECLAW_LOG_LEVEL, 'INFO');
  const logDir = opts.logDir ?? (opts.dataDir ? logDirFor(opts.dataDir) : undefined);
  const fileLevel = opts.fileLevel ?? parseLogLevel(env.DEFENSECLAW_LOG_FILE_LEVEL, 'DEBUG');
  const scrubber = new Scrubber([...collectSecrets({ env, dataDir: opts.dataDir }), ...(opts.secrets ?? [])]);
  const logger = createWorkerLogger({
    level,
    write: opts.write,
    scrubber,
    fields: { pid: process.pid, ...opts.fields },
    file: logDir ? { dir: logDir, level: fileLevel, maxBytes: opts.maxBytes } : undefined,
  });
  installedLogger = logger;
  const finest = logger.logFile && LOG_LEVELS.indexOf(fileLevel) < LOG_LEVELS.indexOf(level) ? fileLevel : level;
  // Core's logs forwarded into ours, flushed on demand rather than ten times a second (log-collector.ts).
  const runtime = withOnDemandLogFlush(() =>
    Runtime.install({
      logger,
      shutdownSignals: [],
      telemetryOptions: {
        logging: { filter: { core: finest === 'TRACE' ? 'DEBUG' : 'WARN', other: 'ERROR' }, forward: {} },
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
      },
    }),
  );
  if (logger.logFile) logger.debug(`JSON logs in ${logger.logFile}`, { secretsScrubbed: scrubber.size });
  return runtime;
}

/** Connection options for a remote cluster from env-config (TEMPORAL_ADDRESS, TLS, API key, profile). */
export function workerConnectionOptions(
  env: NodeJS.ProcessEnv = process.env,
  override: { address?: string; namespace?: string } = {},
): { options: NativeConnectionOptions; namespace: string; address: string } {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;
  let loaded: ReturnType<typeof toClientOptions>;
  try {
    loaded = toClientOptions(loadClientConfigProfile({ overrideEnvVars: vars }));
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new Error(`invalid Temporal client configuration: ${msg}`);
  }
  const { connectionOptions, namespace } = loaded;
  const options: NativeConnectionOptions = {};
  for (const [k, v] of Object.entries(connectionOptions)) {
    if (v !== undefined) (options as Record<string, unknown>)[k] = v;
  }
  const address = override.address ?? options.address ?? 'localhost:7233';
  options.address = address;
  return { options, namespace: override.namespace ?? namespace ?? 'default', address };
}

/** Connects a NativeConnection, failing with one line instead of retrying forever. */
export async function connectWorker(
  options: NativeConnectionOptions & { address: string },
  timeoutMs = 10_000,
): Promise<NativeConnection> {
  let timer: NodeJS.Timeout | undefined;
  const attempt = NativeConnection.connect(options);
  try {
    return await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    // A late success must not leak a connection.
    attempt.then((c) => c.close()).catch(() => undefined);
    // A refused TLS handshake is only a "transport error" to core: say which setting is missing.
    const tlsProblem = await diagnoseTls(options.address, options);
    const reason = tlsProblem?.reason ?? nativeReason(err instanceof Error ? err.message : String(err));
    throw new Error(
      `cannot reach Temporal at ${options.address}: ${reason}; ${tlsProblem?.fix ?? 'check TEMPORAL_ADDRESS'}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Core's errors are Rust debug strings; keep the human part. */
function nativeReason(msg: string): string {
  const m = /message: "([^"]+)"/.exec(msg) ?? /error: "([^"]+)"/.exec(msg) ?? /ConnectError\("([^"]+)"/.exec(msg);
  return (m ? m[1]! : msg.split('\n')[0]!).trim();
}
