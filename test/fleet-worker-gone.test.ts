/**
 * A fleet host whose worker is gone mid-upgrade (stopped during its downloads): `fleet status` shows it as `worker gone` (with
 * why: work scheduled on its queue that nobody picks up), not as upgrading; while the worker
 * runs it is not flagged; once the worker is back the host finishes, upgraded once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { fleetProgressQuery, type FleetHostRecord } from '../workflows/fleet/fleet-types.js';
import { hostWorkflowId } from '../workflows/types.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { runCli } from './helpers/cli.js';
import { FleetSim, startFleet, startFleetWorker } from './helpers/fleet-sim.js';
import { startTestEnvironment } from './helpers/temporal.js';

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
let fleetWorker: Awaited<ReturnType<typeof startFleetWorker>>;
let sim: FleetSim | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  // Slow downloads: the host is still downloading when its worker goes away.
  [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer({ throttleBytesPerSec: 1024 })]);
  fleetWorker = await startFleetWorker(env.nativeConnection, env.namespace ?? 'default');
});

after(async () => {
  await fleetWorker?.stop();
  await sim?.close().catch(() => undefined);
  await releases?.close();
  await env?.teardown();
});

type StatusHost = FleetHostRecord & { worker?: string; workerGone?: string };

async function status(id: string, json: boolean) {
  return runCli(['fleet', 'status', id, ...(json ? ['--json'] : [])], {
    ...process.env,
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    NO_COLOR: '1',
  });
}

describe('fleet status and a host worker that is gone', () => {
  it('shows the host as worker gone, not upgrading; the host finishes once its worker is back', async () => {
    sim = await FleetSim.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      releases,
      hosts: 1,
      concurrency: 1,
    });
    const [name] = sim.names as [string];
    const id = `fleet-gone-${process.pid}`;
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts: [name],
      canary: 1,
      bakeSeconds: 0,
      batch: { count: 1 },
      maxFailures: { count: 1 },
      unreachableSeconds: 30,
      healthTimeoutSeconds: 120,
    });
    const hostRun = env.client.workflow.getHandle(hostWorkflowId(name));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const d = await hostRun.describe().catch(() => undefined);
      const activity = d?.raw.pendingActivities?.[0]?.activityType?.name;
      if (activity === 'downloadArtifact') break;
      assert.ok(Date.now() < deadline, 'the host reached its downloads');
      await sleep(250);
    }

    // Its worker runs: upgrading, not flagged.
    const alive = await status(id, true);
    assert.equal(alive.code, 0, alive.stderr);
    const aliveHost = (JSON.parse(alive.stdout) as { hosts: StatusHost[] }).hosts[0]!;
    assert.equal(aliveHost.state, 'upgrading');
    assert.equal(aliveHost.worker, undefined);

    // The host's worker goes away.
    await sim.host(name).stopWorker();
    const goneAt = Date.now();
    let gone: StatusHost | undefined;
    while (!gone) {
      const r = await status(id, true);
      assert.equal(r.code, 0, r.stderr);
      const h = (JSON.parse(r.stdout) as { hosts: StatusHost[] }).hosts[0]!;
      if (h.worker === 'gone') gone = h;
      else {
        assert.ok(Date.now() - goneAt < 60_000, `flagged within 60 s: ${r.stdout}`);
        await sleep(1000);
      }
    }
    assert.match(gone.workerGone ?? '', /not picked up|no poll/);
    process.stderr.write(`# fleet: host worker flagged gone ${Date.now() - goneAt} ms after it stopped\n`);
    const table = await status(id, false);
    assert.equal(table.code, 0, table.stderr);
    const row = table.stdout.split('\n').find((l) => l.includes(name) && !l.startsWith('  '));
    assert.match(row ?? '', /worker gone/, table.stdout);
    assert.doesNotMatch(row ?? '', /upgrading/);
    assert.match(table.stdout, /Workers gone/);
    // Still running: the fleet itself waits for the host.
    assert.equal((await handle.query(fleetProgressQuery)).hosts[0]!.state, 'upgrading');

    // The worker comes back: the host finishes, upgraded once.
    await sim.host(name).startWorker();
    const result = await fleetResultOf(handle);
    assert.equal(result.hosts[0]!.state, 'healthy', result.message);
    assert.equal(await sim.host(name).sim.gatewayVersion(), '0.4.0');
    const after = await status(id, true);
    assert.equal((JSON.parse(after.stdout) as { hosts: StatusHost[] }).hosts[0]!.worker, undefined);
  });
});
