/**
 * DefenseClaw upgrade receipts, written exactly as its own upgrader writes them
 * (cli/defenseclaw/upgrade_receipt.py, 0.8.4 – 0.8.10): `<DEFENSECLAW_HOME>/.upgrade-receipts/<uuid4>.json`,
 * schema 1, the 11 keys as `json.dumps(sort_keys=True, separators=(",", ":"))`, at most 16 KiB,
 * 0600 in a 0700 directory, written through a `.receipt-*.tmp` beside it (fsync, rename, chmod,
 * directory fsync). A 0.8.5+ gateway moves terminal receipts into its compliance audit store and
 * deletes them; nothing else ever deletes one (the queue refuses a 65th).
 *
 * The workflow decides every field (the id from its deterministic uuid4, the times from workflow
 * time), so a retried or resumed write is the same bytes; a terminal receipt is never changed.
 */
import { randomBytes } from 'node:crypto';
import { constants as C } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { fsyncDir, lstatOrUndefined } from '../fsutil.js';
import { FailureType, heartbeat, refuse, sleep, validated } from '../support.js';

export const RECEIPT_DIR = '.upgrade-receipts';
export const MAX_RECEIPTS = 64;
const MAX_BYTES = 16 * 1024;
export const ReceiptQueueFull = 'ReceiptQueueFull';

const STATUSES = ['pending', 'succeeded', 'partial', 'failed', 'rolled_back'] as const;
const MIGRATION = ['pending', 'completed', 'degraded'] as const;
export const FAILURE_CODES = [
  '',
  'install_failed',
  'migration_failed',
  'required_migration_failed',
  'local_observability_failed',
  'startup_failed',
  'health_check_failed',
  'interrupted',
  'rollback_detected',
] as const;
const Version = z
  .string()
  .max(32)
  .regex(/^\d+\.\d+\.\d+$/);
const Time = z
  .string()
  .max(64)
  .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/);
const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

export const ReceiptSchema = z
  .object({
    schema_version: z.literal(1),
    receipt_id: Uuid,
    created_at: Time,
    completed_at: Time.nullable(),
    from_version: Version,
    target_version: Version,
    status: z.enum(STATUSES),
    migration_status: z.enum(MIGRATION),
    migration_count: z.number().int().min(0).max(10_000).nullable(),
    artifacts_verified: z.boolean(),
    failure_code: z.enum(FAILURE_CODES),
  })
  .strict()
  .superRefine((r, ctx) => {
    const bad = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (r.status === 'pending') {
      if (r.completed_at !== null || r.failure_code) bad('pending upgrade receipt has terminal facts');
      return;
    }
    if (r.completed_at === null) bad('terminal upgrade receipt is missing its timestamp');
    else if (Date.parse(r.completed_at) < Date.parse(r.created_at))
      bad('upgrade receipt completes before it was created');
    if ((r.status === 'succeeded' || r.status === 'partial') && r.failure_code)
      bad('successful receipt has failure code');
    if ((r.status === 'failed' || r.status === 'rolled_back') && !r.failure_code)
      bad('failed receipt is missing failure code');
    if (r.status === 'succeeded' && r.migration_status === 'degraded')
      bad('degraded migration cannot report full success');
  });
export type Receipt = z.infer<typeof ReceiptSchema>;

export const receiptDir = (config: HostConfig) => path.join(config.dataDir, RECEIPT_DIR);

/** The bytes DefenseClaw writes: sorted keys, no spaces (Python's json.dumps escapes non-ASCII; ours is ASCII). */
export function encodeReceipt(r: Receipt): string {
  const sorted = Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted);
}

/** How many `*.json` names the queue holds (0 when it does not exist), as `_ensure_queue_capacity` counts. */
export async function queueLength(config: HostConfig): Promise<number> {
  try {
    return (await fs.readdir(receiptDir(config))).filter((n) => n.endsWith('.json')).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

export function queueFullRefusal(config: HostConfig, count: number): string {
  return `DefenseClaw's upgrade receipt queue ${receiptDir(config)} is full (${count} of ${MAX_RECEIPTS}): DefenseClaw itself refuses to upgrade until it drains, and only a running 0.8.5+ gateway drains it (it moves each terminal receipt into its audit store and deletes it); nothing was changed`;
}

/** The receipt directory, created 0700 (and chmod'ed 0700) as `_secure_receipt_directory` does. */
async function secureDir(config: HostConfig): Promise<string> {
  const dir = receiptDir(config);
  const st = await lstatOrUndefined(dir);
  if (!st) await fs.mkdir(dir, { mode: 0o700 });
  else if (!st.isDirectory()) throw refuse(FailureType.UnsafePath, `${dir} is not a private directory`);
  await fs.chmod(dir, 0o700);
  return dir;
}

/** Reads one receipt (regular file, 1..16 KiB, no link); undefined when absent or not DefenseClaw's. */
async function readReceipt(file: string): Promise<Receipt | undefined> {
  const st = await lstatOrUndefined(file);
  if (!st) return undefined;
  if (!st.isFile() || st.size < 1 || st.size > MAX_BYTES) return undefined;
  const handle = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const r = ReceiptSchema.safeParse(JSON.parse(await handle.readFile('utf8')));
    return r.success && `${r.data.receipt_id}.json` === path.basename(file) ? r.data : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** `_atomic_write`: mkstemp-like temp beside it, 0600, write, fsync, rename, chmod 0600, directory fsync. */
async function atomicWriteReceipt(dir: string, r: Receipt): Promise<void> {
  const bytes = encodeReceipt(r);
  if (Buffer.byteLength(bytes) > MAX_BYTES)
    throw refuse(FailureType.TooLarge, 'upgrade receipt exceeds its size bound');
  const tmp = path.join(dir, `.receipt-${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  const target = path.join(dir, `${r.receipt_id}.json`);
  await fs.rename(tmp, target);
  await fs.chmod(target, 0o600);
  await fsyncDir(dir);
}

const WriteInput = z.object({ receipt: ReceiptSchema }).strict();
export type WriteInput = z.input<typeof WriteInput>;
const AwaitAckInput = z.object({ receiptId: Uuid, timeoutSeconds: z.number().int().min(1).max(120) }).strict();
export type AwaitAckInput = z.input<typeof AwaitAckInput>;

/**
 * Writes a receipt as the workflow stated it. A pending one (the begin) first closes every other
 * pending receipt as failed/interrupted (`finalize_interrupted_upgrade_receipts`, as any native run
 * does) and refuses a full queue; a terminal one over a terminal one is a no-op when the same,
 * refused when different (terminal receipts are immutable).
 */
export async function writeUpgradeReceipt(
  config: HostConfig,
  input: unknown,
): Promise<{ receiptId: string; status: string; written: boolean }> {
  const { receipt } = validated(WriteInput, input, 'writeUpgradeReceipt');
  const dir = await secureDir(config);
  const file = path.join(dir, `${receipt.receipt_id}.json`);
  const existing = await readReceipt(file);
  const done = { receiptId: receipt.receipt_id, status: receipt.status };
  if (existing && existing.status !== 'pending') {
    if (existing.status === receipt.status && existing.failure_code === receipt.failure_code)
      return { ...done, written: false };
    throw refuse(FailureType.InvalidInput, 'terminal upgrade receipt cannot be changed');
  }
  if (receipt.status === 'pending' && !existing) {
    await finalizeInterrupted(config, dir, receipt.receipt_id);
    const count = await queueLength(config);
    if (count >= MAX_RECEIPTS) throw refuse(ReceiptQueueFull, queueFullRefusal(config, count));
  }
  await atomicWriteReceipt(dir, receipt);
  return { ...done, written: true };
}

/** Every other valid pending receipt becomes failed/interrupted (UR `finalize_interrupted_upgrade_receipts`). */
async function finalizeInterrupted(config: HostConfig, dir: string, own: string): Promise<number> {
  let changed = 0;
  const names = (await fs.readdir(dir))
    .filter((n) => n.endsWith('.json'))
    .sort()
    .slice(0, MAX_RECEIPTS);
  for (const name of names) {
    const r = await readReceipt(path.join(dir, name));
    if (!r || r.status !== 'pending' || r.receipt_id === own) continue;
    await atomicWriteReceipt(dir, { ...r, status: 'failed', failure_code: 'interrupted', completed_at: utcNow() });
    changed++;
  }
  return changed;
}

/** `datetime.now(timezone.utc).isoformat()` with `Z`: microseconds, as Python writes them. */
export function utcNow(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Waits (bounded) for a 0.8.5+ gateway to acknowledge a terminal receipt by deleting it. Never
 * fails the run: answers whether it happened.
 */
export async function awaitReceiptAcknowledged(
  config: HostConfig,
  input: unknown,
): Promise<{ acknowledged: boolean; waitedMs: number }> {
  const { receiptId, timeoutSeconds } = validated(AwaitAckInput, input, 'awaitReceiptAcknowledged');
  const file = path.join(receiptDir(config), `${receiptId}.json`);
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutSeconds * 1000) {
    if (!(await lstatOrUndefined(file))) return { acknowledged: true, waitedMs: Date.now() - t0 };
    heartbeat();
    await sleep(250);
  }
  return { acknowledged: false, waitedMs: Date.now() - t0 };
}
