/**
 * The production path on a real cluster: PostgreSQL with SQL visibility and temporal-server as
 * docker-compose.yml runs it (test/helpers/cluster.ts), the CLI and the workers configured only
 * through TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE. A single-host upgrade with automatic rollback,
 * `history --failed` and `show`, a fleet rollout with pause/resume, and the visibility queries the
 * README promises (by host, version, outcome, fleet ID), each ending with the hosts checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HistoryRow } from '../client/commands/history.js';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { installRuntime } from '../worker/runtime.js';
import { fleetProgressQuery, type FleetProgress } from '../workflows/fleet/fleet-types.js';
import { SEARCH_ATTRIBUTES, hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { assertHostOn, clusterCli, upgradeBackupsOf, waitFor, type CliRun } from './helpers/cluster-cli.js';
import { FleetSim, startFleet } from './helpers/fleet-sim.js';
import { Harness } from './helpers/harness.js';

installRuntime({ level: 'WARN' });

let cluster: Cluster;
let h: Harness;
let cli: ReturnType<typeof clusterCli>;
const sims: FleetSim[] = [];

before(async () => {
  cluster = await startCluster();
  h = await Harness.start({}, { use: cluster });
  cli = clusterCli(cluster.env);
  // The harness's controller runs the workflows, fleets included (one workflow worker per queue and process).
  await h.ensureController();
});

after(async () => {
  for (const s of sims) await s.close().catch(() => undefined);
  await h?.close();
});

function json<T>(r: CliRun, what: string): T {
  assert.equal(r.exitCode, 0, `${what}: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Workflow IDs that a visibility query finds (the Temporal CLI, as the README shows it). */
async function ids(query: string): Promise<string[]> {
  return (await h.listWorkflows(query)).map((w) => w.execution.workflowId).sort();
}

describe('on a Temporal cluster with PostgreSQL', { timeout: 300_000 }, () => {
  it('the cluster registered the search attributes on SQL visibility, as production would', async () => {
    const sa = await cluster.client.connection.operatorService.listSearchAttributes({ namespace: cluster.namespace });
    for (const name of Object.values(SEARCH_ATTRIBUTES)) {
      assert.equal(sa.customAttributes?.[name], 2, `${name} is a Keyword attribute`); // INDEXED_VALUE_TYPE_KEYWORD
    }
    const info = await cluster.client.workflowService.getSystemInfo({});
    assert.match(info.serverVersion ?? '', /^1\.31\.0/);
  });

  it('single host: upgrade, and an unhealthy upgrade rolled back automatically; history --failed and show', async () => {
    const [happy, rolled] = await Promise.all([
      h.host(),
      h.host({ faults: { gateway: { '0.4.0': { health: 'starting' } } } }),
    ]);
    const rolledBefore = await rolled.sim.snapshot();
    const [up, down] = await Promise.all([
      cli(['upgrade', '--yes', '--json', '--host', happy.name]),
      cli(['upgrade', '--yes', '--json', '--host', rolled.name, '--health-timeout', '3']),
    ]);
    assert.equal(up.exitCode, 0, up.stderr);
    assert.equal(down.exitCode, 1, down.stderr);
    const upR = JSON.parse(up.stdout) as UpgradeResult;
    const downR = JSON.parse(down.stdout) as UpgradeResult;
    assert.equal(upR.outcome, 'upgraded', upR.message);
    assert.equal(downR.outcome, 'rolled-back', downR.message);
    // The hosts: one on 0.4.0, the other back on 0.3.0 with the very same binary, each upgraded once.
    await assertHostOn(happy.sim, '0.4.0', happy.name);
    await assertHostOn(rolled.sim, '0.3.0', rolled.name);
    const rolledAfter = await rolled.sim.snapshot();
    assert.deepEqual(rolledAfter['.local/bin/defenseclaw-gateway'], rolledBefore['.local/bin/defenseclaw-gateway']);
    assert.equal(await rolled.sim.venvPackageVersion(), '0.3.0');
    for (const host of [happy, rolled]) assert.equal((await upgradeBackupsOf(host.sim)).length, 1, host.name);

    // history from SQL visibility: --failed, --host, --version.
    const mine = (rows: HistoryRow[]) => rows.filter((r) => r.host === happy.name || r.host === rolled.name);
    const all = await waitFor('both runs in visibility', async () => {
      const rows = mine(json<HistoryRow[]>(await cli(['history', '--json']), 'history'));
      return rows.length === 2 && rows.every((r) => r.status !== 'RUNNING' && r.outcome) && rows;
    });
    assert.deepEqual(
      all.map((r) => [r.host, r.from, r.to, r.outcome, r.status]).sort(),
      [
        [happy.name, '0.3.0', '0.4.0', 'upgraded', 'COMPLETED'],
        [rolled.name, '0.3.0', '0.4.0', 'rolled-back', 'FAILED'],
      ].sort(),
    );
    const [failed, byHost, byVersion] = await Promise.all([
      cli(['history', '--json', '--failed']),
      cli(['history', '--json', '--host', rolled.name]),
      cli(['history', '--json', '--version', '0.4.0']),
    ]);
    assert.deepEqual(
      mine(json<HistoryRow[]>(failed, '--failed')).map((r) => r.host),
      [rolled.name],
    );
    assert.deepEqual(
      json<HistoryRow[]>(byHost, '--host').map((r) => r.workflowId),
      [hostWorkflowId(rolled.name)],
    );
    assert.deepEqual(
      mine(json<HistoryRow[]>(byVersion, '--version'))
        .map((r) => r.host)
        .sort(),
      [happy.name, rolled.name].sort(),
    );

    // show: the failed step and the compensation that followed, from the run's history.
    const show = json<{
      status: string;
      result?: UpgradeResult;
      steps: Array<{ summary: string; status: string; error?: string }>;
    }>(await cli(['show', hostWorkflowId(rolled.name), '--json']), 'show');
    assert.equal(show.status, 'FAILED');
    assert.equal(show.result?.outcome, 'rolled-back');
    const failedSteps = show.steps.filter((s) => s.status === 'failed');
    assert.equal(failedSteps.length, 1, JSON.stringify(show.steps));
    assert.match(failedSteps[0]!.error!, /did not become healthy within 3 s/);
    const rollbackSteps = show.steps.filter((s) => s.summary.startsWith('rollback:'));
    assert.ok(
      rollbackSteps.some((s) => s.summary === 'rollback: restore defenseclaw-gateway'),
      JSON.stringify(show.steps),
    );
    assert.ok(
      rollbackSteps.every((s) => s.status === 'completed'),
      JSON.stringify(rollbackSteps),
    );
    const text = await cli(['show', hostWorkflowId(rolled.name)]);
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stdout, /ROLLED-BACK/);
  });

  it('fleet rollout: pause holds new hosts, resume continues; visibility by fleet ID, outcome, host and version', async () => {
    // A few seconds per host, so that there is time to pause between hosts; the last host fails health.
    const slow = { faults: { gateway: { '0.4.0': { healthDelayMs: 2500 } } } };
    const sim = await FleetSim.create({
      connection: cluster.nativeConnection,
      namespace: cluster.namespace,
      releases: h.releases,
      hosts: [slow, slow, { faults: { gateway: { '0.4.0': { health: 'starting' } } } }],
    });
    sims.push(sim);
    const [h1, h2, bad] = sim.names as [string, string, string];
    const fleetId = `cluster-fleet-${process.pid}`;
    const handle = await startFleet(cluster.client, {
      fleetId,
      hosts: sim.names,
      canary: 0,
      batch: { count: 1 },
      maxFailures: { count: 1 },
      healthTimeoutSeconds: 8,
      requestedBy: 'test',
    });
    const progress = () => handle.query(fleetProgressQuery);
    const stateOf = (p: FleetProgress, host: string) => p.hosts.find((x) => x.host === host)!.state;
    await waitFor('the first host to upgrade', async () => stateOf(await progress(), h1) === 'upgrading');
    const paused = await cli(['fleet', 'pause', fleetId, '--reason', 'checking the cluster']);
    assert.equal(paused.exitCode, 0, paused.stderr);
    await waitFor('the first host to finish', async () => stateOf(await progress(), h1) === 'healthy');
    await new Promise((r) => setTimeout(r, 3000));
    const held = await progress();
    assert.equal(held.paused, true);
    assert.equal(held.inFlight, 0);
    assert.equal(stateOf(held, h2), 'waiting', 'nothing new starts while paused');
    const resumed = await cli(['fleet', 'resume', fleetId]);
    assert.equal(resumed.exitCode, 0, resumed.stderr);

    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'completed-with-failures', r.message);
    assert.deepEqual(
      r.hosts.map((x) => [x.host, x.state]),
      [
        [h1, 'healthy'],
        [h2, 'healthy'],
        [bad, 'rolled-back'],
      ],
    );
    assert.deepEqual(
      r.controls.map((c) => c.action),
      ['pause', 'resume'],
    );
    await assertHostOn(sim.host(h1).sim, '0.4.0', h1);
    await assertHostOn(sim.host(h2).sim, '0.4.0', h2);
    await assertHostOn(sim.host(bad).sim, '0.3.0', bad);
    for (const n of sim.names) assert.equal((await upgradeBackupsOf(sim.host(n).sim)).length, 1, `${n} upgraded once`);

    // The README's visibility queries, on SQL visibility.
    const children = sim.names.map(hostWorkflowId).sort();
    await waitFor('the rollout in visibility', async () => {
      const done = await ids(`DefenseClawFleetId = '${fleetId}' AND ExecutionStatus != 'Running'`);
      return done.length === 4;
    });
    assert.deepEqual(await ids(`DefenseClawFleetId = '${fleetId}'`), [...children, fleetId].sort());
    assert.deepEqual(await ids(`DefenseClawFleetId = '${fleetId}' AND DefenseClawOutcome = 'rolled-back'`), [
      hostWorkflowId(bad),
    ]);
    assert.deepEqual(
      await ids(
        `DefenseClawFleetId = '${fleetId}' AND DefenseClawToVersion = '0.4.0' AND DefenseClawOutcome = 'upgraded'`,
      ),
      [h1, h2].map(hostWorkflowId).sort(),
    );
    assert.deepEqual(await ids(`DefenseClawHost = '${h2}'`), [hostWorkflowId(h2)]);
    assert.deepEqual(await ids(`DefenseClawFromVersion = '0.3.0' AND DefenseClawFleetId = '${fleetId}'`), children);
    assert.deepEqual(await ids(`WorkflowId = '${fleetId}' AND DefenseClawOutcome = 'completed-with-failures'`), [
      fleetId,
    ]);
    // And through the CLI: `history --failed --host`.
    const failed = json<HistoryRow[]>(await cli(['history', '--json', '--failed', '--host', bad]), 'history');
    assert.deepEqual(
      failed.map((x) => [x.workflowId, x.outcome]),
      [[hostWorkflowId(bad), 'rolled-back']],
    );
  });
});
