/**
 * The running package: its directory (the one holding package.json and dist/), its version
 * (TOOL_VERSION, read once from that package.json) and the launcher it ships.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
export { TOOL_VERSION as PACKAGE_VERSION } from '../tool-version.js';

/** dist/worker/service/package-info.js → the package directory. */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The launcher as the package ships it (worker/launcher/launcher.ts, compiled). */
export const LAUNCHER_SOURCE = path.join(PACKAGE_DIR, 'dist', 'worker', 'launcher', 'launcher.js');
