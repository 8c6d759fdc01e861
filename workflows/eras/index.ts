/**
 * The registry of release eras, in tag order. A new era: its module beside these (see era.ts for
 * the interface, goreleaser.ts for the simplest one) and one line in ERAS; the era-interface test
 * (test/era-interface.test.ts) then holds it to the contract every era meets.
 *
 * The lookups everyone shares: the era of a release's files (its manifest schema), the era of a
 * tag (for the rules of releases tagged in it: signature, manifest, inventory), and whether a file
 * name is one of a release's own. Pure: imported by workflows and activities alike.
 */
import type { Platform } from '../types.js';
import { compareVersions } from '../version.js';
import { COMMON_NAMES, PLATFORMS, type Era } from './era.js';
import { goreleaser } from './goreleaser.js';
import { manifest } from './manifest.js';
import { protectedEra } from './protected.js';

export const ERAS = [goreleaser, manifest, protectedEra] as const;

export type ReleaseEra = (typeof ERAS)[number]['name'];
/** The eras' names, for a schema's enum. */
export const ERA_NAMES = ERAS.map((e) => e.name) as [ReleaseEra, ...ReleaseEra[]];

/** The era of that name. */
export function eraNamed(name: ReleaseEra): Era<ReleaseEra> {
  return ERAS.find((e) => e.name === name)!;
}

/** The era a tag belongs to (the last one begun at or before it), whose rules its release follows. */
export function eraOfTag(version: string): Era<ReleaseEra> {
  let era: Era<ReleaseEra> = ERAS[0];
  for (const e of ERAS) if (compareVersions(version, e.since) >= 0) era = e;
  return era;
}

/** The era whose releases carry a manifest of this schema (`undefined`: none); undefined for a schema no era has. */
export function eraOfManifestSchema(schema: number | undefined): Era<ReleaseEra> | undefined {
  return ERAS.find((e) => e.manifestSchema === schema);
}

/** The newest upgrade-manifest.json schema an era reads. */
export const MAX_MANIFEST_SCHEMA = Math.max(...ERAS.map((e) => e.manifestSchema ?? 0));

/** The first era whose gateway (for `platform`, else any) or wheel files include `name`. */
export function payloadEra(version: string, name: string, platform?: Platform): Era<ReleaseEra> | undefined {
  const platforms = platform ? [platform] : PLATFORMS;
  return ERAS.find((e) => e.isWheelName(version, name) || platforms.some((p) => e.isGatewayName(version, name, p)));
}

/** The platform `name` is a gateway file for, in some era's release of `version`. */
export function gatewayPlatform(version: string, name: string): Platform | undefined {
  return PLATFORMS.find((p) => ERAS.some((e) => e.isGatewayName(version, name, p)));
}

/** Whether `name` is a wheel file of some era's release of `version`. */
export function isWheelName(version: string, name: string): boolean {
  return ERAS.some((e) => e.isWheelName(version, name));
}

/** Whether `name` is a file of a release of `version` that this tool downloads. Anything else is refused. */
export function isReleaseAssetName(version: string, name: string): boolean {
  return (Object.values(COMMON_NAMES) as string[]).includes(name) || payloadEra(version, name) !== undefined;
}
