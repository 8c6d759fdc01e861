/**
 * Versions and the one-line validation errors: strict MAJOR.MINOR.PATCH, their order, and parsing
 * with a schema. A leaf (zod and names.ts only), so that the release eras (workflows/eras/) and the
 * release ticket can compare versions without importing types.ts, which imports them. types.ts
 * re-exports all of it.
 */
import { z } from 'zod';
import { parseWith } from './names.js';

export { InvalidInputError, parseWith } from './names.js';

/** Strict MAJOR.MINOR.PATCH, no leading zeros, each part at most 9 digits. */
const STRICT_VERSION = /^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$/;

export const VersionSchema = z
  .string()
  .max(64)
  .transform((s) => (s.startsWith('v') ? s.slice(1) : s))
  .refine((s) => STRICT_VERSION.test(s), { message: 'expected MAJOR.MINOR.PATCH such as 0.3.1' });

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
