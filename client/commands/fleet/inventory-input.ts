/**
 * The flags of `fleet inventory` and its schedule: which hosts (`--hosts`, `--hosts-file` or a
 * plan's rings) and the bounded options, turned into a validated inventory input.
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { INVENTORY_LIMITS, type InventoryInput } from '../../../workflows/fleet/inventory-types.js';
import { VersionSchema } from '../../../workflows/types.js';
import { UsageError, oneLine } from '../../errors.js';
import { parseHostsFile, parseHostsList } from '../../hosts-list.js';
import { readPlanFile } from '../../rollout-plan.js';
import { flag, seconds } from '../shared.js';

export interface HostSourceFlags {
  hosts?: string;
  hostsFile?: string;
  plan?: string;
}

export interface InventoryFlags extends HostSourceFlags {
  behind?: string;
  json?: boolean;
  cached?: boolean;
  concurrency?: string;
  answerTimeout?: string;
  fleetQueue?: string;
}

/** The hosts of `--hosts`, `--hosts-file` or `--plan` (every ring's hosts, in order). */
export async function hostsFromFlags(flags: HostSourceFlags): Promise<string[]> {
  const given = [flags.hosts, flags.hostsFile, flags.plan].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new UsageError('give the hosts with exactly one of --hosts a,b,c, --hosts-file FILE or --plan FILE');
  if (flags.hosts !== undefined) return parseHostsList(flags.hosts);
  if (flags.plan !== undefined) {
    const plan = await readPlanFile(flags.plan);
    return [...new Set(plan.rings.flatMap((r) => r.hosts))];
  }
  let text: string;
  try {
    text = await fs.readFile(flags.hostsFile!, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read the hosts file ${flags.hostsFile}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`,
    );
  }
  return parseHostsFile(text);
}

/** `--behind X.Y.Z` or `--behind latest`. */
export function behindFlag(value: string | undefined): string | undefined {
  if (value === undefined || value === 'latest') return value;
  return flag(VersionSchema, value, '--behind');
}

function whole(value: string | undefined, name: string, limits: { min: number; max: number }): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(n >= limits.min && n <= limits.max))
    throw new UsageError(
      `${name} must be a whole number from ${limits.min} to ${limits.max}, got ${JSON.stringify(value)}`,
    );
  return n;
}

export async function inventoryInputFromFlags(flags: InventoryFlags): Promise<InventoryInput> {
  const hosts = await hostsFromFlags(flags);
  const answer = seconds(flags.answerTimeout, '--answer-timeout', INVENTORY_LIMITS.answerSeconds);
  return {
    hosts,
    ...(flags.concurrency !== undefined
      ? { concurrency: whole(flags.concurrency, '--concurrency', INVENTORY_LIMITS.concurrency) }
      : {}),
    ...(answer !== undefined ? { answerSeconds: answer } : {}),
  };
}

export function addHostSourceOptions(cmd: Command): Command {
  return cmd
    .option('--hosts <a,b,c>', 'the hosts, comma-separated')
    .option('--hosts-file <file>', 'the hosts, one per line (# comments and blank lines allowed)')
    .option('--plan <file>', "a rollout plan's hosts (every ring)");
}
