/**
 * Unpacking a verified upgrader archive with the suspicion of artifacts.ts: every entry is read
 * with tar's parser first (one top folder, no absolute path, no `..`, no hard link, no special
 * file, symbolic links only to places inside the tree, bounded size and count), and only an
 * archive that passes is extracted, by tar, under a staging folder (the top folder stripped).
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Parser, extract, type ReadEntry } from 'tar';

export const MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;
export const MAX_ENTRIES = 200_000;
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink']);

export class UnsafeUpgraderArchive extends Error {
  override readonly name = 'UnsafeUpgraderArchive';
}

interface EntryLike {
  path: string;
  type: string;
  size?: number;
  linkpath?: string;
}

/** Why an entry is refused (given the archive's top folder), or undefined. */
export function upgraderEntryProblem(e: EntryLike, top: string): string | undefined {
  const p = e.path.replace(/^(\.\/)+/, '');
  const show = p.slice(0, 80);
  if (p.length > 1024 || p.includes('\0')) return 'an unusable name';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.startsWith('\\')) return `an absolute path (${show})`;
  const parts = p.split(/[\\/]+/).filter(Boolean);
  if (parts.includes('..')) return `a path with .. (${show})`;
  if (parts[0] !== top) return `an entry outside the top folder ${top} (${show})`;
  if (!FILE_TYPES.has(e.type)) return `an entry of type ${e.type} (${show})`;
  if (e.type === 'SymbolicLink') {
    const target = e.linkpath ?? '';
    if (!target || path.isAbsolute(target) || target.includes('\0')) return `a link to an absolute path (${show})`;
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(parts.join('/')), target));
    if (resolved !== top && !resolved.startsWith(`${top}/`)) return `a link escaping the tree (${show})`;
  }
  return undefined;
}

/** Reads every entry of `archive` (gzip or not) and throws UnsafeUpgraderArchive on the first problem. Answers the top folder. */
export async function checkUpgraderArchive(archive: string, maxBytes = MAX_UNPACKED_BYTES): Promise<string> {
  let top: string | undefined;
  let problem: string | undefined;
  let bytes = 0;
  let count = 0;
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    if (!problem) {
      const first = entry.path.replace(/^(\.\/)+/, '').split(/[\\/]+/)[0] ?? '';
      top ??= first;
      count += 1;
      bytes += entry.size ?? 0;
      problem =
        upgraderEntryProblem({ path: entry.path, type: entry.type, size: entry.size, linkpath: entry.linkpath }, top) ??
        (bytes > maxBytes ? `more than ${maxBytes} bytes of content` : undefined) ??
        (count > MAX_ENTRIES ? `more than ${MAX_ENTRIES} entries` : undefined);
    }
    entry.resume();
  });
  try {
    await pipeline(createReadStream(archive), parser);
  } catch (err) {
    throw new UnsafeUpgraderArchive(`unreadable archive: ${(err as Error).message.split('\n')[0]}`);
  }
  if (problem) throw new UnsafeUpgraderArchive(`unsafe archive: ${problem}`);
  if (!top || !/^[A-Za-z0-9._@+-]{1,200}$/.test(top) || top === '.' || top === '..') {
    throw new UnsafeUpgraderArchive('unsafe archive: no single top folder');
  }
  return top;
}

/** Checks `archive`, then extracts it into `dir` (an empty folder) without its top folder. */
export async function unpackUpgraderArchive(archive: string, dir: string): Promise<void> {
  const top = await checkUpgraderArchive(archive);
  await extract({
    file: archive,
    cwd: dir,
    strip: 1,
    strict: true,
    preserveOwner: false,
    // The check above already refused everything this filter does; tar asks again per entry.
    filter: (p, entry) =>
      upgraderEntryProblem(
        { path: p, type: (entry as ReadEntry).type ?? 'File', linkpath: (entry as ReadEntry).linkpath },
        top,
      ) === undefined,
  });
}
