/**
 * The service account of a system-scope install: looked up in DIR/etc/passwd with --root, else on
 * the host (getent on Linux, id on macOS). Node has no getpwnam; these are the host's own tools.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Platform } from './layout.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  group?: string;
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0], uid, gid, home: f[5] ?? '' });
  }
  return out;
}

function groupName(groupText: string, gid: number): string | undefined {
  for (const line of groupText.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && Number(f[2]) === gid && f[0]) return f[0];
  }
  return undefined;
}

function readOr(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

async function run(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false, timeout: 10_000 });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** An account by name or uid; undefined when it does not exist. */
export async function lookupAccount(
  key: { name: string } | { uid: number },
  platform: Platform,
  prefix?: string,
): Promise<PasswdEntry | undefined> {
  const match = (e: PasswdEntry) => ('name' in key ? e.name === key.name : e.uid === key.uid);
  if (prefix) {
    const e = parsePasswd(readOr(path.join(prefix, 'etc', 'passwd'))).find(match);
    return e && { ...e, group: groupName(readOr(path.join(prefix, 'etc', 'group')), e.gid) };
  }
  const id = 'name' in key ? key.name : String(key.uid);
  if (platform === 'linux') {
    const line = await run('getent', ['passwd', id]);
    const e = line ? parsePasswd(line).find(match) : undefined;
    if (!e) return undefined;
    const g = await run('getent', ['group', String(e.gid)]);
    return { ...e, group: g ? groupName(g, e.gid) : undefined };
  }
  const name = 'name' in key ? key.name : await run('id', ['-nu', id]);
  if (!name) return undefined;
  const [uid, gid, group] = await Promise.all([
    run('id', ['-u', name]),
    run('id', ['-g', name]),
    run('id', ['-gn', name]),
  ]);
  if (uid === undefined || gid === undefined) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home: path.join('/Users', name), group };
}

/** The owner's uid of a directory, when it exists. */
export function ownerUid(dir: string | undefined): number | undefined {
  if (!dir) return undefined;
  try {
    return statSync(dir).uid;
  } catch {
    return undefined;
  }
}
