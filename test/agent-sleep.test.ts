/**
 * The local agent sleeps: with no open run and no schedule for DEFENSECLAW_AGENT_IDLE_SECONDS it
 * exits (dev server included: no process left), agent.json says asleep, and the next command
 * wakes it. Its SQLite store keeps everything: `history` and `show` answer after a sleep. An
 * upgrade in flight keeps it awake for as long as it runs, whatever the idle period. (A kill
 * mid-upgrade and the resumed run: supervision.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readAgentInfo, type AgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { runCli } from './helpers/cli.js';
import { temporalCliPath } from './helpers/temporal.js';

const IDLE_S = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let releases: ReleaseServer;
let host: SimHost;
let env: Record<string, string>;
const cli = (args: string[]) => runCli(args, env, 180_000);

before(async () => {
  releases = await startReleaseServer();
  // 0.4.0 answers /health `starting` for a while: that upgrade outlasts the idle period.
  host = await createSimHost({
    version: '0.3.0',
    faults: { gateway: { '0.4.0': { healthDelayMs: 3 * IDLE_S * 1000 } } },
  });
  env = {
    ...host.env,
    ...releases.env(),
    DEFENSECLAW_HOST: 'sleepy-host',
    DEFENSECLAW_AGENT_IDLE_SECONDS: String(IDLE_S),
    TEMPORAL_CLI_PATH: await temporalCliPath(),
    NO_COLOR: '1',
  };
});

after(async () => {
  await cli(['agent', 'stop']).catch(() => undefined);
  await host?.cleanup();
  await releases?.close();
});

/** Waits until the agent has gone to sleep by itself; answers what it left in agent.json. */
async function asleep(timeoutMs = 30_000): Promise<AgentInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await readAgentInfo(env.DEFENSECLAW_HOME!);
    if (info?.state === 'stopped' && !isAlive(info.pid)) return info;
    assert.ok(Date.now() < deadline, `the agent did not sleep within ${timeoutMs} ms: ${JSON.stringify(info)}`);
    await sleep(250);
  }
}

describe('the agent sleeps when idle', { timeout: 300_000 }, () => {
  it('sleeps after a run, costs no process, wakes for history/show, stays awake through an upgrade', async () => {
    const first = await cli(['upgrade', '--yes', '--json', '--version', '0.3.1']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { outcome: string }).outcome, 'upgraded');

    // Idle: it exits by itself, dev server too, and says why.
    const slept = await asleep();
    assert.equal(slept.asleep, true);
    assert.ok(slept.serverPid && !isAlive(slept.serverPid), 'the dev server is gone too');
    const status = await cli(['agent', 'status']);
    assert.match(status.stdout, /^asleep since/);

    // The next command wakes it; the store kept the run.
    const hist = await cli(['history', '--json']);
    assert.equal(hist.code, 0, hist.stderr);
    assert.match(hist.stderr, /waking the local agent/);
    const rows = JSON.parse(hist.stdout) as Array<{ workflowId: string; runId: string; outcome: string; to: string }>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.outcome, 'upgraded');
    await asleep();
    const show = await cli(['show', rows[0]!.workflowId, '--json']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /startGateway|start gateway/);
    await asleep();

    // An upgrade that outlasts the idle period three times over: the agent that woke for it
    // runs it to the end, then sleeps.
    const t0 = Date.now();
    const second = await cli(['upgrade', '--yes', '--json', '--version', '0.4.0']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { outcome: string }).outcome, 'upgraded');
    assert.ok(Date.now() - t0 > 3 * IDLE_S * 1000, 'the upgrade outlasted the idle period');
    assert.doesNotMatch(second.stderr, /died|restart/i, 'the agent was not restarted during the run');
    const during = await readAgentInfo(env.DEFENSECLAW_HOME!);
    const last = await asleep();
    assert.equal(last.pid, during!.pid, 'one agent ran the whole upgrade');
    assert.ok(Date.parse(last.stoppedAt!) - t0 > 3 * IDLE_S * 1000, 'it slept only after the upgrade');
    assert.equal(await host.gatewayVersion(), '0.4.0');
  });
});
