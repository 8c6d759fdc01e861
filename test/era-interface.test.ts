/**
 * The test an era needs, written against the era interface (workflows/eras/era.ts): every era in
 * the registry (workflows/eras/index.ts) is driven with its own releases, laid out as GitHub
 * published them (test/fixtures/releases/: the release server, the real eras' files), and held to
 * the contract every era must meet. A new era added to the registry is covered here without a new
 * test: it fails until the fixture lays out a release of it (TAGS below, eras.ts).
 *
 * The contract, per release of the era: its files tell its era; each platform has one gateway file
 * that the era names and no other platform's name matches; the wheel likewise; every gateway and
 * wheel file and every file a hop downloads has an expected SHA-256 that the published bytes meet;
 * the payload decodes (as the era encodes it) to the archive and wheel GoReleaser built, and a
 * tampered payload does not; a published canonical name that is not the era's payload is a refusal
 * envelope; the signature is by this repository's release workflow, an identity the era accepts,
 * and no other repository's; the migrate step checks what the manifest requires (or the registry);
 * the route is direct, one bridge (which the target takes as its source), or a refusal; the ticket
 * and the plan name the era. Run: npm run build; node --test dist/test/era-interface.test.js
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProtected } from '../activities/host/protected-artifact.js';
import { checkAssetName } from '../activities/host/artifacts.js';
import { checkIdentity, readCertificate, signatureVerifies } from '../activities/host/signature.js';
import { classifyRelease, isRefusalEnvelope, parseUpgradeManifest } from '../activities/release-eras.js';
import { parseRelease, type ResolvedRelease } from '../activities/releases.js';
import { COMMON_NAMES, PLATFORMS, platformKey, type Era } from '../workflows/eras/era.js';
import { tarballName, wheelName } from '../workflows/eras/goreleaser.js';
import { hopDownloads, planFiles } from '../workflows/eras/hop-files.js';
import {
  ERAS,
  ERA_NAMES,
  eraOfManifestSchema,
  eraOfTag,
  gatewayPlatform,
  isReleaseAssetName,
  isWheelName,
  payloadEra,
} from '../workflows/eras/index.js';
import { routeTo } from '../workflows/release-layout.js';
import { TicketReleaseSchema } from '../workflows/release-ticket.js';
import { compareVersions } from '../workflows/types.js';
import { eraOf } from './fixtures/releases/eras.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

/** Real tags, each laid out by the fixture as its era published it (at least one per registered era). */
const TAGS = ['0.3.0', '0.4.0', '0.6.0', '0.6.1', '0.7.0', '0.8.3', '0.8.4', '0.8.5', '0.8.7', '0.8.10'];
const REPO = 'cisco-ai-defense/defenseclaw';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Published {
  release: ResolvedRelease;
  bytes: (name: string) => Promise<Buffer>;
}

let server: ReleaseServer;
let tmp: string;
const published = new Map<string, Promise<Published>>();

/** A release as a host reads it: the API's JSON, checksums.txt and the manifest, decided by classifyRelease. */
function read(version: string): Promise<Published> {
  let p = published.get(version);
  if (!p) {
    p = (async () => {
      const json = await (await fetch(`${server.apiUrl}/repos/${REPO}/releases/tags/${version}`)).json();
      const release = parseRelease(json, version);
      const bytes = async (name: string) => {
        const r = await fetch(server.downloadUrlOf(name, version));
        assert.equal(r.status, 200, `${version}/${name}`);
        return Buffer.from(await r.arrayBuffer());
      };
      const sums = await bytes(COMMON_NAMES.checksums);
      const has = release.assets.some((a) => a.name === COMMON_NAMES.manifest);
      const manifest = has
        ? parseUpgradeManifest(JSON.parse((await bytes(COMMON_NAMES.manifest)).toString('utf8')), version)
        : undefined;
      const layout = classifyRelease({
        version,
        assets: release.assets,
        checksums: { text: sums.toString('utf8'), sha256: sha256(sums), size: sums.length },
        manifest,
        repo: REPO,
        allowUnverified: false,
      });
      return { release: { ...release, layout }, bytes };
    })();
    published.set(version, p);
  }
  return p;
}

/** Decodes a payload as its era encodes it, through the activity that does it on a host. */
async function decode(era: Era, file: Buffer, expectedSha256: string): Promise<Buffer> {
  if (era.encoding.kind === 'plain') return file;
  const dir = await fs.mkdtemp(path.join(tmp, 'decode-'));
  await fs.writeFile(path.join(dir, 'payload'), file);
  await decodeProtected(path.join(dir, 'payload'), path.join(dir, 'decoded'), expectedSha256, era.encoding);
  return fs.readFile(path.join(dir, 'decoded'));
}

describe('the era interface: every registered era meets the contract', { concurrency: 1, timeout: 300_000 }, () => {
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'era-interface-'));
    server = await startReleaseServer({ versions: TAGS });
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it('the registry: eras in tag order, each the era of its own first tag, each with a name a ticket accepts', () => {
    assert.ok(ERAS.length >= 3, 'goreleaser, manifest and protected at least');
    assert.deepEqual(ERA_NAMES, [...new Set(ERA_NAMES)], 'names are unique');
    for (let i = 1; i < ERAS.length; i++) assert.ok(compareVersions(ERAS[i - 1]!.since, ERAS[i]!.since) < 0);
    for (const era of ERAS) {
      assert.equal(eraOfTag(era.since), era, era.name);
      const schema = TicketReleaseSchema.safeParse({
        version: '1.2.3',
        era: era.name,
        assets: [{ name: COMMON_NAMES.checksums, size: 1 }],
      });
      assert.ok(schema.success, `a ticket of the ${era.name} era`);
      if (era.manifestSchema !== undefined) assert.equal(eraOfManifestSchema(era.manifestSchema), era);
    }
    assert.equal(TicketReleaseSchema.safeParse({ version: '1.2.3', era: 'nonesuch', assets: [] }).success, false);
  });

  for (const era of ERAS) {
    describe(`era ${era.name} (from ${era.since})`, () => {
      const tags = TAGS.filter((v) => eraOfTag(v) === era);

      it('has releases laid out by the fixture, which agrees on the era of each tag', () => {
        assert.ok(tags.length > 0, `no release of the ${era.name} era in TAGS: lay one out in test/fixtures/releases`);
        for (const v of tags) assert.equal(eraOf(v), era.name, `the fixture's era of ${v}`);
      });

      for (const v of tags) {
        describe(v, () => {
          it('its files tell its era, and the ticket and the plan name it', async () => {
            const { release } = await read(v);
            const layout = release.layout!;
            assert.equal(layout.era, era.name);
            assert.equal(layout.manifest?.schema, era.manifestSchema);
            assert.equal(eraOfManifestSchema(layout.manifest?.schema), era);
            for (const p of PLATFORMS) assert.equal(planFiles(release, v, p).era, era.name);
          });

          it('names one gateway file per platform, and one wheel file, in the format the era says', async () => {
            const { release } = await read(v);
            const layout = release.layout!;
            for (const p of PLATFORMS) {
              const g = layout.gateways[platformKey(p)];
              assert.ok(g, `a gateway for ${platformKey(p)}`);
              assert.equal(g.format, era.formats.gateway);
              assert.ok(era.isGatewayName(v, g.name, p), g.name);
              assert.ok(isReleaseAssetName(v, g.name), g.name);
              assert.deepEqual(gatewayPlatform(v, g.name), p, g.name);
              assert.deepEqual(payloadEra(v, g.name, p)?.encoding, era.encoding, g.name);
              for (const other of PLATFORMS.filter((q) => q !== p)) {
                assert.equal(era.isGatewayName(v, g.name, other), false, `${g.name} is not for ${platformKey(other)}`);
                assert.throws(() => checkAssetName(v, g.name, other), /refusing asset name/);
              }
              checkAssetName(v, g.name, p);
              assert.equal(planFiles(release, v, p).gateway.name, g.name);
            }
            assert.equal(layout.wheel.format, era.formats.wheel);
            assert.ok(era.isWheelName(v, layout.wheel.name), layout.wheel.name);
            assert.ok(isWheelName(v, layout.wheel.name));
            assert.equal(gatewayPlatform(v, layout.wheel.name), undefined);
            assert.match(
              era.decodedWheelName(layout.wheel.name),
              new RegExp(`^defenseclaw-${v.replace(/\./g, '\\.')}-.*\\.whl$`),
            );
            assert.equal(era.isWheelName(v, layout.wheel.name.replace(v, '9.9.9')), false, 'another version’s wheel');
          });

          it('has an expected SHA-256 for every file a hop downloads, which the published bytes meet', async () => {
            const { release, bytes } = await read(v);
            const layout = release.layout!;
            for (const f of [...Object.values(layout.gateways), layout.wheel]) {
              assert.notEqual(f!.verifiedBy, 'none', f!.name);
              assert.equal(f!.sha256, sha256(await bytes(f!.name)), f!.name);
            }
            for (const p of PLATFORMS) {
              const files = hopDownloads(release, v, p);
              assert.ok(!('unsupported' in files), platformKey(p));
              assert.ok(files.signed, 'the release is signed');
              assert.ok(files.names.includes(layout.gateways[platformKey(p)]!.name));
              assert.ok(files.names.includes(layout.wheel.name));
              for (const name of files.names) {
                assert.ok(
                  release.assets.some((a) => a.name === name),
                  `${name} is published`,
                );
                assert.ok(
                  files.declared.some((d) => d.name === name),
                  `${name} has a declared size`,
                );
                const expected = files.sha256(name);
                if (files.verify(name)) assert.equal(expected, sha256(await bytes(name)), name);
              }
              assert.deepEqual(files.gateway, {
                asset: layout.gateways[platformKey(p)]!.name,
                sha256: layout.gateways[platformKey(p)]!.sha256,
              });
              assert.deepEqual(files.wheel, { asset: layout.wheel.name, sha256: layout.wheel.sha256 });
            }
          });

          it('decodes its payloads to the archives and wheel GoReleaser built, and refuses a tampered one', async () => {
            const { release, bytes } = await read(v);
            const layout = release.layout!;
            const built = (await server.layout(v)).canonical;
            for (const p of PLATFORMS) {
              const g = layout.gateways[platformKey(p)]!;
              const archive = await decode(era, await bytes(g.name), g.sha256!);
              assert.ok(archive.equals(built.get(tarballName(v, p))!), `${g.name} decodes to the archive`);
              assert.equal(isRefusalEnvelope(archive), false);
            }
            const wheel = await decode(era, await bytes(layout.wheel.name), layout.wheel.sha256!);
            assert.ok(wheel.equals(built.get(wheelName(v))!), `${layout.wheel.name} decodes to the wheel`);
            assert.equal(wheel.readUInt32LE(0), 0x04034b50, 'a zip');
            if (era.encoding.kind !== 'plain') {
              const tampered = await bytes(layout.wheel.name);
              tampered[tampered.length - 1]! ^= 0x01;
              await assert.rejects(decode(era, tampered, layout.wheel.sha256!), /changed between its verification/);
            }
            // A canonical name the release publishes but does not install from holds a refusal envelope.
            for (const name of [...PLATFORMS.map((p) => tarballName(v, p)), wheelName(v)]) {
              const payloads = [...Object.values(layout.gateways).map((g) => g!.name), layout.wheel.name];
              if (payloads.includes(name) || !release.assets.some((a) => a.name === name)) continue;
              assert.ok(isRefusalEnvelope(await bytes(name)), `${name} is a refusal envelope`);
            }
          });

          it("is signed by this repository's release workflow, an identity the era accepts, and no other", async () => {
            const { release, bytes } = await read(v);
            const layout = release.layout!;
            assert.equal(layout.signature.kind, 'sig+pem');
            assert.deepEqual(
              layout.signature.files.map((f) => f.name),
              [COMMON_NAMES.signature, COMMON_NAMES.certificate],
            );
            assert.equal(layout.signature.required, era.signature.required);
            const accepted = era.signature.identities(REPO, v);
            assert.deepEqual(layout.signature.identities, accepted);
            assert.ok(accepted.length > 0);
            for (const id of accepted) assert.ok(id.startsWith(`https://github.com/${REPO}/.github/workflows/`), id);
            const cert = readCertificate((await bytes(COMMON_NAMES.certificate)).toString('utf8'));
            checkIdentity(cert, accepted);
            assert.throws(() => checkIdentity(cert, era.signature.identities('evil/defenseclaw', v)), /not by this/);
            const sums = await bytes(COMMON_NAMES.checksums);
            assert.ok(signatureVerifies(sums, (await bytes(COMMON_NAMES.signature)).toString('utf8'), cert));
          });

          it('checks the migrations its manifest requires (without one: the registry’s, a missing one fails)', async () => {
            const { release } = await read(v);
            const layout = release.layout!;
            const raw = (await server.layout(v)).manifest;
            const rules = era.migrations(layout.manifest);
            const plan = planFiles(release, v, PLATFORMS[0]!);
            if (era.manifestSchema === undefined) {
              assert.equal(raw, null);
              assert.deepEqual(rules, {});
            } else {
              assert.deepEqual(rules.required, raw!.required_cli_migrations);
              assert.equal(rules.failurePolicy, raw!.migration_failure_policy ?? 'warn');
            }
            assert.deepEqual(plan.migrations, rules.required ?? []);
            assert.equal(plan.migrationFailurePolicy, rules.failurePolicy ?? 'fail');
          });

          it('routes each older release directly, through one bridge the target takes, or refuses it', async () => {
            const layout = (await read(v)).release.layout!;
            for (const from of TAGS.filter((f) => compareVersions(f, v) < 0)) {
              const r = era.route(from, layout);
              assert.deepEqual(routeTo(from, layout), r);
              if (era.manifestSchema === undefined) assert.deepEqual(r, {}, 'no manifest, no bridge');
              if ('refused' in r) {
                assert.match(r.refused, new RegExp(v.replace(/\./g, '\\.')), `${from}: names the release`);
              } else if (r.bridge) {
                const bridge = r.bridge;
                assert.ok(compareVersions(from, bridge) < 0 && compareVersions(bridge, v) < 0, `${from} → ${bridge}`);
                assert.ok(TAGS.includes(bridge), `the bridge ${bridge} is laid out`);
                const b = (await read(bridge)).release.layout!;
                const again = routeTo(from, b);
                assert.ok(!('bridge' in again) || again.bridge === undefined, `${from} → ${bridge}: one bridge`);
                assert.deepEqual(era.route(bridge, layout), {}, `${v} takes ${bridge} as its source`);
              }
            }
          });
        });
      }
    });
  }
});
