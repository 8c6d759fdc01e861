/**
 * DefenseClaw's own upgrade records on a test host, written and read as DefenseClaw does: native
 * lock claims (live or dead holders), recovery journals, full receipt queues, the receipts left in
 * the queue, the simulated gateway's audit rows, and the real resolver's claim step run against the
 * host (test/fixtures/native/acquire_upgrade_lock.py, verbatim from scripts/upgrade.sh at 0.8.10).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const FIXTURE = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '../../../test/fixtures/native/acquire_upgrade_lock.py');
})();

export const recoveryRoot = (dataDir: string) => path.join(dataDir, '.upgrade-recovery');
export const receiptDir = (dataDir: string) => path.join(dataDir, '.upgrade-receipts');

/** Every path under `root` with its type, mode and content digest (logs left out: a live gateway writes them). */
export async function treeSnapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      const rel = path.relative(root, abs);
      if (/\.log$/.test(e.name)) continue;
      const st = await fs.lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link ${await fs.readlink(abs)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}`;
        await walk(abs);
      } else
        out[rel] = `file ${mode} ${createHash('sha256')
          .update(await fs.readFile(abs))
          .digest('hex')}`;
    }
  };
  await walk(root);
  return out;
}

/** `linux:<starttime>` of a process, as the resolver reads it. */
export async function processStart(pid: number): Promise<string> {
  const raw = await fs.readFile(`/proc/${pid}/stat`, 'latin1');
  return `linux:${raw.slice(raw.lastIndexOf(')') + 2).split(/\s+/)[19]}`;
}

/** Writes a native `upgrade.lock` claim (schema 2) for `pid`, as the resolver writes it. */
export async function writeNativeClaim(dataDir: string, pid: number, start?: string): Promise<string> {
  const root = recoveryRoot(dataDir);
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const file = path.join(root, 'upgrade.lock');
  const claim = {
    pid,
    process_start: start ?? (await processStart(pid)),
    schema_version: 2,
    token: randomBytes(32).toString('hex'),
  };
  await fs.writeFile(file, `${JSON.stringify(claim)}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

/** A process that lives until killed (a native upgrader's stand-in). */
export function liveProcess(): ChildProcess {
  return spawn('sleep', ['600'], { stdio: 'ignore' });
}

/** The pid of a process that has exited. */
export async function deadPid(): Promise<number> {
  const child = spawn('true', [], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

/** `flock -x upgrade.advisory.lock sleep 600`: the advisory lock held by another process. */
export async function holdAdvisory(dataDir: string): Promise<ChildProcess> {
  const root = recoveryRoot(dataDir);
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const file = path.join(root, 'upgrade.advisory.lock');
  await fs.writeFile(file, '', { mode: 0o600 });
  const child = spawn('flock', ['--exclusive', file, 'sleep', '600'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const probe = await execa('flock', ['--exclusive', '--nonblock', file, 'true'], { reject: false });
    if (probe.exitCode !== 0) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the advisory holder never took the lock');
}

/** A recovery journal as an interrupted native hard cut leaves it (its content does not matter to the refusal). */
export async function writeJournal(dataDir: string, name: 'phase-one-active.json' | 'phase-two-active.json') {
  const root = recoveryRoot(dataDir);
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const file = path.join(root, name);
  await fs.writeFile(file, '{"schema_version":4}\n', { mode: 0o600 });
  return file;
}

/** `n` terminal receipts from earlier native upgrades (0.8.4 writes them; nothing before 0.8.5 drains them). */
export async function fillQueue(dataDir: string, n: number): Promise<void> {
  const dir = receiptDir(dataDir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    const r = {
      artifacts_verified: true,
      completed_at: '2026-01-01T00:00:01.000000Z',
      created_at: '2026-01-01T00:00:00.000000Z',
      failure_code: '',
      from_version: '0.8.3',
      migration_count: 0,
      migration_status: 'completed',
      receipt_id: id,
      schema_version: 1,
      status: 'succeeded',
      target_version: '0.8.4',
    };
    await fs.writeFile(path.join(dir, `${id}.json`), JSON.stringify(r), { mode: 0o600 });
  }
}

export interface ReceiptFile {
  name: string;
  mode: number;
  bytes: string;
  receipt: Record<string, unknown>;
}

/** The receipts in the queue, with their modes and bytes. */
export async function receiptsIn(dataDir: string): Promise<ReceiptFile[]> {
  const dir = receiptDir(dataDir);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: ReceiptFile[] = [];
  for (const name of names.sort()) {
    const abs = path.join(dir, name);
    const bytes = await fs.readFile(abs, 'utf8');
    out.push({ name, mode: (await fs.stat(abs)).mode & 0o777, bytes, receipt: JSON.parse(bytes) });
  }
  return out;
}

/** The simulated 0.8.5+ gateway's audit rows (.sim/audit-events.jsonl). */
export async function simAuditEvents(
  dataDir: string,
): Promise<Array<{ id: string; structured: Record<string, unknown> }>> {
  const text = await fs.readFile(path.join(dataDir, '.sim', 'audit-events.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** DefenseClaw's resolver's own claim step against this host (as a native `scripts/upgrade.sh` starts). */
export async function nativeAcquire(dataDir: string, env: Record<string, string> = {}) {
  const root = recoveryRoot(dataDir);
  const r = await execa('python3', [FIXTURE, dataDir, root, path.join(root, 'upgrade.lock'), String(process.pid)], {
    reject: false,
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
