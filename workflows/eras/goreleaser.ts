/**
 * The GoReleaser era (0.3.x – 0.6.0): GoReleaser's archives `defenseclaw_{v}_{os}_{arch}.tar.gz`
 * and the wheel `defenseclaw-{v}-py3-none-any.whl`, no upgrade-manifest.json. checksums.txt lists
 * the archives only; the wheel is covered by GitHub's asset digest (the common rule in
 * activities/release-eras.ts). The signature is optional and may come from the release workflow at
 * the tag or on main. Migrations: the registry's versions in (from, to], a missing one fails. No
 * bridge. Sources: `.goreleaser.yaml`, `.github/workflows/release.yaml` at 0.3.0 … 0.6.0.
 */
import type { Platform } from '../types.js';
import { defineEra, releaseWorkflowIdentities } from './era.js';

/** GoReleaser's archive of the gateway for a platform (`name_template`). */
export const tarballName = (version: string, p: Platform): string => `defenseclaw_${version}_${p.os}_${p.arch}.tar.gz`;
/** The wheel `make dist-cli` builds. */
export const wheelName = (version: string): string => `defenseclaw-${version}-py3-none-any.whl`;

export const goreleaser = defineEra({
  name: 'goreleaser',
  since: '0.0.0',
  payloadsNamedByManifest: false,
  formats: { gateway: 'tar.gz', wheel: 'whl' },
  encoding: { kind: 'plain' },
  isGatewayName: (version, name, p) => name === tarballName(version, p),
  isWheelName: (version, name) => name === wheelName(version),
  gatewayAsset: (version, p) => tarballName(version, p),
  wheelAsset: (version) => wheelName(version),
  decodedWheelName: (asset) => asset,
  signature: { required: false, identities: releaseWorkflowIdentities },
  migrations: () => ({}),
  route: () => ({}),
});
