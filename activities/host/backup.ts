/**
 * Backups with a manifest: every saved file with its digest and mode (and what did not exist),
 * the previous gateway binary, where the previous Python environment lives. Restoring one:
 * restore.ts.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { BackupIdSchema, VersionSchema } from '../../workflows/types.js';
import { atomicCopy, ensureRealDir, fsyncDir, inside, lstatOrUndefined, sha256File } from '../fsutil.js';
import { gatewayBinary } from './gateway.js';
import { BACKUP_ITEMS, liveRoots, openclawHomeFrom, type Root, type Roots } from './host-files.js';
import { FailureType, refuse, validated } from '../support.js';

const MAX_TREE_ENTRIES = 10_000;
const RelPath = z
  .string()
  .max(1024)
  .refine((p) => !path.isAbsolute(p) && !p.split('/').includes('..') && p !== '', 'a relative path inside its root');

const Entry = z.discriminatedUnion('type', [
  z.object({
    root: z.enum(['data', 'openclaw']),
    path: RelPath,
    type: z.literal('file'),
    mode: z.number().int(),
    size: z.number().int(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  z.object({ root: z.enum(['data', 'openclaw']), path: RelPath, type: z.literal('dir'), mode: z.number().int() }),
  z.object({ root: z.enum(['data', 'openclaw']), path: RelPath, type: z.literal('absent') }),
]);
export type ManifestEntry = z.infer<typeof Entry>;

export const Manifest = z.object({
  format: z.literal(1),
  id: BackupIdSchema,
  createdAt: z.string(),
  host: z.string(),
  fromVersion: VersionSchema,
  toVersion: VersionSchema.optional(),
  entries: z.array(Entry).max(MAX_TREE_ENTRIES),
  gateway: z.object({
    file: z.literal('defenseclaw-gateway.previous'),
    mode: z.number().int(),
    size: z.number().int(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  /** The Python environment as it was: a real folder (moved aside to `preservedAs` by the switch) or a link. */
  venv: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('dir'), preservedAs: RelPath }),
    z.object({ kind: z.literal('link'), target: z.string().max(1024) }),
    z.object({ kind: z.literal('absent') }),
  ]),
  /** Where ~/.local/bin/defenseclaw pointed. */
  cliLink: z.object({ target: z.string().max(1024) }).nullable(),
});
export type BackupManifest = z.infer<typeof Manifest>;

export function backupsRoot(config: HostConfig): string {
  return path.join(config.dataDir, 'backups');
}

/** The roots a backup was taken from: OpenClaw's home as the backed-up config.yaml names it. */
export async function backupRoots(config: HostConfig, backupId: string): Promise<Roots> {
  const saved = path.join(inside(backupsRoot(config), backupId), 'files', 'data', 'config.yaml');
  return { data: config.dataDir, openclaw: await openclawHomeFrom(config, saved) };
}

export function venvPath(config: HostConfig): string {
  return path.join(config.dataDir, '.venv');
}

export function cliLinkPath(config: HostConfig): string {
  return path.join(config.binDir, 'defenseclaw');
}

/** Where the switch moves a real `.venv` folder, so that a rollback can move it back. */
export function preservedVenvFor(backupId: string): string {
  return `venvs/original-${backupId}`;
}

/** Lists one item (a file, or a folder tree) as manifest entries; refuses symlinks and special files. */
async function listItem(roots: Roots, root: Root, rel: string, out: ManifestEntry[]): Promise<void> {
  const abs = inside(roots[root], rel);
  const st = await lstatOrUndefined(abs);
  if (!st) {
    out.push({ root, path: rel, type: 'absent' });
    return;
  }
  if (st.isSymbolicLink()) throw refuse(FailureType.UnsafePath, `refusing to back up ${rel}: it is a symlink`);
  if (st.isFile()) {
    out.push({ root, path: rel, type: 'file', mode: st.mode & 0o7777, size: st.size, sha256: await sha256File(abs) });
  } else if (st.isDirectory()) {
    out.push({ root, path: rel, type: 'dir', mode: st.mode & 0o7777 });
    for (const name of (await fs.readdir(abs)).sort()) {
      if (out.length > MAX_TREE_ENTRIES)
        throw refuse(FailureType.TooLarge, `refusing to back up ${rel}: too many files`);
      await listItem(roots, root, `${rel}/${name}`, out);
    }
  } else {
    throw refuse(FailureType.UnsafePath, `refusing to back up ${rel}: not a regular file or folder`);
  }
}

async function describeVenv(config: HostConfig, backupId: string): Promise<BackupManifest['venv']> {
  const st = await lstatOrUndefined(venvPath(config));
  if (!st) return { kind: 'absent' };
  if (st.isSymbolicLink()) return { kind: 'link', target: await fs.readlink(venvPath(config)) };
  if (st.isDirectory()) return { kind: 'dir', preservedAs: preservedVenvFor(backupId) };
  throw refuse(FailureType.UnsafePath, `${venvPath(config)} is neither a folder nor a link`);
}

const CreateBackupInput = z
  .object({ backupId: BackupIdSchema, fromVersion: VersionSchema, toVersion: VersionSchema.optional() })
  .strict();
export type CreateBackupInput = z.input<typeof CreateBackupInput>;

/**
 * Activity: backs up config, keys, policies, OpenClaw's config and the current gateway binary
 * into `backups/<id>/` (0700), manifest last. Running it again on a complete backup is a no-op.
 */
export async function createBackup(
  config: HostConfig,
  rawInput: unknown,
): Promise<{ backupId: string; files: number; bytes: number }> {
  const input = validated(CreateBackupInput, rawInput, 'createBackup');
  const root = backupsRoot(config);
  await ensureRealDir(config.dataDir, root, 0o700);
  const dir = inside(root, input.backupId);
  const existing = await lstatOrUndefined(dir);
  if (existing?.isSymbolicLink())
    throw refuse(FailureType.UnsafePath, `refusing backup folder ${input.backupId}: it is a symlink`);
  if (existing) {
    const done = await readManifest(config, input.backupId).catch(() => undefined);
    if (done) return summarize(done);
    await fs.rm(dir, { recursive: true, force: true }); // an attempt that died midway
  }
  await fs.mkdir(dir, { mode: 0o700 });
  await fs.chmod(dir, 0o700);

  const roots = await liveRoots(config);
  const entries: ManifestEntry[] = [];
  for (const item of BACKUP_ITEMS) await listItem(roots, item.root, item.path, entries);
  for (const e of entries) {
    const dest = path.join(dir, 'files', e.root, e.path);
    if (e.type === 'dir') await fs.mkdir(dest, { recursive: true, mode: 0o700 });
    if (e.type !== 'file') continue;
    await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
    await atomicCopy(inside(roots[e.root], e.path), dest, e.mode);
    if ((await sha256File(dest)) !== e.sha256)
      throw new Error(`${e.path} changed while it was being backed up; retrying`);
  }

  const bin = gatewayBinary(config);
  const bst = await lstatOrUndefined(bin);
  if (!bst?.isFile()) throw refuse(FailureType.UnsafePath, `${bin} is not a regular file`);
  await atomicCopy(bin, path.join(dir, 'defenseclaw-gateway.previous'), bst.mode & 0o7777);

  const linkSt = await lstatOrUndefined(cliLinkPath(config));
  const manifest: BackupManifest = {
    format: 1,
    id: input.backupId,
    createdAt: new Date().toISOString(),
    host: config.host,
    fromVersion: input.fromVersion,
    toVersion: input.toVersion,
    entries,
    gateway: {
      file: 'defenseclaw-gateway.previous',
      mode: bst.mode & 0o7777,
      size: bst.size,
      sha256: await sha256File(path.join(dir, 'defenseclaw-gateway.previous')),
    },
    venv: await describeVenv(config, input.backupId),
    cliLink: linkSt?.isSymbolicLink() ? { target: await fs.readlink(cliLinkPath(config)) } : null,
  };
  const tmp = path.join(dir, 'manifest.json.tmp');
  await fs.writeFile(tmp, JSON.stringify(manifest, null, 2), { mode: 0o600 });
  await fs.rename(tmp, path.join(dir, 'manifest.json'));
  await fsyncDir(dir);
  return summarize(manifest);
}

function summarize(m: BackupManifest) {
  const files = m.entries.filter((e) => e.type === 'file');
  return {
    backupId: m.id,
    files: files.length + 1,
    bytes: files.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), m.gateway.size),
  };
}

/**
 * Reads and verifies a backup: a real folder directly inside backups/, a manifest that parses,
 * and every stored file present, regular and matching its digest.
 */
export async function readManifest(config: HostConfig, backupId: string): Promise<BackupManifest> {
  const root = backupsRoot(config);
  const rst = await lstatOrUndefined(root);
  if (!rst || rst.isSymbolicLink() || !rst.isDirectory())
    throw refuse(FailureType.BackupInvalid, 'there is no backups folder');
  const dir = inside(root, backupId);
  const st = await lstatOrUndefined(dir);
  if (!st) throw refuse(FailureType.BackupInvalid, `backup ${backupId} does not exist`);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw refuse(FailureType.BackupInvalid, `backup ${backupId} is not a real folder`);
  const mfile = path.join(dir, 'manifest.json');
  const mst = await lstatOrUndefined(mfile);
  if (!mst?.isFile() || mst.size > 16 * 1024 * 1024)
    throw refuse(FailureType.BackupInvalid, `backup ${backupId} has no manifest`);
  let manifest: BackupManifest;
  try {
    manifest = Manifest.parse(JSON.parse(await fs.readFile(mfile, 'utf8')));
  } catch {
    throw refuse(FailureType.BackupInvalid, `backup ${backupId} has an invalid manifest`);
  }
  if (manifest.id !== backupId)
    throw refuse(FailureType.BackupInvalid, `backup ${backupId}'s manifest names ${manifest.id}`);
  const stored = [
    ...manifest.entries.flatMap((e) =>
      e.type === 'file' ? [{ file: path.join('files', e.root, e.path), sha256: e.sha256 }] : [],
    ),
    { file: manifest.gateway.file, sha256: manifest.gateway.sha256 },
  ];
  for (const s of stored) {
    const abs = inside(dir, s.file);
    const fst = await lstatOrUndefined(abs);
    if (!fst?.isFile())
      throw refuse(FailureType.BackupInvalid, `backup ${backupId}: ${s.file} is missing or not a regular file`);
    if ((await sha256File(abs)) !== s.sha256)
      throw refuse(FailureType.BackupInvalid, `backup ${backupId}: ${s.file} does not match its digest`);
  }
  return manifest;
}

export const BackupRef = z.object({ backupId: BackupIdSchema }).strict();
export type BackupRef = z.input<typeof BackupRef>;

/** Activity: verifies a backup and answers what it holds (versions, counts). */
export async function verifyBackup(config: HostConfig, rawInput: unknown) {
  const { backupId } = validated(BackupRef, rawInput, 'verifyBackup');
  const m = await readManifest(config, backupId);
  return { ...summarize(m), fromVersion: m.fromVersion, toVersion: m.toVersion, createdAt: m.createdAt };
}

/** Activity: the newest backup that verifies, for `rollback` without `--backup`. */
export async function latestBackup(config: HostConfig): Promise<{ backupId: string } | null> {
  const all = await listBackups(config);
  const ok = all.filter((b) => b.valid && b.id.startsWith('upgrade-'));
  return ok.length ? { backupId: ok[ok.length - 1]!.id } : null;
}

export interface BackupSummary {
  id: string;
  valid: boolean;
  createdAt?: string;
  fromVersion?: string;
  toVersion?: string;
  bytes?: number;
  problem?: string;
}

/** Activity: every backup folder, oldest first, with whether it verifies. */
export async function listBackups(config: HostConfig): Promise<BackupSummary[]> {
  const root = backupsRoot(config);
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const out: BackupSummary[] = [];
  for (const id of names.filter((n) => BackupIdSchema.safeParse(n).success).sort()) {
    try {
      const m = await readManifest(config, id);
      out.push({
        id,
        valid: true,
        createdAt: m.createdAt,
        fromVersion: m.fromVersion,
        toVersion: m.toVersion,
        bytes: summarize(m).bytes,
      });
    } catch (err) {
      out.push({ id, valid: false, problem: (err as Error).message });
    }
  }
  return out;
}
