/**
 * DefenseClaw's own upgrade locks, in the form its release resolver (scripts/upgrade.sh,
 * `acquire_upgrade_lock`, 0.8.4+) reads them, under `$DEFENSECLAW_HOME/.upgrade-recovery/` (0700):
 *
 * - `upgrade.lock`: `{"pid","process_start":"linux:<starttime>","schema_version":2,"token":<64 hex>}`
 *   (sorted keys, compact, a newline), created with O_EXCL, 0600. A claim is live when its pid is
 *   alive and (schema 2) `/proc/<pid>/stat` field 22 still matches; a dead or reused one is
 *   quarantined (`upgrade.lock.stale-<hex>`) and removed; an unparsable one younger than 10 s is
 *   never stolen. Our claim names the worker process: it lives as long as the worker does.
 * - `upgrade.advisory.lock`: an exclusive `flock`, held by a `flock(1)` child of the worker whose
 *   command (`cat`) exits when the worker's end of its stdin pipe closes: a SIGKILLed worker drops
 *   it at once, as the kernel drops the resolver's fd 9 when its last holder dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as C } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { HostConfig } from '../../worker/host-config.js';
import { fsyncDir, lstatOrUndefined } from '../fsutil.js';
import { refuse } from '../support.js';

export const RECOVERY_DIR = '.upgrade-recovery';
export const LOCK_FILE = 'upgrade.lock';
export const ADVISORY_FILE = 'upgrade.advisory.lock';
/** Our refusals when DefenseClaw's own records say another upgrade holds the host. */
export const NativeRefusal = 'NativeUpgradeActive';

export const recoveryRoot = (config: HostConfig) => path.join(config.dataDir, RECOVERY_DIR);
const lockPath = (config: HostConfig) => path.join(recoveryRoot(config), LOCK_FILE);
const advisoryPath = (config: HostConfig) => path.join(recoveryRoot(config), ADVISORY_FILE);

/** `linux:<starttime>` (field 22 of /proc/<pid>/stat), as the resolver's process_start_identity. */
export async function processStart(pid: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  let raw: string;
  try {
    raw = await fs.readFile(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const close = raw.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = raw.slice(close + 2).split(/\s+/);
  const ticks = fields[19];
  return ticks && /^\d{1,32}$/.test(ticks) ? `linux:${ticks}` : undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type Claim =
  | { state: 'absent' }
  | { state: 'live'; pid: number; token: string }
  | { state: 'acquiring' }
  | { state: 'unverifiable'; pid: number }
  | { state: 'unsafe'; why: string }
  | { state: 'stale'; pid?: number; token?: string; ino: number };

/** Judges `upgrade.lock` exactly as the resolver does before it would steal it. */
export async function judgeClaim(config: HostConfig): Promise<Claim> {
  const file = lockPath(config);
  const st = await lstatOrUndefined(file);
  if (!st) return { state: 'absent' };
  if (!st.isFile()) return { state: 'unsafe', why: `${file} is not a real file` };
  if (st.uid !== process.geteuid!() || st.mode & 0o077)
    return { state: 'unsafe', why: `${file} is not private to this user` };
  const handle = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  let raw: Buffer;
  try {
    const buf = Buffer.alloc(4097);
    const { bytesRead } = await handle.read(buf, 0, 4097, 0);
    raw = buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (raw.length > 4096) return { state: 'unsafe', why: `${file} is too large` };
  let pid = 0;
  let token: string | undefined;
  let schema = 0;
  let start: string | undefined;
  try {
    const c = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (
      (c.schema_version !== 1 && c.schema_version !== 2) ||
      !Number.isInteger(c.pid) ||
      (c.pid as number) < 1 ||
      typeof c.token !== 'string' ||
      c.token.length !== 64
    )
      throw new Error('invalid upgrade lock');
    if (
      c.schema_version === 2 &&
      (typeof c.process_start !== 'string' || !c.process_start || c.process_start.length > 128)
    )
      throw new Error('invalid upgrade lock process identity');
    pid = c.pid as number;
    token = c.token;
    schema = c.schema_version;
    start = c.process_start as string | undefined;
  } catch {
    if (Date.now() - st.mtimeMs < 10_000) return { state: 'acquiring' };
    return { state: 'stale', ino: st.ino };
  }
  let live = pidAlive(pid);
  if (live && schema === 2) {
    if (!start!.startsWith('linux:')) return { state: 'unverifiable', pid };
    const observed = await processStart(pid);
    if (!observed) return { state: 'unverifiable', pid };
    live = observed.length === start!.length && timingSafeEqual(Buffer.from(observed), Buffer.from(start!));
  }
  return live ? { state: 'live', pid, token: token! } : { state: 'stale', pid, token, ino: st.ino };
}

/** Whether another open file description holds the exclusive flock on upgrade.advisory.lock (never creates it). */
export async function advisoryHeld(config: HostConfig): Promise<boolean> {
  const file = advisoryPath(config);
  const st = await lstatOrUndefined(file);
  if (!st?.isFile()) return false;
  const child = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', '75', file, 'true'], {
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0 && code !== 75) throw new Error(`flock(1) could not test ${file} (exit ${code})`);
  return code === 75;
}

/** Moves a stale claim aside and removes it, the resolver's way (only if it is still the same inode). */
async function reclaim(config: HostConfig, ino: number): Promise<void> {
  const file = lockPath(config);
  const quarantine = `${file}.stale-${randomBytes(16).toString('hex')}`;
  await fs.rename(file, quarantine);
  const moved = await fs.lstat(quarantine);
  if (moved.ino !== ino) {
    if (!(await lstatOrUndefined(file))) await fs.rename(quarantine, file);
    throw new Error('upgrade lock raced stale-claim cleanup');
  }
  await fs.unlink(quarantine);
  await fsyncDir(recoveryRoot(config));
}

/** The recovery root, created 0700 when missing; refused when it is not a private real directory. */
async function privateRoot(config: HostConfig): Promise<string> {
  const root = recoveryRoot(config);
  try {
    await fs.mkdir(root, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = await fs.lstat(root);
  if (!st.isDirectory() || st.uid !== process.geteuid!() || st.mode & 0o077)
    throw refuse(
      NativeRefusal,
      `${root} is not a private directory of this user; DefenseClaw's resolver refuses it too`,
    );
  return root;
}

/** The flock(1) holders of this worker, by claim token. */
const holders = new Map<string, ChildProcess>();

/** Whether this worker's flock(1) holder for `token` is alive. */
export function holdsLocally(token: string): boolean {
  const child = holders.get(token);
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

/**
 * Takes (or, on a new worker, re-takes) both locks for `token`: reclaims a dead claim (ours from a
 * killed worker included), refuses a live one that is not ours. Idempotent on the same worker.
 */
export async function takeLocks(config: HostConfig, token: string): Promise<{ pid: number }> {
  if (releasedTokens.has(token)) throw new Error('this claim was released by its run');
  if (holdsLocally(token) && (await judgeClaim(config)).state === 'live') return { pid: process.pid };
  const root = await privateRoot(config);
  const file = lockPath(config);
  const start = await processStart(process.pid);
  const claim = { pid: process.pid, ...(start ? { process_start: start } : {}), schema_version: start ? 2 : 1, token };
  const payload = `${JSON.stringify(claim)}\n`;
  let taken = false;
  for (let attempt = 0; attempt < 4 && !taken; attempt++) {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const c = await judgeClaim(config);
      if (c.state === 'absent') continue;
      if (c.state === 'stale' || (c.state === 'live' && c.token === token)) {
        const st = await fs.lstat(file);
        await reclaim(config, st.ino);
        continue;
      }
      throw refuse(NativeRefusal, claimRefusal(config, c));
    }
    try {
      await handle.writeFile(payload);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDir(root);
    taken = true;
  }
  if (!taken) throw new Error('could not acquire the DefenseClaw upgrade lock');
  try {
    holders.set(token, await holdAdvisory(config));
  } catch (err) {
    await dropClaim(config, token);
    throw err;
  }
  return { pid: process.pid };
}

/** Starts `flock -xn upgrade.advisory.lock cat`: the lock is ours once cat echoes our probe byte. */
async function holdAdvisory(config: HostConfig): Promise<ChildProcess> {
  const file = advisoryPath(config);
  const handle = await fs.open(file, C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW, 0o600);
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.uid !== process.geteuid!() || st.mode & 0o077)
      throw refuse(NativeRefusal, `${file} is not a private file of this user`);
  } finally {
    await handle.close();
  }
  const child = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', '75', file, 'cat'], {
    stdio: ['pipe', 'pipe', 'ignore'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const held = await new Promise<boolean>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 75 ? resolve(false) : reject(new Error(`flock(1) on ${file} exited ${code} before holding it`)),
    );
    child.stdout!.once('data', () => resolve(true));
    child.stdin!.write('x');
  });
  if (!held) {
    throw refuse(
      NativeRefusal,
      `another process holds DefenseClaw's advisory upgrade lock ${file} (a native upgrade or one of its surviving children); no installed state changed`,
    );
  }
  child.stdout!.resume();
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

/** Removes upgrade.lock if (and only if) it still carries `token`, the resolver's token-checked unlink. */
async function dropClaim(config: HostConfig, token: string): Promise<boolean> {
  const file = lockPath(config);
  const c = await judgeClaim(config).catch(() => undefined);
  if (!c || !('token' in c) || c.token !== token) return false;
  const st = await fs.lstat(file);
  await reclaim(config, st.ino);
  return true;
}

/** Releases both locks held for `token` (on this worker, or left by a dead one). Idempotent. */
export async function releaseLocks(config: HostConfig, token: string): Promise<{ released: boolean }> {
  // First the claim (a hold still running on this worker then ends instead of re-taking it), then the flock.
  releasedTokens.add(token);
  const released = await dropClaim(config, token);
  const child = holders.get(token);
  holders.delete(token);
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.stdin?.end();
    child.kill('SIGTERM');
    await gone;
  }
  return { released };
}

/** Tokens this worker released: never taken again (a late hold attempt ends instead). */
const releasedTokens = new Set<string>();

export const wasReleased = (token: string) => releasedTokens.has(token);

/** The one-line refusal for a claim that is not ours and not reclaimable. */
export function claimRefusal(config: HostConfig, c: Claim): string {
  const file = lockPath(config);
  if (c.state === 'live')
    return `a DefenseClaw upgrade is active on this host: ${file} is held by live process ${c.pid}; let it finish (or recover the host with DefenseClaw's own \`defenseclaw upgrade\`) before upgrading; nothing was changed`;
  if (c.state === 'acquiring') return `a DefenseClaw upgrade is acquiring ${file} right now; nothing was changed`;
  if (c.state === 'unverifiable')
    return `${file} names live process ${c.pid} whose identity cannot be verified; DefenseClaw's resolver refuses it too; nothing was changed`;
  if (c.state === 'unsafe') return `${c.why}; DefenseClaw's resolver refuses it too; nothing was changed`;
  return `${file} is in the way`;
}

/** A fresh claim token (64 hex), as the resolver's `secrets.token_hex(32)`. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}
