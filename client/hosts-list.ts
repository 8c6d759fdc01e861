/**
 * Host lists (pure): `--hosts a,b,c` and hosts files (one host a line), each name checked against
 * HostNameSchema, duplicates and the fleet's size limit refused with the line that says so.
 */
import { FLEET_LIMITS } from '../workflows/fleet/fleet-types.js';
import { HostNameSchema } from '../workflows/types.js';
import { UsageError } from './errors.js';

/** One problem per line of a host list, with its line (or position) number. */
export class HostListError extends UsageError {}

/**
 * A hosts file: one host per line; `#` starts a comment (whole line or trailing); blank lines are
 * ignored; every name must pass HostNameSchema; a host listed twice is refused.
 */
export function parseHostsFile(text: string): string[] {
  const entries: Array<{ host: string; where: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line) entries.push({ host: line, where: `line ${i + 1}` });
  });
  return checkHosts(entries, 'the hosts file');
}

/** `--hosts a,b,c` (spaces around commas allowed; an empty entry is refused). */
export function parseHostsList(text: string): string[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 1 && parts[0] === '') return checkHosts([], '--hosts');
  const entries = parts.map((host, i) => {
    if (!host) throw new HostListError(`--hosts: entry ${i + 1} is empty`);
    return { host, where: `entry ${i + 1}` };
  });
  return checkHosts(entries, '--hosts');
}

function checkHosts(entries: Array<{ host: string; where: string }>, source: string): string[] {
  if (entries.length === 0) throw new HostListError(`${source} names no host`);
  if (entries.length > FLEET_LIMITS.hosts)
    throw new HostListError(`${source} names ${entries.length} hosts; at most ${FLEET_LIMITS.hosts} per rollout`);
  const seen = new Map<string, string>();
  for (const { host, where } of entries) {
    if (/\s/.test(host))
      throw new HostListError(`${source}, ${where}: one host per line (got ${JSON.stringify(host.slice(0, 40))})`);
    const r = HostNameSchema.safeParse(host);
    if (!r.success)
      throw new HostListError(
        `${source}, ${where}: invalid host ${JSON.stringify(host.slice(0, 40))}: ${r.error.issues[0]!.message}`,
      );
    const first = seen.get(host);
    if (first) throw new HostListError(`${source}, ${where}: ${host} is already listed (${first})`);
    seen.set(host, where);
  }
  return entries.map((e) => e.host);
}
