/**
 * The manifest era (0.6.1 – 0.8.3): GoReleaser's files (goreleaser.ts) plus upgrade-manifest.json
 * schema 1 (scripts/generate-upgrade-manifest.py). checksums.txt is `make dist-checksums` over all
 * of dist/, so it lists the wheel too. The manifest's `required_cli_migrations` must be in the
 * cursor after the migrations ran, with its `migration_failure_policy`; its bridge fields, when it
 * has them, decide the route (manifestRoute, which the protected era shares). Signature as in the
 * GoReleaser era. Sources: `.github/workflows/release.yaml`, `Makefile` at 0.6.1 … 0.8.3.
 */
import type { ReleaseLayout } from '../release-layout.js';
import { compareVersions } from '../version.js';
import { defineEra, releaseWorkflowIdentities, type Route } from './era.js';
import { goreleaser } from './goreleaser.js';

/**
 * The route a manifest gives: through the bridge it requires (0.8.5+ need 0.8.4 installed first)
 * when the source is older than its minimum; refused when the source is the bridge or newer but still
 * below the minimum, or (schema 2) not among the source versions the release was tested from.
 */
export function manifestRoute(from: string, layout: ReleaseLayout): Route {
  const m = layout.manifest;
  if (!m) return {};
  if (m.minimumSourceVersion && compareVersions(from, m.minimumSourceVersion) < 0) {
    const bridge = m.requiredBridgeVersion!;
    if (compareVersions(from, bridge) >= 0) {
      return { refused: `DefenseClaw ${layout.version} needs ${m.minimumSourceVersion} or later installed first` };
    }
    return { bridge };
  }
  if (m.testedSourceVersions && !m.testedSourceVersions.includes(from)) {
    return {
      refused: `DefenseClaw ${layout.version} was not tested from ${from} (its manifest lists ${m.testedSourceVersions.slice(0, 4).join(', ')}${m.testedSourceVersions.length > 4 ? ', …' : ''}); the real upgrader refuses it too`,
    };
  }
  return {};
}

export const manifest = defineEra({
  ...goreleaser,
  name: 'manifest',
  since: '0.6.1',
  manifestSchema: 1,
  signature: { required: false, identities: releaseWorkflowIdentities },
  migrations: (m) => (m ? { required: m.requiredMigrations, failurePolicy: m.failurePolicy } : {}),
  route: manifestRoute,
});
