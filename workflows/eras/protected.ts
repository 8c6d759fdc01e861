/**
 * The protected era (0.8.4 – 0.8.10): scripts/release_candidate.py wraps each GoReleaser archive
 * and the wheel into protected payloads, `defenseclaw_{v}_protocol2_{os}_{arch}.dcgateway` and
 * `defenseclaw-{v}-2-py3-none-any.dcwheel` (the line `DEFENSECLAW-PROTECTED-ARTIFACT-V1\n`, then
 * every byte XOR 0xA5), and overwrites the canonical names with plain-text refusal envelopes. The
 * payloads are the ones upgrade-manifest.json schema 2 names (`release_artifacts`); checksums.txt
 * lists exactly the payloads. The signature is mandatory, from the release workflow on main only,
 * as the real upgrader requires; a release tagged here without a manifest is refused. Migrations
 * and the bridge (0.8.5+ through 0.8.4, and the tested source versions) come from the manifest.
 * Sources: scripts/release_candidate.py, scripts/generate-upgrade-manifest.py, cmd_upgrade.py at
 * 0.8.4 … 0.8.10. The I/O of decoding is activities/host/protected-artifact.ts, with this encoding.
 */
import type { Platform } from '../types.js';
import { PLATFORMS, defineEra, escapeRegExp, releaseWorkflowIdentities, type PayloadEncoding } from './era.js';
import { manifest, manifestRoute } from './manifest.js';

/** The first protected release (and the first whose signature is mandatory). */
const SINCE = '0.8.4';

/** `release_candidate.py` `PROTECTED_ARTIFACT_MAGIC` and `PROTECTED_ARTIFACT_XOR_BYTE`; the real upgrader's 2 GiB bound. */
export const PROTECTED_ENCODING = {
  kind: 'xor',
  magic: 'DEFENSECLAW-PROTECTED-ARTIFACT-V1\n',
  xor: 0xa5,
  maxBytes: 2 * 1024 * 1024 * 1024,
} as const satisfies PayloadEncoding;

const gatewayPattern = (version: string, p: Platform) =>
  new RegExp(`^defenseclaw_${escapeRegExp(version)}_protocol2_${p.os}_${p.arch}\\.dcgateway$`);
const wheelPattern = (version: string) =>
  new RegExp(`^defenseclaw-${escapeRegExp(version)}-[0-9]{1,3}-py3-none-any\\.dcwheel$`);

/**
 * What a protected release's canonical names hold (`release_candidate.py` `_refusal_envelope_payload`):
 * "DefenseClaw {v} requires the 0.8.4 upgrade bridge. …", then "No changes were made. …". Read from
 * the first 512 bytes of a file as latin1 text.
 */
export function isRefusalEnvelopeText(head: string): boolean {
  return /^DefenseClaw \S+ /.test(head) && /No changes were made/.test(head);
}

export const protectedEra = defineEra({
  name: 'protected',
  since: SINCE,
  manifestSchema: 2,
  payloadsNamedByManifest: true,
  formats: { gateway: 'protected', wheel: 'protected' },
  encoding: PROTECTED_ENCODING,
  isGatewayName: (version, name, p) => gatewayPattern(version, p).test(name),
  isWheelName: (version, name) => wheelPattern(version).test(name),
  gatewayAsset(version, p, artifacts) {
    const name = artifacts?.gateways[p.os]?.[p.arch];
    if (name === undefined) return undefined;
    if (!gatewayPattern(version, p).test(name)) {
      return { refused: `upgrade-manifest.json names an unexpected gateway asset for ${p.os}/${p.arch}` };
    }
    return name;
  },
  wheelAsset(version, artifacts) {
    if (!artifacts || !wheelPattern(version).test(artifacts.wheel)) {
      return { refused: 'upgrade-manifest.json names an unexpected wheel asset' };
    }
    return artifacts.wheel;
  },
  decodedWheelName: (asset) => asset.replace(/\.dcwheel$/, '.whl'),
  signature: { required: true, identities: (repo, version) => [releaseWorkflowIdentities(repo, version)[0]!] },
  refuseWithoutManifest(version, published, taggedHere) {
    if (taggedHere) {
      return `release ${version} has no upgrade-manifest.json; every release from ${SINCE} must carry one (its canonical assets are refusal envelopes)`;
    }
    const payload = (n: string) =>
      wheelPattern(version).test(n) || PLATFORMS.some((p) => gatewayPattern(version, p).test(n));
    if (published.some(payload)) {
      return `release ${version} publishes protected payloads but no upgrade-manifest.json; refusing its canonical assets (refusal envelopes)`;
    }
    return undefined;
  },
  migrations: manifest.migrations,
  route: manifestRoute,
});
