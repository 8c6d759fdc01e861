/**
 * Ring rollouts (workflows/fleet/rings.ts) on a real Temporal dev server with simulated hosts, each with
 * its real worker on its own queue, and the controller's worker (workflows + notifications) on
 * the fleet queue. A local HTTP server is the webhook. The tests run side by side (each on its own
 * hosts): the window test mostly waits for the clock.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkflowIdConflictPolicy, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { WEBHOOK_ENV } from '../activities/controller/notify.js';
import { UsageError } from '../client/errors.js';
import { parsePlan } from '../client/rollout-plan.js';
import { createWorkflowWorker } from '../worker/worker.js';
import { FLEET_TASK_QUEUE, type FleetResult } from '../workflows/fleet/fleet-types.js';
import { hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import type { ringRollout } from '../workflows/fleet/rings.js';
import {
  WEEKDAYS,
  ringProgressQuery,
  type MaintenanceWindow,
  type RingRolloutInput,
  type RingRolloutResult,
  type RolloutEvent,
} from '../workflows/fleet/ring-types.js';
import { FleetSim, type FleetHostSpec } from './helpers/fleet-sim.js';
import { startTestEnvironment } from './helpers/temporal.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

const TARGET = '0.4.0';
const run = promisify(execFile);
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace ?? 'default',
        NO_COLOR: '1',
      },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('rollout plan files', () => {
  const dir = os.tmpdir();
  const refused = async (text: string, pattern: RegExp) =>
    assert.rejects(parsePlan(text, 'plan.yaml', dir), (err: Error) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });

  it('a plan gets its defaults; hostsFile is read relative to the plan', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'plan-'));
    try {
      await fs.writeFile(path.join(tmp, 'broad.txt'), '# the rest\nweb-1\nweb-2\n');
      const p = await parsePlan(
        [
          'rings:',
          '  - name: canary',
          '    hosts: [gw-1]',
          '    soakSeconds: 600',
          '  - name: broad',
          '    hostsFile: broad.txt',
          '    batch: { percent: 25 }',
          '    window: { days: [sat, sun], start: "02:00", minutes: 240, timeZone: Europe/Paris }',
          'pins: { web-2: hold }',
          'gates: { counters: [connector.errors], operatorCheck: true }',
        ].join('\n'),
        'plan.yaml',
        tmp,
      );
      assert.deepEqual(p.rings[1]!.hosts, ['web-1', 'web-2']);
      assert.deepEqual(p.rings[0]!.batch, { count: 5 });
      assert.equal(p.gates.subsystems, true);
      assert.equal(p.catchUpSeconds, 3600);
      assert.deepEqual(p.pins, { 'web-2': 'hold' });
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('bad plans are refused in one line that says where', async () => {
    await refused('rings: [', /plan\.yaml: not valid YAML/);
    await refused('- a\n- b', /a plan is a mapping/);
    await refused('rings: []', /rings: .*at least 1|rings: Too small/i);
    await refused('rings:\n  - name: a\n    hosts: [x]\n  - name: b\n    hosts: [x]', /host x is in ring a and ring b/);
    await refused('rings:\n  - name: a\n    hosts: [x]\n    url: http://evil', /rings\.0: .*url/i);
    await refused('rings:\n  - name: a\n    hosts: [x]\npins: { y: hold }', /pinned host y is in no ring/);
    await refused(
      'rings:\n  - name: a\n    hosts: [x]\n    window: { days: [mon], start: "22:00", minutes: 60, timeZone: Mars/Base }',
      /rings\.0\.window\.timeZone: unknown time zone "Mars\/Base"/,
    );
    await refused(
      'rings:\n  - name: a\n    hostsFile: /nonexistent/hosts.txt',
      /rings\.0\.hostsFile: cannot read the hosts file/,
    );
  });
});

/** The webhook: records every POST; answers 500 once to the event IDs in `failFirst`. */
interface Receiver {
  url: string;
  requests: RolloutEvent[];
  failFirst: Set<string>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const requests: RolloutEvent[] = [];
  const failFirst = new Set<string>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as RolloutEvent;
      requests.push(event);
      if (failFirst.delete(event.eventId)) {
        res.writeHead(500).end('try again');
        return;
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    // A token in the URL: it must never show up anywhere.
    url: `http://127.0.0.1:${port}/hooks/rollouts?token=s3cret-hook-token`,
    requests,
    failFirst,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
let controller: { worker: Worker; running: Promise<void> };
let receiver: Receiver;
const sims: FleetSim[] = [];

async function fleet(hosts: FleetHostSpec[], prefix: string): Promise<FleetSim> {
  const sim = await FleetSim.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    releases,
    hosts,
    prefix: `${prefix}${process.pid}`,
    concurrency: 2,
  });
  sims.push(sim);
  return sim;
}

function start(input: RingRolloutInput): Promise<WorkflowHandle<typeof ringRollout>> {
  return env.client.workflow.start<typeof ringRollout>('ringRollout', {
    taskQueue: FLEET_TASK_QUEUE,
    workflowId: input.rolloutId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
}

const plan = (p: RingRolloutInput['plan']): RingRolloutInput['plan'] => p;

/** The events a rollout sent, first delivery of each eventId, in order. */
function eventsOf(rolloutId: string): RolloutEvent[] {
  const seen = new Set<string>();
  const out: RolloutEvent[] = [];
  for (const e of receiver.requests) {
    if (e.rolloutId !== rolloutId || seen.has(e.eventId)) continue;
    seen.add(e.eventId);
    out.push(e);
  }
  return out;
}

async function versionOf(sim: FleetSim, host: string): Promise<string | null> {
  return sim.host(host).sim.gatewayVersion();
}

/** The UTC window that is closed during exactly the minute that starts at `closeAt` (a minute boundary). */
function windowClosedAt(closeAt: number): MaintenanceWindow {
  const reopen = new Date(closeAt + 60_000);
  const hh = String(reopen.getUTCHours()).padStart(2, '0');
  const mm = String(reopen.getUTCMinutes()).padStart(2, '0');
  return {
    days: [...WEEKDAYS],
    start: `${hh}:${mm}`,
    minutes: 1439,
    timeZone: 'UTC',
  };
}

before(async () => {
  receiver = await startReceiver();
  process.env[WEBHOOK_ENV] = receiver.url;
  [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer()]);
  const worker = await createWorkflowWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: FLEET_TASK_QUEUE,
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  running.catch(() => undefined);
  controller = { worker, running };
});

after(async () => {
  if (controller?.worker.getState() === 'RUNNING') controller.worker.shutdown();
  await controller?.running.catch(() => undefined);
  for (const s of sims) await s.close().catch(() => undefined);
  await releases?.close();
  await env?.teardown();
  await receiver?.close();
  delete process.env[WEBHOOK_ENV];
});

describe('ring rollouts', { concurrency: true, timeout: 240_000 }, () => {
  it('a window that closes mid-ring: hosts in flight finish, the rest wait for it to reopen', async () => {
    // Ring "delay" soaks until ~12 s before the next minute boundary at least 25 s away; ring
    // "windowed" (4 slow hosts, one at a time, ~10 s each) is then cut by its window's closed minute.
    const slow = { faults: { gateway: { [TARGET]: { healthDelayMs: 7000 } } } };
    const sim = await fleet([{}, slow, slow, slow, slow], 'w');
    const [delayHost, ...windowed] = sim.names;
    const closeAt = Math.ceil((Date.now() + 25_000) / 60_000) * 60_000;
    const soakSeconds = Math.max(3, Math.floor((closeAt - Date.now()) / 1000) - 20);
    const id = `rings-window-${process.pid}`;
    const h = await start({
      rolloutId: id,
      version: TARGET,
      plan: plan({
        rings: [
          { name: 'delay', hosts: [delayHost!], soakSeconds },
          { name: 'windowed', hosts: windowed, batch: { count: 1 }, window: windowClosedAt(closeAt) },
        ],
        catchUpSeconds: 0,
      }),
    });
    const r: RingRolloutResult = await h.result();
    assert.equal(r.verdict, 'succeeded', r.message);
    const child = (await env.client.workflow.getHandle(`${id}.windowed`).result()) as FleetResult;
    const starts = child.hosts.map((x) => x.startedAt!);
    const before = starts.filter((t) => t < closeAt);
    const after = starts.filter((t) => t >= closeAt + 60_000);
    assert.ok(before.length >= 1, `some hosts started before the window closed: ${JSON.stringify(starts)} ${closeAt}`);
    assert.ok(after.length >= 1, `some hosts waited for the window to reopen: ${JSON.stringify(starts)} ${closeAt}`);
    assert.equal(before.length + after.length, windowed.length, 'no host started while the window was closed');
    const waits = eventsOf(id).filter((e) => e.kind === 'rollout-waiting-for-window');
    assert.equal(waits.length, 1);
    assert.equal(waits[0]!.ring, 'windowed');
    assert.equal(waits[0]!.opensAt, new Date(closeAt + 60_000).toISOString());
    for (const host of windowed) assert.equal(await versionOf(sim, host), TARGET);
  });

  it('three rings pass in order with a soak; held, pinned and current hosts are left alone; every event once, a 500 retried', async () => {
    const sim = await fleet([{}, {}, {}, {}, {}, { version: TARGET }], 'r');
    const [a, b, held, c, pinned, current] = sim.names as [string, string, string, string, string, string];
    const id = `rings-three-${process.pid}`;
    receiver.failFirst.add(`${id}:ring-started:canary:1`);
    const h = await start({
      rolloutId: id,
      version: TARGET,
      requestedBy: 'test',
      plan: plan({
        rings: [
          { name: 'canary', hosts: [a], soakSeconds: 3 },
          { name: 'early', hosts: [b, held], soakSeconds: 3 },
          {
            name: 'broad',
            hosts: [c, pinned, current],
            batch: { count: 2 },
            soakSeconds: 2,
            window: { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', minutes: 10080 },
          },
        ],
        pins: { [held]: 'hold', [pinned]: '0.3.1' },
        gates: { counters: ['connector.errors'], subsystems: true, operatorCheck: false },
      }),
    });
    const r = await h.result();
    assert.equal(r.verdict, 'succeeded', r.message);
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.rings.map((x) => [x.name, x.state]),
      [
        ['canary', 'passed'],
        ['early', 'passed'],
        ['broad', 'passed'],
      ],
    );
    assert.deepEqual(r.rings[1]!.held, [held]);
    assert.deepEqual(r.rings[2]!.pinned, [pinned]);
    assert.deepEqual(r.rings[2]!.current, [current]);
    assert.match(r.message, /1 held, 1 pinned below 0\.4\.0, 1 already current/);
    for (const host of [a, b, c, current]) assert.equal(await versionOf(sim, host), TARGET, host);
    for (const host of [held, pinned]) assert.equal(await versionOf(sim, host), '0.3.0', host);
    // One release lookup for the rollout: every ring's hosts resolved from its ticket, with no API call.
    for (const host of [a, b, c]) {
      const run = (await env.client.workflow.getHandle(hostWorkflowId(host)).result()) as UpgradeResult;
      const resolve = run.steps.filter((x) => x.name === 'resolve').map((x) => x.detail ?? '');
      assert.ok(resolve.includes(`release ${TARGET} from the rollout's ticket (no API call)`), resolve.join('; '));
    }
    // Rings in order: each started after the previous one ended.
    assert.ok(r.rings[0]!.endedAt! <= r.rings[1]!.startedAt! && r.rings[1]!.endedAt! <= r.rings[2]!.startedAt!);

    const events = eventsOf(id);
    assert.deepEqual(
      events.map((e) => `${e.kind}:${e.ring ?? ''}`),
      ['ring-started:canary', 'ring-started:early', 'ring-started:broad', 'rollout-finished:'],
    );
    assert.equal(events[3]!.verdict, 'succeeded');
    const all = receiver.requests.filter((e) => e.rolloutId === id);
    assert.equal(all.filter((e) => e.eventId === `${id}:ring-started:canary:1`).length, 2, 'the 500 was retried');
    assert.equal(all.length, 5, 'one delivery per event, plus the retry');
    for (const e of events) assert.equal(e.schema, 1);

    const q = await h.query(ringProgressQuery);
    assert.equal(q.verdict, 'succeeded');
    assert.ok(
      !JSON.stringify(await h.fetchHistory()).includes('s3cret-hook-token'),
      'the webhook URL stays out of history',
    );
  });

  it('a health-counter gate halts promotion and auto-rolls the ring back; the next ring never starts', async () => {
    const sim = await fleet([{ faults: { gateway: { [TARGET]: { connectorErrorsPerSecond: 3 } } } }, {}, {}], 'g');
    const [bad, good, next] = sim.names as [string, string, string];
    const id = `rings-gate-${process.pid}`;
    const h = await start({
      rolloutId: id,
      version: TARGET,
      plan: plan({
        rings: [
          { name: 'first', hosts: [bad, good], batch: { count: 2 }, soakSeconds: 4 },
          { name: 'second', hosts: [next] },
        ],
        gates: { counters: ['connector.errors'], subsystems: true, operatorCheck: false },
        autoRollbackRing: true,
      }),
    });
    const r = await h.result();
    assert.equal(r.verdict, 'gate-failed', r.message);
    assert.equal(r.ok, false);
    assert.equal(r.rings[0]!.state, 'rolled-back');
    assert.match(r.rings[0]!.reason!, new RegExp(`${bad}: counter connector\\.errors climbed from \\d+ to \\d+`));
    assert.equal(r.rings[1]!.state, 'skipped');
    for (const host of [bad, good, next]) assert.equal(await versionOf(sim, host), '0.3.0', host);
    const kinds = eventsOf(id).map((e) => `${e.kind}:${e.ring ?? ''}:${e.verdict ?? ''}`);
    assert.deepEqual(kinds, ['ring-started:first:', 'ring-halted:first:gate-failed', 'rollout-finished::gate-failed']);
  });

  it("an operator check from the host's configuration halts the ring (and its output is scrubbed)", async () => {
    const check = JSON.stringify([
      process.execPath,
      '-e',
      "console.log('queue depth too high; token ' + require('fs').readFileSync(process.env.DEFENSECLAW_HOME + '/.env', 'utf8')); process.exit(3)",
    ]);
    const sim = await fleet([{ env: { DEFENSECLAW_UPGRADE_CHECK: check } }], 'o');
    const [host] = sim.names as [string];
    const id = `rings-check-${process.pid}`;
    const h = await start({
      rolloutId: id,
      version: TARGET,
      plan: plan({
        rings: [{ name: 'only', hosts: [host], soakSeconds: 3 }],
        gates: { counters: [], subsystems: true, operatorCheck: true },
        autoRollbackRing: true,
      }),
    });
    const r = await h.result();
    assert.equal(r.verdict, 'gate-failed', r.message);
    assert.match(r.rings[0]!.reason!, /operator check failed \(exit 3\): queue depth too high/);
    assert.ok(!r.rings[0]!.reason!.includes(sim.host(host).sim.token), 'the gateway token is scrubbed');
    assert.equal(r.rings[0]!.state, 'rolled-back');
    assert.equal(await versionOf(sim, host), '0.3.0');
  });

  it('the CLI starts a rollout from a plan file and shows its rings; a bad plan exits 2 in one line', async () => {
    const sim = await fleet([{}], 'l');
    const [host] = sim.names as [string];
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'plan-'));
    try {
      const file = path.join(tmp, 'plan.yaml');
      await fs.writeFile(file, `rings:\n  - name: solo\n    hosts: [${host}]\n    soakSeconds: 1\n`);
      const id = `rings-cli-${process.pid}`;
      const started = await cli([
        'fleet',
        'rollout',
        '--plan',
        file,
        '--version',
        TARGET,
        '--id',
        id,
        '--yes',
        '--json',
      ]);
      assert.equal(started.code, 0, started.stderr);
      const result = JSON.parse(started.stdout) as RingRolloutResult;
      assert.equal(result.verdict, 'succeeded');
      const status = await cli(['fleet', 'rollout', 'status', id]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /solo\s*│\s*passed/);
      assert.match(status.stdout, /\(succeeded\)/);
      const json = JSON.parse((await cli(['fleet', 'rollout', 'status', id, '--json'])).stdout) as RingRolloutResult;
      assert.deepEqual(
        json.rings.map((r) => [r.name, r.state, r.upgraded]),
        [['solo', 'passed', 1]],
      );
      await fs.writeFile(file, 'rings:\n  - name: Bad Name\n    hosts: [x]\n');
      const bad = await cli(['fleet', 'rollout', '--plan', file, '--yes']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /rings\.0\.name: a ring name/);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('a host whose worker starts only after its ring passed is caught up; the summary says so', async () => {
    const sim = await fleet([{ worker: false }, {}, {}], 'c');
    const [late, first, second] = sim.names as [string, string, string];
    const id = `rings-late-${process.pid}`;
    const h = await start({
      rolloutId: id,
      version: TARGET,
      plan: plan({
        rings: [
          { name: 'one', hosts: [late, first] },
          { name: 'two', hosts: [second], soakSeconds: 2 },
        ],
        unreachableSeconds: 3,
        catchUpSeconds: 120,
      }),
    });
    for (;;) {
      const q = await h.query(ringProgressQuery);
      if (q.rings[0]!.state === 'passed') break;
      assert.notEqual(q.phase, 'finished', q.message);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(await versionOf(sim, late), '0.3.0');
    await sim.host(late).startWorker();
    const r = await h.result();
    assert.equal(r.verdict, 'succeeded', r.message);
    assert.deepEqual(r.rings[0]!.late, [late]);
    assert.deepEqual(
      r.late.map((l) => [l.host, l.state]),
      [[late, 'caught-up']],
    );
    assert.match(r.message, new RegExp(`Caught up: ${late}`));
    assert.equal(await versionOf(sim, late), TARGET);
    const caught = eventsOf(id).filter((e) => e.kind === 'host-caught-up');
    assert.deepEqual(
      caught.map((e) => [e.host, e.eventId]),
      [[late, `${id}:host-caught-up:${late}:1`]],
    );
  });
});
