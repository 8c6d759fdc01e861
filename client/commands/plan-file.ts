/**
 * A rollout plan file (YAML or JSON, the operator's own): ordered rings of hosts, validated with
 * RolloutPlanSchema (workflows/ring-types.ts). A refusal is one line naming the field, exit 2.
 */
import fs from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { RolloutPlanSchema, type RolloutPlan } from '../../workflows/ring-types.js';
import { UsageError } from '../errors.js';
import { flag } from './shared.js';

/** Plans are small: rings of host names. */
const MAX_PLAN_BYTES = 2 * 1024 * 1024;

export function parsePlan(text: string, source: string): RolloutPlan {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UsageError(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new UsageError(`${source} must be a mapping with a \`rings\` list`);
  return flag(RolloutPlanSchema, doc, `plan (${source})`);
}

export async function readPlanFile(file: string): Promise<RolloutPlan> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new UsageError(`--plan ${file} is not a file`);
    if (stat.size > MAX_PLAN_BYTES) throw new UsageError(`--plan ${file} is larger than ${MAX_PLAN_BYTES} bytes`);
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(
      `cannot read --plan ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parsePlan(text, file);
}
