/** `fleet worker`: the worker that runs the fleet workflows and the controller's activities (a controller machine). */
import { Worker, type NativeConnectionOptions } from '@temporalio/worker';
import { createControllerActivities } from '../../../activities/controller/controller.js';
import { ensureAgent } from '../../../worker/agent/agent.js';
import { shortHostname, workerIdentity } from '../../../worker/identity.js';
import { controllerRuntimeOptions, serveControllerMetrics } from '../../../worker/metrics.js';
import { resolveWorkflowCode } from '../../../worker/worker.js';
import { connectWorker, installRuntime, runtimeLogger, workerConnectionOptions } from '../../../worker/runtime.js';
import { FLEET_TASK_QUEUE } from '../../../workflows/fleet/fleet-types.js';
import { CliFailure } from '../../errors.js';
import { temporalConfigured } from '../../temporal.js';
import { markReadyWhenPolling } from '../../../worker/ready-mark.js';

/**
 * Runs the worker that executes fleet workflows (no activities: every host's work runs on that
 * host's own worker) until SIGINT/SIGTERM.
 */
export async function runFleetWorker(
  opts: { taskQueue?: string; env?: NodeJS.ProcessEnv; onReady?: (line: string) => void } = {},
): Promise<void> {
  const env = opts.env ?? process.env;
  installRuntime(await controllerRuntimeOptions(env));
  const logger = runtimeLogger();
  let options: NativeConnectionOptions & { address: string };
  let namespace: string;
  if (temporalConfigured(env)) {
    const t = workerConnectionOptions(env);
    options = t.options as NativeConnectionOptions & { address: string };
    namespace = t.namespace;
  } else {
    const agent = await ensureAgent({ env });
    if (!agent.address) throw new CliFailure(`the local agent is not ready: ${agent.error ?? agent.state}`);
    options = { address: agent.address };
    namespace = agent.namespace ?? 'default';
  }
  const taskQueue = opts.taskQueue ?? FLEET_TASK_QUEUE;
  const connection = await connectWorker(options);
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      identity: workerIdentity('controller', shortHostname()),
      // The controller's own activities (ring rollout notifications to DEFENSECLAW_UPGRADE_WEBHOOK_URL,
      // channel checks): they trust only this machine's configuration.
      activities: createControllerActivities(env),
      ...resolveWorkflowCode(),
      shutdownGraceTime: '5s',
    });
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(130);
    logger.info(`${sig} received: stopping the fleet worker (rollouts continue when a worker returns)`);
    try {
      worker.shutdown();
    } catch {
      // not running yet or already stopping
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stopMark = new AbortController();
  const metrics = await serveControllerMetrics(connection, namespace, env);
  try {
    const running = worker.run();
    opts.onReady?.(`fleet worker polling ${taskQueue} on ${options.address} (namespace ${namespace})`);
    void markReadyWhenPolling({
      connection,
      namespace,
      taskQueue,
      identity: worker.options.identity,
      kind: 'workflow',
      env,
      signal: stopMark.signal,
    }).then((file) => file && logger.info(`polling ${taskQueue}: wrote ${file} for the launcher`));
    await running;
  } finally {
    stopMark.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
    await connection.close().catch(() => undefined);
  }
}
