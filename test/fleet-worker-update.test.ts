/**
 * A fleet keeping its own workers current (issue 18): hosts whose workers run under the real
 * launcher (`node <root>/launcher.mjs worker`, version A a copy of this tree stamped A) are moved to
 * B (a platform bundle of this tree stamped B, served by a mirror each host's own configuration
 * names) by `fleet --component worker` and by `fleet rollout --plan … --component worker`, through
 * the CLI, against a real dev server and the controller's real activities. Each host's queue ends
 * polled by a worker whose identity reports B; a host whose B exits at start is reverted to A by
 * its launcher, and the rollout reports that host rolled-back with the launcher's reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { queuePollers } from '../worker/queue-pollers.js';
import { createControllerActivities } from '../activities/controller/controller.js';
import { createWorkflowWorker, resolveWorkflowCode } from '../worker/worker.js';
import { FLEET_TASK_QUEUE, FleetInputSchema, type FleetResult } from '../workflows/fleet/fleet-types.js';
import { RingRolloutInputSchema, type RingRolloutResult } from '../workflows/fleet/ring-types.js';
import { hostWorkflowId, taskQueueForHost, workerUpdateWorkflowId } from '../workflows/types.js';
import { CLI_MAIN } from './helpers/cli.js';
import { startTestEnvironment } from './helpers/temporal.js';
import {
  link,
  linked,
  makeTestBundle,
  makeVersion,
  readyMark,
  reverts,
  startLauncher,
  until,
  type LauncherProcess,
} from './helpers/upgrader.js';

const A = '0.7.0';
const B = '0.7.1';
const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-fleet-worker-'));
const mirrorDir = path.join(tmp, 'mirror');
let env: TestWorkflowEnvironment;
let controller: { worker: Worker; running: Promise<void> };
let mirror: http.Server;
let mirrorUrl: string;
const launchers = new Set<LauncherProcess>();

/** A bundle of B whose entry exits at once (valid archive, right checksum: it installs, then cannot start). */
async function makeBrokenBundle(version: string, outDir: string): Promise<void> {
  const { create } = await import('tar');
  const top = `defenseclaw-upgrade-${version}`;
  const stage = fs.mkdtempSync(path.join(tmp, '.broken-'));
  const pkg = JSON.parse(fs.readFileSync(path.join(CLI_MAIN, '..', '..', '..', 'package.json'), 'utf8')) as object;
  fs.mkdirSync(path.join(stage, top, 'dist', 'client'), { recursive: true });
  fs.writeFileSync(path.join(stage, top, 'package.json'), JSON.stringify({ ...pkg, version }, null, 2));
  fs.writeFileSync(
    path.join(stage, top, 'dist', 'client', 'main.js'),
    'console.error("B cannot start");\nprocess.exit(3);\n',
  );
  const dir = path.join(outDir, version);
  fs.mkdirSync(dir, { recursive: true });
  const name = `defenseclaw-upgrade-${version}-${process.platform}-${process.arch}.tar.gz`;
  await create({ file: path.join(dir, name), cwd: stage, gzip: true, portable: true }, [top]);
  const sha = createHash('sha256')
    .update(fs.readFileSync(path.join(dir, name)))
    .digest('hex');
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${sha}  ${name}\n`);
}

before(async () => {
  fs.mkdirSync(path.join(mirrorDir, 'good'), { recursive: true });
  fs.mkdirSync(path.join(mirrorDir, 'broken'), { recursive: true });
  const [e] = await Promise.all([
    startTestEnvironment(),
    makeTestBundle(B, path.join(mirrorDir, 'good')),
    makeBrokenBundle(B, path.join(mirrorDir, 'broken')),
  ]);
  env = e;
  mirror = http.createServer((req, res) => {
    const p = path.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = path.join(mirrorDir, p);
    if (!file.startsWith(mirrorDir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
  mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
  // The controller: the fleet queue's workflow worker with its real activities (awaitQueueVersion).
  const worker = await createWorkflowWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: FLEET_TASK_QUEUE,
    shutdownGraceTime: '1s',
    activities: createControllerActivities({ HOME: tmp }),
  });
  controller = { worker, running: worker.run() };
});

after(async () => {
  await Promise.all([...launchers].map((l) => l.stop()));
  controller?.worker.shutdown();
  await controller?.running.catch(() => undefined);
  mirror?.closeAllConnections();
  await new Promise((r) => mirror?.close(r));
  await env?.teardown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface LaunchedHost {
  name: string;
  root: string;
  launcher: LauncherProcess;
}

let hosts = 0;
/** A host whose worker runs A under its launcher, configured to fetch upgrader bundles from `mirror` (good or broken). */
async function launchedHost(prefix: string, source: 'good' | 'broken' = 'good'): Promise<LaunchedHost> {
  const name = `${prefix}-${process.pid}-${++hosts}`;
  const root = path.join(tmp, name);
  makeVersion(root, A, 'real');
  link(root, 'current', A);
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { recursive: true });
  const launcher = startLauncher(root, ['worker'], {
    PATH: process.env.PATH,
    HOME: home,
    DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
    DEFENSECLAW_HOST: name,
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    DEFENSECLAW_UPGRADER_ROOT: root,
    DEFENSECLAW_UPGRADER_BUNDLE_URL: `${mirrorUrl}/${source}`,
    DEFENSECLAW_LOG_LEVEL: 'WARN',
  });
  launchers.add(launcher);
  return { name, root, launcher };
}

async function polling(h: LaunchedHost, version: string): Promise<void> {
  await until(
    () => readyMark(h.root, version),
    90_000,
    `${h.name} polling on ${version} (stderr: ${h.launcher.stderr().slice(-2000)})`,
  );
}

/** The versions Temporal sees polling a host's activity queue, from their identities. */
async function pollerVersions(host: string, sinceMs: number): Promise<string[]> {
  const pollers = await queuePollers(env.client.workflowService, env.namespace ?? 'default', taskQueueForHost(host));
  return pollers.filter((p) => (p.lastAccessTime ?? 0) >= sinceMs).map((p) => p.version ?? 'none');
}

async function cli(args: string[], timeoutMs = 400_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI_MAIN, ...args], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace ?? 'default',
        NO_COLOR: '1',
      },
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('worker rollouts: inputs', () => {
  test('a worker rollout needs an exact upgrader version, and no release ticket or channel', () => {
    const base = { fleetId: 'f-1', hosts: ['h1'], component: 'worker' };
    assert.equal(FleetInputSchema.safeParse(base).success, false);
    assert.equal(FleetInputSchema.safeParse({ ...base, version: '0.7' }).success, false);
    assert.equal(FleetInputSchema.safeParse({ ...base, version: '0.7.1' }).success, true);
    assert.equal(FleetInputSchema.safeParse({ ...base, version: '0.7.1', component: 'gateway' }).success, false);
    const plan = { rings: [{ name: 'one', hosts: ['h1'] }] };
    assert.equal(RingRolloutInputSchema.safeParse({ rolloutId: 'r-1', plan, component: 'worker' }).success, false);
    assert.equal(
      RingRolloutInputSchema.safeParse({ rolloutId: 'r-1', plan, component: 'worker', version: B, channel: 'stable' })
        .success,
      false,
    );
    assert.equal(
      RingRolloutInputSchema.safeParse({ rolloutId: 'r-1', plan, component: 'worker', version: B }).success,
      true,
    );
    // A worker update never takes the ID of the host's DefenseClaw runs (both may run at once).
    assert.notEqual(workerUpdateWorkflowId('r-gw1'), hostWorkflowId('r-gw1'));
    assert.notEqual(workerUpdateWorkflowId('gw1'), hostWorkflowId('r-gw1'));
  });

  test('the CLI refuses --component worker without --version, and an unknown component (exit 2, one line)', async () => {
    const a = await cli(['fleet', '--component', 'worker', '--hosts', 'h1', '--yes']);
    assert.equal(a.code, 2);
    assert.match(a.stderr.trim(), /^defenseclaw-upgrade: --component worker needs --version X\.Y\.Z/);
    assert.equal(a.stderr.trim().split('\n').length, 1);
    const b = await cli(['fleet', '--component', 'gateway', '--version', B, '--hosts', 'h1', '--yes']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--component must be defenseclaw or worker/);
  });
});

describe('fleet --component worker', () => {
  test('moves three hosts A → B (each queue polled by B); a B that exits at start is reverted by its launcher and reported rolled-back', async () => {
    const good = await Promise.all([launchedHost('fw'), launchedHost('fw'), launchedHost('fw')]);
    const broken = await launchedHost('fw-broken', 'broken');
    const all = [...good, broken];
    await Promise.all(all.map((h) => polling(h, A)));
    const started = Date.now();
    const r = await cli([
      'fleet',
      '--component',
      'worker',
      '--version',
      B,
      '--hosts',
      all.map((h) => h.name).join(','),
      '--canary',
      '1',
      '--bake',
      '2',
      '--batch',
      '3',
      '--max-failures',
      '1',
      '--yes',
      '--json',
    ]);
    const took = Date.now() - started;
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as FleetResult;
    assert.equal(r.code, 1, `one host failed: exit 1 (stderr: ${r.stderr})`);
    assert.equal(result.component, 'worker');
    assert.equal(result.version, B);
    assert.equal(result.verdict, 'completed-with-failures', result.message);
    for (const h of good) {
      const rec = result.hosts.find((x) => x.host === h.name)!;
      assert.equal(rec.state, 'healthy', `${h.name}: ${rec.reason}`);
      assert.equal(rec.before, A);
      assert.equal(rec.after, B);
      assert.equal(rec.outcome, 'upgraded');
      assert.equal(linked(h.root, 'current'), B);
      assert.ok(readyMark(h.root, B), `${h.name} wrote ready/${B}`);
      assert.ok((await pollerVersions(h.name, started)).includes(B), `${h.name}'s queue is polled by ${B}`);
    }
    const bad = result.hosts.find((x) => x.host === broken.name)!;
    assert.equal(bad.state, 'rolled-back', bad.reason);
    assert.equal(bad.outcome, 'rolled-back');
    assert.equal(bad.after, A, 'the broken host is back on A');
    const revert = reverts(broken.root)[0];
    assert.ok(revert, 'the launcher recorded its revert');
    assert.equal(revert.from, B);
    assert.equal(revert.to, A);
    assert.ok(bad.reason?.includes(`the launcher reverted ${broken.name} to ${A}`), bad.reason);
    assert.ok(
      bad.reason?.includes(revert.reason.slice(0, 40)),
      `the launcher's reason is in the result: ${bad.reason}`,
    );
    assert.equal(linked(broken.root, 'current'), A);
    await until(async () => (await pollerVersions(broken.name, started)).includes(A), 30_000, 'A polling again');
    assert.ok(!(await pollerVersions(broken.name, started)).includes(B));
    process.stderr.write(`fleet of 4 worker hosts A → B (one reverted): ${(took / 1000).toFixed(1)} s\n`);

    // The runs replay on the current workflow code (the fleet, a proven host, the reverted host).
    for (const workflowId of [
      result.fleetId,
      workerUpdateWorkflowId(good[1]!.name),
      workerUpdateWorkflowId(broken.name),
    ]) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory(resolveWorkflowCode(), history, workflowId);
    }

    // `fleet status` names the component.
    const s = await cli(['fleet', 'status', result.fleetId]);
    assert.match(s.stdout, new RegExp(`Fleet ${result.fleetId} → workers ${B.replace(/\./g, '\\.')}`));
    assert.match(s.stdout, /rolled-back/);
    await Promise.all(
      all.map(async (h) => {
        await h.launcher.stop();
        launchers.delete(h.launcher);
      }),
    );
  });
});

describe('fleet rollout --plan --component worker', () => {
  test('rings move their hosts A → B; a hold pin is honoured, a version pin (DefenseClaw) is not', async () => {
    const [r1, r2] = await Promise.all([launchedHost('rw'), launchedHost('rw')]);
    await Promise.all([polling(r1, A), polling(r2, A)]);
    const held = `rw-held-${process.pid}`;
    const plan = path.join(tmp, 'plan.yaml');
    fs.writeFileSync(
      plan,
      [
        'rings:',
        `  - name: first`,
        `    hosts: [${r1.name}]`,
        '    soakSeconds: 2',
        `  - name: second`,
        `    hosts: [${r2.name}, ${held}]`,
        '    pin: "0.1.0"',
        `pins: { ${held}: hold }`,
        'unreachableSeconds: 20',
        '',
      ].join('\n'),
    );
    const started = Date.now();
    const r = await cli([
      'fleet',
      'rollout',
      '--plan',
      plan,
      '--component',
      'worker',
      '--version',
      B,
      '--yes',
      '--json',
    ]);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as RingRolloutResult;
    assert.equal(r.code, 0, `${result.message} (stderr: ${r.stderr})`);
    assert.equal(result.component, 'worker');
    assert.equal(result.verdict, 'succeeded', result.message);
    assert.deepEqual(
      result.rings.map((x) => [x.name, x.state, x.upgraded, x.held]),
      [
        ['first', 'passed', 1, []],
        ['second', 'passed', 1, [held]],
      ],
    );
    for (const h of [r1, r2]) {
      assert.equal(linked(h.root, 'current'), B);
      assert.ok((await pollerVersions(h.name, started)).includes(B), `${h.name}'s queue is polled by ${B}`);
    }
    const s = await cli(['fleet', 'rollout', 'status', result.rolloutId]);
    assert.match(s.stdout, new RegExp(`Rollout ${result.rolloutId} → workers ${B.replace(/\./g, '\\.')}`));
  });
});
