/**
 * A gateway tarball extracted with suspicion: only plain files and folders inside the archive, the
 * one executable wanted, at most MAX_EXTRACTED_BYTES; anything else is an UnsafeArchiveError.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';

/** The largest gateway executable we accept out of a tarball. */
export const MAX_EXTRACTED_BYTES = 256 * 1024 * 1024;

export class UnsafeArchiveError extends Error {
  override readonly name = 'UnsafeArchiveError';
}

/** Why an entry is refused, or undefined when it is a plain file or folder inside the archive. */
export function entryProblem(entry: { path: string; type: string; size?: number }): string | undefined {
  const p = entry.path;
  if (p.length > 1024) return 'a name longer than 1024 characters';
  if (p.includes('\0')) return 'a NUL in a name';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.startsWith('\\')) return `an absolute path (${p.slice(0, 80)})`;
  if (p.split(/[\\/]+/).includes('..')) return `a path with .. (${p.slice(0, 80)})`;
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') return `a link (${p.slice(0, 80)})`;
  if (
    entry.type !== 'File' &&
    entry.type !== 'OldFile' &&
    entry.type !== 'ContiguousFile' &&
    entry.type !== 'Directory'
  ) {
    return `an entry of type ${entry.type} (${p.slice(0, 80)})`;
  }
  return undefined;
}

/**
 * Reads a gateway tarball with tar's parser and writes out only the `defenseclaw` executable.
 * Refuses absolute paths, `..`, links, special files, repeated names and oversized content;
 * nothing but `outFile` is ever written.
 */
export async function extractGateway(tarball: string, outFile: string, maxBytes = MAX_EXTRACTED_BYTES): Promise<void> {
  let found = false;
  let totalBytes = 0;
  let problem: string | undefined;
  const writes: Promise<void>[] = [];
  const open: ReadEntry[] = [];
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    const why = problem ?? entryProblem({ path: entry.path, type: entry.type, size: entry.size });
    totalBytes += entry.size ?? 0;
    if (!problem && why) problem = why;
    if (!problem && totalBytes > maxBytes) problem = `more than ${maxBytes} bytes of content`;
    const name = entry.path.replace(/^(\.\/)+/, '');
    if (!problem && entry.type !== 'Directory' && name === 'defenseclaw') {
      if (found) problem = 'two entries named defenseclaw';
      else {
        found = true;
        open.push(entry);
        writes.push(pipeline(entry, createWriteStream(outFile, { flags: 'wx', mode: 0o700 })));
        return;
      }
    }
    entry.resume();
  });
  try {
    await pipeline(createReadStream(tarball), parser);
    await Promise.all(writes);
  } catch (err) {
    // The parser can fail while the executable is still being written: stop that write and let
    // it settle before removing the file, or the file would be created again behind the removal.
    for (const entry of open) entry.destroy();
    await Promise.allSettled(writes);
    await fs.rm(outFile, { force: true });
    if (problem) throw new UnsafeArchiveError(`unsafe archive: ${problem}`);
    throw new UnsafeArchiveError(`unreadable archive: ${(err as Error).message}`);
  }
  if (problem) {
    await fs.rm(outFile, { force: true });
    throw new UnsafeArchiveError(`unsafe archive: ${problem}`);
  }
  if (!found) throw new UnsafeArchiveError('the archive has no executable named defenseclaw');
}
