/**
 * The files of one hop, as a host run fetches and shows them: which release files it HEADs and
 * downloads, what each is checked against, which file stages the gateway and which the wheel, and
 * the plan's view of the release (era, files, signature, migrations). All read from the release's
 * layout, which its era decided (activities/release-eras.ts with workflows/eras/); a run recorded
 * before layouts has none and takes the GoReleaser era's names, as it did then.
 *
 * Pure and deterministic: workflows/host/prepare.ts and hop.ts build their activity inputs from it,
 * so the commands a run issues are the same as before this module existed.
 */
import type { ReleaseLayout } from '../release-layout.js';
import type { Platform, PlanHop } from '../types.js';
import { COMMON_NAMES, platformKey } from './era.js';
import { tarballName, wheelName } from './goreleaser.js';
import { eraNamed } from './index.js';

/** What a host run knows of a release when a hop starts (activities/releases.ts ResolvedRelease). */
export interface HopRelease {
  assets: Array<{ name: string; size: number }>;
  /** checksums.txt.sig and .pem are published (what runs before layouts went by). */
  signed: boolean;
  layout?: ReleaseLayout;
}

/** A staged file's extra activity input: the asset and its verified digest (absent: the canonical name). */
export type StagedAsset = { asset: string; sha256?: string } | Record<string, never>;

export interface HopDownloads {
  /** The files to HEAD and download, in this order. */
  names: string[];
  /** Their sizes as the release declares them (a HEAD answering another size is refused). */
  declared: Array<{ name: string; size: number }>;
  signed: boolean;
  /** The SHA-256 the layout expects of a file (absent: read from the staged checksums.txt, or none). */
  sha256(name: string): string | undefined;
  /** Whether a downloaded file is an artifact checked against checksums.txt (its own family is not). */
  verify(name: string): boolean;
  /** stageGateway's and prepareVenv's extra input. */
  gateway: StagedAsset;
  wheel: StagedAsset;
}

const withDigest = (asset: string, sha256: string | undefined) => ({ asset, ...(sha256 ? { sha256 } : {}) });

/** What the hop to `to` downloads on `platform`, or why the release cannot serve it. */
export function hopDownloads(
  release: HopRelease,
  to: string,
  platform: Platform,
): HopDownloads | { unsupported: string } {
  const layout = release.layout;
  const gateway = layout?.gateways[platformKey(platform)];
  if (layout && !gateway) return { unsupported: `release ${to} has no gateway for ${platform.os}/${platform.arch}` };
  const gatewayName = gateway?.name ?? tarballName(to, platform);
  const wheel = layout?.wheel.name ?? wheelName(to);
  const signed = layout ? layout.signature.kind === 'sig+pem' : release.signed;
  const expected = new Map<string, string | undefined>();
  if (layout) {
    if (layout.checksums) expected.set(layout.checksums.name, layout.checksums.sha256);
    expected.set(gatewayName, gateway!.sha256);
    expected.set(wheel, layout.wheel.sha256);
    for (const f of layout.signature.files) expected.set(f.name, f.sha256);
  }
  const names = [
    ...(layout && !layout.checksums ? [] : [COMMON_NAMES.checksums]),
    gatewayName,
    wheel,
    ...(signed ? [COMMON_NAMES.signature, COMMON_NAMES.certificate] : []),
  ];
  return {
    names,
    declared: release.assets.filter((x) => names.includes(x.name)).map(({ name, size }) => ({ name, size })),
    signed,
    sha256: (name) => expected.get(name),
    verify: (name) => !name.startsWith(COMMON_NAMES.checksums),
    gateway: gateway ? withDigest(gateway.name, gateway.sha256) : {},
    wheel: layout ? withDigest(wheel, layout.wheel.sha256) : {},
  };
}

/** The plan's view of the release a hop installs (PlanHop without its from, to and bridge). */
export function planFiles(
  release: HopRelease,
  to: string,
  platform: Platform,
): Omit<PlanHop, 'from' | 'to' | 'bridge'> {
  const layout = release.layout;
  const era = eraNamed(layout?.era ?? 'goreleaser');
  const g = layout?.gateways[platformKey(platform)];
  const migrations = era.migrations(layout?.manifest);
  return {
    era: era.name,
    gateway: g
      ? { name: g.name, verifiedBy: g.verifiedBy }
      : { name: tarballName(to, platform), verifiedBy: 'checksums' },
    wheel: layout
      ? { name: layout.wheel.name, verifiedBy: layout.wheel.verifiedBy }
      : { name: wheelName(to), verifiedBy: 'checksums' },
    signatureFiles: layout
      ? [...layout.signature.files.map((f) => f.name), ...(layout.signature.bundle ? [layout.signature.bundle] : [])]
      : release.signed
        ? [COMMON_NAMES.signature, COMMON_NAMES.certificate]
        : [],
    signatureRequired: layout?.signature.required ?? false,
    identities: layout?.signature.identities ?? [],
    migrations: migrations.required ?? [],
    migrationFailurePolicy: migrations.failurePolicy ?? 'fail',
  };
}
