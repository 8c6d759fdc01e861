/**
 * npm run bench -- idle   (also part of a plain `npm run bench`)
 *
 * What the upgrader costs a host while it does nothing, measured the same way for each shape:
 * the process (and the local agent's dev server) is started, left ~IDLE_SETTLE_S to settle, then
 * sampled over IDLE_SAMPLE_S seconds from /proc: resident memory (VmRSS) and
 * CPU (utime + stime over the window, in % of one core), see scripts/idle-sample.ts.
 *
 *   host workers beside the bare SDK's floor: scripts/bench-idle-worker.ts;
 *   local agent awake: the dev server + the agent's workers, after a run;
 *   local agent asleep: after its idle period, with no run open (no process left);
 *   wake: a sleeping agent to the first step of a new run, as `defenseclaw-upgrade` does it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { connectTemporal } from '../client/temporal.js';
import { readAgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { hostWorkflowId } from '../workflows/types.js';
import { createSimHost } from '../test/fixtures/host/sim-host.js';
import { startReleaseServer } from '../test/fixtures/releases/server.js';
import { projectCacheDir } from '../worker/agent/temporal-cli.js';
import { SAMPLE_S, SETTLE_S, benchHostWorkers } from './bench-idle-worker.js';
import { idleCost } from './idle-sample.js';

export { benchHostWorkers };

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');
const mb = (x: number) => `${x.toFixed(0)} MB`;
const pct = (x: number) => `${x.toFixed(2)}%`;

/**
 * The local agent, as a user has it after `defenseclaw-upgrade`: awake (dev server + agent) for
 * its idle period after a run, then asleep (no process); and a sleeping agent woken by the CLI
 * for a new upgrade, timed from the command's start to the first activity's start.
 */
export async function benchAgent(): Promise<string[]> {
  const releases = await startReleaseServer();
  const host = await createSimHost({ version: '0.3.0' });
  const idleS = Number(process.env.IDLE_AGENT_SECONDS ?? SETTLE_S + SAMPLE_S + 4);
  const env: Record<string, string> = {
    ...host.env,
    ...releases.env(),
    DEFENSECLAW_HOST: 'bench-idle-agent',
    DEFENSECLAW_AGENT_IDLE_SECONDS: String(idleS),
    DEFENSECLAW_CACHE_DIR: projectCacheDir(process.env),
    NO_COLOR: '1',
  };
  if (process.env.TEMPORAL_CLI_PATH) env.TEMPORAL_CLI_PATH = process.env.TEMPORAL_CLI_PATH;
  const cli = (args: string[]) => execa(process.execPath, [MAIN, ...args], { env, extendEnv: false, reject: false });
  const dataDir = env.DEFENSECLAW_HOME!;
  try {
    const first = await cli(['upgrade', '--yes', '--json', '--version', '0.3.1']);
    if (first.exitCode !== 0) throw new Error(`bench agent upgrade failed: ${first.stderr}`);
    const info = (await readAgentInfo(dataDir))!;
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const awake = await idleCost([info.pid, info.serverPid!], SAMPLE_S);
    const node = await idleCost([info.pid], 2);
    // Asleep: wait for it to exit by itself.
    const deadline = Date.now() + (idleS + 30) * 1000;
    while (isAlive(info.pid) || (info.serverPid && isAlive(info.serverPid))) {
      if (Date.now() > deadline) throw new Error('the agent did not sleep');
      await new Promise((r) => setTimeout(r, 250));
    }
    const slept = (await readAgentInfo(dataDir))!;
    // Wake for a new run.
    const t0 = Date.now();
    const second = await cli(['upgrade', '--yes', '--json', '--version', '0.4.0']);
    if (second.exitCode !== 0) throw new Error(`bench agent wake upgrade failed: ${second.stderr}`);
    const woke = (await readAgentInfo(dataDir))!;
    const c = await connectTemporal({ address: woke.address!, useEnvConfig: false });
    let firstStep = NaN;
    try {
      const h = await c.client.workflow.getHandle(hostWorkflowId('bench-idle-agent')).fetchHistory();
      const started = h.events?.find((e) => e.activityTaskStartedEventAttributes);
      const t = started?.eventTime;
      if (t) firstStep = Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) - t0;
    } finally {
      await c.close();
    }
    return [
      'local agent (dev server + agent process)',
      `  awake (before this change: always):    ${mb(awake.rssMb)} RSS (agent ${mb(node.rssMb)}), ${pct(awake.cpuPercent)} CPU, forever`,
      `  after:  awake for ${idleS} s after a run (default 300), then asleep: ${slept.asleep ? '0 MB, 0% CPU (no process)' : 'DID NOT SLEEP'}`,
      `  wake a sleeping agent to the first step of a run: ${(firstStep / 1000).toFixed(2)} s (target <= 3 s)`,
    ];
  } finally {
    await cli(['agent', 'stop']);
    await host.cleanup();
    await releases.close();
  }
}

async function main(): Promise<void> {
  const lines = [...(await benchHostWorkers()), ...(await benchAgent())];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`bench-idle failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
