/**
 * Fault injection: one case per point where an upgrade can fail after the gateway was stopped.
 * Each case runs a real upgrade (real Temporal dev server, simulated host, in-process worker) with
 * exactly one fault, and checks the host for real afterwards: with `--on-failure rollback` every
 * backed-up file is byte-identical with the same mode (proven against the pre-upgrade snapshot
 * and against the backup's manifest), the old binary and the old wheel are back, and both
 * `defenseclaw-gateway --version` and /health report the old version.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { HostSnapshot } from './fixtures/host/sim-host.js';
import { Harness, type Activities, type HostUnderTest } from './helpers/harness.js';
import type { UpgradeResult } from '../workflows/types.js';
import { installRuntime } from '../worker/runtime.js';

// Workers log warnings only: the assertions say what happened.
installRuntime({ level: 'WARN' });

let h: Harness;
before(async () => {
  h = await Harness.start();
});
after(async () => {
  await h?.close();
});

const FROM = '0.3.0';
const TO = '0.4.0';
/** The migrations run inside the window (the host's prepared path turned off): their failure there rolls back. */
const IN_WINDOW = { DEFENSECLAW_PREPARED_MIGRATIONS: '0' };

/** A non-retryable failure, so that the workflow goes straight to its failure policy. */
function injected(what: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`injected fault: ${what}`, 'InjectedFault');
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

interface ManifestEntry {
  root: 'data' | 'openclaw';
  path: string;
  type: 'file' | 'dir' | 'absent';
  mode?: number;
  sha256?: string;
}
interface Manifest {
  fromVersion: string;
  entries: ManifestEntry[];
  gateway: { file: string; mode: number; sha256: string };
  venv: { kind: 'dir' | 'link' | 'absent'; target?: string };
  cliLink: { target: string } | null;
}

async function readManifest(host: HostUnderTest, backupId: string): Promise<Manifest> {
  return JSON.parse(
    await fs.readFile(path.join(host.sim.dataDir, 'backups', backupId, 'manifest.json'), 'utf8'),
  ) as Manifest;
}

/** The live host matches the backup's manifest: every entry, the binary, the venv and the CLI link. */
async function assertMatchesManifest(host: HostUnderTest, backupId: string): Promise<void> {
  const m = await readManifest(host, backupId);
  assert.equal(m.fromVersion, FROM);
  assert.ok(m.entries.some((e) => e.path === 'device.key' && e.type === 'file'));
  for (const e of m.entries) {
    const abs = path.join(e.root === 'data' ? host.sim.dataDir : host.sim.openclawHome, e.path);
    const st = await fs.lstat(abs).catch(() => undefined);
    if (e.type === 'absent') {
      assert.equal(st, undefined, `${e.path} should be absent`);
      continue;
    }
    assert.ok(st && !st.isSymbolicLink(), `${e.path} is missing`);
    assert.equal(st.mode & 0o7777, e.mode, `${e.path}: mode`);
    if (e.type === 'file') assert.equal(await sha256(abs), e.sha256, `${e.path}: content`);
    else assert.ok(st.isDirectory(), `${e.path} is a folder`);
  }
  const bin = await fs.lstat(host.sim.gatewayPath);
  assert.ok(bin.isFile());
  assert.equal(bin.mode & 0o7777, m.gateway.mode);
  assert.equal(await sha256(host.sim.gatewayPath), m.gateway.sha256, 'gateway binary is the backed-up one');
  const venv = await fs.lstat(host.sim.venvDir);
  if (m.venv.kind === 'dir') assert.ok(venv.isDirectory() && !venv.isSymbolicLink(), '.venv is the original folder');
  if (m.venv.kind === 'link') assert.equal(await fs.readlink(host.sim.venvDir), m.venv.target);
  if (m.cliLink) assert.equal(await fs.readlink(host.sim.cliPath), m.cliLink.target);
}

/** Nothing staged is left behind: an empty staging folder and no staged binary beside the live one. */
async function assertNoStagingLeft(host: HostUnderTest): Promise<void> {
  const staging = await fs.readdir(path.join(host.sim.dataDir, 'staging')).catch(() => []);
  assert.deepEqual(staging, [], 'staging is empty');
  const bin = (await fs.readdir(host.sim.binDir)).sort();
  assert.deepEqual(bin, ['defenseclaw', 'defenseclaw-gateway'], 'nothing staged beside the binary');
}

/** The exact pre-upgrade state, running and healthy on the old version. */
async function assertRolledBack(host: HostUnderTest, before: HostSnapshot, r: UpgradeResult): Promise<void> {
  assert.equal(r.outcome, 'rolled-back', r.message);
  assert.equal(r.ok, false);
  assert.ok(r.backupId);
  assert.match(r.message, new RegExp(`backups/${r.backupId}`));
  assert.equal(r.compensation?.hostState, `running ${FROM}`);
  const now = await host.sim.snapshot();
  assert.deepEqual(now, before, 'every backed-up file, the binary, the CLI link and the wheel are as before');
  assert.equal(now['.defenseclaw/device.key']?.mode, 0o600);
  assert.equal(now['venv:defenseclaw']?.version, FROM);
  await assertMatchesManifest(host, r.backupId);
  assert.equal(await host.sim.gatewayVersion(), FROM);
  const health = await host.sim.health();
  assert.equal(health?.gateway.state, 'running');
  assert.equal(health?.provenance?.binary_version, FROM);
  assert.equal(await host.sim.venvPackageVersion(), FROM);
  assert.equal(await host.sim.cliVersion(), `defenseclaw ${FROM}`);
  await assertNoStagingLeft(host);
  // The new Python environment is removed; only the preserved original remains.
  const venvs = await fs.readdir(path.join(host.sim.dataDir, 'venvs')).catch(() => [] as string[]);
  assert.deepEqual(
    venvs.filter((v) => v.startsWith(`${TO}-`)),
    [],
    `the ${TO} environment was removed: ${venvs.join(', ')}`,
  );
}

async function assertStopped(host: HostUnderTest): Promise<void> {
  assert.equal(await host.sim.isGatewayRunning(), false, 'no gateway daemon is alive');
  assert.notEqual((await host.sim.gatewayStatus()).exitCode, 0, '`status` reports it stopped');
  assert.equal(await host.sim.health(), null, '/health does not answer');
}

type Wrap = (a: Activities) => Partial<Activities>;
interface RollbackCase {
  name: string;
  step: string;
  wrap?: Wrap;
  faults?: Parameters<HostUnderTest['sim']['setFaults']>[0];
  extraEnv?: Record<string, string>;
  healthTimeoutSeconds?: number;
  error: RegExp;
}

/** Every injection point inside the downtime window, each rolled back to the exact pre-upgrade state. */
const ROLLBACK_CASES: RollbackCase[] = [
  {
    name: 'installGateway fails before the rename',
    step: 'install',
    wrap: () => ({
      installGateway: async () => {
        throw injected('install before the rename');
      },
    }),
    error: /install before the rename/,
  },
  {
    name: 'installGateway fails after the new binary was renamed into place',
    step: 'install',
    wrap: (a) => ({
      installGateway: async (input) => {
        await a.installGateway(input);
        throw injected('install after the rename');
      },
    }),
    error: /install after the rename/,
  },
  {
    name: 'switchVenv fails before switching',
    step: 'install',
    wrap: () => ({
      switchVenv: async () => {
        throw injected('venv switch before');
      },
    }),
    error: /venv switch before/,
  },
  {
    name: 'switchVenv fails after .venv was switched to the new environment',
    step: 'install',
    wrap: (a) => ({
      switchVenv: async (input) => {
        await a.switchVenv(input);
        throw injected('venv switch after');
      },
    }),
    error: /venv switch after/,
  },
  {
    name: 'a migration raises after the first one ran',
    step: 'migrate',
    faults: { migrations: { [TO]: 'raise' } },
    extraEnv: IN_WINDOW,
    error: /simulated migration failure/,
  },
  {
    name: 'the new gateway fails to start',
    step: 'start',
    faults: { gateway: { [TO]: { start: 'fail' } } },
    error: /start failed/,
  },
  {
    name: 'the new gateway crashes right after it started',
    step: 'health',
    faults: { gateway: { [TO]: { start: 'crash-after-start' } } },
    healthTimeoutSeconds: 3,
    error: /did not become healthy within 3 s/,
  },
  {
    name: 'the new gateway never reports running',
    step: 'health',
    faults: { gateway: { [TO]: { health: 'starting' } } },
    healthTimeoutSeconds: 3,
    error: /did not become healthy within 3 s \(last state: starting\)/,
  },
];

describe('fault injection', { concurrency: 3 }, () => {
  // rollbackHost on a host upgraded twice (0.3.0 → 0.3.1 → 0.4.0); the longest cases first.
  async function upgradedTwice() {
    const host = await h.host();
    const s0 = await host.sim.snapshot();
    const r1 = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r1.outcome, 'upgraded', r1.message);
    const s1 = await host.sim.snapshot();
    const r2 = await host.result(await host.upgrade({ version: TO }));
    assert.equal(r2.outcome, 'upgraded', r2.message);
    assert.equal(await host.sim.gatewayVersion(), TO);
    assert.notEqual(r1.backupId, r2.backupId);
    return { host, s0, s1, first: r1.backupId!, second: r2.backupId! };
  }

  it('rollbackHost --backup <the first> on a host upgraded twice: back to the 0.3.0 state, byte-identical to before the first upgrade', async () => {
    const { host, s0, first } = await upgradedTwice();
    const r = await host.result(await host.rollback({ backupId: first }));
    assert.equal(r.outcome, 'restored', r.message);
    assert.equal(r.to, FROM);
    assert.deepEqual(await host.sim.snapshot(), s0);
    await assertMatchesManifest(host, first);
    assert.equal(await host.sim.gatewayVersion(), FROM);
    const health = await host.sim.health();
    assert.equal(health?.gateway.state, 'running');
    assert.equal(health?.provenance?.binary_version, FROM);
    assert.equal(await host.sim.venvPackageVersion(), FROM);
    await assertNoStagingLeft(host);
  });

  it('rollbackHost without --backup on a host upgraded twice: the latest backup (the 0.3.1 state)', async () => {
    const { host, s1, second } = await upgradedTwice();
    const r = await host.result(await host.rollback({}));
    assert.equal(r.outcome, 'restored', r.message);
    assert.equal(r.to, '0.3.1');
    assert.match(r.message, new RegExp(`backups/${second}`));
    assert.deepEqual(await host.sim.snapshot(), s1);
    assert.equal(await host.sim.gatewayVersion(), '0.3.1');
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.3.1');
    assert.equal(await host.sim.venvPackageVersion(), '0.3.1');
  });

  // --on-failure rollback restores the exact pre-upgrade state, whatever failed.
  for (const c of ROLLBACK_CASES) {
    it(`rollback: ${c.name}`, async () => {
      const host = await h.host({ faults: c.faults, wrap: c.wrap, extraEnv: c.extraEnv });
      const before = await host.sim.snapshot();
      const r = await host.result(
        await host.upgrade({ version: TO, options: { healthTimeoutSeconds: c.healthTimeoutSeconds ?? 20 } }),
      );
      assert.equal(r.failure?.step, c.step, r.message);
      assert.match(r.failure!.error, c.error);
      await assertRolledBack(host, before, r);
    });
  }

  // Prepared before the stop (issue 21): the same failing migration fails the upgrade there.
  it('a migration that raises in its prepared run fails the upgrade before the stop: nothing changed, still running', async () => {
    const host = await h.host({ faults: { migrations: { [TO]: 'raise' } } });
    const before = await host.sim.snapshot();
    const r = await host.result(await host.upgrade({ version: TO }));
    assert.equal(r.outcome, 'failed-unchanged', r.message);
    assert.equal(r.failure?.step, 'stage');
    assert.match(r.failure!.error, /prepared before the stop; nothing was changed\).*simulated migration failure/);
    assert.ok(!r.steps.some((s) => s.name === 'stop'), 'the gateway was never stopped');
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal(await host.sim.gatewayVersion(), FROM);
    assert.equal((await host.sim.health())?.gateway.state, 'running');
    await assertNoStagingLeft(host);
  });

  // The other failure policies, and a rollback that fails.
  it('--on-failure restart: the gateway is restarted as installed', async () => {
    const host = await h.host({ faults: { migrations: { [TO]: 'raise' } }, extraEnv: IN_WINDOW });
    const r = await host.result(await host.upgrade({ version: TO, options: { onFailure: 'restart' } }));
    assert.equal(r.outcome, 'restarted', r.message);
    assert.equal(r.failure?.step, 'migrate');
    assert.match(r.message, /restarted as installed \(healthy\)/);
    assert.match(r.message, new RegExp(`backups/${r.backupId}`));
    // Nothing was undone: the new binary and environment run, as the policy says.
    assert.equal(await host.sim.gatewayVersion(), TO);
    const health = await host.sim.health();
    assert.equal(health?.gateway.state, 'running');
    assert.equal(health?.provenance?.binary_version, TO);
    assert.equal(await host.sim.venvPackageVersion(), TO);
    await assertNoStagingLeft(host);
  });

  it('--on-failure stop: the gateway is left stopped, the backup intact', async () => {
    const host = await h.host({ faults: { migrations: { [TO]: 'raise' } }, extraEnv: IN_WINDOW });
    const r = await host.result(await host.upgrade({ version: TO, options: { onFailure: 'stop' } }));
    assert.equal(r.outcome, 'stopped', r.message);
    assert.equal(r.failure?.step, 'migrate');
    assert.match(r.message, new RegExp(`backups/${r.backupId}`));
    await assertStopped(host);
    const m = await readManifest(host, r.backupId!);
    assert.equal(m.fromVersion, FROM);
    await assertNoStagingLeft(host);
  });

  it('a rollback whose old gateway will not start either: fails closed (stopped), files still restored', async () => {
    const host = await h.host();
    const before = await host.sim.snapshot();
    // Set while 0.3.0 runs: from now on neither version can start.
    await host.sim.setFaults({ gateway: { [TO]: { start: 'fail' }, [FROM]: { start: 'fail' } } });
    const r = await host.result(await host.upgrade({ version: TO }));
    assert.equal(r.outcome, 'rollback-failed', r.message);
    assert.equal(r.failure?.step, 'start');
    assert.match(r.message, new RegExp(`backups/${r.backupId}`));
    assert.match(r.compensation!.hostState, /gateway STOPPED/);
    assert.match(r.compensation!.hostState, new RegExp(`backups/${r.backupId}`));
    await assertStopped(host);
    await host.sim.setFaults({});
    assert.deepEqual(await host.sim.snapshot(), before, 'the undo steps themselves all completed');
    await assertMatchesManifest(host, r.backupId!);
  });

  it('a rollback whose binary restore fails: fails closed (stopped) and says what failed', async () => {
    const host = await h.host({
      faults: { gateway: { [TO]: { start: 'fail' } } },
      wrap: () => ({
        restoreGateway: async () => {
          throw injected('restore of the gateway binary');
        },
      }),
    });
    const r = await host.result(await host.upgrade({ version: TO }));
    assert.equal(r.outcome, 'rollback-failed', r.message);
    assert.equal(r.failure?.step, 'start');
    assert.match(r.compensation!.hostState, /gateway STOPPED/);
    assert.match(r.compensation!.hostState, /put the previous gateway binary back failed/);
    assert.match(r.compensation!.hostState, new RegExp(`backups/${r.backupId}`));
    assert.match(r.message, new RegExp(`backups/${r.backupId}`));
    assert.ok(
      r.steps.some((s) => s.name === 'rollback' && /FAILED: put the previous gateway binary back/.test(s.detail ?? '')),
    );
    await assertStopped(host);
    // The binary really is still the new one: the result does not pretend otherwise.
    assert.equal(await host.sim.gatewayVersion(), TO);
  });
});
