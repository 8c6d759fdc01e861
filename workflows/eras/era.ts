/**
 * A release era: how DefenseClaw published its releases over a range of tags. Each era is one
 * module behind this interface (goreleaser.ts, manifest.ts, protected.ts), registered in index.ts:
 * adding an era is one new file and one line there.
 *
 * The split. An era module holds everything that differs between eras, as pure facts and decisions:
 * which files carry the gateway and the wheel (names, formats), how a payload wraps its archive,
 * whether releases tagged in the era must carry a manifest and a signature and whose signature it
 * must be, what the migrate step checks, and the bridge route. It does no I/O and imports no `node:`
 * module: workflows import it. What is the same in every era stays where it was: the activities
 * fetch and read checksums.txt and upgrade-manifest.json (activities/releases.ts), decide which
 * digest covers which file (activities/release-eras.ts), hash and decode payloads
 * (activities/host/protected-artifact.ts) and run cosign (activities/host/signature.ts), each taking
 * its era-specific facts from the registry instead of deciding them again.
 */
import type { ReleaseLayout, ReleaseManifestInfo } from '../release-layout.js';
import type { Platform } from '../types.js';

export const CHECKSUMS = 'checksums.txt';
export const MANIFEST = 'upgrade-manifest.json';
export const OIDC_ISSUER = 'https://token.actions.githubusercontent.com';

/** The files any era may publish around its payloads: checksums.txt, its signature, the manifest. */
export const COMMON_NAMES = {
  checksums: CHECKSUMS,
  signature: `${CHECKSUMS}.sig`,
  certificate: `${CHECKSUMS}.pem`,
  bundle: `${CHECKSUMS}.bundle`,
  manifest: MANIFEST,
} as const;

/** The platforms a host may be (and a release may carry a gateway for). */
export const PLATFORMS: readonly Platform[] = [
  { os: 'linux', arch: 'amd64' },
  { os: 'linux', arch: 'arm64' },
  { os: 'darwin', arch: 'amd64' },
  { os: 'darwin', arch: 'arm64' },
];

/** A layout's key of a platform's gateway: `os/arch`. */
export const platformKey = (p: Platform): string => `${p.os}/${p.arch}`;

/** A regular expression matching `s` literally. */
export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** How a payload wraps the archive it carries: not at all, or a header line then every byte XOR a key. */
export type PayloadEncoding =
  | { kind: 'plain' }
  | { kind: 'xor'; /** ASCII header line, `\n` included. */ magic: string; xor: number; maxBytes: number };

/** Why a release's files cannot be taken (refused as invalid input, before anything is downloaded). */
export interface Refused {
  refused: string;
}

/** The gateway and wheel file names a schema 2 manifest gives (`release_artifacts`). */
export interface ManifestArtifacts {
  gateways: Record<string, Record<string, string>>;
  wheel: string;
}

/** What the migrate step checks after the migrations ran: absent fields are the activity's defaults. */
export interface EraMigrations {
  /** The migrations that must be in the cursor (absent: the registry's versions in (from, to]). */
  required?: string[];
  /** What a missing one does (absent: the upgrade fails). */
  failurePolicy?: 'warn' | 'fail';
}

/** How to get to a release from an installed version: directly, through a bridge, or not at all. */
export type Route = { bridge?: string } | { refused: string };

export interface Era<N extends string = string> {
  readonly name: N;
  /** The era's first tag. Eras are registered in tag order; a tag belongs to the last era begun at or before it. */
  readonly since: string;
  /** The upgrade-manifest.json schema its releases carry (none: no manifest). This tells a release's era from its files. */
  readonly manifestSchema?: number;
  /** The manifest names the gateway and wheel files (`release_artifacts` is then required). */
  readonly payloadsNamedByManifest: boolean;
  /** What the gateway and wheel files are: a plain archive and wheel, or protected payloads. */
  readonly formats: { gateway: 'tar.gz' | 'protected'; wheel: 'whl' | 'protected' };
  /** How the gateway and wheel payloads wrap their archive. */
  readonly encoding: PayloadEncoding;

  /** Whether `name` is a gateway file for `p` that a release of `version` in this era may carry. */
  isGatewayName(version: string, name: string, p: Platform): boolean;
  /** Whether `name` is a wheel file that a release of `version` in this era may carry. */
  isWheelName(version: string, name: string): boolean;
  /** The file carrying the gateway of `p` (undefined: the release names none), or why it is refused. */
  gatewayAsset(version: string, p: Platform, artifacts?: ManifestArtifacts): string | undefined | Refused;
  /** The file carrying the wheel, or why it is refused. */
  wheelAsset(version: string, artifacts?: ManifestArtifacts): string | Refused;
  /** The name the wheel is installed under once its payload is decoded (pip reads the name). */
  decodedWheelName(asset: string): string;

  /** Releases tagged in this era: whether a signature is mandatory, and the certificate identities accepted. */
  readonly signature: { required: boolean; identities(repo: string, version: string): string[] };
  /**
   * A release without upgrade-manifest.json that this era refuses: one tagged in it (`taggedHere`)
   * or one publishing its payloads (`published`: the release's file names). Undefined: no objection.
   */
  refuseWithoutManifest?(version: string, published: readonly string[], taggedHere: boolean): string | undefined;
  /** What the migrate step checks for a release of this era (its manifest, when it has one). */
  migrations(manifest: ReleaseManifestInfo | undefined): EraMigrations;
  /** The route from `from` to a release of this era. */
  route(from: string, layout: ReleaseLayout): Route;
}

/** Declares an era, keeping its name's literal type (for the registry's ReleaseEra union). */
export function defineEra<const N extends string>(era: Era<N>): Era<N> {
  return era;
}

/** This repository's release workflow, by tag (with and without `v`) and from main. */
export function releaseWorkflowIdentities(repo: string, version: string): string[] {
  const base = `https://github.com/${repo}/.github/workflows/release.yaml@`;
  return [`${base}refs/heads/main`, `${base}refs/tags/${version}`, `${base}refs/tags/v${version}`];
}
