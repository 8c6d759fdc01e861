/**
 * This package's version, read once from its own package.json (dist/worker/tool-version.js →
 * ../../package.json): what `--tool-version` prints, what every worker reports to Temporal in its
 * identity (worker/identity.ts) and what the local agent records. Nothing else spells the version.
 */
import { readFileSync } from 'node:fs';
import validSemver from 'semver/functions/valid.js';

function readToolVersion(): string {
  const file = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
  const v = typeof pkg.version === 'string' ? pkg.version : '';
  if (pkg.name !== 'defenseclaw-upgrade' || validSemver(v) !== v) {
    throw new Error(`${file.pathname}: not defenseclaw-upgrade's package.json with a valid version`);
  }
  return v;
}

export const TOOL_VERSION: string = readToolVersion();
