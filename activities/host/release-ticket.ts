/**
 * Release tickets (issue 14): one releases-API lookup per rollout, however many hosts.
 *
 * - issueReleaseTicket, on the worker that resolves for the rollout: resolves the release exactly
 *   as resolveRelease does (one API call, checksums.txt and the manifest read and checked, the era
 *   decided), and its bridge when the manifest requires one; answers the ticket: version, era, and
 *   each file's name, size and expected SHA-256 (workflows/release-ticket.ts).
 * - resolveFromTicket, on each host: makes no API call. It reads checksums.txt and the manifest
 *   from the host's own source (the download path, or the mirror its configuration names), refuses
 *   either when its digest is not the ticket's, and decides the layout with the host's own rules
 *   (classifyRelease with its own repository and DEFENSECLAW_ALLOW_* settings). The downloads that
 *   follow are checked against these digests and the signature verified on the host, as always.
 */
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import {
  TicketReleaseSchema,
  type ReleaseTicket,
  type TicketAsset,
  type TicketRelease,
} from '../../workflows/release-ticket.js';
import type { ReleaseAsset } from '../../workflows/release-layout.js';
import { COMMON_NAMES } from '../../workflows/eras/era.js';
import { CHECKSUMS, MANIFEST, digestOf, isReleaseAssetName } from '../release-eras.js';
import { ResolveInput, fetchRelease, headAsset, readLayout, type ResolvedRelease } from '../releases.js';
import { FailureType, refuse, validated } from '../support.js';

/** Activity (the rollout's resolver): the release resolved once, as a ticket for every host. */
export async function issueReleaseTicket(config: HostConfig, rawInput: unknown): Promise<ReleaseTicket> {
  const input = validated(ResolveInput, rawInput, 'issueReleaseTicket');
  const target = await ticketOf(config, input.version);
  const bridgeVersion = target.bridgeVersion;
  if (!bridgeVersion) return target.ticket;
  const bridge = await ticketOf(config, bridgeVersion);
  return { ...target.ticket, bridge: bridge.ticket };
}

async function ticketOf(
  config: HostConfig,
  version?: string,
): Promise<{ ticket: TicketRelease; bridgeVersion?: string }> {
  const release = await fetchRelease(config, version);
  const { layout, manifestFile } = await readLayout(config, release);
  const file = (a: Pick<ReleaseAsset, 'name' | 'size' | 'sha256'>): TicketAsset => ({
    name: a.name,
    size: a.size,
    ...(a.sha256 ? { sha256: a.sha256 } : {}),
  });
  const assets: TicketAsset[] = [];
  if (layout.checksums) assets.push(file(layout.checksums));
  if (manifestFile) assets.push(file({ name: MANIFEST, ...manifestFile }));
  for (const g of Object.values(layout.gateways)) if (g) assets.push(file(g));
  assets.push(file(layout.wheel));
  for (const f of layout.signature.files) assets.push(file(f));
  const bundle = release.assets.find((a) => a.name === layout.signature.bundle);
  if (bundle) assets.push(file({ name: bundle.name, size: bundle.size, sha256: digestOf(bundle.digest) }));
  return {
    ticket: { version: release.version, era: layout.era, assets },
    bridgeVersion: layout.manifest?.requiredBridgeVersion,
  };
}

const FromTicketInput = z.object({ release: TicketReleaseSchema }).strict();
export type FromTicketInput = z.input<typeof FromTicketInput>;

/** Activity (each host): the release a ticket describes, read from this host's own source. No API call. */
export async function resolveFromTicket(config: HostConfig, rawInput: unknown): Promise<ResolvedRelease> {
  const { release: ticket } = validated(FromTicketInput, rawInput, 'resolveFromTicket');
  const { version } = ticket;
  for (const a of ticket.assets) {
    if (!isReleaseAssetName(version, a.name)) {
      throw refuse(
        FailureType.InvalidInput,
        `the release ticket names ${JSON.stringify(a.name)}, which is not a file of release ${version}; refused`,
      );
    }
  }
  const names = new Set(ticket.assets.map((a) => a.name));
  const release: ResolvedRelease = {
    version,
    assets: ticket.assets.map((a) => ({
      name: a.name,
      size: a.size,
      ...(a.sha256 ? { digest: `sha256:${a.sha256}` } : {}),
    })),
    signed: names.has(COMMON_NAMES.signature) && names.has(COMMON_NAMES.certificate),
  };
  if (!release.signed) await refuseHiddenSignature(config, version);
  if (!names.has(CHECKSUMS)) await refuseHiddenChecksums(config, version);
  const { layout } = await readLayout(config, release, { pinChecksums: true });
  if (layout.era !== ticket.era) {
    throw refuse(
      FailureType.InvalidInput,
      `the release ticket says release ${version} is of the ${ticket.era} era, its files say ${layout.era}; refused`,
    );
  }
  return { ...release, layout };
}

/** Whether the host's own source has a file of the release (HEAD; 404 is no). */
async function sourceHas(config: HostConfig, version: string, name: string): Promise<boolean> {
  const res = await headAsset(config, version, name, `checking for ${name}`);
  if (res.status === 404) return false;
  if (res.status !== 200) throw new Error(`checking for ${name} answered HTTP ${res.status}`);
  return true;
}

/** A ticket without the signature, for a release whose source publishes one, would skip its check: refused. */
async function refuseHiddenSignature(config: HostConfig, version: string): Promise<void> {
  if (await sourceHas(config, version, COMMON_NAMES.signature)) {
    throw refuse(
      FailureType.SignatureMissing,
      `the release ticket lists no signature for release ${version}, but this host's source publishes checksums.txt.sig; refused`,
    );
  }
}

/** Likewise for checksums.txt: a ticket cannot make a host skip the file that covers the others. */
async function refuseHiddenChecksums(config: HostConfig, version: string): Promise<void> {
  if (await sourceHas(config, version, CHECKSUMS)) {
    throw refuse(
      FailureType.ChecksumsMissing,
      `the release ticket lists no checksums.txt for release ${version}, but this host's source publishes one; refused`,
    );
  }
}
