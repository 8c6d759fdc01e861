/**
 * What a release is, as the resolve activity decided it (activities/release-eras.ts), and the route
 * from an installed version to it (bridge releases). Types and pure functions only: shared by the
 * workflows, the activities and the client. What differs between eras: workflows/eras/.
 */
import type { Route } from './eras/era.js';
import { eraNamed, type ReleaseEra } from './eras/index.js';

export type { ReleaseEra };

/** How a file's expected SHA-256 is known: its checksums.txt line, GitHub's asset digest, or nothing. */
export type VerifiedBy = 'checksums' | 'digest' | 'none';

export interface ReleaseAsset {
  name: string;
  size: number;
  /** Expected SHA-256 of the file as published (for a protected payload: of the protected file). */
  sha256?: string;
  verifiedBy: VerifiedBy;
}

export interface ReleaseManifestInfo {
  schema: 1 | 2;
  /** Migration versions that must be in the cursor's `applied` after the migrations ran. */
  requiredMigrations: string[];
  failurePolicy: 'warn' | 'fail';
  requiredBridgeVersion?: string;
  minimumSourceVersion?: string;
  autoBridgeFrom?: string[];
  /** Schema 2: the only source versions this release was tested from (the real tool refuses others). */
  testedSourceVersions?: string[];
  runtimeConfigVersion?: number;
}

export interface ReleaseLayout {
  version: string;
  era: ReleaseEra;
  /** The gateway asset per `os/arch` (a flat GoReleaser tarball, or a protected `.dcgateway`). */
  gateways: Partial<Record<string, ReleaseAsset & { format: 'tar.gz' | 'protected' }>>;
  wheel: ReleaseAsset & { format: 'whl' | 'protected' };
  /** checksums.txt as fetched when the release was resolved (its digest pins the copy downloaded later). */
  checksums?: { name: string; size: number; sha256: string; verifiedBy: 'fetched' };
  signature: {
    kind: 'sig+pem' | 'none';
    /** checksums.txt.sig and .pem, with their own expected digests. */
    files: ReleaseAsset[];
    /** checksums.txt.bundle (0.8.7+), shown; the real tool verifies checksums.txt with .sig/.pem. */
    bundle?: string;
    /** 0.8.4+: a release without a verifiable signature is refused. */
    required: boolean;
    /** Certificate identities accepted (the repository's release workflow). */
    identities: string[];
    issuer: string;
  };
  manifest?: ReleaseManifestInfo;
}

/**
 * How to get from `from` to the release: directly, or through the bridge the release's manifest
 * requires (0.8.5+ need 0.8.4 installed first). Refuses a source the release says it cannot take.
 * The rule is the release's era's (workflows/eras/).
 */
export function routeTo(from: string, layout: ReleaseLayout): Route {
  return eraNamed(layout.era).route(from, layout);
}
