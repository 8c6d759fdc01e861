/**
 * Fleet rollouts on a real Temporal dev server with simulated hosts, each with its real worker on
 * its own task queue (test/helpers/fleet-sim.ts), plus the pure parts (host lists, limits).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify, stripVTControlCharacters } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { renderFleet } from '../client/commands/fleet/table.js';
import { HostListError, parseHostsFile, parseHostsList } from '../client/hosts-list.js';
import type { fleetRollout } from '../workflows/fleet/fleet.js';
import {
  FLEET_TASK_QUEUE,
  fleetProgressQuery,
  parseLimit,
  resolveLimit,
  type FleetHostRecord,
  type FleetInput,
  type FleetProgress,
  type FleetResult,
} from '../workflows/fleet/fleet-types.js';
import { progressQuery } from '../workflows/definitions.js';
import { HostNameSchema, hostWorkflowId, taskQueueForHost, type UpgradeInput } from '../workflows/types.js';
import {
  FleetSim,
  killFleetWorkers,
  spawnFleetWorker,
  startFleet,
  startFleetWorker,
  type FleetHostSpec,
} from './helpers/fleet-sim.js';
import { TOOL_VERSION } from '../worker/tool-version.js';
import { startTestEnvironment } from './helpers/temporal.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

const run = promisify(execFile);
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

// -------------------------------------------------------------------------------------------------
// Pure parts

const hostName = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,20}[A-Za-z0-9])?$/);

describe('host lists and limits', () => {
  it('a hosts file gives back its hosts in order, whatever the comments, blank lines and spaces', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(hostName, { minLength: 1, maxLength: 30 }),
        fc.array(fc.constantFrom('', '   ', '# a comment', '\t# indented comment'), { maxLength: 30 }),
        fc.array(fc.constantFrom('', ' ', '\t', '  # trailing comment'), { maxLength: 30 }),
        fc.boolean(),
        (hosts, noise, trailers, crlf) => {
          const lines: string[] = [];
          hosts.forEach((h, i) => {
            if (noise[i] !== undefined) lines.push(noise[i]!);
            lines.push(`  ${h}${trailers[i] ?? ''}`);
          });
          assert.deepEqual(parseHostsFile(lines.join(crlf ? '\r\n' : '\n')), hosts);
        },
      ),
    );
  });

  it('a host listed twice is refused, naming both places', () => {
    fc.assert(
      fc.property(fc.uniqueArray(hostName, { minLength: 1, maxLength: 20 }), fc.nat(), fc.nat(), (hosts, a, b) => {
        const dup = hosts[a % hosts.length]!;
        const list = [...hosts];
        list.splice(b % (list.length + 1), 0, dup);
        assert.throws(
          () => parseHostsFile(list.join('\n')),
          (err: Error) => {
            return err instanceof HostListError && err.message.includes(`${dup} is already listed`);
          },
        );
        assert.throws(() => parseHostsList(list.join(',')), HostListError);
      }),
    );
  });

  it('every accepted name passes HostNameSchema; anything else is refused with its line number', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (s) => {
        const line = s.replace(/[\r\n#]/g, '').trim();
        if (!line) return;
        let got: string[] | undefined;
        try {
          got = parseHostsFile(`good-host\n${line}\n`);
        } catch (err) {
          assert.ok(err instanceof HostListError);
          assert.match((err as Error).message, /line 2|already listed/);
          return;
        }
        assert.deepEqual(got, ['good-host', line]);
        assert.ok(HostNameSchema.safeParse(line).success);
      }),
    );
    assert.throws(() => parseHostsFile('# nothing\n\n'), /names no host/);
    assert.throws(() => parseHostsFile('a b\n'), /one host per line/);
    assert.throws(() => parseHostsList('a,,b'), /entry 2 is empty/);
    assert.throws(() => parseHostsFile('ok\n../etc\n'), /line 2: invalid host/);
  });

  it('limits: N or P%, resolved within [atLeast, total]', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 5000 }), fc.constantFrom(0, 1), (p, total, atLeast) => {
        const pct = resolveLimit(parseLimit(`${p}%`, 'x'), total, atLeast);
        assert.ok(pct >= atLeast && pct <= Math.max(total, atLeast));
        assert.equal(pct, Math.max(atLeast, Math.floor((total * p) / 100)));
        const n = resolveLimit(parseLimit(`${p}`, 'x'), total, atLeast);
        assert.equal(n, Math.max(atLeast, Math.min(p, total)));
      }),
    );
    for (const bad of ['', '-1', '1.5', '101%', 'ten', '5 %x', '99999999'])
      assert.throws(() => parseLimit(bad, '--batch'));
  });

  it('the status table fits 80 columns and has no colour codes when not a terminal', () => {
    const hosts: FleetHostRecord[] = Array.from({ length: 40 }, (_, i) => ({
      host: `a-very-long-host-name-for-the-table-${i}.example.internal`.slice(0, 63),
      state: i % 7 === 0 ? 'rolled-back' : i < 20 ? 'healthy' : i < 23 ? 'upgrading' : 'waiting',
      before: '0.3.0',
      after: i < 20 ? '0.4.0' : undefined,
      reason:
        i % 7 === 0
          ? 'health: the gateway did not become healthy within 5 s (last state: starting) '.repeat(3)
          : undefined,
      startedAt: 1000,
      endedAt: i < 20 ? 7000 : undefined,
      canary: i === 0,
    }));
    const p = {
      fleetId: 'fleet-x',
      phase: 'rollout',
      version: '0.4.0',
      paused: true,
      aborted: false,
      settings: {
        canary: 1,
        batch: 3,
        maxFailures: 9,
        bakeSeconds: 5,
        healthTimeoutSeconds: 60,
        unreachableSeconds: 60,
        hostsPerRun: 300,
        resolver: 'x',
      },
      counts: { waiting: 17, upgrading: 3, healthy: 14, 'rolled-back': 6, failed: 0, skipped: 0, unreachable: 0 },
      failures: 6,
      inFlight: 3,
      startedAt: 0,
      run: 0,
      historyLength: 10,
      controls: [],
      hosts,
    } as FleetProgress;
    const upgraders = new Map(hosts.map((h, i) => [h.host, i % 2 ? '0.2.0' : '10.20.300'] as const));
    for (const [all, withUpgraders] of [
      [false, false],
      [true, false],
      [true, true],
    ]) {
      const out = renderFleet(p, { now: 9000, all, ...(withUpgraders ? { upgraders } : {}) });
      assert.equal(out, stripVTControlCharacters(out), 'no colour codes');
      for (const line of out.split('\n')) assert.ok(line.length <= 80, `too wide (${line.length}): ${line}`);
      assert.match(out, /PAUSED/);
      assert.match(out, /rolled-back 6/);
      if (withUpgraders) assert.match(out, /│ worker │[^]*│ 0\.2\.0 {2}│/);
    }
    assert.match(renderFleet(p, { now: 9000 }), /more hosts not shown/);
    const ended = renderFleet(
      { ...p, verdict: 'failure-budget-exceeded', message: `fleet x STOPPED: ${'a-long-reason '.repeat(40)}` },
      { now: 9000 },
    );
    for (const line of ended.split('\n')) assert.ok(line.length <= 80, `too wide (${line.length}): ${line}`);
    assert.match(ended, /^FAILURE-BUDGET-EXCEEDED fleet x STOPPED/m);
  });
});

// -------------------------------------------------------------------------------------------------
// Rollouts on a real server

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
let fleetWorker: Awaited<ReturnType<typeof startFleetWorker>>;
const sims: FleetSim[] = [];
let fleets = 0;

before(async () => {
  [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer()]);
  fleetWorker = await startFleetWorker(env.nativeConnection, ns());
});

after(async () => {
  killFleetWorkers();
  await fleetWorker?.stop();
  for (const s of sims) await s.close().catch(() => undefined);
  await releases?.close();
  await env?.teardown();
});

function ns(): string {
  return env.namespace ?? 'default';
}

async function fleetOf(hosts: number | FleetHostSpec[]): Promise<FleetSim> {
  const sim = await FleetSim.create({
    connection: env.nativeConnection,
    namespace: ns(),
    releases,
    hosts,
    concurrency: 3,
  });
  sims.push(sim);
  return sim;
}

function fleetId(what: string): string {
  return `fleet-test-${process.pid}-${++fleets}-${what}`;
}

async function progress(handle: WorkflowHandle): Promise<FleetProgress> {
  return handle.query(fleetProgressQuery);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function byHost(r: FleetProgress): Map<string, FleetHostRecord> {
  return new Map(r.hosts.map((h) => [h.host, h]));
}

/** The most hosts that were in flight at the same time, from their workflow-time intervals. */
function maxOverlap(hosts: FleetHostRecord[]): number {
  const ev: Array<[number, number]> = [];
  for (const h of hosts) {
    if (h.startedAt === undefined || h.endedAt === undefined) continue;
    ev.push([h.startedAt, 1], [h.endedAt, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

async function upgradeBackups(sim: FleetSim, name: string): Promise<string[]> {
  const dir = path.join(sim.host(name).sim.dataDir, 'backups');
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((d) => d.startsWith('upgrade-'));
}

async function assertUntouched(sim: FleetSim, name: string): Promise<void> {
  const h = sim.host(name);
  assert.equal(await h.sim.gatewayVersion(), '0.3.0', `${name} still on 0.3.0`);
  assert.equal((await h.sim.health())?.gateway.state, 'running', `${name} still serving`);
  assert.deepEqual(await upgradeBackups(sim, name), [], `${name} was never touched`);
  await assert.rejects(env.client.workflow.getHandle(hostWorkflowId(name)).describe(), `${name} never had a run`);
}

async function assertUpgraded(sim: FleetSim, name: string): Promise<void> {
  const h = sim.host(name);
  assert.equal(await h.sim.gatewayVersion(), '0.4.0', `${name} on 0.4.0`);
  const health = await h.sim.health();
  assert.equal(health?.gateway.state, 'running', `${name} healthy`);
  assert.equal(health?.provenance?.binary_version, '0.4.0');
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: ns(), NO_COLOR: '1' },
      timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const BAD_HEALTH = { gateway: { '0.4.0': { health: 'starting' as const } } };
const START_FAILS = { gateway: { '0.4.0': { start: 'fail' as const } } };

describe('fleetRollout', { concurrency: 3, timeout: 600_000 }, () => {
  it('10 hosts, canary 1, batch 3: every host on 0.4.0 and healthy, never more than 3 at once', async () => {
    const sim = await fleetOf(10);
    const id = fleetId('happy');
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts: sim.names,
      canary: 1,
      batch: { count: 3 },
      bakeSeconds: 2,
      healthTimeoutSeconds: 30,
      // Small runs, so that this rollout continues as new twice on the way.
      hostsPerRun: 4,
      requestedBy: 'test',
    });
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'succeeded', r.message);
    assert.equal(r.ok, true);
    assert.equal(r.version, '0.4.0');
    assert.equal(r.counts.healthy, 10);
    assert.ok(r.run >= 2, `continued as new (run ${r.run})`);
    for (const h of r.hosts) {
      assert.equal(h.state, 'healthy');
      assert.equal(h.before, '0.3.0');
      assert.equal(h.after, '0.4.0');
      assert.ok(h.startedAt! <= h.endedAt!);
    }
    assert.ok(maxOverlap(r.hosts) <= 3, `at most 3 in flight (saw ${maxOverlap(r.hosts)})`);
    // The canary finished, then the bake, before any other host started.
    const [canary, ...rest] = r.hosts;
    assert.equal(canary!.canary, true);
    const firstOther = Math.min(...rest.map((h) => h.startedAt!));
    assert.ok(firstOther >= canary!.endedAt! + 2000, 'the rest started after the canary and its bake');
    await Promise.all(sim.names.map((n) => assertUpgraded(sim, n)));
    for (const n of sim.names) assert.equal((await upgradeBackups(sim, n)).length, 1, `${n} upgraded once`);

    // Search attributes: the fleet's and its children's.
    const d = await handle.describe();
    assert.equal(d.searchAttributes.DefenseClawOutcome?.[0], 'succeeded');
    assert.equal(d.searchAttributes.DefenseClawToVersion?.[0], '0.4.0');
    const child = await env.client.workflow.getHandle(hostWorkflowId(sim.names[4]!)).describe();
    assert.equal(child.searchAttributes.DefenseClawFleetId?.[0], id);
    assert.equal(child.type, 'upgradeHost');
    // Host workers run activities only: each child ran on the controller's queue, its activities
    // on the host's own queue, where no workflow poller ever was.
    assert.equal(child.taskQueue, FLEET_TASK_QUEUE);
    const started = (await env.client.workflow.getHandle(hostWorkflowId(sim.names[4]!)).fetchHistory()).events ?? [];
    const queues = new Set(
      started.flatMap((e) =>
        e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.taskQueue?.name] : [],
      ),
    );
    assert.deepEqual([...queues], [taskQueueForHost(sim.names[4]!)]);
    for (const n of sim.names) {
      const q = await env.client.workflowService.describeTaskQueue({
        namespace: ns(),
        taskQueue: { name: taskQueueForHost(n) },
        taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
      });
      assert.equal(q.pollers?.length ?? 0, 0, `no workflow poller on ${n}'s queue`);
    }
    // Each run's history stays small (the last run's, by the history of the current run).
    assert.ok(r.historyLength < 400, `history length of the last run: ${r.historyLength}`);

    // The CLI on a finished rollout: a table that fits 80 columns, and JSON.
    const table = await cli(['fleet', 'status', id]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /SUCCEEDED/);
    assert.equal(table.stdout, stripVTControlCharacters(table.stdout), 'no colour codes');
    for (const line of table.stdout.split('\n')) assert.ok(line.length <= 80, `too wide: ${line}`);
    for (const n of sim.names) assert.ok(table.stdout.includes(n), `${n} in the table`);
    // Each host's row names the upgrader version its worker reports (its poller's identity).
    assert.match(table.stdout, /│ worker │/);
    for (const n of sim.names)
      assert.match(table.stdout, new RegExp(`${n}.*│ ${TOOL_VERSION.replace(/\./g, '\\.')} +│`));
    const json = await cli(['fleet', 'status', id, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as Omit<FleetResult, 'hosts'> & { hosts: Array<{ upgrader?: string }> };
    assert.equal(parsed.verdict, 'succeeded');
    assert.equal(parsed.hosts.length, 10);
    assert.deepEqual(
      parsed.hosts.map((h) => h.upgrader),
      sim.names.map(() => TOOL_VERSION),
    );
  });

  it('a bad release fails the canary, which rolls back; the other hosts are skipped, untouched on 0.3.0', async () => {
    const sim = await fleetOf(Array.from({ length: 4 }, () => ({ faults: BAD_HEALTH })));
    const handle = await startFleet(env.client, {
      fleetId: fleetId('bad-release'),
      hosts: sim.names,
      canary: 1,
      batch: { count: 3 },
      maxFailures: { count: 3 },
      bakeSeconds: 1,
      healthTimeoutSeconds: 4,
    });
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'canary-failed', r.message);
    assert.equal(r.ok, false);
    const [canary, ...rest] = r.hosts;
    assert.equal(canary!.state, 'rolled-back');
    assert.equal(canary!.after, '0.3.0');
    assert.match(canary!.reason ?? '', /health/);
    assert.match(r.message, /canary/);
    const c = sim.host(canary!.host);
    assert.equal(await c.sim.gatewayVersion(), '0.3.0');
    assert.equal((await c.sim.health())?.gateway.state, 'running');
    for (const h of rest) {
      assert.equal(h.state, 'skipped');
      assert.match(h.reason ?? '', /canary/);
      await assertUntouched(sim, h.host);
    }
    const d = await handle.describe();
    assert.equal(d.status.name, 'FAILED');
    assert.equal(d.searchAttributes.DefenseClawOutcome?.[0], 'canary-failed');
  });

  it('a canary that relapses during the bake fails the re-check, is rolled back, and the rollout stops (CLI)', async () => {
    const sim = await fleetOf(2);
    const [canary, other] = sim.names;
    const id = fleetId('relapse');
    // Usage errors are refused before anything is contacted.
    const dup = await cli(['fleet', '--hosts', `${canary},${canary}`, '--yes']);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /already listed/);
    // The CLI starts the rollout and follows it to its end (not a terminal: one line per change).
    const run = cli([
      'fleet',
      '--hosts',
      sim.names.join(','),
      '--id',
      id,
      '--canary',
      '1',
      '--bake',
      '5',
      '--health-timeout',
      '10',
      '--yes',
    ]);
    const handle = env.client.workflow.getHandle(id);
    await waitFor('the bake', async () => (await progress(handle)).phase === 'bake');
    assert.equal(await sim.host(canary!).sim.gatewayVersion(), '0.4.0');
    await sim.host(canary!).setFaults({ gateway: { '0.4.0': { health: 'error' } } });
    const out = await run;
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stdout, new RegExp(`${canary}: rolled-back 0\\.3\\.0 → 0\\.3\\.0`));
    assert.match(out.stdout, /CANARY-FAILED .*STOPPED at the canary/);
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'canary-failed', r.message);
    const c = byHost(r).get(canary!)!;
    assert.equal(c.state, 'rolled-back');
    assert.match(c.reason ?? '', /unhealthy at the end of the bake.*rolled back/);
    assert.equal(c.after, '0.3.0');
    assert.equal(await sim.host(canary!).sim.gatewayVersion(), '0.3.0');
    assert.equal((await sim.host(canary!).sim.health())?.gateway.state, 'running');
    assert.equal(byHost(r).get(other!)!.state, 'skipped');
    await assertUntouched(sim, other!);
  });

  it('failures past the budget stop new starts; the hosts in flight finish (failed ones rolled back)', async () => {
    const slow = { faults: { gateway: { '0.4.0': { healthDelayMs: 25000 } } } };
    const sim = await fleetOf([{ faults: START_FAILS }, { faults: START_FAILS }, slow, slow, {}, {}, {}]);
    const [bad1, bad2, slow1, , ...later] = sim.names;
    const r = await fleetResultOf(
      await startFleet(env.client, {
        fleetId: fleetId('budget'),
        hosts: sim.names,
        canary: 0,
        batch: { count: 3 },
        maxFailures: { count: 1 },
        healthTimeoutSeconds: 45,
      }),
    );
    assert.equal(r.verdict, 'failure-budget-exceeded', r.message);
    const hosts = byHost(r);
    for (const b of [bad1!, bad2!]) {
      assert.equal(hosts.get(b)!.state, 'rolled-back', `${b}: ${hosts.get(b)!.reason}`);
      assert.equal(hosts.get(b)!.after, '0.3.0');
      const h = sim.host(b);
      assert.equal(await h.sim.gatewayVersion(), '0.3.0');
      assert.equal((await h.sim.health())?.gateway.state, 'running');
    }
    assert.equal(r.failures, 2);
    // The slow host was in flight when the budget ran out: it finished, it was not cancelled.
    const s = hosts.get(slow1!)!;
    assert.equal(s.state, 'healthy');
    assert.ok(s.endedAt! > Math.max(hosts.get(bad1!)!.endedAt!, hosts.get(bad2!)!.endedAt!));
    await assertUpgraded(sim, slow1!);
    // Nothing started after the second failure; the rest is skipped and untouched.
    const secondFailure = Math.max(hosts.get(bad1!)!.endedAt!, hosts.get(bad2!)!.endedAt!);
    for (const h of r.hosts)
      assert.ok(h.startedAt === undefined || h.startedAt <= secondFailure, `${h.host} started late`);
    assert.ok(r.counts.skipped >= 1);
    for (const n of later) if (hosts.get(n)!.state === 'skipped') await assertUntouched(sim, n);
    for (const h of r.hosts)
      assert.ok(['healthy', 'rolled-back', 'skipped'].includes(h.state), `${h.host}: ${h.state}`);
  });

  it('pause holds new starts, resume continues, abort stops new starts (through the CLI)', async () => {
    // Each upgrade takes a few seconds longer, so that there is time to act between hosts.
    const slow = { faults: { gateway: { '0.4.0': { healthDelayMs: 2500 } } } };
    const sim = await fleetOf(Array.from({ length: 5 }, () => slow));
    const id = fleetId('pause');
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts: sim.names,
      canary: 0,
      batch: { count: 1 },
      healthTimeoutSeconds: 30,
    });
    const [h1, h2, h3] = sim.names;
    await waitFor(
      'the first host to upgrade',
      async () => byHost(await progress(handle)).get(h1!)!.state === 'upgrading',
    );
    const paused = await cli(['fleet', 'pause', id, '--reason', 'looking at graphs']);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /paused/);
    const again = await cli(['fleet', 'pause', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already paused/);

    // The host in flight finishes; nothing new starts while paused.
    await waitFor('the first host to finish', async () => byHost(await progress(handle)).get(h1!)!.state === 'healthy');
    await new Promise((r) => setTimeout(r, 4000));
    let p = await progress(handle);
    assert.equal(p.paused, true);
    assert.equal(p.inFlight, 0);
    assert.equal(byHost(p).get(h2!)!.state, 'waiting');
    const status = await cli(['fleet', 'status', id]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /PAUSED/);

    const resumed = await cli(['fleet', 'resume', id]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await waitFor('the second host to start', async () => byHost(await progress(handle)).get(h2!)!.state !== 'waiting');
    const aborted = await cli(['fleet', 'abort', id, '--reason', 'enough']);
    assert.equal(aborted.code, 0, aborted.stderr);
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'aborted', r.message);
    assert.match(r.message, /enough/);
    const hosts = byHost(r);
    assert.equal(hosts.get(h1!)!.state, 'healthy');
    assert.equal(hosts.get(h2!)!.state, 'healthy', 'the host in flight finished');
    assert.equal(hosts.get(h3!)!.state, 'skipped');
    for (const n of sim.names.slice(2)) await assertUntouched(sim, n);
    assert.deepEqual(
      r.controls.map((c) => c.action),
      ['pause', 'resume', 'abort'],
    );
    p = r;
    assert.equal(p.controls[0]!.reason, 'looking at graphs');
  });

  it('abort --cancel-in-flight cancels the hosts in flight, which undo their own changes', async () => {
    const slow = { faults: { gateway: { '0.4.0': { healthDelayMs: 20000 } } } };
    const sim = await fleetOf([slow, {}]);
    const [h1, h2] = sim.names;
    const id = fleetId('cancel');
    const handle = await startFleet(env.client, {
      fleetId: id,
      hosts: sim.names,
      canary: 0,
      batch: { count: 1 },
      healthTimeoutSeconds: 30,
    });
    const own = env.client.workflow.getHandle(hostWorkflowId(h1!));
    await waitFor('the first host inside its downtime window', async () =>
      (await own.query(progressQuery)).steps.some((s) => s.name === 'health' && s.status === 'running'),
    );
    const aborted = await cli(['fleet', 'abort', id, '--cancel-in-flight', '--json']);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.equal(JSON.parse(aborted.stdout).aborted, true);
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'aborted', r.message);
    const first = byHost(r).get(h1!)!;
    assert.equal(first.state, 'failed');
    assert.equal(first.outcome, 'cancelled');
    assert.match(first.reason ?? '', /cancelled by the abort/);
    // The cancelled host compensated: back on 0.3.0 and serving.
    assert.equal((await own.query(progressQuery)).outcome, 'rolled-back');
    assert.equal(await sim.host(h1!).sim.gatewayVersion(), '0.3.0');
    assert.equal((await sim.host(h1!).sim.health())?.gateway.state, 'running');
    assert.equal(byHost(r).get(h2!)!.state, 'skipped');
    await assertUntouched(sim, h2!);
  });

  it('a host without a worker is unreachable within its deadline; a busy host fails as busy', async () => {
    const sim = await fleetOf([{}, { worker: false }, {}, {}]);
    const [ok1, down, busy, ok2] = sim.names;
    // Another upgrade already runs on `busy` (waiting for an operator's confirmation).
    const input: UpgradeInput = {
      host: busy!,
      version: '0.4.0',
      options: {
        healthTimeoutSeconds: 30,
        onFailure: 'rollback',
        requireConfirmation: true,
        confirmTimeoutSeconds: 600,
      },
    };
    const other = await env.client.workflow.start('upgradeHost', {
      taskQueue: FLEET_TASK_QUEUE,
      workflowId: hostWorkflowId(busy!),
      args: [{ ...input, hostQueue: taskQueueForHost(busy!) }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
    const r = await fleetResultOf(
      await startFleet(env.client, {
        fleetId: fleetId('unreachable'),
        hosts: sim.names,
        canary: 1,
        bakeSeconds: 0,
        batch: { count: 3 },
        maxFailures: { count: 2 },
        unreachableSeconds: 3,
        healthTimeoutSeconds: 30,
      }),
    );
    await other.cancel();
    assert.equal(r.verdict, 'completed-with-failures', r.message);
    const hosts = byHost(r);
    const u = hosts.get(down!)!;
    assert.equal(u.state, 'unreachable');
    assert.match(u.reason ?? '', new RegExp(`no worker .*${taskQueueForHost(down!).replace(/[.@]/g, '\\$&')}.* 3 s`));
    const took = u.endedAt! - u.startedAt!;
    assert.ok(took >= 3000 && took < 10_000, `unreachable after ${took} ms`);
    const b = hosts.get(busy!)!;
    assert.equal(b.state, 'failed');
    assert.equal(b.outcome, 'busy');
    assert.match(b.reason ?? '', /busy/);
    for (const n of [ok1!, ok2!]) {
      assert.equal(hosts.get(n)!.state, 'healthy');
      await assertUpgraded(sim, n);
    }
    assert.match(r.message, /unreachable/);
    await assert.rejects(other.result(), WorkflowFailedError);
  });

  it('the fleet worker process killed mid-rollout: a new one continues without re-upgrading finished hosts', async () => {
    const slow = { faults: { gateway: { '0.4.0': { healthDelayMs: 1500 } } } };
    const sim = await fleetOf(Array.from({ length: 6 }, () => slow));
    const queue = `${FLEET_TASK_QUEUE}-kill-${process.pid}`;
    let proc = spawnFleetWorker(env.address, ns(), queue);
    try {
      await proc.ready;
      const input: FleetInput = {
        fleetId: fleetId('kill'),
        hosts: sim.names,
        canary: 1,
        bakeSeconds: 0,
        batch: { count: 2 },
        healthTimeoutSeconds: 30,
      };
      const handle: WorkflowHandle<typeof fleetRollout> = await startFleet(env.client, input, queue);
      const mid = await waitFor(
        'two hosts healthy and one in flight',
        async () => {
          const p = await progress(handle);
          return p.counts.healthy >= 2 && p.counts.upgrading >= 1 && p;
        },
        120_000,
      );
      await proc.kill();
      const done = mid.hosts.filter((h) => h.state === 'healthy').map((h) => h.host);
      await new Promise((r) => setTimeout(r, 1500));
      proc = spawnFleetWorker(env.address, ns(), queue);
      await proc.ready;
      const r = await fleetResultOf(handle);
      assert.equal(r.verdict, 'succeeded', r.message);
      for (const n of sim.names) {
        assert.equal((await upgradeBackups(sim, n)).length, 1, `${n} upgraded exactly once`);
        await assertUpgraded(sim, n);
      }
      // The hosts finished before the kill kept their records (same start and end).
      const before = new Map(mid.hosts.map((h) => [h.host, h]));
      for (const n of done) {
        const h = byHost(r).get(n)!;
        assert.equal(h.endedAt, before.get(n)!.endedAt, `${n} not redone`);
      }
      // One upgrade run per host for this fleet.
      for (const n of sim.names) {
        let runs = 0;
        for await (const w of env.client.workflow.list({ query: `WorkflowId = '${hostWorkflowId(n)}'` })) {
          if (w.type === 'upgradeHost') runs += 1;
        }
        assert.equal(runs, 1, `${n}: ${runs} upgrade runs`);
      }
    } finally {
      await proc.stop();
    }
  });
});
