/**
 * Release eras: what a DefenseClaw release is, read from what it publishes (never from its version
 * number alone). Pure: the resolve activity fetches the releases JSON, checksums.txt and
 * upgrade-manifest.json, and this module decides.
 *
 * | era        | tags          | gateway / wheel assets                                   | how each file is verified            |
 * | goreleaser | 0.3.x – 0.6.0 | `defenseclaw_{v}_{os}_{arch}.tar.gz`, `defenseclaw-{v}-py3-none-any.whl` | checksums.txt (tarballs only); the wheel by GitHub's asset `digest` |
 * | manifest   | 0.6.1 – 0.8.3 | same; `upgrade-manifest.json` schema 1                    | checksums.txt lists everything        |
 * | protected  | 0.8.4 – 0.8.10| `…_protocol2_{os}_{arch}.dcgateway`, `…-2-py3-none-any.dcwheel` named by the schema 2 manifest; the canonical names are plain-text refusal envelopes | checksums.txt (digest of the protected file as published) |
 *
 * Sources: `.goreleaser.yaml`, `.github/workflows/release.yaml`, `Makefile` (dist-checksums),
 * `scripts/generate-upgrade-manifest.py`, `scripts/release_candidate.py` and `cmd_upgrade.py` at each tag.
 */
import { z } from 'zod';
import { compareVersions, isVersion, type Platform } from '../workflows/types.js';
import type {
  ReleaseAsset,
  ReleaseEra,
  ReleaseLayout,
  ReleaseManifestInfo,
  VerifiedBy,
} from '../workflows/release-layout.js';
import { FailureType, refuse } from './support.js';

export const CHECKSUMS = 'checksums.txt';
export const MANIFEST = 'upgrade-manifest.json';
/** The first release whose signature is mandatory and whose identity is release.yaml@refs/heads/main only. */
export const STRICT_SIGNATURE_FROM = '0.8.4';
export const OIDC_ISSUER = 'https://token.actions.githubusercontent.com';

const PLATFORMS: Platform[] = [
  { os: 'linux', arch: 'amd64' },
  { os: 'linux', arch: 'arm64' },
  { os: 'darwin', arch: 'amd64' },
  { os: 'darwin', arch: 'arm64' },
];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The names a release of `version` may carry that we ever download. Anything else is refused. */
export function releaseAssetNames(version: string) {
  const v = esc(version);
  return {
    tarball: (p: Platform) => `defenseclaw_${version}_${p.os}_${p.arch}.tar.gz`,
    wheel: `defenseclaw-${version}-py3-none-any.whl`,
    protectedGateway: new RegExp(`^defenseclaw_${v}_protocol2_(linux|darwin)_(amd64|arm64)\\.dcgateway$`),
    protectedWheel: new RegExp(`^defenseclaw-${v}-[0-9]{1,3}-py3-none-any\\.dcwheel$`),
    checksums: CHECKSUMS,
    signature: `${CHECKSUMS}.sig`,
    certificate: `${CHECKSUMS}.pem`,
    bundle: `${CHECKSUMS}.bundle`,
    manifest: MANIFEST,
  };
}

/** Whether `name` is one of the assets of `version` that this tool downloads. */
export function isReleaseAssetName(version: string, name: string): boolean {
  const n = releaseAssetNames(version);
  if ([n.wheel, n.checksums, n.signature, n.certificate, n.bundle, n.manifest].includes(name)) return true;
  if (PLATFORMS.some((p) => n.tarball(p) === name)) return true;
  return n.protectedGateway.test(name) || n.protectedWheel.test(name);
}

/** Whether `name` is a protected payload (`.dcgateway` / `.dcwheel`) of `version`. */
export function isProtectedName(version: string, name: string): boolean {
  const n = releaseAssetNames(version);
  return n.protectedGateway.test(name) || n.protectedWheel.test(name);
}

// ------------------------------------------------------------------ checksums.txt

/**
 * Parses checksums.txt: `<sha256>  <name>` (GoReleaser, `shasum -a 256`, release_candidate.py),
 * `*` and `./` prefixes accepted. Lines naming a path (0.6.1–0.8.3 list GoReleaser's build folders),
 * comments and malformed lines are skipped; a name listed twice with two digests is refused.
 */
export function parseChecksums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(?:\.\/)?([^\s\\]+)\s*$/.exec(raw.trim());
    if (!m) continue;
    const [, digest, name] = m;
    if (name!.includes('/') || name === '.' || name === '..') continue;
    const d = digest!.toLowerCase();
    const prior = out.get(name!);
    if (prior && prior !== d) {
      throw refuse(FailureType.ChecksumMismatch, `checksums.txt lists ${name} twice with different digests`);
    }
    out.set(name!, d);
  }
  return out;
}

/** GitHub's asset `digest` (`sha256:<hex>`), lower-cased; undefined when absent or of another kind. */
export function digestOf(digest: unknown): string | undefined {
  if (typeof digest !== 'string') return undefined;
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(digest);
  return m ? m[1]!.toLowerCase() : undefined;
}

// ------------------------------------------------------------------ upgrade-manifest.json

const VersionString = z.string().refine(isVersion, 'a MAJOR.MINOR.PATCH version');

const ManifestJson = z
  .object({
    schema_version: z.number().int().min(1),
    release_version: VersionString,
    min_upgrade_protocol: z.number().int().optional(),
    migration_failure_policy: z.enum(['warn', 'fail']).optional(),
    required_cli_migrations: z.array(VersionString).max(200).optional(),
    required_bridge_version: VersionString.optional(),
    minimum_source_version: VersionString.optional(),
    auto_bridge_from: z.array(VersionString).max(500).optional(),
    tested_source_versions: z.array(VersionString).max(500).optional(),
    runtime_config_version: z.number().int().optional(),
    release_artifacts: z
      .object({
        gateways: z.record(z.string(), z.record(z.string(), z.string().max(256))),
        wheel: z.string().max(256),
      })
      .optional(),
  })
  .passthrough();

/** Reads upgrade-manifest.json (schema 1 at 0.6.1–0.8.3, schema 2 at 0.8.4+). */
export function parseUpgradeManifest(
  json: unknown,
  version: string,
): ReleaseManifestInfo & {
  artifacts?: { gateways: Record<string, Record<string, string>>; wheel: string };
} {
  const r = ManifestJson.safeParse(json);
  if (!r.success) throw refuse(FailureType.InvalidInput, `upgrade-manifest.json of ${version} is not a valid manifest`);
  const m = r.data;
  if (m.schema_version > 2) {
    throw refuse(
      FailureType.InvalidInput,
      `upgrade-manifest.json of ${version} has schema ${m.schema_version}, newer than this tool understands (1–2)`,
    );
  }
  if (m.release_version !== version) {
    throw refuse(
      FailureType.VersionMismatch,
      `upgrade-manifest.json names release ${m.release_version}, not ${version}`,
    );
  }
  if (m.schema_version === 2 && !m.release_artifacts) {
    throw refuse(FailureType.InvalidInput, `upgrade-manifest.json of ${version} (schema 2) names no release artifacts`);
  }
  const bridge = m.required_bridge_version;
  const minimum = m.minimum_source_version;
  if ((bridge === undefined) !== (minimum === undefined)) {
    throw refuse(
      FailureType.InvalidInput,
      `upgrade-manifest.json of ${version} names a bridge without a minimum source`,
    );
  }
  if (bridge && minimum && (compareVersions(bridge, minimum) < 0 || compareVersions(bridge, version) >= 0)) {
    throw refuse(FailureType.InvalidInput, `upgrade-manifest.json of ${version} names an impossible bridge ${bridge}`);
  }
  return {
    schema: m.schema_version as 1 | 2,
    requiredMigrations: [...new Set(m.required_cli_migrations ?? [])],
    failurePolicy: m.migration_failure_policy ?? 'warn',
    requiredBridgeVersion: bridge,
    minimumSourceVersion: minimum,
    autoBridgeFrom: m.auto_bridge_from,
    testedSourceVersions: m.tested_source_versions,
    runtimeConfigVersion: m.runtime_config_version,
    artifacts: m.release_artifacts,
  };
}

// ------------------------------------------------------------------ refusal envelopes

/**
 * A protected release's canonical names hold two lines of text (`release_candidate.py`
 * `_refusal_envelope_payload`): "DefenseClaw {v} requires the 0.8.4 upgrade bridge." / "must be
 * installed by the release-owned staged upgrade resolver.", then "No changes were made. …".
 */
export function isRefusalEnvelope(head: Buffer): boolean {
  const text = head.subarray(0, 512).toString('latin1');
  return /^DefenseClaw \S+ /.test(text) && /No changes were made/.test(text);
}

// ------------------------------------------------------------------ the decision

export interface ReleaseFacts {
  version: string;
  /** The release's assets as the JSON lists them (name, size, digest). */
  assets: Array<{ name: string; size: number; digest?: string }>;
  /** checksums.txt as fetched (undefined when the release has none). */
  checksums?: { text: string; sha256: string; size: number };
  /** upgrade-manifest.json, parsed, when the release has one. */
  manifest?: ReturnType<typeof parseUpgradeManifest>;
  /** owner/name of the configured repository (for the signature identities). */
  repo: string;
  /** The host allows files that nothing verifies (DEFENSECLAW_ALLOW_MISSING_CHECKSUMS=1). */
  allowUnverified: boolean;
}

/** The certificate identities acceptable for `version` of `repo` (its release workflow, by tag or main). */
export function acceptedIdentities(repo: string, version: string): string[] {
  const base = `https://github.com/${repo}/.github/workflows/release.yaml@`;
  const main = `${base}refs/heads/main`;
  return [main, `${base}refs/tags/${version}`, `${base}refs/tags/v${version}`];
}

/**
 * Decides what a release is: which assets carry the gateway (per platform) and the wheel, how each
 * is verified (its checksums.txt line, else GitHub's digest; both present must agree), which
 * signature files it has, and what its manifest requires. Refuses a release that cannot be installed
 * safely, before anything is downloaded.
 */
export function classifyRelease(f: ReleaseFacts): ReleaseLayout {
  const n = releaseAssetNames(f.version);
  const byName = new Map(f.assets.map((a) => [a.name, a]));
  const sums = f.checksums ? parseChecksums(f.checksums.text) : new Map<string, string>();
  const manifest = f.manifest;
  const era: ReleaseEra = manifest?.schema === 2 ? 'protected' : manifest ? 'manifest' : 'goreleaser';

  if (!manifest && compareVersions(f.version, STRICT_SIGNATURE_FROM) >= 0) {
    throw refuse(
      FailureType.InvalidInput,
      `release ${f.version} has no upgrade-manifest.json; every release from ${STRICT_SIGNATURE_FROM} must carry one (its canonical assets are refusal envelopes)`,
    );
  }
  if (!manifest && f.assets.some((a) => isProtectedName(f.version, a.name))) {
    throw refuse(
      FailureType.InvalidInput,
      `release ${f.version} publishes protected payloads but no upgrade-manifest.json; refusing its canonical assets (refusal envelopes)`,
    );
  }

  const ref = (name: string, required: boolean, mustVerify = true): ReleaseAsset | undefined => {
    const a = byName.get(name);
    if (!a) {
      if (required) throw refuse(FailureType.NotFound, `release ${f.version} has no asset ${name}`);
      return undefined;
    }
    const listed = sums.get(name);
    const digest = digestOf(a.digest);
    if (listed && digest && listed !== digest) {
      throw refuse(
        FailureType.ChecksumMismatch,
        `release ${f.version}: checksums.txt and GitHub's digest disagree for ${name} (${listed.slice(0, 12)}… vs ${digest.slice(0, 12)}…); refusing the release`,
      );
    }
    const sha256 = listed ?? digest;
    const verifiedBy: VerifiedBy = listed ? 'checksums' : digest ? 'digest' : 'none';
    if (!sha256 && mustVerify && !f.allowUnverified) {
      throw refuse(
        FailureType.ChecksumsMissing,
        `refusing ${name}: neither checksums.txt nor GitHub's asset digest covers it`,
      );
    }
    return { name, size: a.size, sha256, verifiedBy };
  };

  const gateways: ReleaseLayout['gateways'] = {};
  let wheel: ReleaseLayout['wheel'];
  if (era === 'protected') {
    const art = manifest!.artifacts!;
    for (const p of PLATFORMS) {
      const name = art.gateways[p.os]?.[p.arch];
      if (name === undefined) continue;
      if (!n.protectedGateway.test(name) || !name.includes(`_${p.os}_${p.arch}.`)) {
        throw refuse(
          FailureType.InvalidInput,
          `upgrade-manifest.json names an unexpected gateway asset for ${p.os}/${p.arch}`,
        );
      }
      const a = ref(name, false);
      if (a) gateways[`${p.os}/${p.arch}`] = { ...a, format: 'protected' };
    }
    if (!n.protectedWheel.test(art.wheel)) {
      throw refuse(FailureType.InvalidInput, 'upgrade-manifest.json names an unexpected wheel asset');
    }
    wheel = { ...ref(art.wheel, true)!, format: 'protected' };
  } else {
    for (const p of PLATFORMS) {
      const a = ref(n.tarball(p), false);
      if (a) gateways[`${p.os}/${p.arch}`] = { ...a, format: 'tar.gz' };
    }
    wheel = { ...ref(n.wheel, true)!, format: 'whl' };
  }

  const strict = compareVersions(f.version, STRICT_SIGNATURE_FROM) >= 0;
  const sig = byName.get(n.signature);
  const pem = byName.get(n.certificate);
  const bundle = byName.get(n.bundle);
  const signed = Boolean(sig && pem && f.checksums);
  // The signature and its certificate are verified by what they are, not by a digest.
  const sigFiles = signed ? [ref(n.signature, true, false)!, ref(n.certificate, true, false)!] : [];

  return {
    version: f.version,
    era,
    gateways,
    wheel,
    checksums: f.checksums
      ? { name: CHECKSUMS, size: f.checksums.size, sha256: f.checksums.sha256, verifiedBy: 'fetched' }
      : undefined,
    signature: {
      kind: signed ? 'sig+pem' : 'none',
      files: sigFiles,
      bundle: bundle?.name,
      required: strict,
      identities: strict ? [acceptedIdentities(f.repo, f.version)[0]!] : acceptedIdentities(f.repo, f.version),
      issuer: OIDC_ISSUER,
    },
    manifest: manifest
      ? {
          schema: manifest.schema,
          requiredMigrations: manifest.requiredMigrations,
          failurePolicy: manifest.failurePolicy,
          requiredBridgeVersion: manifest.requiredBridgeVersion,
          minimumSourceVersion: manifest.minimumSourceVersion,
          autoBridgeFrom: manifest.autoBridgeFrom,
          testedSourceVersions: manifest.testedSourceVersions,
          runtimeConfigVersion: manifest.runtimeConfigVersion,
        }
      : undefined,
  };
}
