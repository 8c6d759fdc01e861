/**
 * Restoring a backup: each file put back atomically and proven byte-identical (same mode) against
 * the manifest, the previous gateway binary put back and proven, the previous Python environment
 * switched back in (the one being left kept aside when asked).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { BackupIdSchema } from '../../workflows/types.js';
import { atomicCopy, atomicSymlink, ensureRealDir, fsyncDir, inside, lstatOrUndefined, sha256File } from '../fsutil.js';
import { gatewayBinary } from './gateway.js';
import type { Root, Roots } from './host-files.js';
import { FailureType, refuse, validated } from '../support.js';
import {
  BackupRef,
  backupRoots,
  backupsRoot,
  cliLinkPath,
  preservedVenvFor,
  readManifest,
  venvPath,
  type BackupManifest,
} from './backup.js';

/** Activity: puts config, keys, policies, OpenClaw's config and the migration cursor back; proves them identical. */
export async function restoreFiles(config: HostConfig, rawInput: unknown): Promise<{ restored: number }> {
  const { backupId } = validated(BackupRef, rawInput, 'restoreFiles');
  const m = await readManifest(config, backupId);
  const dir = inside(backupsRoot(config), backupId);
  const roots = await backupRoots(config, backupId);
  let restored = 0;
  // Folders first (shallow to deep), then files; then remove what the manifest says was absent
  // and what appeared inside backed-up folders since.
  for (const e of m.entries) {
    const target = inside(roots[e.root], e.path);
    if (e.type === 'dir') {
      const st = await lstatOrUndefined(target);
      if (st && (st.isSymbolicLink() || !st.isDirectory())) await fs.rm(target, { recursive: true, force: true });
      await ensureRealDir(roots[e.root], target, e.mode);
      await fs.chmod(target, e.mode);
    } else if (e.type === 'file') {
      const st = await lstatOrUndefined(target);
      if (st?.isDirectory() && !st.isSymbolicLink()) await fs.rm(target, { recursive: true, force: true });
      await ensureRealDir(roots[e.root], path.dirname(target), 0o700).catch(() => undefined);
      await atomicCopy(path.join(dir, 'files', e.root, e.path), target, e.mode);
      restored++;
    } else {
      await fs.rm(target, { recursive: true, force: true });
    }
  }
  const known = new Set(m.entries.map((e) => `${e.root}/${e.path}`));
  for (const e of m.entries.filter((x) => x.type === 'dir')) {
    await removeUnknown(roots, e.root, e.path, known);
  }
  await proveRestored(config, m);
  return { restored };
}

async function removeUnknown(roots: Roots, root: Root, rel: string, known: Set<string>): Promise<void> {
  const abs = inside(roots[root], rel);
  for (const name of await fs.readdir(abs)) {
    const childRel = `${rel}/${name}`;
    if (!known.has(`${root}/${childRel}`)) await fs.rm(path.join(abs, name), { recursive: true, force: true });
  }
}

/** Every backed-up file is byte-identical with the same mode; every absent one is absent. */
export async function proveRestored(config: HostConfig, m: BackupManifest): Promise<void> {
  const roots = await backupRoots(config, m.id);
  for (const e of m.entries) {
    const target = inside(roots[e.root], e.path);
    const st = await lstatOrUndefined(target);
    const bad = (why: string) => refuse(FailureType.BackupInvalid, `restore of ${e.path} not proven: ${why}`);
    if (e.type === 'absent') {
      if (st) throw bad('it should not exist');
    } else if (!st || st.isSymbolicLink()) {
      throw bad('missing');
    } else if ((st.mode & 0o7777) !== e.mode) {
      throw bad(`mode ${(st.mode & 0o7777).toString(8)} instead of ${e.mode.toString(8)}`);
    } else if (e.type === 'file' && (await sha256File(target)) !== e.sha256) {
      throw bad('content differs');
    }
  }
}

/** Activity: puts the previous gateway binary back atomically and proves it. */
export async function restoreGateway(config: HostConfig, rawInput: unknown): Promise<{ sha256: string }> {
  const { backupId } = validated(BackupRef, rawInput, 'restoreGateway');
  const m = await readManifest(config, backupId);
  const source = path.join(inside(backupsRoot(config), backupId), m.gateway.file);
  const target = gatewayBinary(config);
  if ((await lstatOrUndefined(target)) && (await sha256File(target)) === m.gateway.sha256)
    return { sha256: m.gateway.sha256 };
  await atomicCopy(source, target, m.gateway.mode);
  const sha256 = await sha256File(target);
  if (sha256 !== m.gateway.sha256)
    throw refuse(FailureType.BackupInvalid, 'the restored gateway binary does not match the backup');
  return { sha256 };
}

const RestoreVenvInput = z.object({ backupId: BackupIdSchema, preserveCurrentAs: BackupIdSchema.optional() }).strict();
export type RestoreVenvInput = z.input<typeof RestoreVenvInput>;

/**
 * Activity: puts the previous Python environment and the `defenseclaw` link back. Idempotent.
 * A live `.venv` that is a real folder (and not the one being restored) is moved aside under
 * `preserveCurrentAs`, the backup the current run made, so that run can be undone too.
 */
export async function restoreVenv(config: HostConfig, rawInput: unknown): Promise<{ venv: string }> {
  const { backupId, preserveCurrentAs } = validated(RestoreVenvInput, rawInput, 'restoreVenv');
  const m = await readManifest(config, backupId);
  const venv = venvPath(config);
  const moveLiveFolderAside = async () => {
    const st = await lstatOrUndefined(venv);
    if (!st || st.isSymbolicLink()) return;
    if (!preserveCurrentAs) throw refuse(FailureType.UnsafePath, `${venv} is a folder; refusing to replace it`);
    const aside = inside(config.dataDir, preservedVenvFor(preserveCurrentAs));
    await ensureRealDir(config.dataDir, path.dirname(aside), 0o755);
    if (await lstatOrUndefined(aside)) throw refuse(FailureType.UnsafePath, `${aside} already exists`);
    await fs.rename(venv, aside);
  };
  if (m.venv.kind === 'dir') {
    const preserved = inside(config.dataDir, m.venv.preservedAs);
    const pst = await lstatOrUndefined(preserved);
    if (pst?.isDirectory() && !pst.isSymbolicLink()) {
      const st = await lstatOrUndefined(venv);
      if (st?.isSymbolicLink()) await fs.unlink(venv);
      else await moveLiveFolderAside();
      await fs.rename(preserved, venv);
      await fsyncDir(config.dataDir);
    } else {
      const st = await lstatOrUndefined(venv);
      // Already moved back by an earlier attempt: `.venv` is a real folder and nothing is preserved.
      if (!(st?.isDirectory() && !st.isSymbolicLink())) {
        throw refuse(
          FailureType.BackupInvalid,
          `the Python environment of backup ${backupId} (${m.venv.preservedAs}) is gone`,
        );
      }
    }
  } else if (m.venv.kind === 'link') {
    const target = path.resolve(config.dataDir, m.venv.target);
    const tst = await lstatOrUndefined(target);
    if (!tst?.isDirectory()) throw refuse(FailureType.BackupInvalid, `the Python environment ${m.venv.target} is gone`);
    await moveLiveFolderAside();
    await atomicSymlink(m.venv.target, venv);
  }
  if (m.cliLink) await atomicSymlink(m.cliLink.target, cliLinkPath(config));
  return { venv: m.venv.kind };
}
