/**
 * The upgrader updating itself (issue 18): updateUpgrader from a bundle mirror and from a registry
 * (tampered or mismatching files refused before anything is unpacked), and a host worker under the
 * launcher switched from A to B through Temporal while a DefenseClaw upgrade runs on its host: the
 * upgrade ends as an unswitched one does, its interrupted activity retried on B.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { updateUpgrader, upgraderSwitchOutcome } from '../activities/host/upgrader-update.js';
import { isAlive } from '../worker/agent/processes.js';
import { loadHostConfig } from '../worker/host-config.js';
import { onRestartRequested } from '../worker/restart.js';
import { createHostWorker, createWorkflowWorker } from '../worker/worker.js';
import { AGENT_WORKFLOW_QUEUE, hostWorkflowId, taskQueueForHost, type UpgradeResult } from '../workflows/types.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { startTestEnvironment, temporalCliPath } from './helpers/temporal.js';
import { CLI_MAIN } from './helpers/cli.js';
import {
  link,
  linked,
  makeBrokenBundle,
  makeTestBundle,
  makeVersion,
  publishBundle,
  rawTarGz,
  readyMark,
  reverts,
  startLauncher,
  until,
  type LauncherProcess,
} from './helpers/upgrader.js';

const A = '0.2.0';
const B = '0.2.1';
const BROKEN = '0.2.9';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-self-update-'));
const mirrorDir = path.join(tmp, 'mirror');
let mirror: http.Server;
let mirrorUrl: string;
/** Bytes to flip in the next bundle served (a tampering mirror). */
let tamper = false;
const served: string[] = [];
let restarts = 0;

function serveFile(res: http.ServerResponse, file: string, mutate?: (b: Buffer) => Buffer) {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404);
    return res.end();
  }
  const body = mutate ? mutate(fs.readFileSync(file)) : fs.readFileSync(file);
  res.writeHead(200, { 'content-length': String(body.length) });
  res.end(body);
}

before(async () => {
  fs.mkdirSync(mirrorDir, { recursive: true });
  await Promise.all([makeTestBundle(B, mirrorDir), makeBrokenBundle(BROKEN, mirrorDir)]);
  mirror = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    served.push(p);
    const file = path.join(mirrorDir, path.normalize(p).replace(/^(\.\.[/\\])+/, ''));
    serveFile(res, file, (b) => {
      if (!tamper || !p.endsWith('.tar.gz')) return b;
      const c = Buffer.from(b);
      const i = c.length >> 1;
      c[i] = c[i]! ^ 0xff;
      return c;
    });
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
  mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
  onRestartRequested(() => (restarts += 1));
});

after(async () => {
  mirror.closeAllConnections();
  await new Promise((r) => mirror.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

let roots = 0;
function hostEnv(extra: Record<string, string>): { root: string; env: Record<string, string> } {
  const root = path.join(tmp, `root-${++roots}`);
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { recursive: true });
  return {
    root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
      DEFENSECLAW_HOST: `self-update-${roots}`,
      DEFENSECLAW_UPGRADER_ROOT: root,
      DEFENSECLAW_UPGRADER_LAUNCHER: '1',
      ...extra,
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `expected a refusal, got ${String(err)}`);
  return err;
}

function assertNothingChanged(root: string, version: string) {
  assert.equal(fs.existsSync(path.join(root, 'versions', version)), false, 'nothing installed');
  assert.deepEqual(fs.readdirSync(path.join(root, '.staging')), [], 'nothing left in staging');
  assert.equal(linked(root, 'current'), A, 'current unchanged');
  assert.equal(fs.existsSync(path.join(root, 'switch.json')), false, 'no switch');
}

describe('updateUpgrader from a bundle mirror', () => {
  test('a tampered bundle is refused before anything is unpacked', async () => {
    const { root, env } = hostEnv({ DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl });
    makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    tamper = true;
    try {
      const err = await refusal(updateUpgrader(loadHostConfig(env), { version: B }));
      assert.equal(err.type, 'ChecksumMismatch');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /checksum mismatch for defenseclaw-upgrade-0\.2\.1-.*nothing was unpacked/);
    } finally {
      tamper = false;
    }
    assertNothingChanged(root, B);
    assert.equal(restarts, 0);
  });

  test('bad input and a worker outside the launcher are refused, nothing changed', async () => {
    const { root, env } = hostEnv({ DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl });
    makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    fs.mkdirSync(path.join(root, '.staging'));
    const config = loadHostConfig(env);
    for (const version of ['0.2', '../0.2.1', '0.2.1; rm -rf /', 'latest', 'http://evil/0.2.1']) {
      const err = await refusal(updateUpgrader(config, { version }));
      assert.equal(err.type, 'InvalidInput', version);
    }
    assert.equal((await refusal(updateUpgrader(config, { version: B, url: 'http://evil' }))).type, 'InvalidInput');
    const outside = loadHostConfig({ ...env, DEFENSECLAW_UPGRADER_LAUNCHER: '' });
    const err = await refusal(updateUpgrader(outside, { version: B }));
    assert.equal(err.type, 'NotUnderLauncher');
    assertNothingChanged(root, B);
    assert.deepEqual(
      served.filter((s) => s.includes('evil')),
      [],
    );
  });
  test('a bundle whose checksum is right but whose entries are unsafe is refused, nothing written outside staging', async () => {
    const { root, env } = hostEnv({ DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl });
    makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    const escape = path.join(tmp, 'escaped');
    const pkg = (v: string) => JSON.stringify({ name: 'defenseclaw-upgrade', version: v });
    const cases: Array<[string, Parameters<typeof rawTarGz>[0], RegExp]> = [
      ['0.3.1', [{ path: 'defenseclaw-upgrade-0.3.1/../../escaped', type: 'file', body: 'x' }], /a path with \.\./],
      ['0.3.2', [{ path: '/tmp/escaped', type: 'file', body: 'x' }], /an absolute path/],
      [
        '0.3.3',
        [
          { path: 'defenseclaw-upgrade-0.3.3/package.json', type: 'file', body: pkg('0.3.3') },
          { path: 'defenseclaw-upgrade-0.3.3/dist', type: 'symlink', linkpath: '../../../..' },
        ],
        /a link escaping the tree/,
      ],
      [
        '0.3.4',
        [{ path: 'defenseclaw-upgrade-0.3.4/passwd', type: 'hardlink', linkpath: '/etc/passwd' }],
        /an entry of type Link/,
      ],
      ['0.3.5', [{ path: 'defenseclaw-upgrade-0.3.5/fifo', type: 'fifo' }], /an entry of type FIFO/],
      [
        '0.3.6',
        [
          { path: 'defenseclaw-upgrade-0.3.6/package.json', type: 'file', body: pkg('0.3.6') },
          { path: 'other-top/x', type: 'file', body: 'x' },
        ],
        /outside the top folder/,
      ],
    ];
    for (const [version, entries, why] of cases) {
      publishBundle(mirrorDir, version, rawTarGz(entries));
      const err = await refusal(updateUpgrader(loadHostConfig(env), { version }));
      assert.equal(err.type, 'UnsafeArchive', `${version}: ${err.message}`);
      assert.match(err.message, why);
      assertNothingChanged(root, version);
    }
    assert.equal(fs.existsSync(escape), false);
    assert.equal(fs.existsSync('/tmp/escaped'), false);
    // A bundle that holds another version than the one asked for is refused too.
    publishBundle(
      mirrorDir,
      '0.3.7',
      rawTarGz([
        { path: 'defenseclaw-upgrade-0.3.7/package.json', type: 'file', body: pkg('0.3.8') },
        { path: 'defenseclaw-upgrade-0.3.7/dist/client/main.js', type: 'file', body: '' },
      ]),
    );
    const err = await refusal(updateUpgrader(loadHostConfig(env), { version: '0.3.7' }));
    assert.equal(err.type, 'VersionMismatch');
    assertNothingChanged(root, '0.3.7');
  });
});

describe('updateUpgrader from a registry', () => {
  const V = '0.2.5';
  let registry: http.Server;
  let registryUrl: string;
  let tgz: Buffer;
  let integrity: string;

  before(async () => {
    // A package as `npm pack` makes it: package/package.json and its entry point.
    const src = path.join(tmp, 'pkg-src');
    fs.mkdirSync(path.join(src, 'dist', 'client'), { recursive: true });
    fs.writeFileSync(
      path.join(src, 'package.json'),
      JSON.stringify({
        name: 'defenseclaw-upgrade',
        version: V,
        type: 'module',
        bin: { 'defenseclaw-upgrade': 'dist/client/main.js' },
      }),
    );
    fs.writeFileSync(path.join(src, 'dist', 'client', 'main.js'), '#!/usr/bin/env node\nconsole.log("0.2.5");\n');
    const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp], {
      cwd: src,
      env: { ...process.env, npm_config_cache: path.join(tmp, 'npm-cache') },
    })
      .toString()
      .trim();
    tgz = fs.readFileSync(path.join(tmp, name));
    integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
    registry = http.createServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      if (p === '/defenseclaw-upgrade') {
        const body = JSON.stringify({
          name: 'defenseclaw-upgrade',
          versions: {
            [V]: { dist: { tarball: `${registryUrl}/defenseclaw-upgrade/-/defenseclaw-upgrade-${V}.tgz`, integrity } },
          },
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(body);
      }
      if (p === `/defenseclaw-upgrade/-/defenseclaw-upgrade-${V}.tgz`) {
        res.writeHead(200, { 'content-length': String(tgz.length) });
        return res.end(tgz);
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });

  after(async () => {
    registry.closeAllConnections();
    await new Promise((r) => registry.close(r));
  });

  test('an integrity mismatch is refused before npm installs anything', async () => {
    const { root, env } = hostEnv({ DEFENSECLAW_UPGRADER_REGISTRY: registryUrl });
    makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    const good = integrity;
    integrity = `sha512-${createHash('sha512').update('something else').digest('base64')}`;
    try {
      const err = await refusal(updateUpgrader(loadHostConfig(env), { version: V }));
      assert.equal(err.type, 'ChecksumMismatch');
      assert.match(err.message, /integrity mismatch for defenseclaw-upgrade 0\.2\.5/);
    } finally {
      integrity = good;
    }
    assertNothingChanged(root, V);
  });

  test('a verified tarball is installed by npm side by side and switched to', async () => {
    const { root, env } = hostEnv({ DEFENSECLAW_UPGRADER_REGISTRY: registryUrl });
    makeVersion(root, A, 'no-entry');
    makeVersion(root, '0.1.9', 'no-entry');
    link(root, 'current', A);
    link(root, 'previous', '0.1.9');
    const before = restarts;
    const r = await updateUpgrader(loadHostConfig(env), { version: V, deadlineSeconds: 30 });
    assert.deepEqual(r, { from: A, to: V, source: 'registry' });
    const entry = path.join(root, 'versions', V, 'node_modules', 'defenseclaw-upgrade', 'dist', 'client', 'main.js');
    assert.ok(fs.existsSync(entry), 'installed where the launcher looks');
    assert.equal(linked(root, 'current'), V);
    assert.equal(linked(root, 'previous'), A);
    assert.deepEqual(fs.readdirSync(path.join(root, 'versions')).sort(), [A, V], 'older versions pruned');
    const sw = JSON.parse(fs.readFileSync(path.join(root, 'switch.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(
      { ...sw, startedAt: undefined },
      { schema: 1, from: A, to: V, deadlineSeconds: 30, startedAt: undefined },
    );
    await until(() => restarts > before, 3000, 'the restart request');
    // A retry after the switch changes nothing more.
    const again = await updateUpgrader(loadHostConfig(env), { version: V });
    assert.equal(again.alreadyCurrent, true);
    assert.deepEqual(await upgraderSwitchOutcome(loadHostConfig(env), { version: V }), { current: V, pending: true });
  });
});

describe('self-update without a launcher', () => {
  test('switches, stops the local agent, and the next command starts the agent on the new version', async () => {
    const { root, env: vars } = hostEnv({
      DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl,
      TEMPORAL_CLI_PATH: await temporalCliPath(),
    });
    delete vars.DEFENSECLAW_UPGRADER_LAUNCHER;
    makeVersion(root, A, 'real');
    link(root, 'current', A);
    // The CLI as installed: run from <root>/current.
    const installed = path.join(root, 'current', 'dist', 'client', 'main.js');
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, args, { env: vars, timeout: 120_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? 1,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      );
    const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    const first = await run([installed, 'agent', 'start', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const agentA = (JSON.parse(first.stdout) as { pid: number }).pid;
    try {
      assert.match(cmdline(agentA), new RegExp(`versions/${A.replace(/\./g, '\\.')}/`));
      const up = await run([installed, 'self-update', '--version', B]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout.trim().split('\n').length, 1);
      assert.match(up.stdout, new RegExp(`switched ${A} → ${B} \\(bundle\\) in .*the local agent was stopped`));
      assert.equal(isAlive(agentA), false, 'the old agent is gone');
      assert.equal(linked(root, 'current'), B);
      assert.equal(fs.existsSync(path.join(root, 'switch.json')), false, 'no launcher to prove it: no switch.json');
      const next = await run([installed, 'agent', 'start', '--json']);
      assert.equal(next.code, 0, next.stderr);
      const agentB = (JSON.parse(next.stdout) as { pid: number }).pid;
      assert.match(cmdline(agentB), new RegExp(`versions/${B.replace(/\./g, '\\.')}/`));
    } finally {
      await run([installed, 'agent', 'stop']);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

const { EventType } = proto.temporal.api.enums.v1;

/** Every attempt's worker identity of each activity type that ended, from the run's history. */
async function endedActivities(
  env: TestWorkflowEnvironment,
  workflowId: string,
): Promise<Array<{ type: string; attempt: number; identity: string }>> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const out: Array<{ type: string; attempt: number; identity: string }> = [];
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const a = e.activityTaskStartedEventAttributes!;
      out.push({
        type: scheduled.get(String(a.scheduledEventId))!,
        attempt: a.attempt ?? 0,
        identity: a.identity ?? '',
      });
    }
  }
  return out;
}

function comparable(r: UpgradeResult) {
  return { ok: r.ok, outcome: r.outcome, from: r.from, to: r.to, artifacts: r.artifacts.map((a) => a.name).sort() };
}

describe('under the launcher, against a dev server', () => {
  let env: TestWorkflowEnvironment;
  let connection: NativeConnection;
  let releases: ReleaseServer;
  const sims: SimHost[] = [];
  const launchers: LauncherProcess[] = [];
  const workers: Worker[] = [];
  let running: Promise<unknown>;

  before(async () => {
    // ~250 B/s: each 6 KiB asset takes ~25 s, one 1 KiB chunk every 4 s (inside the 5 s heartbeat timeout).
    [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer({ throttleBytesPerSec: 250 })]);
    connection = await NativeConnection.connect({ address: env.address });
    const namespace = env.namespace ?? 'default';
    workers.push(
      await createWorkflowWorker({ connection, namespace, taskQueue: AGENT_WORKFLOW_QUEUE, shutdownGraceTime: '1s' }),
      await Worker.create({
        connection,
        namespace,
        taskQueue: 'upgrader-test',
        workflowsPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'workflows', 'upgrader.js'),
      }),
    );
    running = Promise.all(workers.map((w) => w.run()));
  });

  after(async () => {
    for (const l of launchers) await l.stop();
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running?.catch(() => undefined);
    await connection?.close();
    await Promise.all(sims.map((s) => s.cleanup()));
    await releases?.close();
    await env?.teardown();
  });

  test('a DefenseClaw upgrade in flight during a worker switch ends as it would have without the switch', async () => {
    const namespace = env.namespace ?? 'default';
    const [simRef, simSw] = await Promise.all([createSimHost(), createSimHost()]);
    sims.push(simRef, simSw);
    const TO = '0.4.0';

    // The unswitched run: the same release, a host worker that stays.
    const refName = `ref-${process.pid}`;
    const refWorker = await createHostWorker({
      connection,
      namespace,
      hostConfig: loadHostConfig({ ...simRef.env, ...releases.env(), DEFENSECLAW_HOST: refName }),
      shutdownGraceTime: '1s',
    });
    workers.push(refWorker);
    const refRunning = refWorker.run();

    // The switched host: its worker A under the launcher, B on the operator's mirror.
    const { root, env: hostEnvVars } = hostEnv({
      ...simSw.env,
      ...releases.env(),
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: namespace,
      DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl,
    });
    const swName = hostEnvVars.DEFENSECLAW_HOST!;
    delete hostEnvVars.DEFENSECLAW_UPGRADER_LAUNCHER; // the launcher sets it
    makeVersion(root, A, 'real');
    link(root, 'current', A);
    const launcher = startLauncher(root, ['worker'], hostEnvVars);
    launchers.push(launcher);
    const markA = await until(() => readyMark(root, A), 60_000, `A polling (${launcher.stderr()})`);

    const start = (host: string) =>
      env.client.workflow.start('upgradeHost', {
        taskQueue: AGENT_WORKFLOW_QUEUE,
        workflowId: hostWorkflowId(host),
        args: [
          {
            host,
            version: TO,
            hostQueue: taskQueueForHost(host),
            options: {
              healthTimeoutSeconds: 30,
              onFailure: 'rollback',
              requireConfirmation: false,
              confirmTimeoutSeconds: 900,
            },
            requestedBy: 'self-update-test',
          },
        ],
      });
    const [ref, sw] = await Promise.all([start(refName), start(swName)]);

    // Once the switched host's download runs, its worker is replaced.
    await until(
      async () => (await endedOrRunning(env, hostWorkflowId(swName))).includes('downloadArtifact'),
      60_000,
      'the download to start',
    );
    const switched = await env.client.workflow.execute('updateUpgraderOnHost', {
      taskQueue: 'upgrader-test',
      workflowId: `update-upgrader-${swName}`,
      args: [taskQueueForHost(swName), B],
    });
    assert.deepEqual(switched, { from: A, to: B, source: 'bundle' });
    const markB = await until(() => readyMark(root, B), 90_000, `B polling (${launcher.stderr()})`);
    assert.notEqual(markB.pid, markA.pid);
    await until(() => !fs.existsSync(path.join(root, 'switch.json')), 5000, 'the proven switch');
    assert.equal(linked(root, 'current'), B);
    assert.deepEqual(reverts(root), []);
    assert.doesNotMatch(launcher.stderr(), /the worker exited/, 'A exited 75: restarted at once, no backoff');
    const outcome = await env.client.workflow.execute('switchOutcomeOnHost', {
      taskQueue: 'upgrader-test',
      workflowId: `switch-outcome-${swName}`,
      args: [taskQueueForHost(swName), B],
    });
    assert.deepEqual(outcome, { current: B });

    const [refResult, swResult] = (await Promise.all([ref.result(), sw.result()])) as [UpgradeResult, UpgradeResult];
    refWorker.shutdown();
    await refRunning;
    assert.equal(swResult.outcome, 'upgraded', swResult.message);
    assert.deepEqual(comparable(swResult), comparable(refResult));
    assert.equal(await simSw.gatewayVersion(), TO);
    assert.equal(await simRef.gatewayVersion(), TO);

    // The activity that was running when A went away was retried, and B finished it.
    const acts = await endedActivities(env, hostWorkflowId(swName));
    const onB = acts.filter((a) => a.identity === markB.identity);
    const onA = acts.filter((a) => a.identity === markA.identity);
    assert.ok(onA.length > 0 && onB.length > 0, `both workers served the run: ${JSON.stringify(acts)}`);
    const retried = onB.filter((a) => a.attempt > 1);
    assert.ok(retried.length > 0, `an activity retried on B: ${JSON.stringify(acts)}`);
    process.stderr.write(`retried on B: ${retried.map((a) => `${a.type}#${a.attempt}`).join(', ')}\n`);
  });

  test("self-update moves the controller's fleet worker to B, proven by its poll; a B that cannot start is reverted", async () => {
    const { root, env: vars } = hostEnv({
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
      DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl,
    });
    delete vars.DEFENSECLAW_UPGRADER_LAUNCHER;
    makeVersion(root, A, 'real');
    link(root, 'current', A);
    const launcher = startLauncher(root, ['fleet', 'worker', '--task-queue', 'self-update-controller'], vars);
    launchers.push(launcher);
    const markA = await until(() => readyMark(root, A), 60_000, `the controller on A polling (${launcher.stderr()})`);
    assert.match(markA.identity, /^defenseclaw-upgrade@[^:]+:controller:/);

    const cli = (version: string) =>
      promisify(execFile)(process.execPath, [CLI_MAIN, 'self-update', '--version', version, '--deadline', '20'], {
        env: vars,
        timeout: 120_000,
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? 1,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      );
    const t0 = Date.now();
    const up = await cli(B);
    assert.equal(up.code, 0, `${up.stdout}${up.stderr}`);
    assert.equal(up.stdout.trim().split('\n').length, 1);
    assert.match(
      up.stdout,
      new RegExp(
        `switched ${A} → ${B} \\(bundle\\): the launcher's process \\(pid ${launcher.child.pid}\\) runs and polls ${B}`,
      ),
    );
    const markB = readyMark(root, B);
    assert.ok(markB && markB.pid !== markA.pid, 'a new process of B polls');
    assert.equal(linked(root, 'current'), B);
    process.stderr.write(`controller self-update ${A} → ${B}: ${Date.now() - t0} ms\n`);

    const again = await cli(B);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already current/);

    const down = await cli(BROKEN);
    assert.equal(down.code, 1, down.stdout + down.stderr);
    assert.match(
      down.stdout,
      new RegExp(
        `${BROKEN} was reverted to ${B} by the launcher: version ${BROKEN} exited \\(code 3\\) before it polled`,
      ),
    );
    assert.equal(linked(root, 'current'), B);
    assert.equal(reverts(root).length, 1);
    // What a rollout reads from the host afterwards.
    const seen = await upgraderSwitchOutcome(loadHostConfig(vars), { version: BROKEN });
    assert.equal(seen.current, B);
    assert.equal(seen.pending, undefined);
    assert.deepEqual(
      { ...seen.reverted, at: undefined },
      { from: BROKEN, to: B, reason: `version ${BROKEN} exited (code 3) before it polled`, at: undefined },
    );
    assert.equal(
      launcher
        .stderr()
        .split('\n')
        .filter((l) => l.includes(`reverted ${BROKEN} → ${B}`)).length,
      1,
    );
    // B runs again and polls.
    await until(
      () => {
        const m = readyMark(root, B);
        return m && m.pid !== markB.pid;
      },
      60_000,
      'B polling again',
    );
  });
});

/** Activity types the run has scheduled so far. */
async function endedOrRunning(env: TestWorkflowEnvironment, workflowId: string): Promise<string[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
}
