/** A unified diff of two texts (already masked), by the host's own `diff -u`. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export async function unifiedDiff(label: string, before: string, after: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dcu-diff-'));
  try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await writeFile(a, before, { mode: 0o600 });
    await writeFile(b, after, { mode: 0o600 });
    const r = await execa('diff', ['-u', '--label', `${label} (installed)`, '--label', `${label} (new)`, a, b], {
      reject: false,
    });
    if (r.exitCode === 0) return '';
    if (r.exitCode === 1) return r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`;
    throw new Error(`diff failed: ${r.stderr.split('\n')[0] || `exit ${r.exitCode}`}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
