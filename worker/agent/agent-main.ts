/**
 * Entry of the detached agent process (started by ensureAgent): the embedded dev server plus this
 * host's worker, until SIGTERM/SIGINT. stdout/stderr are agent.log; agent.json tells the CLI where
 * it answers. Never writes a secret: the host config's token stays inside the activities.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { AGENT_WORKFLOW_QUEUE } from '../../workflows/types.js';
import { agentIdleSeconds, type AgentLaunchConfig } from './agent.js';
import {
  agentPaths,
  ensurePrivateDir,
  writeAgentInfo,
  writeAgentInfoSync,
  writePrivateFile,
  type AgentInfo,
} from './agent-files.js';
import { freePort, PortInUseError, preferPort, startDevServer, type DevServer } from './dev-server.js';
import { loadHostConfig } from '../host-config.js';
import { workerIdentity } from '../identity.js';
import { TOOL_VERSION } from '../tool-version.js';
import { createHostWorker, createWorkflowWorker } from '../worker.js';
import { flushRuntimeLogs, guardWorkerProcess, installRuntime, runtimeLogger } from '../runtime.js';

function parseArgs(argv: string[]): AgentLaunchConfig {
  const i = argv.indexOf('--config');
  const raw = i >= 0 ? argv[i + 1] : undefined;
  if (!raw) throw new Error('usage: agent-main --config <json>');
  const c = JSON.parse(raw) as AgentLaunchConfig;
  if (typeof c.cliPath !== 'string' || !c.cliPath) throw new Error('agent-main: cliPath missing');
  return c;
}

async function main(): Promise<void> {
  const launch = parseArgs(process.argv.slice(2));
  const hostConfig = loadHostConfig(process.env, launch.hostOverrides);
  const dataDir = hostConfig.dataDir;
  // Human lines on stderr (agent.log), JSON lines in $DEFENSECLAW_HOME/logs/worker.jsonl.
  installRuntime({ dataDir, fields: { host: hostConfig.host } });
  const logger = runtimeLogger();
  const paths = agentPaths(dataDir);
  await ensurePrivateDir(paths.dir);
  await ensurePrivateDir(paths.temporalDir);
  await writePrivateFile(paths.pidFile, `${process.pid}\n`);

  let info: AgentInfo = {
    state: 'starting',
    pid: process.pid,
    upgraderVersion: TOOL_VERSION,
    namespace: launch.namespace,
    taskQueue: hostConfig.taskQueue,
    host: hostConfig.host,
    releases: hostConfig.releases,
    startedAt: new Date().toISOString(),
    dbFile: paths.dbFile,
    logFile: paths.logFile,
  };
  const save = (patch: Partial<AgentInfo>) => {
    info = { ...info, ...patch };
    return writeAgentInfo(dataDir, info);
  };
  await save({});

  // An uncaught error anywhere (an activity's library included): agent.json says the agent died
  // and of what, its dev server is asked to stop, and the process exits non-zero; the CLI that
  // watches a run notices and starts a new agent, and the run resumes from its history.
  guardWorkerProcess((summary) => {
    info = { ...info, state: 'failed', error: summary, stoppedAt: new Date().toISOString() };
    writeAgentInfoSync(dataDir, info);
    fs.rmSync(paths.pidFile, { force: true });
    if (info.serverPid) process.kill(info.serverPid, 'SIGTERM');
  });

  let server: DevServer | undefined;
  let connection: NativeConnection | undefined;
  let workers: Worker[] = [];
  let running: Promise<void> | undefined;
  let shuttingDown: Promise<void> | undefined;

  const shutdown = (why: string, failed?: string, asleep = false) =>
    (shuttingDown ??= (async () => {
      logger.info(`agent stopping: ${why}`);
      await save({ state: 'stopping' }).catch(() => undefined);
      if (workers.length && running) {
        for (const worker of workers) {
          try {
            worker.shutdown();
          } catch {
            // already stopping
          }
        }
        await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
      }
      await connection?.close().catch(() => undefined);
      await server?.stop().catch(() => undefined);
      await fsp.rm(paths.pidFile, { force: true });
      await save(
        failed
          ? { state: 'failed', error: failed, stoppedAt: new Date().toISOString() }
          : { state: 'stopped', stoppedAt: new Date().toISOString(), ...(asleep ? { asleep: true } : {}) },
      ).catch(() => undefined);
      logger.info('agent stopped');
      flushRuntimeLogs();
      process.exit(failed ? 1 : 0);
    })());

  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void shutdown(sig));
  process.on('SIGHUP', () => undefined);

  try {
    const port = launch.temporalPort ?? (await preferPort(7233));
    const uiPort = launch.uiPort ?? (await preferPort(8233, undefined, [port]));
    const start = (p: number, u: number) =>
      startDevServer({
        cliPath: launch.cliPath,
        dbFile: paths.dbFile,
        port: p,
        uiPort: u,
        ui: true,
        namespace: launch.namespace,
        logFile: paths.logFile,
      });
    try {
      server = await start(port, uiPort);
    } catch (err) {
      // A port we chose ourselves was taken in the meantime: choose again (never an explicit one).
      if (!(err instanceof PortInUseError)) throw err;
      const p2 = launch.temporalPort ?? (err.port === port ? await freePort() : port);
      const u2 = launch.uiPort ?? (err.port === uiPort ? await freePort() : uiPort);
      if (p2 === port && u2 === uiPort) throw err;
      logger.warn(`port ${err.port} was taken meanwhile; retrying on ${p2}/${u2}`);
      server = await start(p2, u2);
    }
    await save({ serverPid: server.pid, address: server.address, uiUrl: server.uiUrl, serverStartMs: server.startMs });
    logger.info(`dev server ready at ${server.address} in ${server.startMs} ms (UI ${server.uiUrl})`);
    server.exited.then(({ code, signal }) => {
      if (!shuttingDown) void shutdown('the dev server exited', `dev server exited (${signal ?? `code ${code}`})`);
    });

    connection = await NativeConnection.connect({ address: server.address });
    // The workflows on the agent's queue; this host's activities, alone, on the host's queue. Runs
    // started by an earlier release live on the host's queue: while one is open, the host worker
    // runs workflows too, so that it finishes.
    // Built side by side: waking for a run waits for the slower of the two, not their sum.
    const workflowWorker = createWorkflowWorker({
      connection,
      namespace: launch.namespace,
      taskQueue: AGENT_WORKFLOW_QUEUE,
      identity: workerIdentity('agent', hostConfig.host),
    });
    workflowWorker.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    const legacy = await openRunsOnQueue(server.address, launch.namespace, hostConfig.taskQueue);
    if (legacy) logger.info(`${legacy} run(s) started by an earlier release are open: serving their workflows too`);
    const hostWorker = createHostWorker({ connection, namespace: launch.namespace, hostConfig, workflows: legacy > 0 });
    workers = await Promise.all([workflowWorker, hostWorker]);
    running = Promise.all(workers.map((w) => w.run())).then(() => undefined);
    running.then(
      () => {
        if (!shuttingDown) void shutdown('the worker stopped', 'the worker stopped unexpectedly');
      },
      (err: unknown) => {
        const msg = err instanceof Error ? err.message : String(err);
        logger.error(`worker failed: ${msg}`);
        if (!shuttingDown) void shutdown('the worker failed', `worker failed: ${msg.split('\n')[0]}`);
      },
    );
    await save({ state: 'ready', readyAt: new Date().toISOString(), asleep: undefined });
    const idleSeconds = agentIdleSeconds();
    if (idleSeconds > 0) sleepWhenIdle(server.address, launch.namespace, idleSeconds, paths.wakeFile, shutdown);
    logger.info(`agent ready: host ${hostConfig.host}, queue ${hostConfig.taskQueue}, ${server.address}`);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    logger.error(`agent failed to start: ${msg}`);
    await shutdown('start failed', msg);
  }
}

/**
 * The agent exits (asleep: the next command wakes it) once, for `idleSeconds`, no workflow was
 * open, no schedule existed and no command touched the wake file. An upgrade in flight, a fleet
 * rollout, a run waiting for a confirmation keep it awake; everything is in the SQLite store.
 */
function sleepWhenIdle(
  address: string,
  namespace: string,
  idleSeconds: number,
  wakeFile: string,
  shutdown: (why: string, failed?: string, asleep?: boolean) => Promise<void>,
): void {
  const logger = runtimeLogger();
  let busyAt = Date.now();
  let client: Client | undefined;
  const everyMs = Math.min(10_000, Math.max(500, (idleSeconds * 1000) / 4));
  const check = async () => {
    try {
      client ??= new Client({ connection: await Connection.connect({ address, connectTimeout: 5000 }), namespace });
      const { count } = await client.workflow.count(`ExecutionStatus = 'Running'`);
      let schedules = 0;
      for await (const _ of client.schedule.list({ pageSize: 1 })) {
        schedules += 1;
        break;
      }
      if (count > 0 || schedules > 0) busyAt = Date.now();
    } catch (err) {
      // Cannot tell: stay awake.
      busyAt = Date.now();
      logger.debug(`idle check failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    let wokenAt = 0;
    try {
      wokenAt = fs.statSync(wakeFile).mtimeMs;
    } catch {
      // never touched
    }
    const idleFor = Date.now() - Math.max(busyAt, wokenAt);
    if (idleFor >= idleSeconds * 1000) {
      await client?.connection.close().catch(() => undefined);
      await shutdown(
        `idle for ${Math.round(idleFor / 1000)} s with no open run: sleeping until the next command`,
        undefined,
        true,
      );
      return;
    }
    setTimeout(() => void check(), everyMs).unref();
  };
  setTimeout(() => void check(), everyMs).unref();
}

/** Open runs on a queue (runs started by a release whose workflows ran on the host's queue); 1 when unknown. */
async function openRunsOnQueue(address: string, namespace: string, taskQueue: string): Promise<number> {
  const connection = await Connection.connect({ address, connectTimeout: 5000 }).catch(() => undefined);
  if (!connection) return 1;
  try {
    const client = new Client({ connection, namespace });
    const { count } = await client.workflow.count(`TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`);
    return count;
  } catch {
    return 1;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`agent-main: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  flushRuntimeLogs();
  process.exit(1);
});
