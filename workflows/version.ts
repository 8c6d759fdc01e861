/**
 * Versions and the one-line validation errors: strict MAJOR.MINOR.PATCH, their order, and parsing
 * with a schema. A leaf (zod only), so that the release eras (workflows/eras/) and the release
 * ticket can compare versions without importing types.ts, which imports them. types.ts re-exports
 * all of it.
 */
import { z } from 'zod';

/** Strict MAJOR.MINOR.PATCH, no leading zeros, each part at most 9 digits. */
const STRICT_VERSION = /^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$/;

/** Error thrown by the validators; the client turns it into a one-line usage error (exit 2). */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

function describe(value: unknown): string {
  let s: string;
  try {
    s = typeof value === 'string' ? value : String(value);
  } catch {
    // e.g. {"toString": 0} from a hostile JSON payload: String() throws a TypeError, which would
    // fail the workflow task (retried forever) instead of refusing the input.
    s = Object.prototype.toString.call(value);
  }
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

export const VersionSchema = z
  .string()
  .max(64)
  .transform((s) => (s.startsWith('v') ? s.slice(1) : s))
  .refine((s) => STRICT_VERSION.test(s), { message: 'expected MAJOR.MINOR.PATCH such as 0.3.1' });

/** Parses with a schema; a failure becomes one line naming the field and what was refused. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length ? issue.path.join('.') : what;
  let value: unknown = input;
  for (const k of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
  const extra = issue.code === 'unrecognized_keys' ? ` (${issue.keys.map((k) => describe(k)).join(', ')})` : '';
  const shown = issue.code === 'unrecognized_keys' || value === undefined ? '' : ` ${describe(value)}`;
  throw new InvalidInputError(`invalid ${path}${shown}: ${issue.message}${extra}`);
}

/** Accepts `0.3.1` or `v0.3.1`; returns `0.3.1`. Throws InvalidInputError otherwise. */
export function parseVersion(input: unknown): string {
  return parseWith(VersionSchema, input, 'version');
}

export function isVersion(input: unknown): input is string {
  return typeof input === 'string' && STRICT_VERSION.test(input);
}

/** -1, 0 or 1, for two strict versions. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a).split('.').map(Number);
  const pb = parseVersion(b).split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
