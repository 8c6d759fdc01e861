/** Small file operations of the service commands: atomic writes, relative links, lenient reads. */
import { chmod, chown, lstat, mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Owner {
  uid: number;
  gid: number;
}

export async function readIfExists(p: string): Promise<Buffer | undefined> {
  try {
    return await readFile(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function lexists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function linkTarget(p: string): Promise<string | undefined> {
  try {
    return await readlink(p);
  } catch {
    return undefined;
  }
}

/** mkdir -p; the leaf gets `mode` (and `owner`) even when it existed. */
export async function ensureDir(dir: string, mode: number, owner?: Owner): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, mode);
  if (owner) await chown(dir, owner.uid, owner.gid);
}

/** Writes through a temporary file in the same directory and a rename: never a half-written file. */
export async function writeAtomic(file: string, content: string | Buffer, mode: number, owner?: Owner): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  await rm(tmp, { force: true });
  try {
    await writeFile(tmp, content, { mode, flag: 'wx' });
    await chmod(tmp, mode);
    if (owner) await chown(tmp, owner.uid, owner.gid);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A symlink put in place by a rename (the contract's way of switching `current`). */
export async function symlinkAtomic(target: string, link: string): Promise<void> {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.tmp-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, link);
}
