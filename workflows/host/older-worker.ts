/**
 * A host worker of an earlier release (host workers are upgraded whenever, issue 18) lacks the
 * activities added after it: it answers their tasks with a NotFoundError "is not registered on this
 * Worker". A run that calls a newer activity lists that type as non-retryable and, on it, takes the
 * path the older worker knows.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The failure type a worker answers for an activity it does not register. */
export const NOT_REGISTERED = 'NotFoundError';

/** Whether an activity failed because this host's worker predates it. */
export function notRegistered(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === NOT_REGISTERED &&
    /is not registered on this Worker/.test(err.cause.message)
  );
}
