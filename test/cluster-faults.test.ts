/**
 * Faults of a real cluster (test/helpers/cluster.ts): the Temporal server SIGKILLed and restarted
 * in the middle of an upgrade's downtime window, PostgreSQL crashed and restarted in the middle
 * of a fleet rollout, and a worker cut off from the cluster for longer than the heartbeat timeout.
 * Each ends with the hosts checked for real and every step that changes a host counted: nothing
 * is done twice.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { NativeConnection } from '@temporalio/worker';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { installRuntime } from '../worker/runtime.js';
import { fleetProgressQuery } from '../workflows/fleet/fleet-types.js';
import { hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { assertHostOn, upgradeBackupsOf, waitFor } from './helpers/cluster-cli.js';
import { FleetSim, startFleet } from './helpers/fleet-sim.js';
import { Harness, type Activities } from './helpers/harness.js';
import { activityHistory } from './helpers/history.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import type { SimHost } from './fixtures/host/sim-host.js';

installRuntime({ level: 'ERROR' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The activities that change a host: each must run exactly once in an upgrade that succeeds. */
const MUTATING = ['createBackup', 'stopGateway', 'installGateway', 'switchVenv', 'runMigrations', 'startGateway'];

let cluster: Cluster;
let h: Harness;
const closers: Array<() => Promise<unknown>> = [];

before(async () => {
  cluster = await startCluster();
  h = await Harness.start({}, { use: cluster });
  // The harness's controller runs the workflows, fleets included (one workflow worker per queue and process).
  await h.ensureController();
});

after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await h?.close();
});

/** Wraps every activity to count its calls; `extra` may replace some (after counting). */
function counting(calls: Map<string, number>, extra: (a: Activities) => Partial<Activities> = () => ({})) {
  return (a: Activities): Partial<Activities> => {
    const replaced = { ...a, ...extra(a) };
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(replaced)) {
      out[name] = (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (fn as (...x: unknown[]) => Promise<unknown>)(...args);
      };
    }
    return out as Partial<Activities>;
  };
}

/** `p`, or a failure that says what the rollout and the server were doing after `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>, state: () => Promise<unknown>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void (async () => {
        const s = await state().catch((err: unknown) => `(state unavailable: ${String(err)})`);
        const log = (await fs.readFile(cluster.serverLog, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
        reject(
          new Error(`${what} did not finish in ${ms / 1000} s: ${JSON.stringify(s)}\nserver log: ${log.join('\n')}`),
        );
      })();
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function assertOnce(calls: Map<string, number>, what: string): void {
  for (const name of MUTATING) assert.equal(calls.get(name), 1, `${what}: ${name} ran ${calls.get(name) ?? 0} times`);
}

/** The host upgraded 0.3.0 → 0.4.0 exactly once: healthy, one backup, each migration applied once, one run. */
async function assertUpgradedOnce(sim: SimHost, host: string): Promise<void> {
  await assertHostOn(sim, '0.4.0', host);
  assert.equal((await upgradeBackupsOf(sim)).length, 1, `${host}: one backup`);
  const cursor = await sim.migrationState();
  assert.ok(cursor && cursor.applied.length > 0, `${host}: migrations ran`);
  assert.equal(new Set(cursor.applied).size, cursor.applied.length, `${host}: each migration applied once`);
  const runs = [];
  for await (const w of cluster.client.workflow.list({ query: `WorkflowId = '${hostWorkflowId(host)}'` })) runs.push(w);
  assert.equal(runs.length, 1, `${host}: one workflow run`);
}

describe('faults of a real cluster', { timeout: 300_000 }, () => {
  it('the Temporal server SIGKILLed and restarted while the gateway is down: the upgrade finishes, once', async () => {
    const calls = new Map<string, number>();
    let outage: Promise<number> | undefined;
    const host = await h.host({
      // The new gateway takes 6 s to report healthy: the server dies and comes back meanwhile.
      faults: { gateway: { '0.4.0': { healthDelayMs: 6000 } } },
      wrap: counting(calls, (a) => ({
        async waitHealthy(input) {
          outage ??= (async () => {
            await sleep(500);
            await cluster.killServer();
            await sleep(1500);
            return cluster.startServer();
          })();
          return a.waitHealthy(input);
        },
      })),
    });
    const handle = await host.upgrade({ options: { healthTimeoutSeconds: 60 } });
    await waitFor('the server to be killed', async () => outage !== undefined);
    const restartMs = await outage!;
    assert.ok(restartMs < 60_000);
    const r: UpgradeResult = await host.result(handle);
    assert.equal(r.outcome, 'upgraded', r.message);
    assertOnce(calls, 'server restart');
    await assertUpgradedOnce(host.sim, host.name);
  });

  it('PostgreSQL crashed and restarted in the middle of a fleet rollout: every host upgraded once', async () => {
    const calls = new Map<string, Map<string, number>>();
    const slow = () => {
      const mine = new Map<string, number>();
      const spec = { faults: { gateway: { '0.4.0': { healthDelayMs: 2500 } } }, wrap: counting(mine) };
      return { spec, mine };
    };
    const specs = [slow(), slow(), slow()];
    const sim = await FleetSim.create({
      connection: cluster.nativeConnection,
      namespace: cluster.namespace,
      releases: h.releases,
      hosts: specs.map((s) => s.spec),
    });
    closers.push(() => sim.close());
    sim.names.forEach((n, i) => calls.set(n, specs[i]!.mine));
    const fleetId = `cluster-pg-restart-${process.pid}`;
    const handle = await startFleet(cluster.client, {
      fleetId,
      hosts: sim.names,
      canary: 0,
      batch: { count: 2 },
      healthTimeoutSeconds: 30,
      requestedBy: 'test',
    });
    await waitFor('the first hosts to upgrade', async () =>
      (await handle.query(fleetProgressQuery)).hosts.some((x) => x.state === 'upgrading'),
    );
    await cluster.restartPostgres(3000);
    const r = await within(150_000, 'the rollout', fleetResultOf(handle), () => handle.query(fleetProgressQuery));
    assert.equal(r.verdict, 'succeeded', r.message);
    assert.deepEqual(
      r.hosts.map((x) => x.state),
      ['healthy', 'healthy', 'healthy'],
    );
    for (const n of sim.names) {
      assertOnce(calls.get(n)!, n);
      await assertUpgradedOnce(sim.host(n).sim, n);
    }
  });

  it('a worker cut off from the cluster for longer than the heartbeat timeout: the retry finishes the upgrade, once', async () => {
    const proxy: TcpProxy = await startTcpProxy(cluster.address);
    const connection = await NativeConnection.connect({ address: proxy.address });
    // The worker first, then its connection, then the proxy (a connection in use does not close).
    closers.push(() => proxy.close());
    closers.push(() => connection.close());
    const calls = new Map<string, number>();
    let outage: Promise<void> | undefined;
    const host = await h.host({
      connection,
      // Healthy after 14 s: the worker is cut off for 8 s of it (the heartbeat timeout is 5 s).
      faults: { gateway: { '0.4.0': { healthDelayMs: 14_000 } } },
      wrap: counting(calls, (a) => ({
        async waitHealthy(input) {
          outage ??= (async () => {
            await sleep(1000);
            proxy.cut();
            await sleep(8000);
            proxy.restore();
          })();
          return a.waitHealthy(input);
        },
      })),
    });
    closers.push(() => host.stopWorker());
    const acceptedBefore = proxy.accepted;
    const handle = await host.upgrade({ options: { healthTimeoutSeconds: 60 } });
    const r: UpgradeResult = await host.result(handle);
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.ok(outage, 'the connection was cut');
    await outage;
    assert.ok(proxy.accepted > acceptedBefore, 'the worker reconnected through the proxy');
    // The server timed the cut-off attempt out and a second attempt finished the wait.
    const { activities } = await activityHistory(handle);
    const waits = activities.filter((x) => x.type === 'waitHealthy');
    assert.ok(
      waits.some((x) => (x.attempt ?? 1) >= 2),
      `waitHealthy was retried after the heartbeat timeout: ${JSON.stringify(waits)}`,
    );
    assertOnce(calls, 'cut-off worker');
    await assertUpgradedOnce(host.sim, host.name);
  });
});
