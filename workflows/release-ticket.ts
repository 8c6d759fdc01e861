/**
 * A release ticket (issue 14: one release lookup per rollout). The fleet's controller resolves and
 * checks the release once, through the releases API, and hands every host run this ticket: the
 * version, its era, and for each file a host may fetch its name, size and expected SHA-256 (and
 * the same for the bridge release when the target's manifest requires one).
 *
 * A version and digests are harmless in an input: the ticket holds no URL, path or command. A host
 * given one makes no API call; it still downloads every file from its own configured source (or
 * the mirror its own configuration names), re-reads checksums.txt and the manifest, checks every
 * file against these digests and verifies the signature itself (activities/host/release-ticket.ts).
 *
 * Pure and deterministic (zod and the era registry only; no import of types.ts, which imports this).
 */
import { z } from 'zod';
import { ERA_NAMES } from './eras/index.js';

/**
 * patched() id of the ticket (issue 14): a host run given a rollout's ticket reads the release from
 * it, and a fleet issues one; runs recorded before tickets resolved with resolveRelease, and replay so.
 */
export const RELEASE_TICKET = 'release-ticket';

export const TICKET_LIMITS = {
  /** Files per release in a ticket (a host needs at most ~12: 4 gateways, wheel, checksums, manifest, signature). */
  assets: 24,
  /** The largest file size a ticket may declare (1 TiB; each host has its own, smaller cap). */
  bytes: 2 ** 40,
} as const;

/** Strict MAJOR.MINOR.PATCH, as VersionSchema in types.ts accepts it after its `v` is dropped. */
const TicketVersion = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$/, 'expected MAJOR.MINOR.PATCH');

/** A release file's name: never a path. The host also checks it is one of the release's own names. */
const TicketAssetName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/, 'a release file name (no path)');

export const TicketAssetSchema = z
  .object({
    name: TicketAssetName,
    size: z.number().int().min(0).max(TICKET_LIMITS.bytes),
    /** Expected SHA-256 (its checksums.txt line, else GitHub's digest); absent when nothing covered it. */
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex')
      .optional(),
  })
  .strict();
export type TicketAsset = z.infer<typeof TicketAssetSchema>;

/** One release as a ticket describes it. */
export const TicketReleaseSchema = z
  .object({
    version: TicketVersion,
    era: z.enum(ERA_NAMES),
    assets: z
      .array(TicketAssetSchema)
      .min(1)
      .max(TICKET_LIMITS.assets)
      .refine((a) => new Set(a.map((x) => x.name)).size === a.length, { message: 'a file is listed twice' }),
  })
  .strict();
export type TicketRelease = z.infer<typeof TicketReleaseSchema>;

/** The target release, and the bridge it requires (0.8.5+ need 0.8.4 installed first), if any. */
export const ReleaseTicketSchema = TicketReleaseSchema.extend({ bridge: TicketReleaseSchema.optional() })
  .strict()
  .refine((t) => t.bridge?.version !== t.version, { message: 'the bridge is the target itself', path: ['bridge'] });
export type ReleaseTicket = z.infer<typeof ReleaseTicketSchema>;

/** The ticket's release of `version` (the target, or its bridge), without the bridge field. */
export function ticketRelease(ticket: ReleaseTicket, version: string): TicketRelease | undefined {
  if (ticket.version === version) return { version: ticket.version, era: ticket.era, assets: ticket.assets };
  return ticket.bridge?.version === version ? ticket.bridge : undefined;
}
