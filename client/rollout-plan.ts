/**
 * A ring rollout plan file (YAML): read, with each ring's `hostsFile` (one host a line, relative to
 * the plan) expanded into `hosts`, then checked against RolloutPlanSchema and the time zones this
 * machine knows. Every refusal is one line that names the file and the place in it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { checkTimeZone } from '../workflows/fleet/maintenance-window.js';
import { RolloutPlanSchema, type RolloutPlan } from '../workflows/fleet/ring-types.js';
import { parseHostsFile } from './hosts-list.js';
import { UsageError } from './errors.js';

const MAX_PLAN_BYTES = 1024 * 1024;

async function readText(file: string, what: string): Promise<string> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!st.isFile()) throw new UsageError(`${what} ${file} is not a file`);
  if (st.size > MAX_PLAN_BYTES) throw new UsageError(`${what} ${file} is larger than 1 MiB`);
  return fs.readFile(file, 'utf8');
}

/** The plan in `text` (YAML or JSON); `dir` is where `hostsFile` paths are relative to. */
export async function parsePlan(text: string, where: string, dir: string): Promise<RolloutPlan> {
  let raw: unknown;
  try {
    // logLevel silent: yaml's warnings quote the source on stderr (and then errors are only listed).
    const doc = YAML.parseDocument(text, { logLevel: 'silent' });
    if (doc.errors.length) throw doc.errors[0];
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new UsageError(`${where}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new UsageError(`${where}: a plan is a mapping with \`rings:\``);
  const rings = (raw as { rings?: unknown }).rings;
  if (Array.isArray(rings)) {
    for (const [i, ring] of rings.entries()) {
      if (!ring || typeof ring !== 'object' || !('hostsFile' in ring)) continue;
      const r = ring as Record<string, unknown>;
      if (typeof r.hostsFile !== 'string') throw new UsageError(`${where}: rings.${i}.hostsFile must be a path`);
      if (r.hosts !== undefined) throw new UsageError(`${where}: rings.${i} has both hosts and hostsFile`);
      const file = path.resolve(dir, r.hostsFile);
      let hosts: string[];
      try {
        hosts = parseHostsFile(await readText(file, 'the hosts file'));
      } catch (err) {
        throw new UsageError(`${where}: rings.${i}.hostsFile: ${(err as Error).message}`);
      }
      delete r.hostsFile;
      r.hosts = hosts;
    }
  }
  const parsed = RolloutPlanSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.length ? `${issue.path.join('.')}: ` : '';
    throw new UsageError(`${where}: ${at}${issue.message}`);
  }
  for (const [i, ring] of parsed.data.rings.entries()) {
    if (!ring.window) continue;
    try {
      checkTimeZone(ring.window.timeZone);
    } catch (err) {
      throw new UsageError(`${where}: rings.${i}.window.timeZone: ${(err as Error).message}`);
    }
  }
  return parsed.data;
}

/** Reads and checks a plan file. */
export async function readPlanFile(file: string): Promise<RolloutPlan> {
  return parsePlan(await readText(file, 'the plan'), file, path.dirname(path.resolve(file)));
}
