/**
 * The release server lays out each DefenseClaw release era as the real releases did (test/fixtures/releases/eras.ts
 * cites the sources). Run: npx tsc -p tsconfig.json; node --test dist/test/release-eras-fixture.test.js
 */
import assert from 'node:assert/strict';
import { createHash, verify, X509Certificate } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { z } from 'zod';
import { buildWheel, wheelName } from './fixtures/host/build.js';
import {
  decodeProtected,
  encodeProtected,
  eraOf,
  GITHUB_OIDC_ISSUER,
  PROTECTED_MAGIC,
  protectedPayloadName,
  REALDC_DIR,
  realBuildsFor,
  refusalEnvelope,
} from './fixtures/releases/eras.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const REPO = 'cisco-ai-defense/defenseclaw';
const WORKFLOW = `https://github.com/${REPO}/.github/workflows/release.yaml`;
const EVIL = 'https://github.com/evil/defenseclaw/.github/workflows/release.yaml@refs/heads/main';

interface Asset {
  name: string;
  size: number;
  digest: string;
}

// ---- literal expectations, from the real source ---------------------------------------------------------------

const goreleaserArchives = (v: string) =>
  ['darwin_amd64', 'darwin_arm64', 'linux_amd64', 'linux_arm64'].map((p) => `defenseclaw_${v}_${p}.tar.gz`);

/**
 * 0.4.0, release.yaml@0.4.0 "Publish GitHub release with all assets":
 *   assets=(dist/*.tar.gz dist/*.sbom.json dist/checksums.txt dist/checksums.txt.sig dist/checksums.txt.pem dist/*.whl)
 * dist/*.tar.gz = GoReleaser's 4 archives + `make dist-plugin`'s defenseclaw-plugin-0.4.0.tar.gz; SBOMs are
 * `sboms: [{artifacts: archive, cmd: syft}]` with GoReleaser's default `{{ .ArtifactName }}.sbom.json`.
 */
const ASSETS_040 = [
  'checksums.txt',
  'checksums.txt.pem',
  'checksums.txt.sig',
  'defenseclaw-0.4.0-py3-none-any.whl',
  'defenseclaw-plugin-0.4.0.tar.gz',
  ...goreleaserArchives('0.4.0').flatMap((a) => [a, `${a}.sbom.json`]),
].sort();
/** GoReleaser's `checksum:` covers its release-uploadable artifacts: the archives and the SBOMs, not the wheel. */
const CHECKSUMS_040 = goreleaserArchives('0.4.0')
  .flatMap((a) => [a, `${a}.sbom.json`])
  .sort();

/**
 * 0.8.0, release.yaml@0.8.0: the same globs plus dist/*.zip and dist/upgrade-manifest.json; .goreleaser.yaml@0.8.0
 * adds goos windows with zip archives.
 */
const ARCHIVES_080 = [
  ...goreleaserArchives('0.8.0'),
  'defenseclaw_0.8.0_windows_amd64.zip',
  'defenseclaw_0.8.0_windows_arm64.zip',
];
const ASSETS_080 = [
  'checksums.txt',
  'checksums.txt.pem',
  'checksums.txt.sig',
  'defenseclaw-0.8.0-py3-none-any.whl',
  'defenseclaw-plugin-0.8.0.tar.gz',
  'upgrade-manifest.json',
  ...ARCHIVES_080.flatMap((a) => [a, `${a}.sbom.json`]),
].sort();
/**
 * Makefile@0.8.0 dist-checksums: `cd dist && find . -type f ! -name checksums.txt ! -name checksums.txt.sig
 * ! -name checksums.txt.pem | sed 's#^\./##' | sort | xargs shasum -a 256`: every published file but the checksums
 * family, and what GoReleaser v2 leaves in dist/ (artifacts.json, config.yaml, metadata.json, CHANGELOG.md, one
 * folder per build target).
 */
const CHECKSUMS_080 = [
  ...ASSETS_080.filter((n) => !n.startsWith('checksums.txt')),
  'CHANGELOG.md',
  'artifacts.json',
  'config.yaml',
  'metadata.json',
  'defenseclaw_darwin_amd64_v1/defenseclaw',
  'defenseclaw_darwin_arm64_v8.0/defenseclaw',
  'defenseclaw_linux_amd64_v1/defenseclaw',
  'defenseclaw_linux_arm64_v8.0/defenseclaw',
  'defenseclaw_windows_amd64_v1/defenseclaw.exe',
  'defenseclaw_windows_arm64_v8.0/defenseclaw.exe',
].sort();

/**
 * 0.8.7, scripts/release_candidate.py@0.8.7 `published_asset_names`: runtime_asset_names (6 protected gateways and
 * their SBOMs, the 6 canonical archive names and the canonical wheel name as refusal envelopes, the protected wheel,
 * the plugin tarball, upgrade-manifest.json), macos_asset_names (notarized), resolver_asset_names,
 * release_identity_asset_names (>= 0.8.5), windows_installer_asset_names (>= 0.8.6 there), checksums.txt and
 * release_proof_asset_names (.pem, .sig, and checksums.txt.bundle).
 */
const GATEWAYS_087 = ['darwin', 'linux', 'windows'].flatMap((os) =>
  ['amd64', 'arm64'].map((arch) => `defenseclaw_0.8.7_protocol2_${os}_${arch}.dcgateway`),
);
const PAYLOAD_087 = [
  ...GATEWAYS_087.flatMap((g) => [g, `${g}.sbom.json`]),
  ...goreleaserArchives('0.8.7'),
  'defenseclaw_0.8.7_windows_amd64.zip',
  'defenseclaw_0.8.7_windows_arm64.zip',
  'defenseclaw-0.8.7-py3-none-any.whl',
  'defenseclaw-0.8.7-2-py3-none-any.dcwheel',
  'defenseclaw-plugin-0.8.7.tar.gz',
  'upgrade-manifest.json',
  'DefenseClawMac-0.8.7-macos-arm64.dmg',
  'DefenseClawMac-0.8.7-macos-arm64.zip',
  'defenseclaw-upgrade.ps1',
  'defenseclaw-upgrade.sh',
  'release-provenance.json',
  'release-source-map.json',
  'DefenseClawSetup-x64.exe',
  'DefenseClawSetup-x64.exe.provenance.json',
  'DefenseClawSetup-x64.exe.sbom.json',
  'DefenseClawSetup-x64.exe.sha256',
].sort();
const ASSETS_087 = [
  ...PAYLOAD_087,
  'checksums.txt',
  'checksums.txt.bundle',
  'checksums.txt.pem',
  'checksums.txt.sig',
].sort();

/** scripts/generate-upgrade-manifest.py's output at tag 0.8.0 (schema 1), run on the tag's stamped tree. */
const MANIFEST_080 = {
  generated_by: 'scripts/generate-upgrade-manifest.py',
  migration_failure_policy: 'fail',
  min_upgrade_protocol: 1,
  release_version: '0.8.0',
  required_cli_migrations: ['0.3.0', '0.4.0', '0.5.0', '0.7.0', '0.8.0'],
  schema_version: 1,
};
const OLD_BASELINES = [
  '0.8.3',
  '0.8.2',
  '0.8.1',
  '0.8.0',
  '0.7.2',
  '0.7.1',
  '0.6.6',
  '0.6.5',
  '0.6.4',
  '0.6.3',
  '0.6.2',
  '0.6.1',
  '0.6.0',
  '0.5.0',
  '0.4.0',
];
/** The same generator's output at tag 0.8.7 (schema 2). */
const MANIFEST_087 = {
  auto_bridge_from: OLD_BASELINES,
  controller_upgrade_protocol: 2,
  generated_by: 'scripts/generate-upgrade-manifest.py',
  migration_failure_policy: 'fail',
  min_upgrade_protocol: 2,
  minimum_source_version: '0.8.4',
  platform_tested_source_versions: { windows: [] },
  release_artifacts: {
    gateways: Object.fromEntries(
      ['darwin', 'linux', 'windows'].map((os) => [
        os,
        {
          amd64: `defenseclaw_0.8.7_protocol2_${os}_amd64.dcgateway`,
          arm64: `defenseclaw_0.8.7_protocol2_${os}_arm64.dcgateway`,
        },
      ]),
    ),
    wheel: 'defenseclaw-0.8.7-2-py3-none-any.dcwheel',
  },
  release_version: '0.8.7',
  required_bridge_version: '0.8.4',
  required_cli_migrations: ['0.3.0', '0.4.0', '0.5.0', '0.7.0', '0.8.0', '0.8.5'],
  runtime_config_version: 8,
  schema_version: 2,
  tested_source_versions: ['0.8.4', ...OLD_BASELINES],
  windows_installer: {
    architectures: ['amd64'],
    asset: 'DefenseClawSetup-x64.exe',
    authenticode: { publisher: 'Cisco Systems, Inc.', required: false },
    handoff_args: ['/upgrade', '/quiet', '/norestart', 'INSTALLSCOPE=user'],
    managed_policy: 'respect',
  },
};

// The schemas as the real readers check them (cmd_upgrade.py `_validate_upgrade_manifest`, release_candidate.py).
const semver = z.string().regex(/^\d+\.\d+\.\d+$/);
const schema1 = z
  .object({
    schema_version: z.literal(1),
    release_version: semver,
    min_upgrade_protocol: z.number().int().min(1),
    migration_failure_policy: z.enum(['warn', 'fail']),
    required_cli_migrations: z.array(semver),
    generated_by: z.string(),
  })
  .strict();
const arches = z.object({ amd64: z.string(), arm64: z.string() }).strict();
const schema2 = schema1
  .extend({
    schema_version: z.literal(2),
    controller_upgrade_protocol: z.number().int().min(1),
    runtime_config_version: z.number().int().min(1),
    release_artifacts: z
      .object({ wheel: z.string(), gateways: z.object({ darwin: arches, linux: arches, windows: arches }).strict() })
      .strict(),
    tested_source_versions: z.array(semver),
    platform_tested_source_versions: z.object({ windows: z.array(semver) }).strict(),
    minimum_source_version: semver.optional(),
    required_bridge_version: semver.optional(),
    auto_bridge_from: z.array(semver).optional(),
    windows_installer: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

// ---- helpers -----------------------------------------------------------------------------------------------------

let server: ReleaseServer;
const release = async (v: string) =>
  (await (await fetch(`${server.apiUrl}/repos/${REPO}/releases/tags/${v}`)).json()) as { assets: Asset[] };
const names = async (v: string) => (await release(v)).assets.map((a) => a.name).sort();
const get = async (name: string, v: string) => {
  const r = await fetch(server.downloadUrlOf(name, v));
  assert.equal(r.status, 200, `${v}/${name}`);
  return Buffer.from(await r.arrayBuffer());
};
const checksumTable = async (v: string) => {
  const text = (await get('checksums.txt', v)).toString('utf8');
  assert.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^[0-9a-f]{64} {2}\S+$/);
  const listed = lines.map((l) => l.slice(66));
  assert.deepEqual(listed, [...listed].sort(), 'sorted by name');
  return new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
};
const isGzip = (b: Buffer) => b[0] === 0x1f && b[1] === 0x8b;
const isZip = (b: Buffer) => b.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'));

/** The DER of `extension OID, OCTET STRING value` for a Fulcio extension 1.3.6.1.4.1.57264.1.<n>. */
function fulcioExtension(n: number, value: Buffer): Buffer {
  const oid = Buffer.from([0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, n]);
  return Buffer.concat([oid, Buffer.from([0x04, value.length]), value]);
}

async function certOf(v: string): Promise<X509Certificate> {
  const raw = (await get('checksums.txt.pem', v)).toString('ascii');
  return new X509Certificate(raw.startsWith('-----BEGIN') ? raw : Buffer.from(raw, 'base64').toString('ascii'));
}

async function checkSignature(v: string, identity: string) {
  const cert = await certOf(v);
  assert.equal(cert.subjectAltName, `URI:${identity}`);
  const issuer = Buffer.from(GITHUB_OIDC_ISSUER);
  assert.ok(cert.raw.includes(fulcioExtension(1, issuer)), 'OIDC issuer extension (raw string)');
  const utf8 = Buffer.concat([Buffer.from([0x0c, issuer.length]), issuer]);
  assert.ok(cert.raw.includes(fulcioExtension(8, utf8)), 'OIDC issuer v2 extension (DER UTF8String)');
  assert.ok(cert.verify(new X509Certificate(await server.signingCaPem()).publicKey), 'issued by the CA');
  const sig = (await get('checksums.txt.sig', v)).toString('ascii');
  assert.match(sig, /^[A-Za-z0-9+/]+=*$/, 'base64, no newline');
  assert.ok(verify('sha256', await get('checksums.txt', v), cert.publicKey, Buffer.from(sig, 'base64')));
  return cert;
}

// ---- tests -------------------------------------------------------------------------------------------------------

describe('release eras', () => {
  before(async () => {
    server = await startReleaseServer({
      versions: ['0.4.0', '0.8.0', '0.8.5', '0.8.7'],
      realBuilds: realBuildsFor('0.4.0'),
    });
  });
  after(async () => {
    await server?.close();
  });

  test('eraOf, overrides, and the protected encoding', () => {
    assert.equal(eraOf('0.3.0'), 'goreleaser');
    assert.equal(eraOf('0.6.0'), 'goreleaser');
    assert.equal(eraOf('0.6.1'), 'manifest');
    assert.equal(eraOf('0.8.3'), 'manifest');
    assert.equal(eraOf('0.8.4'), 'protected');
    assert.equal(eraOf('0.8.10'), 'protected');
    assert.equal(eraOf('0.9.0-rc.1'), 'protected');
    assert.equal(eraOf('0.5.0', { '0.5.0': 'manifest' }), 'manifest');
    assert.equal(PROTECTED_MAGIC.toString(), 'DEFENSECLAW-PROTECTED-ARTIFACT-V1\n');
    const data = Buffer.from([0x00, 0xa5, 0xff, 0x1f, 0x8b]);
    const enc = encodeProtected(data);
    assert.deepEqual(enc.subarray(PROTECTED_MAGIC.length), Buffer.from([0xa5, 0x00, 0x5a, 0xba, 0x2e]));
    assert.deepEqual(decodeProtected(enc), data);
    assert.throws(() => decodeProtected(data), /not a DEFENSECLAW-PROTECTED-ARTIFACT-V1/);
    assert.equal(
      protectedPayloadName('0.8.5', { os: 'linux', arch: 'amd64' }),
      'defenseclaw_0.8.5_protocol2_linux_amd64.dcgateway',
    );
    assert.equal(protectedPayloadName('0.8.5', 'wheel'), 'defenseclaw-0.8.5-2-py3-none-any.dcwheel');
    assert.equal(
      refusalEnvelope('0.8.4').toString(),
      'DefenseClaw 0.8.4 must be installed by the release-owned staged upgrade resolver.\n' +
        'No changes were made. Run the release-owned upgrade resolver without a version.\n',
    );
  });

  test('every asset: the JSON digest is the sha256 of the bytes served', async () => {
    for (const v of server.options.versions) {
      for (const a of (await release(v)).assets) {
        const bytes = await get(a.name, v);
        assert.equal(a.digest, `sha256:${sha256(bytes)}`, `${v}/${a.name}`);
        assert.equal(a.size, bytes.length);
      }
    }
  });

  test('goreleaser era (0.4.0): names, checksums without the wheel, tag-signed base64 .pem', async () => {
    assert.deepEqual(await names('0.4.0'), ASSETS_040);
    const table = await checksumTable('0.4.0');
    assert.deepEqual([...table.keys()], CHECKSUMS_040);
    for (const [name, hex] of table) assert.equal(sha256(await get(name, '0.4.0')), hex);
    const pem = (await get('checksums.txt.pem', '0.4.0')).toString('ascii');
    assert.match(pem, /^[A-Za-z0-9+/]+=*$/, 'cosign --output-certificate: base64 of the PEM, one line');
    await checkSignature('0.4.0', `${WORKFLOW}@refs/tags/0.4.0`);
  });

  test('realBuilds: linux/amd64 and the wheel are the real bytes, the rest are built', async () => {
    for (const name of ['defenseclaw_0.4.0_linux_amd64.tar.gz', 'defenseclaw-0.4.0-py3-none-any.whl']) {
      const real = await fsp.readFile(path.join(REALDC_DIR, '0.4.0', name));
      assert.equal(sha256(await get(name, '0.4.0')), sha256(real), name);
    }
    const arm = await get('defenseclaw_0.4.0_linux_arm64.tar.gz', '0.4.0');
    assert.ok(arm.length < 1024 * 1024, 'other platforms come from the fixture builders');
  });

  test('manifest era (0.8.0): windows zips, schema 1 manifest, checksums over all of dist/', async () => {
    assert.deepEqual(await names('0.8.0'), ASSETS_080);
    const table = await checksumTable('0.8.0');
    assert.deepEqual([...table.keys()], CHECKSUMS_080);
    for (const name of ASSETS_080.filter((n) => !n.startsWith('checksums.txt'))) {
      assert.equal(sha256(await get(name, '0.8.0')), table.get(name), name);
    }
    const manifestBytes = await get('upgrade-manifest.json', '0.8.0');
    assert.equal(
      manifestBytes.toString(),
      `${JSON.stringify(MANIFEST_080, null, 2)}\n`,
      'json.dumps(indent=2, sort_keys)',
    );
    schema1.parse(JSON.parse(manifestBytes.toString()));
    const zip = await get('defenseclaw_0.8.0_windows_amd64.zip', '0.8.0');
    assert.ok(isZip(zip) && zip.includes(Buffer.from('defenseclaw.exe')));
    await checkSignature('0.8.0', `${WORKFLOW}@refs/tags/0.8.0`);
  });

  test('protected era (0.8.7): names, payloads, envelopes, schema 2 manifest, main-signed raw PEM and bundle', async () => {
    assert.deepEqual(await names('0.8.7'), ASSETS_087);
    const table = await checksumTable('0.8.7');
    assert.deepEqual([...table.keys()], PAYLOAD_087);
    for (const name of PAYLOAD_087) assert.equal(sha256(await get(name, '0.8.7')), table.get(name), name);

    const manifestBytes = await get('upgrade-manifest.json', '0.8.7');
    assert.equal(manifestBytes.toString(), `${JSON.stringify(MANIFEST_087, null, 2)}\n`);
    schema2.parse(JSON.parse(manifestBytes.toString()));

    const layout = await server.layout('0.8.7');
    for (const os of ['darwin', 'linux', 'windows'] as const) {
      for (const arch of ['amd64', 'arm64'] as const) {
        const payload = await get(protectedPayloadName('0.8.7', { os, arch }), '0.8.7');
        assert.ok(payload.subarray(0, PROTECTED_MAGIC.length).equals(PROTECTED_MAGIC));
        const archive = decodeProtected(payload);
        const canonical = `defenseclaw_0.8.7_${os}_${arch}.${os === 'windows' ? 'zip' : 'tar.gz'}`;
        assert.deepEqual(archive, layout.canonical.get(canonical), canonical);
        if (os === 'windows') assert.ok(isZip(archive));
        else assert.ok(zlib.gunzipSync(archive).length > 0);
        const envelope = await get(canonical, '0.8.7');
        assert.deepEqual(envelope, refusalEnvelope('0.8.7'));
        assert.ok(!isGzip(envelope) && !isZip(envelope), 'an envelope is not an archive');
      }
    }
    const wheel = decodeProtected(await get(protectedPayloadName('0.8.7', 'wheel'), '0.8.7'));
    assert.ok(isZip(wheel));
    assert.deepEqual(wheel, await buildWheel('0.8.7'));
    assert.deepEqual(await get(wheelName('0.8.7'), '0.8.7'), refusalEnvelope('0.8.7'));
    assert.equal(
      refusalEnvelope('0.8.7').toString(),
      'DefenseClaw 0.8.7 requires the 0.8.4 upgrade bridge.\n' +
        'No changes were made. Run the release-owned upgrade resolver without a version.\n',
    );

    const pem = (await get('checksums.txt.pem', '0.8.7')).toString('ascii');
    assert.match(
      pem,
      /^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/,
    );
    const cert = await checkSignature('0.8.7', `${WORKFLOW}@refs/heads/main`);
    const bundle = JSON.parse((await get('checksums.txt.bundle', '0.8.7')).toString()) as {
      base64Signature: string;
      cert: string;
      rekorBundle: { SignedEntryTimestamp: string; Payload: Record<string, unknown> };
    };
    assert.deepEqual(Object.keys(bundle), ['base64Signature', 'cert', 'rekorBundle']);
    assert.equal(bundle.base64Signature, (await get('checksums.txt.sig', '0.8.7')).toString());
    assert.equal(Buffer.from(bundle.cert, 'base64').toString(), cert.toString());
    assert.deepEqual(Object.keys(bundle.rekorBundle.Payload), ['body', 'integratedTime', 'logIndex', 'logID']);
    assert.ok(!(await names('0.8.5')).includes('checksums.txt.bundle'), 'no bundle before 0.8.7');
    schema2.parse(JSON.parse((await get('upgrade-manifest.json', '0.8.5')).toString()));
  });

  test('faults: foreign identity, digest lie, envelope only, corrupt and omitted payloads', async () => {
    const gw = protectedPayloadName('0.8.5', { os: 'linux', arch: 'amd64' });
    try {
      await server.setOptions({ signing: { identity: EVIL } });
      await checkSignature('0.8.5', EVIL);
      await server.setOptions({ signing: { ref: 'tag' } });
      await checkSignature('0.8.5', `${WORKFLOW}@refs/tags/0.8.5`);
      await server.setOptions({ signing: false });
      assert.ok(!(await names('0.8.5')).some((n) => n.startsWith('checksums.txt.')));
      await server.setOptions({ signing: undefined });

      await server.setOptions({ digestLie: [gw] });
      const lied = (await release('0.8.5')).assets.find((a) => a.name === gw)!;
      const bytes = await get(gw, '0.8.5');
      assert.notEqual(lied.digest, `sha256:${sha256(bytes)}`);
      assert.equal((await checksumTable('0.8.5')).get(gw), sha256(bytes), 'checksums.txt stays right');

      await server.setOptions({ digestLie: [], envelopeOnly: true });
      const only = await names('0.8.5');
      assert.ok(!only.some((n) => n.endsWith('.dcgateway') || n.endsWith('.dcwheel')));
      assert.ok(only.includes('defenseclaw_0.8.5_linux_amd64.tar.gz'));
      assert.ok((await checksumTable('0.8.5')).has(gw), 'the signed list still names the payloads');
      assert.equal((await fetch(server.downloadUrlOf(gw, '0.8.5'), { method: 'HEAD' })).status, 404);

      await server.setOptions({ envelopeOnly: false, corrupt: [gw], checksumOmit: ['upgrade-manifest.json'] });
      const corrupted = await get(gw, '0.8.5');
      assert.notEqual(sha256(corrupted), (await checksumTable('0.8.5')).get(gw));
      assert.ok(!(await checksumTable('0.8.5')).has('upgrade-manifest.json'));
      await checkSignature('0.8.5', `${WORKFLOW}@refs/heads/main`);
    } finally {
      await server.setOptions({
        signing: undefined,
        digestLie: [],
        envelopeOnly: false,
        corrupt: [],
        checksumOmit: [],
      });
    }
  });

  test('requiredMigrations and eras override the real values', async () => {
    await server.setOptions({ requiredMigrations: { '0.8.0': [] }, eras: { '0.4.0': 'manifest' } });
    try {
      const m = JSON.parse((await get('upgrade-manifest.json', '0.8.0')).toString()) as Record<string, unknown>;
      assert.deepEqual(m.required_cli_migrations, []);
      assert.equal(m.migration_failure_policy, 'warn');
      const m4 = JSON.parse((await get('upgrade-manifest.json', '0.4.0')).toString()) as Record<string, unknown>;
      assert.deepEqual(m4.required_cli_migrations, ['0.3.0', '0.4.0']);
      assert.ok((await checksumTable('0.4.0')).has('defenseclaw-0.4.0-py3-none-any.whl'));
    } finally {
      await server.setOptions({ requiredMigrations: {}, eras: {} });
    }
  });
});
