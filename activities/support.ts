/**
 * What every activity shares: re-validating input at the boundary, typed non-retryable
 * refusals, a heartbeat that keeps ticking while a long command runs, and scrubbing secrets.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { InvalidInputError, parseWith } from '../workflows/names.js';

/** Failure types the workflow and the client understand. */
export const FailureType = {
  InvalidInput: 'InvalidInput',
  NotFound: 'NotFound',
  RateLimited: 'RateLimited',
  ChecksumMismatch: 'ChecksumMismatch',
  ChecksumsMissing: 'ChecksumsMissing',
  UnsafeArchive: 'UnsafeArchive',
  UnsafeRedirect: 'UnsafeRedirect',
  TooLarge: 'TooLarge',
  UnsafePath: 'UnsafePath',
  Unsupported: 'UnsupportedPlatform',
  CommandFailed: 'CommandFailed',
  HealthTimeout: 'HealthTimeout',
  StopNotProven: 'StopNotProven',
  BackupInvalid: 'BackupInvalid',
  VersionMismatch: 'VersionMismatch',
  HostMismatch: 'HostMismatch',
  SignatureInvalid: 'SignatureInvalid',
  SignatureIdentity: 'SignatureIdentity',
  SignatureMissing: 'SignatureMissing',
  MigrationsIncomplete: 'MigrationsIncomplete',
  RouteRefused: 'RouteRefused',
} as const;

/** A refusal that no retry can fix. The message must be safe to show and store. */
export function refuse(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/** Re-validates an activity's input with its schema; anything else is refused, not retried. */
export function validated<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  try {
    return parseWith(schema, input, what);
  } catch (err) {
    if (err instanceof InvalidInputError) throw refuse(FailureType.InvalidInput, `${what}: ${err.message}`);
    throw err;
  }
}

/** The activity context when running under a worker; undefined in direct calls (bench, unit tests). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

export function heartbeat(details?: unknown): void {
  activityContext()?.heartbeat(details);
}

export function cancellationSignal(): AbortSignal | undefined {
  return activityContext()?.cancellationSignal;
}

/** Details recorded by the last heartbeat of a previous attempt of this activity. */
export function lastHeartbeat<T>(): T | undefined {
  return activityContext()?.info.heartbeatDetails as T | undefined;
}

/**
 * Runs `fn` while heartbeating every second, so that a killed worker is noticed within the
 * heartbeat timeout (seconds) instead of the start-to-close timeout (minutes).
 */
export async function withHeartbeat<T>(fn: () => Promise<T>, details?: () => unknown): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return fn();
  ctx.heartbeat(details?.());
  const timer = setInterval(() => ctx.heartbeat(details?.()), 1000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Replaces every occurrence of the given secrets (and bearer headers) in a text. */
export function scrub(text: string, secrets: Array<string | undefined>): string {
  let out = text.replace(/(authorization\s*[:=]\s*)(bearer\s+)?[^\s,'"}]+/gi, '$1[redacted]');
  out = out.replace(/\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g, '[redacted]');
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  }
  return out;
}
