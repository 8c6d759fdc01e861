/**
 * The version of defenseclaw-upgrade, read once from the package's own package.json
 * (dist/worker/tool-version.js → ../../package.json). Nothing else hard-codes it.
 */
import fs from 'node:fs';

function readToolVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  if (typeof pkg.version !== 'string' || !pkg.version) throw new Error('package.json has no version');
  return pkg.version;
}

export const TOOL_VERSION: string = readToolVersion();
