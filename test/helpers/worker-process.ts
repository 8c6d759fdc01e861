/**
 * A host's worker in a process of its own, so that a test can SIGKILL it (or have it kill itself,
 * see crash-activities.ts) and start another one on the same host.
 *
 *   node dist/test/helpers/worker-process.js <config.json | JSON>     (or DCU_WORKER_CONFIG=<JSON>)
 *
 * The config: { address, namespace, env, workflowBundlePath? } where env is the host's environment
 * exactly as a user would set it for `defenseclaw-upgrade worker` (HOME, DEFENSECLAW_HOME, PATH,
 * DEFENSECLAW_RELEASES_URL, …) and workflowBundlePath a prebuilt workflow bundle (default: as the
 * product's worker chooses).
 * Crash injection comes from this process's own DCU_CRASH, DCU_CRASH_MARKER and DCU_ACTIVITY_LOG.
 * Prints `READY <pid>` on stdout once the worker polls; SIGTERM shuts it down gracefully.
 */
import fs from 'node:fs';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../../activities/host/index.js';
import { loadHostConfig } from '../../worker/host-config.js';
import { createHostWorker } from '../../worker/worker.js';
import { installRuntime } from '../../worker/runtime.js';
import { parseCrashSpec, wrapForCrash } from './crash-activities.js';

export interface WorkerProcessConfig {
  address: string;
  namespace: string;
  env: Record<string, string>;
  workflowBundlePath?: string;
}

function readConfig(): WorkerProcessConfig {
  const arg = process.argv[2] ?? process.env.DCU_WORKER_CONFIG;
  if (!arg) throw new Error('usage: worker-process <config.json | JSON> (or DCU_WORKER_CONFIG)');
  const text = arg.trimStart().startsWith('{') ? arg : fs.readFileSync(arg, 'utf8');
  const c = JSON.parse(text) as WorkerProcessConfig;
  if (typeof c.address !== 'string' || typeof c.namespace !== 'string' || typeof c.env !== 'object') {
    throw new Error('worker config needs address, namespace and env');
  }
  return c;
}

async function main(): Promise<void> {
  const config = readConfig();
  installRuntime({ level: 'WARN' });
  const hostConfig = loadHostConfig(config.env);
  const activities = wrapForCrash(createActivities(hostConfig), {
    spec: parseCrashSpec(process.env.DCU_CRASH),
    markerFile: process.env.DCU_CRASH_MARKER,
    activityLog: process.env.DCU_ACTIVITY_LOG,
  });
  const connection = await NativeConnection.connect({ address: config.address });
  const worker = await createHostWorker({
    connection,
    namespace: config.namespace,
    hostConfig,
    activities,
    workflowBundlePath: config.workflowBundlePath,
    // This rig runs the workflow and the activities in the one process it crashes (the worker of
    // releases before activity-only host workers, still what serves their in-flight runs).
    workflows: true,
    shutdownGraceTime: '2s',
  });
  const stop = () => {
    try {
      worker.shutdown();
    } catch {
      // not running yet, or already stopping
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const running = worker.run();
  process.stdout.write(`READY ${process.pid}\n`);
  await running;
  await connection.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`worker-process: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
