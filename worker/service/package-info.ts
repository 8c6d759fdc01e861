/**
 * The running package: its directory (the one holding package.json and dist/) and its version,
 * read once from its own package.json, as worker/tool-version.ts reads TOOL_VERSION.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/worker/service/package-info.js → the package directory. */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }
).version;

/** The launcher as the package ships it (worker/launcher/launcher.ts, compiled). */
export const LAUNCHER_SOURCE = path.join(PACKAGE_DIR, 'dist', 'worker', 'launcher', 'launcher.js');
