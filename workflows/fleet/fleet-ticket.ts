/**
 * The fleet's one release lookup (issue 14). A rollout resolves its release once and hands every
 * host run the same ticket (release-ticket.ts), so that hosts make no releases-API calls: one
 * lookup (two with a bridge release) per rollout, however many hosts.
 *
 * The ticket is the one the fleet's input carries (a parent rollout resolved it), or one issued on
 * the resolver's worker, the host whose configuration the rollout trusts to ask the releases API.
 */
import type { ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities } from '../../activities/host/index.js';
import type { ReleaseTicket } from '../release-ticket.js';

export async function rolloutTicket(
  acts: ActivityInterfaceFor<Activities>,
  input: { ticket?: ReleaseTicket; version?: string },
  summary: string,
): Promise<ReleaseTicket> {
  if (input.ticket) return input.ticket;
  return acts.issueReleaseTicket.executeWithOptions({ summary }, [{ version: input.version }]);
}

/** What each host run's input gets: the ticket, when the rollout has one. */
export function ticketArgs(ticket: ReleaseTicket | undefined): { ticket?: ReleaseTicket } {
  return ticket ? { ticket } : {};
}
