/**
 * The single-host upgrade on a real Temporal dev server, a simulated host and the GitHub-like
 * release server: every case ends with the host checked for real (binary, /health, venv, files).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Harness } from './helpers/harness.js';

let h: Harness;
before(async () => {
  h = await Harness.start();
});
after(async () => {
  await h?.close();
});

describe('upgradeHost', { concurrency: 3 }, () => {
  it('upgrades 0.3.0 to the latest release: binary, health, migrations once, symlink, backup, staging gone', async () => {
    const host = await h.host();
    const before = await host.sim.snapshot();
    const handle = await host.upgrade();
    const r = await host.result(handle);
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.equal(r.from, '0.3.0');
    assert.equal(r.to, '0.4.0');
    assert.equal(await host.sim.gatewayVersion(), '0.4.0');
    const health = await host.sim.health();
    assert.equal(health?.gateway.state, 'running');
    assert.equal(health?.provenance?.binary_version, '0.4.0');
    assert.equal(await host.sim.venvPackageVersion(), '0.4.0');
    assert.equal(await host.sim.cliVersion(), 'defenseclaw 0.4.0');
    const cursor = await host.sim.migrationState();
    assert.ok(cursor && cursor.applied.length > 0);
    assert.equal(new Set(cursor.applied).size, cursor.applied.length, 'each migration recorded once');
    assert.ok(r.migrationsRun && r.migrationsRun > 0);
    // The CLI symlink still points into .venv, which now leads to the new environment.
    assert.equal(await fs.readlink(host.sim.cliPath), path.join(host.sim.dataDir, '.venv', 'bin', 'defenseclaw'));
    // Backup: 0700, a manifest, the previous binary byte-identical to the old one.
    const backupDir = path.join(host.sim.dataDir, 'backups', r.backupId!);
    assert.equal((await fs.stat(backupDir)).mode & 0o777, 0o700);
    const manifest = JSON.parse(await fs.readFile(path.join(backupDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.fromVersion, '0.3.0');
    assert.equal(manifest.gateway.sha256, before['.local/bin/defenseclaw-gateway']!.sha256);
    assert.equal((await fs.stat(path.join(backupDir, 'files', 'data', 'device.key'))).mode & 0o777, 0o600);
    // Staging is gone; artifacts carry their digests.
    assert.deepEqual(await fs.readdir(path.join(host.sim.dataDir, 'staging')), []);
    assert.equal(r.artifacts.length, 2);
    for (const a of r.artifacts) assert.equal(a.sha256, await h.releases.sha256(a.name, '0.4.0'));
    // Every step is recorded, in the runbook's order.
    const order = [...new Set(r.steps.map((s) => s.name))];
    assert.deepEqual(order, ['resolve', 'platform', 'preflight', 'download', 'verify', 'stage', 'backup', 'stop', 'install', 'migrate', 'start', 'health']);
  });
});
