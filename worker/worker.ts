/**
 * One worker per host, on that host's task queue, with activities bound to the host's own
 * configuration (read once, at start).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type NativeConnectionOptions, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities/host/index.js';
import { SEARCH_ATTRIBUTES } from '../workflows/names.js';
import { shortHostname, workerIdentity } from './identity.js';
import { trackActivities } from './crash-guard.js';
import { ensureSearchAttributes } from './search-attributes.js';
import { describeHostConfig, loadHostConfig, type HostConfig, type HostConfigOverrides } from './host-config.js';
import { markReadyWhenPolling } from './ready-mark.js';
import { onRestartRequested } from './restart.js';
import {
  connectWorker,
  flushRuntimeLogs,
  guardWorkerProcess,
  installRuntime,
  runtimeLogFile,
  runtimeLogger,
  workerConnectionOptions,
} from './runtime.js';

export const DIST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The prebundled workflow code written by `npm run build` (scripts/bundle-workflows). */
export const DEFAULT_WORKFLOW_BUNDLE = path.join(DIST_DIR, 'workflow-bundle.cjs');
/** The compiled workflows, bundled at worker start when no prebuilt bundle is usable. */
export const DEFAULT_WORKFLOWS_PATH = path.join(DIST_DIR, 'workflows', 'index.js');

export interface HostWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  hostConfig: HostConfig;
  /** Defaults to createActivities(hostConfig). */
  activities?: object;
  /** A prebuilt bundle (bundleWorkflowCode output); defaults to dist/workflow-bundle.cjs when present. */
  workflowBundlePath?: string;
  /** Workflow sources to bundle at start; defaults to dist/workflows/index.js. */
  workflowsPath?: string;
  /** How long in-flight activities get on shutdown (default 10 s). */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  /**
   * Also run the workflows on the host's own queue, as every release before issue 13 did: for runs
   * started by such a release (they stay on that queue until they end), and for tests of that path.
   * Default false: the host worker registers only its activities, loads no workflow bundle and
   * never replays a history; the workflows run on the agent's or the controller's queue.
   */
  workflows?: boolean;
}

function mtime(p: string): number | undefined {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Which workflow code a worker loads: an explicit bundle, a fresh prebuilt one, or the sources. */
export function resolveWorkflowCode(
  opts: { workflowBundlePath?: string; workflowsPath?: string } = {},
): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  if (opts.workflowBundlePath) {
    if (mtime(opts.workflowBundlePath) === undefined) {
      throw new Error(`workflow bundle ${opts.workflowBundlePath} not found; run npm run build`);
    }
    return { workflowBundle: { codePath: opts.workflowBundlePath } };
  }
  if (opts.workflowsPath) return { workflowsPath: opts.workflowsPath };
  const bundleTime = mtime(DEFAULT_WORKFLOW_BUNDLE);
  const sourceTime = mtime(DEFAULT_WORKFLOWS_PATH);
  // A bundle older than the compiled workflows is stale (tsc ran without the bundle step).
  if (bundleTime !== undefined && (sourceTime === undefined || bundleTime >= sourceTime)) {
    return { workflowBundle: { codePath: DEFAULT_WORKFLOW_BUNDLE } };
  }
  if (sourceTime !== undefined) return { workflowsPath: DEFAULT_WORKFLOWS_PATH };
  throw new Error(
    `workflow code not found (${DEFAULT_WORKFLOW_BUNDLE} or ${DEFAULT_WORKFLOWS_PATH}); run npm run build`,
  );
}

/** Creates this host's worker; call run() on it (or use runWorkerForeground). */
export async function createHostWorker(opts: HostWorkerOptions): Promise<Worker> {
  const { hostConfig } = opts;
  const code = opts.workflows ? resolveWorkflowCode(opts) : undefined;
  const activities = opts.activities ?? createActivities(hostConfig);
  const logger = runtimeLogger();
  logger.info('defenseclaw-upgrade worker starting', {
    ...describeHostConfig(hostConfig),
    namespace: opts.namespace,
    workflows: !code
      ? 'none (activities only)'
      : 'workflowBundle' in code
        ? code.workflowBundle.codePath
        : code.workflowsPath,
    logFile: runtimeLogFile(),
  });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: hostConfig.taskQueue,
    identity: workerIdentity('host', hostConfig.host),
    activities,
    ...(code ?? {}),
    ...(code ? WORKFLOW_WORKER_TUNING : ACTIVITY_WORKER_TUNING),
    shutdownGraceTime: opts.shutdownGraceTime ?? '10s',
    // What was running, for the crash report of guardWorkerProcess.
    interceptors: { activity: [trackActivities] },
  });
}

/**
 * A workflow task waits this long for its (sticky) worker before any worker may take it. The
 * default 10 s stalls a run for 10 s more after its worker was killed (even inside the downtime
 * window); a live worker answers its sticky queue in milliseconds.
 */
const WORKFLOW_WORKER_TUNING = { stickyQueueScheduleToStartTimeout: '2s' } satisfies Partial<WorkerOptions>;

/**
 * A host runs one upgrade at a time: a few activity slots and one poller are plenty, and keep an
 * idle worker from holding more long polls (and memory) than it will ever use.
 */
const ACTIVITY_WORKER_TUNING = {
  maxConcurrentActivityTaskExecutions: 8,
  activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 1 },
} satisfies Partial<WorkerOptions>;

export interface WorkflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** The agent's (AGENT_WORKFLOW_QUEUE) or the controller's queue. */
  taskQueue: string;
  identity?: string;
  workflowBundlePath?: string;
  workflowsPath?: string;
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  /** The controller's own activities (ring rollout notifications, channel checks); default createControllerActivities(). */
  activities?: object;
}

/**
 * The worker that runs the workflows (upgrade, rollback, backups, fleet, rings, channel checks):
 * the local agent's, or a fleet controller's. Every host activity goes to its host's own queue; the
 * only activities here are the controller's own (webhook notifications, resolving a release
 * channel, a schedule's memory), configured in this process's environment.
 */
export async function createWorkflowWorker(opts: WorkflowWorkerOptions): Promise<Worker> {
  const code = resolveWorkflowCode(opts);
  runtimeLogger().info('defenseclaw-upgrade workflow worker starting', {
    taskQueue: opts.taskQueue,
    namespace: opts.namespace,
    workflows: 'workflowBundle' in code ? code.workflowBundle.codePath : code.workflowsPath,
  });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    identity: opts.identity ?? workerIdentity('controller', shortHostname()),
    activities:
      opts.activities ?? (await import('../activities/controller/controller.js')).createControllerActivities(),
    ...code,
    ...(opts.activities ? { activities: opts.activities } : {}),
    ...WORKFLOW_WORKER_TUNING,
    shutdownGraceTime: opts.shutdownGraceTime ?? '5s',
  });
}

/**
 * An uncaught exception or unhandled rejection in this worker process is logged (scrubbed, with
 * the activities that were running) and the process exits non-zero, for its supervisor to
 * restart it. Call after installRuntime.
 */

export interface ForegroundWorkerOptions {
  /** Environment to read the host config and the cluster from (default: this process's). */
  env?: NodeJS.ProcessEnv;
  hostOverrides?: HostConfigOverrides;
  /** Overrides TEMPORAL_ADDRESS / the profile. */
  address?: string;
  /** Overrides TEMPORAL_NAMESPACE / the profile. */
  namespace?: string;
  /** For tests: activities instead of createActivities(hostConfig). */
  activities?: object;
  workflowBundlePath?: string;
  /** Also run workflows on the host's queue (`worker --with-workflows`): see HostWorkerOptions.workflows. */
  workflows?: boolean;
  /** Called once the worker polls (for the CLI's "worker for host X on queue Y" line). */
  onReady?: (info: { host: string; taskQueue: string; address: string; namespace: string }) => void;
}

/**
 * `defenseclaw-upgrade worker`: this host's worker in the foreground until SIGINT/SIGTERM, which
 * shut it down gracefully (a second signal exits at once).
 */
export async function runWorkerForeground(opts: ForegroundWorkerOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  const hostConfig = loadHostConfig(env, opts.hostOverrides);
  installRuntime({ env, dataDir: hostConfig.dataDir, fields: { host: hostConfig.host } });
  guardWorkerProcess();
  const logger = runtimeLogger();
  const target = workerConnectionOptions(env, { address: opts.address, namespace: opts.namespace });
  const connection = await connectWorker(target.options as NativeConnectionOptions & { address: string });
  // A cluster that lacks the project's search attributes would fail every run's first workflow
  // task; register them when this identity may (Temporal Cloud manages them in its console).
  try {
    const added = await ensureSearchAttributes(connection, target.namespace);
    if (added.length) logger.info(`registered search attributes ${added.join(', ')} in ${target.namespace}`);
  } catch (err) {
    logger.warn(
      `could not check or register the search attributes (${Object.values(SEARCH_ATTRIBUTES).join(', ')}, Keyword) in ${target.namespace}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}; register them with \`temporal operator search-attribute create\` or in Temporal Cloud`,
    );
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn(`second ${sig}: exiting without waiting`);
      process.exit(130);
    }
    logger.info(`${sig} received: shutting the worker down (in-flight activities get their grace time)`);
    try {
      worker.shutdown();
    } catch {
      // not running yet or already stopping
    }
  };
  let worker: Worker;
  try {
    worker = await createHostWorker({
      connection,
      namespace: target.namespace,
      hostConfig,
      activities: opts.activities,
      workflowBundlePath: opts.workflowBundlePath,
      workflows: opts.workflows,
    });
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // updateUpgrader's restart: after its result was delivered, stop gracefully; the caller exits 75.
  const offRestart = onRestartRequested(() => {
    logger.info('restarting on the new version of defenseclaw-upgrade (in-flight activities get their grace time)');
    try {
      worker.shutdown();
    } catch {
      // already stopping
    }
  });
  const stopMark = new AbortController();
  try {
    const running = worker.run();
    opts.onReady?.({
      host: hostConfig.host,
      taskQueue: hostConfig.taskQueue,
      address: target.address,
      namespace: target.namespace,
    });
    void markReadyWhenPolling({
      connection,
      namespace: target.namespace,
      taskQueue: hostConfig.taskQueue,
      identity: worker.options.identity,
      kind: opts.workflows ? 'workflow' : 'activity',
      env,
      signal: stopMark.signal,
    }).then((file) => file && logger.info(`polling ${hostConfig.taskQueue}: wrote ${file} for the launcher`));
    await running;
    logger.info('worker stopped');
  } finally {
    stopMark.abort();
    offRestart();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await connection.close().catch(() => undefined);
    flushRuntimeLogs();
  }
}
