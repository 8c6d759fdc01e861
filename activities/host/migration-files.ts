/**
 * The files of a prepared migration run: what the migrations read (their inputs, digested when staged
 * and again inside the window) and what they changed (the overlay's upper layer), put in place by
 * rename.
 *
 * The inputs, from the real wheels' migrations (0.3.0 … 0.8.10, defenseclaw/migrations.py and what it
 * calls): every file the backup keeps (config.yaml, .env, guardrail_runtime.json, device.key,
 * policies/, the cursor, the connector files and connector_backups/, OpenClaw's openclaw.json); the
 * legacy codex env files 0.4.0 deletes; the `.upgrade-shims` 0.8.0+ writes for old upgraders;
 * `backups/` (0.8.5 narrows its mode and writes its recovery copy in it); pristine openclaw.json
 * copies (0.3.0); and every path the run changed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BACKUP_ITEMS, type Root, type Roots } from './host-files.js';
import { atomicCopy, fsyncDir, inside, lstatOrUndefined } from '../fsutil.js';

export const INPUTS: ReadonlyArray<{ root: Root; path: string; shallow?: boolean }> = [
  ...BACKUP_ITEMS,
  { root: 'data', path: 'codex_env.sh' },
  { root: 'data', path: 'codex.env' },
  { root: 'data', path: '.upgrade-shims' },
  { root: 'data', path: 'backups', shallow: true },
  { root: 'data', path: 'openclaw.json.pristine' },
  { root: 'openclaw', path: 'openclaw.json.pristine' },
];

/** One change of the run, as the overlay's upper layer holds it. */
export interface Change {
  root: Root;
  path: string;
  kind: 'file' | 'dir' | 'link' | 'gone';
  /** A directory that replaced what was there (overlay "opaque"). */
  opaque?: boolean;
  mode?: number;
}

/** `file:<mode>:<sha256>`, `dir:<mode>`, `link:<target>`, `absent` or `other`. */
export type Digests = Record<string, string>;

const key = (root: Root, rel: string) => `${root}:${rel}`;

async function digestOne(file: string): Promise<string> {
  const st = await lstatOrUndefined(file);
  if (!st) return 'absent';
  const mode = (st.mode & 0o7777).toString(8);
  if (st.isSymbolicLink()) return `link:${await fs.readlink(file)}`;
  if (st.isDirectory()) return `dir:${mode}`;
  if (!st.isFile()) return 'other';
  return `file:${mode}:${createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')}`;
}

async function digestTree(roots: Roots, root: Root, rel: string, out: Digests, shallow: boolean): Promise<void> {
  const file = path.join(roots[root], rel);
  const d = await digestOne(file);
  out[key(root, rel)] = d;
  if (shallow || !d.startsWith('dir:')) return;
  for (const name of (await fs.readdir(file)).sort()) await digestTree(roots, root, path.join(rel, name), out, false);
}

/** The digests of the inputs and of every changed path, as they are now on the live host. */
export async function digestInputs(roots: Roots, changes: Change[] = []): Promise<Digests> {
  const out: Digests = {};
  for (const i of INPUTS) await digestTree(roots, i.root, i.path, out, i.shallow ?? false);
  for (const c of changes)
    if (!(key(c.root, c.path) in out)) out[key(c.root, c.path)] = await digestOne(path.join(roots[c.root], c.path));
  return out;
}

/** The first input that differs (undefined: all byte-identical); `after` digests count as equal (a resumed apply). */
export function firstDifference(staged: Digests, now: Digests, after: Digests = {}): string | undefined {
  for (const k of new Set([...Object.keys(staged), ...Object.keys(now)])) {
    const a = staged[k] ?? 'absent';
    const b = now[k] ?? 'absent';
    if (a !== b && after[k] !== b)
      return k.replace(/^(data|openclaw):/, (_, r: string) => (r === 'data' ? '' : '~openclaw/'));
  }
  return undefined;
}

/** The digests the changed paths have once the result is in place. */
export async function resultDigests(uppers: Roots, changes: Change[]): Promise<Digests> {
  const out: Digests = {};
  for (const c of changes)
    out[key(c.root, c.path)] = c.kind === 'gone' ? 'absent' : await digestOne(path.join(uppers[c.root], c.path));
  return out;
}

/**
 * Puts the result in place: each changed file renamed from the upper layer over the live one (a copy
 * beside it, then a rename, when OpenClaw's home is on another filesystem), new directories renamed
 * whole, modes of existing directories set, deleted paths removed. Parents before children. A path
 * already in its final state (a resumed attempt) is left alone.
 */
export async function applyChanges(live: Roots, uppers: Roots, changes: Change[], after: Digests): Promise<void> {
  const moved: string[] = [];
  const sorted = [...changes].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
  const dirs = new Set<string>();
  for (const c of sorted) {
    const k = key(c.root, c.path);
    if (moved.some((m) => k.startsWith(`${m}/`))) continue; // inside a directory already renamed whole
    const target = inside(live[c.root], c.path);
    const source = path.join(uppers[c.root], c.path);
    if ((await digestOne(target)) === after[k] && c.kind !== 'dir') continue;
    dirs.add(path.dirname(target));
    if (c.kind === 'gone') {
      await fs.rm(target, { recursive: true, force: true });
      continue;
    }
    const st = await lstatOrUndefined(target);
    if (c.kind === 'dir' && st?.isDirectory() && !st.isSymbolicLink() && !c.opaque) {
      if ((st.mode & 0o7777) !== c.mode) await fs.chmod(target, c.mode!);
      continue;
    }
    if (!(await lstatOrUndefined(source))) continue; // renamed by an attempt whose completion was lost
    if (c.kind === 'dir' && st) await fs.rm(target, { recursive: true, force: true });
    try {
      await fs.rename(source, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV' || c.kind !== 'file') throw err;
      await atomicCopy(source, target, c.mode!);
    }
    if (c.kind === 'dir') moved.push(k);
  }
  for (const d of dirs) await fsyncDir(d).catch(() => undefined);
}
