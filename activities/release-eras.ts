/**
 * What a DefenseClaw release is, read from what it publishes (never from its version number alone):
 * the part every era shares. The resolve activity fetches the releases JSON, checksums.txt and
 * upgrade-manifest.json; this module reads them and decides, asking the release's era
 * (workflows/eras/, one module per era) for everything that differs between eras: which files carry
 * the gateway and the wheel, the rules of releases tagged in it (manifest, signature, identities).
 * What stays here is the same for every era: checksums.txt and GitHub's digest cover each file (both
 * present must agree), the manifest's format, and refusing before anything is downloaded.
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
import {
  CHECKSUMS,
  COMMON_NAMES,
  MANIFEST,
  OIDC_ISSUER,
  PLATFORMS,
  platformKey,
  type ManifestArtifacts,
  type Refused,
} from '../workflows/eras/era.js';
import {
  ERAS,
  MAX_MANIFEST_SCHEMA,
  eraOfManifestSchema,
  eraOfTag,
  isReleaseAssetName,
} from '../workflows/eras/index.js';
import { isRefusalEnvelopeText } from '../workflows/eras/protected.js';
import type { ReleaseAsset, ReleaseLayout, ReleaseManifestInfo, VerifiedBy } from '../workflows/release-layout.js';
import { compareVersions, isVersion } from '../workflows/types.js';
import { FailureType, refuse } from './support.js';

export { CHECKSUMS, MANIFEST, isReleaseAssetName };

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

/** Reads upgrade-manifest.json (schema 1 at 0.6.1–0.8.3, schema 2 at 0.8.4+: see workflows/eras/). */
export function parseUpgradeManifest(
  json: unknown,
  version: string,
): ReleaseManifestInfo & { artifacts?: ManifestArtifacts } {
  const r = ManifestJson.safeParse(json);
  if (!r.success) throw refuse(FailureType.InvalidInput, `upgrade-manifest.json of ${version} is not a valid manifest`);
  const m = r.data;
  if (m.schema_version > MAX_MANIFEST_SCHEMA) {
    throw refuse(
      FailureType.InvalidInput,
      `upgrade-manifest.json of ${version} has schema ${m.schema_version}, newer than this tool understands (1–${MAX_MANIFEST_SCHEMA})`,
    );
  }
  if (m.release_version !== version) {
    throw refuse(
      FailureType.VersionMismatch,
      `upgrade-manifest.json names release ${m.release_version}, not ${version}`,
    );
  }
  if (eraOfManifestSchema(m.schema_version)?.payloadsNamedByManifest && !m.release_artifacts) {
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

/** Whether a file's first bytes are a protected release's refusal envelope (workflows/eras/protected.ts). */
export function isRefusalEnvelope(head: Buffer): boolean {
  return isRefusalEnvelopeText(head.subarray(0, 512).toString('latin1'));
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

/**
 * Decides what a release is: which assets carry the gateway (per platform) and the wheel, how each
 * is verified (its checksums.txt line, else GitHub's digest; both present must agree), which
 * signature files it has, and what its manifest requires. Refuses a release that cannot be installed
 * safely, before anything is downloaded.
 */
export function classifyRelease(f: ReleaseFacts): ReleaseLayout {
  const byName = new Map(f.assets.map((a) => [a.name, a]));
  const sums = f.checksums ? parseChecksums(f.checksums.text) : new Map<string, string>();
  const manifest = f.manifest;
  const era = eraOfManifestSchema(manifest?.schema)!;
  const tagEra = eraOfTag(f.version);

  if (!manifest) {
    const published = f.assets.map((a) => a.name);
    for (const e of ERAS) {
      const why = e.refuseWithoutManifest?.(f.version, published, e === tagEra);
      if (why) throw refuse(FailureType.InvalidInput, why);
    }
  }
  const named = <T>(x: T | Refused): T => {
    if (x && typeof x === 'object' && 'refused' in x) throw refuse(FailureType.InvalidInput, x.refused);
    return x as T;
  };

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
  for (const p of PLATFORMS) {
    const name = named(era.gatewayAsset(f.version, p, manifest?.artifacts));
    if (name === undefined) continue;
    const a = ref(name, false);
    if (a) gateways[platformKey(p)] = { ...a, format: era.formats.gateway };
  }
  const wheel: ReleaseLayout['wheel'] = {
    ...ref(named(era.wheelAsset(f.version, manifest?.artifacts)), true)!,
    format: era.formats.wheel,
  };

  const strict = tagEra.signature.required;
  const sig = byName.get(COMMON_NAMES.signature);
  const pem = byName.get(COMMON_NAMES.certificate);
  const bundle = byName.get(COMMON_NAMES.bundle);
  const signed = Boolean(sig && pem && f.checksums);
  // The signature and its certificate are verified by what they are, not by a digest.
  const sigFiles = signed
    ? [ref(COMMON_NAMES.signature, true, false)!, ref(COMMON_NAMES.certificate, true, false)!]
    : [];

  return {
    version: f.version,
    era: era.name,
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
      identities: tagEra.signature.identities(f.repo, f.version),
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
