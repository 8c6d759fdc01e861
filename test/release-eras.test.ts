/**
 * Upgrades across DefenseClaw's release eras, against a release server that lays each era out as
 * the real releases did (test/fixtures/releases/eras.ts), on simulated hosts and a real Temporal
 * dev server:
 *
 *   goreleaser 0.3.x–0.6.0   checksums.txt without the wheel: the wheel is verified by GitHub's digest
 *   manifest   0.6.1–0.8.3   upgrade-manifest.json schema 1: required migrations checked in the cursor
 *   protected  0.8.4–0.8.10  .dcgateway/.dcwheel payloads, refusal envelopes, schema 2, the 0.8.4 bridge
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UpgradeResult } from '../workflows/types.js';
import { isRefusalEnvelope } from '../activities/release-eras.js';
import { buildGatewayTarball, buildWheel } from './fixtures/host/build.js';
import { refusalEnvelope } from './fixtures/releases/eras.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';

const ALLOW_LOCAL_SIGNATURE = { DEFENSECLAW_ALLOW_NO_COSIGN: '1' };

function assetGets(h: Harness, pattern: RegExp): string[] {
  return h.releases.requests
    .filter((r) => r.kind === 'asset' && r.method === 'GET' && pattern.test(r.path))
    .map((r) => r.path.split('/').pop()!);
}

async function backups(host: HostUnderTest): Promise<string[]> {
  return (await fs.readdir(path.join(host.sim.dataDir, 'backups')).catch(() => [] as string[])).sort();
}

function assertUnchanged(r: UpgradeResult, step: string, error: RegExp): void {
  assert.equal(r.outcome, 'failed-unchanged', r.message);
  assert.equal(r.failure?.step, step, r.message);
  assert.match(r.failure?.error ?? '', error);
}

describe('refusal envelopes', () => {
  it('are told apart from archives and wheels, which stage and install refuse them as', async () => {
    for (const v of ['0.8.4', '0.8.5', '0.8.10']) assert.ok(isRefusalEnvelope(refusalEnvelope(v)), v);
    assert.equal(isRefusalEnvelope(await buildGatewayTarball('0.8.4', { os: 'linux', arch: 'amd64' })), false);
    assert.equal(isRefusalEnvelope(await buildWheel('0.8.4')), false);
    assert.equal(isRefusalEnvelope(Buffer.from('DefenseClaw rocks\n')), false);
  });
});

describe('GoReleaser era (0.3.x – 0.6.0)', { concurrency: 1 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.5.0', '0.6.0'] });
  });
  after(async () => h?.close());

  it("upgrades 0.5.0 → 0.6.0: the tarball by checksums.txt, the wheel by GitHub's digest, signature checked locally", async () => {
    const host = await h.host({ version: '0.5.0' });
    const r = await host.result(await host.upgrade({ version: '0.6.0' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.equal(await host.sim.gatewayVersion(), '0.6.0');
    const progress = r.steps.find((s) => s.name === 'verify');
    assert.equal(progress?.status, 'skipped', 'no cosign here: the signature step says so instead of a success mark');
    assert.match(progress?.detail ?? '', /cosign SKIPPED \(not installed\).*checked locally/);
    assert.equal(r.signature, 'checked-locally');
    // The plan said how each file is verified.
    const { progressQuery } = await import('../workflows/definitions.js');
    const plan = (await h.client.workflow.getHandle(`defenseclaw-upgrade-${host.name}`).query(progressQuery)).plan;
    assert.deepEqual(
      plan?.route?.map((x) => [x.era, x.gateway.verifiedBy, x.wheel.verifiedBy, x.signatureFiles.join(' ')]),
      [['goreleaser', 'checksums', 'digest', 'checksums.txt.sig checksums.txt.pem']],
    );
  });

  it('a wheel whose GitHub digest lies is refused before the stop; nothing changes', async () => {
    const host = await h.host({ version: '0.5.0' });
    const before = await host.sim.snapshot();
    await h.releases.setOptions({ digestLie: ['defenseclaw-0.6.0-py3-none-any.whl'] });
    try {
      const r = await host.result(await host.upgrade({ version: '0.6.0' }));
      assertUnchanged(r, 'download', /checksum mismatch for defenseclaw-0\.6\.0-py3-none-any\.whl/);
    } finally {
      await h.releases.setOptions({ digestLie: [] });
    }
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.5.0');
  });

  it('a signature by another repository is refused before the stop', async () => {
    const host = await h.host({ version: '0.5.0' });
    const before = await host.sim.snapshot();
    await h.releases.setOptions({
      signing: { identity: 'https://github.com/evil/defenseclaw/.github/workflows/release.yaml@refs/heads/main' },
    });
    try {
      const r = await host.result(await host.upgrade({ version: '0.6.0' }));
      assertUnchanged(
        r,
        'verify',
        /signed by "https:\/\/github\.com\/evil\/defenseclaw\/.*not by this repository's release workflow/,
      );
      assert.equal(assetGets(h, /defenseclaw_0\.6\.0_/).length > 0, true, 'it was downloaded, then refused');
    } finally {
      await h.releases.setOptions({ signing: {} });
    }
    assert.deepEqual(await host.sim.snapshot(), before);
  });
});

describe('manifest era (0.6.1 – 0.8.3)', { concurrency: 2 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.6.0', '0.6.1', '0.8.3'] });
  });
  after(async () => h?.close());

  it('upgrades 0.6.0 → 0.8.3 and proves the manifest’s required migrations in the cursor', async () => {
    const host = await h.host({ version: '0.6.0' });
    const r = await host.result(await host.upgrade({ version: '0.8.3' }));
    assert.equal(r.outcome, 'upgraded', r.message);
    const cursor = await host.sim.migrationState();
    for (const v of ['0.3.0', '0.4.0', '0.5.0', '0.7.0', '0.8.0']) assert.ok(cursor?.applied.includes(v), v);
  });

  it('a required migration that does not apply fails the upgrade and rolls back to a byte-identical host', async () => {
    // Inside the window (the prepared path turned off): a prepared run would fail before the stop.
    const host = await h.host({ version: '0.6.0', extraEnv: { DEFENSECLAW_PREPARED_MIGRATIONS: '0' } });
    const before = await host.sim.snapshot();
    // The last pending migration (0.8.0) raises; the real runner swallows it: only the cursor shows it.
    await host.sim.setFaults({ migrations: { '0.8.3': 'raise' } });
    const r = await host.result(await host.upgrade({ version: '0.8.3' }));
    await host.sim.setFaults({});
    assert.equal(r.outcome, 'rolled-back', r.message);
    assert.equal(r.failure?.step, 'migrate');
    assert.match(
      r.failure?.error ?? '',
      /required migration 0\.8\.0 did not apply \(migration 0\.8\.0 failed: simulated/,
    );
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.6.0');
  });
});

describe('protected era (0.8.4 – 0.8.10) and the 0.8.4 bridge', { concurrency: 1 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.8.3', '0.8.4', '0.8.5'] });
  });
  after(async () => h?.close());

  it('0.8.3 → latest (0.8.5) is a chain through the 0.8.4 bridge: two complete hops, payloads decoded, envelopes never fetched', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    h.releases.resetLog();
    const r = await host.result(await host.upgrade());
    assert.equal(r.outcome, 'upgraded', r.message);
    assert.match(r.message, /upgraded from 0\.8\.3 to 0\.8\.5 through 0\.8\.4 \(bridge\)/);
    assert.equal(await host.sim.gatewayVersion(), '0.8.5');
    assert.equal(await host.sim.venvPackageVersion(), '0.8.5');
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.8.5');
    // Each hop is a complete upgrade: its own backup, stop, health.
    assert.equal((await backups(host)).length, 2);
    assert.equal(r.steps.filter((s) => s.name === 'stop').length, 2);
    assert.equal(r.steps.filter((s) => s.name === 'health').length, 2);
    assert.ok(r.steps.some((s) => s.detail === 'resolve bridge release 0.8.4 (required by 0.8.5)'));
    // Only the protected payloads were downloaded; the canonical names (refusal envelopes) never were.
    const got = assetGets(h, /defenseclaw[-_]0\.8\.[45]/);
    assert.ok(
      got.some((n) => /_protocol2_.*\.dcgateway$/.test(n)),
      got.join(', '),
    );
    assert.ok(
      got.some((n) => /-2-py3-none-any\.dcwheel$/.test(n)),
      got.join(', '),
    );
    assert.deepEqual(
      got.filter((n) => /\.(tar\.gz|whl)$/.test(n)),
      [],
      'no refusal envelope was downloaded',
    );
    assert.ok((await host.sim.migrationState())?.applied.includes('0.8.5'));
  });

  it('a hop that fails after its stop rolls back to the bridge; the host stays healthy on 0.8.4', async () => {
    // The migrations inside the window (the prepared path turned off), where their failure rolls back.
    const host = await h.host({
      version: '0.8.3',
      extraEnv: { ...ALLOW_LOCAL_SIGNATURE, DEFENSECLAW_PREPARED_MIGRATIONS: '0' },
    });
    // 0.8.5's required migration (the config hard cut) does not apply: the real runner swallows the error.
    await host.sim.setFaults({ migrations: { '0.8.5': 'raise' } });
    const r = await host.result(await host.upgrade());
    await host.sim.setFaults({});
    assert.equal(r.outcome, 'rolled-back', r.message);
    assert.equal(r.failure?.step, 'migrate');
    assert.match(r.message, /rolled back to 0\.8\.4.*The host stays on 0\.8\.4, which hop 1 of 2 installed/);
    assert.equal(await host.sim.gatewayVersion(), '0.8.4');
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.8.4');
    assert.equal(await host.sim.venvPackageVersion(), '0.8.4');
    assert.equal((await backups(host)).length, 2, 'one backup per hop');
  });

  it('a hop that fails before its stop ends `partial`: the host runs the bridge, healthy, and says so', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    await h.releases.setOptions({ corrupt: ['defenseclaw-0.8.5-2-py3-none-any.dcwheel'] });
    let r: UpgradeResult;
    try {
      r = await host.result(await host.upgrade());
    } finally {
      await h.releases.setOptions({ corrupt: [] });
    }
    assert.equal(r.outcome, 'partial', r.message);
    assert.equal(r.failure?.step, 'download');
    assert.match(r.message, /stopped at hop 2 of 2 \(0\.8\.4 → 0\.8\.5\).*The host runs 0\.8\.4, healthy/);
    assert.equal(await host.sim.gatewayVersion(), '0.8.4');
    assert.equal((await host.sim.health())?.provenance?.binary_version, '0.8.4');
    assert.equal((await backups(host)).length, 1, 'hop 2 never reached its backup');
  });

  it('the plan shows both hops before anything changes', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    const handle = await host.upgrade({ options: { requireConfirmation: true } });
    const { progressQuery } = await import('../workflows/definitions.js');
    let plan;
    for (let i = 0; i < 200 && !plan; i++) {
      plan = (await handle.query(progressQuery)).plan;
      if (!plan) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(plan, 'a plan');
    assert.deepEqual(
      plan.route?.map((hop) => [hop.from, hop.to, hop.era, hop.bridge]),
      [
        ['0.8.3', '0.8.4', 'protected', true],
        ['0.8.4', '0.8.5', 'protected', false],
      ],
    );
    assert.equal(plan.route?.[1]?.gateway.verifiedBy, 'checksums');
    assert.match(plan.route?.[1]?.gateway.name ?? '', /^defenseclaw_0\.8\.5_protocol2_linux_(amd64|arm64)\.dcgateway$/);
    assert.deepEqual(plan.route?.[1]?.identities, [
      'https://github.com/cisco-ai-defense/defenseclaw/.github/workflows/release.yaml@refs/heads/main',
    ]);
    assert.ok(plan.route?.[1]?.migrations.includes('0.8.5'));
    assert.equal(await host.sim.gatewayVersion(), '0.8.3', 'nothing changed while the plan waits');
    await handle.executeUpdate('confirm', { args: [{ approve: false, by: 'test' }] });
    assert.equal((await host.result(handle)).outcome, 'declined');
    assert.deepEqual(await backups(host), []);
  });

  it('without cosign and without the operator’s DEFENSECLAW_ALLOW_NO_COSIGN, a 0.8.4+ release is refused before the stop', async () => {
    const host = await h.host({ version: '0.8.3' });
    const before = await host.sim.snapshot();
    const r = await host.result(await host.upgrade({ version: '0.8.4' }));
    assertUnchanged(r, 'verify', /requires a Sigstore verification with cosign, which is not installed/);
    assert.deepEqual(await host.sim.snapshot(), before);
  });

  it('a protected release whose manifest is missing is refused: its canonical assets are refusal envelopes', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    const before = await host.sim.snapshot();
    h.releases.resetLog();
    await h.releases.setOptions({ missingAssets: ['upgrade-manifest.json'] });
    try {
      const r = await host.result(await host.upgrade({ version: '0.8.4' }));
      assertUnchanged(r, 'resolve', /has no upgrade-manifest\.json/);
    } finally {
      await h.releases.setOptions({ missingAssets: [] });
    }
    assert.deepEqual(assetGets(h, /\.(tar\.gz|whl|dcgateway|dcwheel)$/), [], 'no archive was downloaded');
    assert.deepEqual(await host.sim.snapshot(), before);
  });

  it('a mirror that dropped the payloads and the manifest: refused, the refusal envelopes never fetched', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    const before = await host.sim.snapshot();
    h.releases.resetLog();
    await h.releases.setOptions({ envelopeOnly: true, missingAssets: ['upgrade-manifest.json'] });
    try {
      const r = await host.result(await host.upgrade({ version: '0.8.4' }));
      assertUnchanged(r, 'resolve', /has no upgrade-manifest\.json; every release from 0\.8\.4 must carry one/);
      assert.deepEqual(assetGets(h, /\.(tar\.gz|whl)$/), [], 'no refusal envelope was downloaded');
    } finally {
      await h.releases.setOptions({ envelopeOnly: false, missingAssets: [] });
    }
    assert.deepEqual(await host.sim.snapshot(), before);
    assert.equal(await host.sim.gatewayVersion(), '0.8.3');
  });

  it('a source outside the release’s tested matrix is refused, as the real upgrader refuses it', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: ALLOW_LOCAL_SIGNATURE });
    await h.releases.setOptions({ versions: ['0.8.3', '0.8.4', '0.8.5', '0.8.9'] });
    try {
      // 0.8.9 lists 0.8.4 … 0.8.8 as tested sources (published baselines), and needs 0.8.4 first: fine.
      // A host on 0.8.3 asking for 0.8.4 is tested; 0.3.0 would not be. Check the refusal with 0.3.0:
      const old = await h.host({ version: '0.3.0', extraEnv: ALLOW_LOCAL_SIGNATURE });
      const r = await old.result(await old.upgrade({ version: '0.8.4' }));
      assertUnchanged(r, 'resolve', /was not tested from 0\.3\.0/);
      assert.equal(await old.sim.gatewayVersion(), '0.3.0');
    } finally {
      await h.releases.setOptions({ versions: ['0.8.3', '0.8.4', '0.8.5'] });
    }
    void host;
  });
});
