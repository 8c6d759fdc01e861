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

// Sequential: several cases switch faults on the shared release server.
describe('upgradeHost', () => {
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
    assert.deepEqual(order, [
      'resolve',
      'platform',
      'preflight',
      'download',
      'verify',
      'stage',
      'lock',
      'backup',
      'stop',
      'install',
      'migrate',
      'start',
      'health',
    ]);
  });

  it('without uv, the new environment is built with the venv pip', async () => {
    const host = await h.host({ withUv: false });
    assert.equal(host.sim.uv, false);
    const r = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.equal(await host.sim.venvPackageVersion(), '0.3.1');
    assert.equal(await host.sim.cliVersion(), 'defenseclaw 0.3.1');
  });

  it('--version pins the target: 0.3.0 → 0.3.1', async () => {
    const host = await h.host();
    const r = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.equal(await host.sim.gatewayVersion(), '0.3.1');
    assert.equal(await host.sim.venvPackageVersion(), '0.3.1');
  });

  it('already current: exits with a message, nothing touched (no backup, no stop)', async () => {
    const host = await h.host({ version: '0.4.0' });
    const before = await host.sim.snapshot();
    const pids = await host.sim.daemonPids();
    const r = await host.result(await host.upgrade());
    assert.equal(r.outcome, 'already-current');
    assert.equal(r.ok, true);
    assert.match(r.message, /already runs DefenseClaw 0\.4\.0/);
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.deepEqual(await host.sim.daemonPids(), pids, 'the gateway was not restarted');
    assert.equal(
      await fs
        .readdir(path.join(host.sim.dataDir, 'backups'))
        .catch(() => [])
        .then((l) => l.length),
      0,
    );
  });

  it('refuses a downgrade before changing anything', async () => {
    const host = await h.host({ version: '0.4.0' });
    const before = await host.sim.snapshot();
    const r = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r.outcome, 'failed-unchanged');
    assert.match(r.message, /refusing to downgrade .* from 0\.4\.0 to 0\.3\.1/);
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal((await host.sim.health())?.gateway.state, 'running');
  });

  it('a release without its wheel is refused when it is resolved; the gateway keeps running, nothing replaced', async () => {
    const host = await h.host();
    const before = await host.sim.snapshot();
    await h.releases.setOptions({ missingAssets: ['defenseclaw-0.3.1-py3-none-any.whl'] });
    try {
      const r = await host.result(await host.upgrade({ version: '0.3.1' }));
      assert.equal(r.outcome, 'failed-unchanged');
      assert.equal(r.failure?.step, 'resolve');
      assert.match(r.message, /release 0\.3\.1 has no asset defenseclaw-0\.3\.1-py3-none-any\.whl/);
    } finally {
      await h.releases.setOptions({ missingAssets: [] });
    }
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.3.0');
  });

  it('a checksum mismatch is refused before the stop; nothing replaced', async () => {
    const host = await h.host();
    const before = await host.sim.snapshot();
    const pids = await host.sim.daemonPids();
    const name = 'defenseclaw_0.3.1_linux_amd64.tar.gz'.replace(
      'linux_amd64',
      `${host.sim.platform.os}_${host.sim.platform.arch}`,
    );
    await h.releases.setOptions({ corrupt: [name] });
    try {
      const r = await host.result(await host.upgrade({ version: '0.3.1' }));
      assert.equal(r.outcome, 'failed-unchanged');
      assert.equal(r.failure?.step, 'download');
      assert.match(r.message, /checksum mismatch/);
    } finally {
      await h.releases.setOptions({ corrupt: [] });
    }
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.deepEqual(await host.sim.daemonPids(), pids);
  });

  it('a download cut short is resumed with a Range request', async () => {
    const host = await h.host();
    const name = `defenseclaw_0.3.1_${host.sim.platform.os}_${host.sim.platform.arch}.tar.gz`;
    h.releases.resetLog();
    await h.releases.setOptions({ cutShort: { name, afterBytes: 1000, times: 1 } });
    const r = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    const gets = h.releases.requests.filter((q) => q.kind === 'asset' && q.method === 'GET' && q.path.endsWith(name));
    assert.ok(
      gets.some((q) => q.cut),
      'the first GET was cut short',
    );
    assert.ok(
      gets.some((q) => q.range === 'bytes=1000-' && q.status === 206),
      `a resumed Range GET: ${JSON.stringify(gets)}`,
    );
    const dl = r.steps.filter((s) => s.name === 'download' && s.detail?.endsWith(name));
    assert.equal(dl.length, 1);
  });

  it('a watchdog that outlives `stop` is stopped before the swap, so it cannot bring the old gateway back', async () => {
    const host = await h.host({ faults: { gateway: { '0.3.0': { watchdog: 'rogue' } } } });
    const watchdog = Number(await fs.readFile(path.join(host.sim.dataDir, 'watchdog.pid'), 'utf8'));
    assert.ok(watchdog > 0);
    const r = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    // Gone (a zombie awaiting its reaper has an empty command line).
    const cmdline = await fs.readFile(`/proc/${watchdog}/cmdline`, 'utf8').catch(() => '');
    assert.ok(!cmdline.includes('__watchdog'), 'the old watchdog is gone');
    assert.equal((await host.sim.daemonPids()).length, 1, 'one gateway, the new one');
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.3.1');
    assert.doesNotMatch(
      await fs.readFile(path.join(host.sim.dataDir, 'watchdog.log'), 'utf8'),
      /starting it again/,
      'the old watchdog never revived the old gateway',
    );
  });

  it('OpenClaw down (reconnecting before and after): auto accepts it, refuse rolls back, and `rollback` restores', async () => {
    const host = await h.host({ faults: { openclaw: 'down' } });
    assert.equal((await host.sim.health())?.gateway.state, 'reconnecting');
    const before = await host.sim.snapshot();
    const refused = await host.result(
      await host.upgrade({ version: '0.3.1', options: { reconnecting: 'refuse', healthTimeoutSeconds: 3 } }),
    );
    assert.equal(refused.outcome, 'rolled-back', refused.message);
    assert.match(refused.failure?.error ?? '', /last state: reconnecting.*--reconnecting accept/);
    assert.deepEqual(await host.sim.snapshot(), before);
    const up = await host.result(await host.upgrade({ version: '0.3.1' }));
    assert.equal(up.outcome, 'upgraded', up.message);
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.3.1');
    const back = await host.result(await host.rollback());
    assert.equal(back.outcome, 'restored', back.message);
    const health = await host.sim.health();
    assert.equal(health?.gateway.state, 'reconnecting');
    assert.equal(health?.provenance?.binary_version, '0.3.0');
  });

  it('health timeout: rolled back, with the backup folder named', async () => {
    const host = await h.host({ faults: { gateway: { '0.3.1': { health: 'starting' } } } });
    const before = await host.sim.snapshot();
    const r = await host.result(await host.upgrade({ version: '0.3.1', options: { healthTimeoutSeconds: 3 } }));
    assert.equal(r.outcome, 'rolled-back', r.message);
    assert.equal(r.failure?.step, 'health');
    assert.match(r.message, new RegExp(`backups/${r.backupId}`));
    assert.match(r.failure!.error, /did not become healthy within 3 s \(last state: starting\)/);
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal(await host.sim.gatewayVersion(), '0.3.0');
    assert.equal((await host.sim.health())?.gateway.state, 'running');
  });

  it('the GitHub token authenticates API calls only and never reaches history or results', async () => {
    const token = 'ghp_testTokenThatMustNeverLeak0123456789';
    await h.releases.setOptions({ requireToken: token });
    try {
      const host = await h.host({ extraEnv: { GITHUB_TOKEN: token } });
      h.releases.resetLog();
      const handle = await host.upgrade({ version: '0.3.1' });
      const r = await host.result(handle);
      assert.equal(r.outcome, 'upgraded', r.message);
      const api = h.releases.requests.filter((q) => q.kind === 'api');
      const assets = h.releases.requests.filter((q) => q.kind !== 'api');
      assert.ok(api.length > 0 && api.every((q) => q.hasAuth), 'API calls carry the token');
      assert.ok(assets.length > 0 && assets.every((q) => !q.hasAuth), 'downloads never carry it');
      const history = await h.exportHistory(handle.workflowId);
      assert.ok(history.length > 1000);
      assert.ok(!history.includes(token), 'token in history');
      assert.ok(!history.includes(host.sim.token), 'gateway token in history');
      assert.ok(!JSON.stringify(r).includes(token));
    } finally {
      await h.releases.setOptions({ requireToken: undefined });
    }
  });
});
