/**
 * The launcher alone (no workflow involved): it runs the real worker of version A from
 * <root>/current against a real dev server, a switch to B is made by hand as updateUpgrader makes
 * it, and whatever B does (exit at once, hang without polling, have no entry point, not be
 * JavaScript) the launcher goes back to A by itself; a B that polls stays.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parseEnvFile } from '../worker/launcher/launcher.js';
import { startTestEnvironment } from './helpers/temporal.js';
import {
  link,
  linked,
  makeVersion,
  readyMark,
  reverts,
  startLauncher,
  switchByHand,
  until,
  type LauncherProcess,
  type VersionKind,
} from './helpers/upgrader.js';

const A = '0.2.0';
const B = '0.2.1';
let env: TestWorkflowEnvironment;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-launcher-'));
const running = new Set<LauncherProcess>();

before(async () => {
  env = await startTestEnvironment();
});

after(async () => {
  for (const l of running) await l.stop();
  await env?.teardown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A root with the real A as current and B of the given kind, its launcher running `worker`, A polling. */
async function rootWithA(bKind: VersionKind): Promise<{ root: string; launcher: LauncherProcess; firstPid: number }> {
  const root = path.join(tmp, `root-${++n}`);
  makeVersion(root, A, 'real');
  makeVersion(root, B, bKind);
  link(root, 'current', A);
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { recursive: true });
  const launcher = startLauncher(root, ['worker'], {
    PATH: process.env.PATH,
    HOME: home,
    DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
    DEFENSECLAW_HOST: `launcher-host-${n}`,
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    DEFENSECLAW_UPGRADER_ROOT: root,
  });
  running.add(launcher);
  const mark = await until(() => readyMark(root, A), 60_000, `A polling (launcher stderr: ${launcher.stderr()})`);
  return { root, launcher, firstPid: mark.pid };
}

async function assertRevertedToA(
  root: string,
  launcher: LauncherProcess,
  firstPid: number,
  reason: RegExp,
  started: number,
  withinMs: number,
) {
  const r = await until(() => reverts(root)[0], withinMs, `a revert (stderr: ${launcher.stderr()})`);
  assert.equal(r.from, B);
  assert.equal(r.to, A);
  assert.match(r.reason, reason);
  assert.ok(Date.now() - started < withinMs);
  assert.equal(linked(root, 'current'), A, 'current points at A again');
  assert.equal(fs.existsSync(path.join(root, 'switch.json')), false, 'switch.json removed');
  const line = launcher
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`reverted ${B} → ${A}`));
  assert.equal(line.length, 1, `one line on the launcher's stderr: ${launcher.stderr()}`);
  // A runs again and polls: a new process wrote its ready mark.
  const mark = await until(
    () => {
      const m = readyMark(root, A);
      return m && m.pid !== firstPid ? m : undefined;
    },
    60_000,
    'A polling again',
  );
  assert.notEqual(mark.pid, firstPid);
  assert.equal(reverts(root).length, 1);
}

describe('the launcher', () => {
  test('a B that exits at start is reverted to A by the launcher alone', async () => {
    const { root, launcher, firstPid } = await rootWithA('exit-at-start');
    const started = Date.now();
    switchByHand(root, A, B, 120);
    process.kill(launcher.child.pid!, 'SIGUSR2');
    await assertRevertedToA(root, launcher, firstPid, /exited \(code 3\) before it polled/, started, 30_000);
    const child = readyMark(root, A)!.pid;
    const stop = await launcher.stop();
    assert.equal(stop.code, 0, 'the launcher exits with its child after SIGTERM');
    assert.throws(() => process.kill(child, 0), 'the child got the SIGTERM and is gone');
    assert.equal(fs.existsSync(path.join(root, 'launcher.pid')), false);
  });

  test('a B that never writes ready within the deadline is reverted', async () => {
    const { root, launcher, firstPid } = await rootWithA('hang');
    const started = Date.now();
    switchByHand(root, A, B, 5);
    process.kill(launcher.child.pid!, 'SIGUSR2');
    // 5 s deadline, plus the hanging child's kill grace (it ignores SIGTERM: SIGKILL after 10 s).
    await assertRevertedToA(root, launcher, firstPid, /did not poll within 5 s/, started, 30_000);
    assert.ok(Date.now() - started >= 5000, 'not before the deadline');
  });

  test('a B missing, with no entry point, or not JavaScript is reverted', async () => {
    for (const kind of ['missing', 'no-entry', 'garbage'] as const) {
      const { root, launcher, firstPid } = await rootWithA(kind);
      const started = Date.now();
      switchByHand(root, A, B, 120);
      process.kill(launcher.child.pid!, 'SIGUSR2');
      await assertRevertedToA(
        root,
        launcher,
        firstPid,
        kind === 'garbage' ? /exited \(code 1\) before it polled/ : /has no entry point/,
        started,
        30_000,
      );
      await launcher.stop();
    }
  });

  test('a proven B stays, and switch.json is gone', async () => {
    const { root, launcher } = await rootWithA('real');
    switchByHand(root, A, B, 60);
    process.kill(launcher.child.pid!, 'SIGUSR2');
    const mark = await until(() => readyMark(root, B), 60_000, `B polling (stderr: ${launcher.stderr()})`);
    assert.match(mark.identity, /launcher-host/);
    await until(() => !fs.existsSync(path.join(root, 'switch.json')), 5000, 'switch.json removed');
    assert.match(launcher.stderr(), new RegExp(`switch ${A} → ${B} proven`));
    // Past the deadline nothing changes.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(linked(root, 'current'), B);
    assert.deepEqual(reverts(root), []);
    assert.equal(launcher.child.exitCode, null);
  });
});

describe('the launcher without a server', () => {
  test('exit 75 restarts at once, other exits after a doubling backoff; --env-file reaches the child', async () => {
    const root = path.join(tmp, 'restarts');
    const dir = makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    const log = path.join(root, 'starts.log');
    // Exits 75 twice, then 1 twice, then waits: each start logs its time and the env file's value.
    fs.mkdirSync(path.join(dir, 'dist', 'client'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'dist', 'client', 'main.js'),
      `import fs from 'node:fs';
const n = fs.existsSync(${JSON.stringify(log)}) ? fs.readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter(Boolean).length : 0;
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ t: Date.now(), v: process.env.DCU_FROM_FILE, q: process.env.DCU_QUOTED, args: process.argv.slice(2), l: process.env.DEFENSECLAW_UPGRADER_LAUNCHER }) + '\\n');
if (n < 2) process.exit(75);
if (n < 4) process.exit(1);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`,
    );
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', version: A }));
    const envFile = path.join(root, 'env');
    fs.writeFileSync(envFile, '# comment\n\nDCU_FROM_FILE=plain\nDCU_QUOTED="with spaces"\n', { mode: 0o600 });
    const launcher = startLauncher(root, ['--env-file', envFile, 'worker', '--host', 'x'], {
      PATH: process.env.PATH,
      DEFENSECLAW_UPGRADER_ROOT: root,
    });
    running.add(launcher);
    const lines = await until(
      () => {
        const l = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
        return l.length >= 5
          ? l.map((x) => JSON.parse(x) as { t: number; v: string; q: string; args: string[]; l: string })
          : undefined;
      },
      20_000,
      `five starts (stderr: ${launcher.stderr()})`,
    );
    const gaps = lines.slice(1).map((l, i) => l.t - lines[i]!.t);
    assert.ok(gaps[0]! < 900 && gaps[1]! < 900, `exit 75 restarts at once: ${gaps}`);
    assert.ok(gaps[2]! >= 1000 && gaps[2]! < 1900, `first backoff 1 s: ${gaps}`);
    assert.ok(gaps[3]! >= 2000 && gaps[3]! < 2900, `then 2 s: ${gaps}`);
    for (const l of lines) {
      assert.equal(l.v, 'plain');
      assert.equal(l.q, 'with spaces');
      assert.deepEqual(l.args, ['worker', '--host', 'x']);
      assert.equal(l.l, '1');
    }
    assert.doesNotMatch(launcher.stderr(), /plain|with spaces/, 'the values are never logged');
    assert.equal(fs.readFileSync(path.join(root, 'launcher.pid'), 'utf8').trim(), String(launcher.child.pid));
    const stop = await launcher.stop();
    assert.equal(stop.code, 0);
  });

  test('an unreadable switch.json is dropped and the current version runs', async () => {
    const root = path.join(tmp, 'garbled-switch');
    const dir = makeVersion(root, A, 'no-entry');
    link(root, 'current', A);
    const started = path.join(root, 'started');
    fs.mkdirSync(path.join(dir, 'dist', 'client'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'dist', 'client', 'main.js'),
      `import fs from 'node:fs';\nfs.writeFileSync(${JSON.stringify(started)}, 'yes');\nprocess.on('SIGTERM', () => process.exit(0));\nsetInterval(() => {}, 1000);\n`,
    );
    fs.writeFileSync(path.join(root, 'switch.json'), '{"schema":1,"from":"0.2.0","to":');
    const launcher = startLauncher(root, ['worker'], { PATH: process.env.PATH, DEFENSECLAW_UPGRADER_ROOT: root });
    running.add(launcher);
    await until(() => fs.existsSync(started), 10_000, `the current version started (${launcher.stderr()})`);
    assert.match(launcher.stderr(), /switch\.json is unreadable: removed, staying on the current version/);
    assert.equal(fs.existsSync(path.join(root, 'switch.json')), false);
    assert.equal(linked(root, 'current'), A);
    assert.deepEqual(reverts(root), []);
    assert.equal((await launcher.stop()).code, 0);
  });

  test('a bad environment file is refused with one line and exit 2, nothing started', async () => {
    const root = path.join(tmp, 'badenv');
    makeVersion(root, A, 'exit-at-start');
    link(root, 'current', A);
    const envFile = path.join(root, 'env');
    fs.writeFileSync(envFile, 'GOOD=1\nnot a line with SECRETVALUE\n');
    const launcher = startLauncher(root, ['--env-file', envFile, 'worker'], { PATH: process.env.PATH });
    const r = await launcher.exited;
    assert.equal(r.code, 2);
    assert.equal(launcher.stderr().trim().split('\n').length, 1);
    assert.match(launcher.stderr(), /line 2: expected KEY=VALUE/);
    assert.doesNotMatch(launcher.stderr(), /SECRETVALUE/);
    assert.deepEqual(parseEnvFile('A=\'x y\'\n; c\nB="q\\""\n'), { A: 'x y', B: 'q"' });
    assert.throws(() => parseEnvFile('A="open\n'), /unterminated quote/);
  });
});
