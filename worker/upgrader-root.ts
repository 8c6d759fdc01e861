/**
 * The upgrader root (DEFENSECLAW_UPGRADER_ROOT) as the launcher lays it out: versions/<v>,
 * `current`/`previous` links, switch.json, ready/<v>, reverts.jsonl, launcher.pid. The launcher
 * itself (worker/launcher/launcher.ts) keeps its own copy of the few helpers it needs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkText, type TextRule } from '../workflows/names.js';

/** A version of defenseclaw-upgrade as the root names it: X.Y.Z with an optional prerelease, at most 64 characters. */
export const UPGRADER_VERSION: TextRule = {
  pattern:
    /^(?=.{1,64}$)(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+){0,4})?$/,
  message: 'expected an upgrader version X.Y.Z (optionally -prerelease)',
};

export function isUpgraderVersion(v: string): boolean {
  return UPGRADER_VERSION.pattern.test(v);
}

/** `v` when it is an upgrader version; else a one-line InvalidInputError. */
export function upgraderVersion(v: unknown): string {
  return checkText(UPGRADER_VERSION, v, 'upgrader version');
}

export const DEFAULT_SWITCH_DEADLINE_SECONDS = 120;

/** The default root: /opt/defenseclaw-upgrade as root, else the user's data directory. */
export function defaultUpgraderRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/opt/defenseclaw-upgrade';
  const data = env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share');
  return path.join(data, 'defenseclaw-upgrade');
}

export function upgraderRootFrom(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DEFENSECLAW_UPGRADER_ROOT || defaultUpgraderRoot(env));
}

/** This process runs under the launcher (it set both variables). */
export function underLauncher(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DEFENSECLAW_UPGRADER_LAUNCHER === '1' && Boolean(env.DEFENSECLAW_UPGRADER_ROOT);
}

export interface SwitchRecord {
  schema: 1;
  from: string;
  to: string;
  startedAt: string;
  deadlineSeconds: number;
}

export interface RevertRecord {
  at: string;
  from: string;
  to: string;
  reason: string;
}

export function rootPaths(root: string) {
  return {
    root,
    versions: path.join(root, 'versions'),
    current: path.join(root, 'current'),
    previous: path.join(root, 'previous'),
    switchFile: path.join(root, 'switch.json'),
    readyDir: path.join(root, 'ready'),
    reverts: path.join(root, 'reverts.jsonl'),
    launcherPid: path.join(root, 'launcher.pid'),
    staging: path.join(root, '.staging'),
  };
}

export function versionDir(root: string, version: string): string {
  return path.join(root, 'versions', upgraderVersion(version));
}

/** The version a link points at (versions/<v> → <v>), or undefined. */
export async function linkedVersion(link: string): Promise<string | undefined> {
  try {
    const v = path.basename(await fsp.readlink(link));
    return isUpgraderVersion(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Points `<root>/<name>` at versions/<v>, atomically (a temporary symlink renamed over it). */
export async function pointLink(root: string, name: 'current' | 'previous', version: string): Promise<void> {
  const tmp = path.join(root, `.${name}.${process.pid}.${Date.now()}.tmp`);
  await fsp.symlink(path.join('versions', upgraderVersion(version)), tmp);
  await fsp.rename(tmp, path.join(root, name));
}

/** Writes a file atomically (tmp + rename), 0644. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, text, { mode: 0o644 });
  await fsp.rename(tmp, file);
}

/** The launcher's reverts, oldest first (a garbled line is skipped). */
export async function readReverts(root: string): Promise<RevertRecord[]> {
  let text: string;
  try {
    text = await fsp.readFile(rootPaths(root).reverts, 'utf8');
  } catch {
    return [];
  }
  const out: RevertRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as RevertRecord;
      if (typeof r.from === 'string' && typeof r.to === 'string') out.push(r);
    } catch {
      // skipped
    }
  }
  return out;
}

/** The launcher's pid from launcher.pid when that process is alive. */
export function launcherPid(root: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(rootPaths(root).launcherPid, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}
