/**
 * The names every process shares, checked without a validation library: a host's name, its task
 * queue, the search attributes, and the one-line error the validators throw.
 *
 * A leaf that imports nothing at run time (zod's types only), so that an idle host worker, which
 * needs only these at start, holds no schema library (issue 21). types.ts builds its zod schemas
 * from the same rules and re-exports all of it.
 */
import type { z } from 'zod';

/** Error thrown by the validators; the client turns it into a one-line usage error (exit 2). */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/** A value as a refusal quotes it: a string of at most 40 characters, JSON-quoted. */
export function describeValue(value: unknown): string {
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

/** Parses with a schema; a failure becomes one line naming the field and what was refused. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length ? issue.path.join('.') : what;
  let value: unknown = input;
  for (const k of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
  const extra = issue.code === 'unrecognized_keys' ? ` (${issue.keys.map((k) => describeValue(k)).join(', ')})` : '';
  const shown = issue.code === 'unrecognized_keys' || value === undefined ? '' : ` ${describeValue(value)}`;
  throw new InvalidInputError(`invalid ${path}${shown}: ${issue.message}${extra}`);
}

/** A string field checked against a pattern, refused in the validators' one-line form. */
export interface TextRule {
  pattern: RegExp;
  message: string;
}

/** `invalid <what> "<value>": <message>` unless `input` is a string the rule accepts. */
export function checkText(rule: TextRule, input: unknown, what: string): string {
  if (typeof input !== 'string') {
    const shown = input === undefined ? '' : ` ${describeValue(input)}`;
    throw new InvalidInputError(`invalid ${what}${shown}: Invalid input: expected string, received ${typeOf(input)}`);
  }
  if (!rule.pattern.test(input))
    throw new InvalidInputError(`invalid ${what} ${describeValue(input)}: ${rule.message}`);
  return input;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A host's name: what its task queue, workflow IDs and backups are named after. */
export const HOST_NAME: TextRule = {
  pattern: /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
  message: "letters, digits, '.', '_' and '-' only (max 63)",
};

/** Prefix of a host's task queue: `defenseclaw-upgrade@<host>`. */
export const TASK_QUEUE_PREFIX = 'defenseclaw-upgrade@';

export function parseHostName(input: unknown): string {
  return checkText(HOST_NAME, input, 'host');
}

export function taskQueueForHost(host: string): string {
  return `${TASK_QUEUE_PREFIX}${parseHostName(host)}`;
}

/** Search attributes (all Keyword), registered on the dev server and in the compose stack. */
export const SEARCH_ATTRIBUTES = {
  host: 'DefenseClawHost',
  fromVersion: 'DefenseClawFromVersion',
  toVersion: 'DefenseClawToVersion',
  outcome: 'DefenseClawOutcome',
  fleetId: 'DefenseClawFleetId',
} as const;
