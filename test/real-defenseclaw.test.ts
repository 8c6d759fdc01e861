/**
 * The real DefenseClaw 0.4.0 gateway and wheel (built from the public source, ../shared/realdc)
 * upgraded to the real 0.5.0, served as GitHub serves the GoReleaser era (checksums.txt without the
 * wheel, which GitHub's asset digest covers), on a real Temporal dev server:
 *
 * - the upgrade, ending with the real 0.5.0 gateway healthy and keys and policies untouched;
 * - a failure after the stop on the real binaries, rolled back automatically to a byte-identical host;
 * - the `rollback` workflow back to 0.4.0.
 *
 * The real gateway's `start` SIGTERMs every process named `defenseclaw-gateway`: the test runner runs
 * this file alone, after the others, and it runs one real host at a time.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRealHost, type RealHost } from './fixtures/host/real-host.js';
import { REALDC_DIR } from './fixtures/releases/eras.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';

const REAL = { '0.4.0': path.join(REALDC_DIR, '0.4.0'), '0.5.0': path.join(REALDC_DIR, '0.5.0') };

describe('real DefenseClaw 0.4.0 → 0.5.0 (GoReleaser era)', { concurrency: 1 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.4.0', '0.5.0'], realBuilds: REAL });
  });
  after(async () => {
    await h?.close();
  });

  const realHost = async (
    mode: 'standalone' | 'openclaw' = 'standalone',
    extraEnv: Record<string, string> = {},
  ): Promise<HostUnderTest<RealHost>> => h.hostOf(await createRealHost({ version: '0.4.0', mode }), { extraEnv });

  /** A package index that answers nothing: the host cannot reach PyPI. */
  const NO_PYPI = {
    UV_INDEX_URL: 'http://127.0.0.1:9/simple',
    UV_DEFAULT_INDEX: 'http://127.0.0.1:9/simple',
    PIP_INDEX_URL: 'http://127.0.0.1:9/simple',
  };

  it('upgrades the real 0.4.0 host to 0.5.0 without reaching PyPI: real gateway healthy on 0.5.0, keys and policies untouched', async () => {
    // The real wheel's dependencies come from PyPI; this host cannot reach it, and its live environment
    // already satisfies 0.5.0: the new environment reuses what is installed.
    const host = await realHost('standalone', NO_PYPI);
    try {
      const before = await host.sim.snapshot();
      const oldPid = await host.sim.gatewayPid();
      const r = await host.result(await host.upgrade({ version: '0.5.0', options: { healthTimeoutSeconds: 60 } }));
      assert.equal(r.outcome, 'upgraded', r.message);
      assert.equal(r.from, '0.4.0');
      assert.equal(r.to, '0.5.0');
      // The real binary, its health and its provenance.
      assert.equal(await host.sim.gatewayVersion(), '0.5.0');
      const body = await host.sim.waitState(['disabled']);
      assert.equal(body.provenance?.binary_version, '0.5.0');
      assert.notEqual(await host.sim.gatewayPid(), oldPid);
      assert.equal(await host.sim.venvPackageVersion(), '0.5.0');
      // The real 0.5.0 migration ran and is in the real cursor.
      const cursor = await host.sim.migrationState();
      assert.ok(cursor?.applied.includes('0.5.0'), JSON.stringify(cursor));
      // The wheel was verified by GitHub's digest (checksums.txt of this era does not list it).
      const plan = r.steps.find((s) => s.name === 'download' && /\.whl$/.test(s.detail ?? ''));
      assert.ok(plan, 'the wheel was downloaded');
      const after = await host.sim.snapshot();
      for (const key of [
        '.defenseclaw/device.key',
        '.defenseclaw/policies/rego/custom.rego',
        '.openclaw/openclaw.json',
      ]) {
        assert.deepEqual(after[key], before[key], key);
      }
      // The backup holds what the real upgrader keeps.
      const backup = path.join(host.sim.dataDir, 'backups', r.backupId!);
      const manifest = JSON.parse(await fs.readFile(path.join(backup, 'manifest.json'), 'utf8'));
      const saved = manifest.entries
        .filter((e: { type: string }) => e.type !== 'absent')
        .map((e: { path: string }) => e.path);
      for (const p of ['config.yaml', '.env', 'device.key', 'policies', '.migration_state.json', 'openclaw.json']) {
        assert.ok(saved.includes(p), `backup keeps ${p}: ${saved.join(', ')}`);
      }
    } finally {
      await host.stopWorker();
      await host.sim.cleanup();
    }
  });

  it('a failure after the stop on the real binaries rolls back to a byte-identical, healthy 0.4.0', async () => {
    // OpenClaw's connector with no OpenClaw running: the real gateway reports `reconnecting`. With
    // --reconnecting refuse, the real 0.5.0 never becomes healthy: the upgrade must roll back.
    const host = await realHost('openclaw');
    try {
      const before = await host.sim.snapshot();
      const r = await host.result(
        await host.upgrade({ version: '0.5.0', options: { healthTimeoutSeconds: 6, reconnecting: 'refuse' } }),
      );
      assert.equal(r.outcome, 'rolled-back', r.message);
      assert.equal(r.failure?.step, 'health');
      assert.match(r.failure?.error ?? '', /reconnecting/);
      assert.equal(await host.sim.gatewayVersion(), '0.4.0');
      const body = await host.sim.waitState(['reconnecting']);
      assert.equal(body.provenance?.binary_version, '0.4.0');
      assert.deepEqual(await host.sim.snapshot(), before);
    } finally {
      await host.stopWorker();
      await host.sim.cleanup();
    }
  });

  it('`rollback` brings the upgraded real host back to 0.4.0 with its config and keys', async () => {
    const host = await realHost();
    try {
      const before = await host.sim.snapshot();
      const up = await host.result(await host.upgrade({ version: '0.5.0', options: { healthTimeoutSeconds: 60 } }));
      assert.equal(up.outcome, 'upgraded', up.message);
      const r = await host.result(await host.rollback({ healthTimeoutSeconds: 60 }));
      assert.equal(r.outcome, 'restored', r.message);
      assert.equal(await host.sim.gatewayVersion(), '0.4.0');
      const body = await host.sim.waitState(['disabled']);
      assert.equal(body.provenance?.binary_version, '0.4.0');
      assert.equal(await host.sim.venvPackageVersion(), '0.4.0');
      const now = await host.sim.snapshot();
      for (const key of Object.keys(before)) {
        assert.deepEqual(now[key], before[key], key);
      }
    } finally {
      await host.stopWorker();
      await host.sim.cleanup();
    }
  });
});
