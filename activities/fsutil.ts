/**
 * Filesystem steps that refuse to be fooled: no following of links we did not create,
 * atomic replacement (temp file beside the target, fsync, rename) and content digests.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FailureType, refuse } from './support.js';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** lstat that answers undefined for a missing path. */
export async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `child` resolved inside `root`, refusing anything that escapes it. */
export function inside(root: string, child: string): string {
  const resolved = path.resolve(root, child);
  const rel = path.relative(root, resolved);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw refuse(FailureType.UnsafePath, `refusing path outside ${path.basename(root)}: ${child}`);
  }
  return resolved;
}

/**
 * Makes `dir` (and missing parents below `root`) with the given mode; every existing component
 * below `root` must be a real directory, never a symlink.
 */
export async function ensureRealDir(root: string, dir: string, mode = 0o700): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw refuse(FailureType.UnsafePath, `${dir} is outside ${root}`);
  let cur = root;
  await assertRealDir(root);
  for (const part of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    const st = await lstatOrUndefined(cur);
    if (!st) await fs.mkdir(cur, { mode }).catch((e) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
    else if (!st.isDirectory() || st.isSymbolicLink()) {
      throw refuse(FailureType.UnsafePath, `refusing to use ${cur}: not a real directory (a symlink or a file)`);
    }
  }
}

export async function assertRealDir(dir: string): Promise<void> {
  const st = await lstatOrUndefined(dir);
  if (!st) throw refuse(FailureType.UnsafePath, `${dir} does not exist`);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw refuse(FailureType.UnsafePath, `refusing to use ${dir}: not a real directory`);
  }
}

/** Copies a file to a temp file beside `target` (mode kept), fsyncs, renames: atomic replace. */
export async function atomicCopy(source: string, target: string, mode: number): Promise<void> {
  const st = await fs.lstat(source);
  if (!st.isFile()) throw refuse(FailureType.UnsafePath, `refusing to copy ${source}: not a regular file`);
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  await fs.copyFile(source, tmp, fs.constants.COPYFILE_EXCL);
  const fh = await fs.open(tmp, 'r+');
  try {
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, target);
  await fsyncDir(path.dirname(target));
}

/** Points `link` at `target` atomically (a temp link renamed over the old one). */
export async function atomicSymlink(target: string, link: string): Promise<void> {
  const tmp = `${link}.tmp-${process.pid}-${Date.now()}`;
  await fs.symlink(target, tmp);
  await fs.rename(tmp, link);
  await fsyncDir(path.dirname(link));
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

/** The first `n` bytes of a file (fewer when it is shorter). */
export async function readHead(file: string, n = 512): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(n);
    const { bytesRead } = await fh.read(head, 0, n, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
