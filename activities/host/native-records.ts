/**
 * The activities that speak DefenseClaw's own upgrade records (issue 20): the pre-flight check of
 * its locks, recovery journals and receipt queue; taking, holding and releasing its locks for the
 * run; and the gateway's own readiness handshake (`upgrade-wait-ready`, 0.8.7+).
 */
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { VersionSchema } from '../../workflows/types.js';
import { run } from '../exec.js';
import { lstatOrUndefined } from '../fsutil.js';
import {
  NativeRefusal,
  advisoryHeld,
  claimRefusal,
  judgeClaim,
  newToken,
  recoveryRoot,
  holdsLocally,
  releaseLocks,
  takeLocks,
  wasReleased,
} from './native-lock.js';
import { FailureType, activityContext, heartbeat, refuse, sleep, validated } from '../support.js';
import { MAX_RECEIPTS, ReceiptQueueFull, queueFullRefusal, queueLength } from './upgrade-receipt.js';

/** DefenseClaw's recovery journals: `defenseclaw upgrade` refuses while either exists (cli/defenseclaw/main.py). */
export const JOURNALS = ['phase-one-active.json', 'phase-two-active.json'] as const;
export const RecoveryPending = 'NativeRecoveryPending';

const Token = z.string().regex(/^[0-9a-f]{64}$/);
const CheckRecordsInput = z.object({ heldToken: Token.optional(), receipts: z.boolean() }).strict();
export type CheckRecordsInput = z.input<typeof CheckRecordsInput>;
const AcquireLockInput = z.object({ token: Token.optional() }).strict();
export type AcquireLockInput = z.input<typeof AcquireLockInput>;
/** holdNativeLock's and releaseNativeLock's: the run's own token. */
const LockInput = z.object({ token: Token }).strict();
export type LockInput = z.input<typeof LockInput>;
const HandshakeInput = z.object({ version: VersionSchema, timeoutSeconds: z.number().int().min(1).max(3600) }).strict();
export type HandshakeInput = z.input<typeof HandshakeInput>;

/**
 * Refuses (changing nothing) while DefenseClaw's own records say the host is not ours to upgrade:
 * a recovery journal, a live `upgrade.lock` claim or a held advisory flock (unless `heldToken` is
 * the run's own claim), or, when `receipts` is set, a full receipt queue. A dead claim is reported
 * (and reclaimed when the run takes the lock).
 */
export async function checkNativeRecords(
  config: HostConfig,
  input: unknown,
): Promise<{ lock: string; journals: 'none'; receiptQueue: number }> {
  const { heldToken, receipts } = validated(CheckRecordsInput, input, 'checkNativeRecords');
  const root = recoveryRoot(config);
  for (const name of JOURNALS) {
    const file = path.join(root, name);
    if (await lstatOrUndefined(file)) {
      throw refuse(
        RecoveryPending,
        `DefenseClaw's recovery journal ${file} exists: a native staged upgrade was interrupted and DefenseClaw means to finish or roll it back itself. Recover the host with DefenseClaw's release-owned resolver first (\`defenseclaw upgrade\` prints the authenticated scripts/upgrade.sh command for the target tag; run it without --version); nothing was changed`,
      );
    }
  }
  const claim = await judgeClaim(config);
  let lock = 'free';
  if (claim.state === 'stale')
    lock = `stale claim${claim.pid ? ` of dead process ${claim.pid}` : ''} (reclaimed when the run takes the lock)`;
  else if (claim.state === 'live' && heldToken && claim.token === heldToken) lock = 'held by this run';
  else if (claim.state !== 'absent') throw refuse(NativeRefusal, claimRefusal(config, claim));
  if (lock !== 'held by this run' && (await advisoryHeld(config))) {
    throw refuse(
      NativeRefusal,
      `another process holds DefenseClaw's advisory upgrade lock ${path.join(root, 'upgrade.advisory.lock')} (a native upgrade or one of its surviving children); nothing was changed`,
    );
  }
  const count = receipts ? await queueLength(config) : 0;
  if (receipts && count >= MAX_RECEIPTS) throw refuse(ReceiptQueueFull, queueFullRefusal(config, count));
  return { lock, journals: 'none', receiptQueue: count };
}

/** Takes both locks for a new claim; answers its token (the run keeps it to re-take and release). */
export async function acquireNativeLock(config: HostConfig, input: unknown): Promise<{ token: string; pid: number }> {
  const { token } = validated(AcquireLockInput, input, 'acquireNativeLock');
  const t = token ?? newToken();
  const { pid } = await takeLocks(config, t);
  return { token: t, pid };
}

/**
 * Holds the run's claim, heartbeating, until the run releases it (releaseNativeLock removes the
 * claim; this then returns). It only ever re-takes a claim that carries the run's token: when a
 * worker dies, the retry on the next worker finds the dead worker's claim (stale by DefenseClaw's
 * own rule) and takes it again; a claim already released is never re-created.
 */
export async function holdNativeLock(config: HostConfig, input: unknown): Promise<{ held: boolean }> {
  const { token } = validated(LockInput, input, 'holdNativeLock');
  const signal = activityContext()?.cancellationSignal;
  for (;;) {
    const claim = await judgeClaim(config);
    if (wasReleased(token) || !('token' in claim) || claim.token !== token) return { held: true }; // released
    if (claim.state === 'stale' || !holdsLocally(token)) await takeLocks(config, token);
    heartbeat();
    await sleep(1000, signal);
  }
}

export async function releaseNativeLock(config: HostConfig, input: unknown): Promise<{ released: boolean }> {
  const { token } = validated(LockInput, input, 'releaseNativeLock');
  return releaseLocks(config, token);
}

/**
 * `defenseclaw-gateway upgrade-wait-ready --timeout Ns --expected-version X` (hidden; 0.8.7+), as
 * the release resolver runs it before it records success: the exact target process, version,
 * listener and local subsystems ready.
 */
export async function gatewayReadyHandshake(
  config: HostConfig,
  input: unknown,
): Promise<{ ready: true; output: string }> {
  const { version, timeoutSeconds } = validated(HandshakeInput, input, 'gatewayReadyHandshake');
  const bin = path.join(config.binDir, 'defenseclaw-gateway');
  const r = await run(bin, ['upgrade-wait-ready', '--timeout', `${timeoutSeconds}s`, '--expected-version', version], {
    env: { ...config.commandEnv, DEFENSECLAW_HOME: config.dataDir, DEFENSECLAW_UPGRADE_FRESH_PROCESS: '1' },
    timeoutMs: (timeoutSeconds + 15) * 1000,
  });
  if (r.exitCode !== 0) {
    throw refuse(
      FailureType.HealthTimeout,
      `defenseclaw-gateway upgrade-wait-ready --expected-version ${version} failed (exit ${r.exitCode}): ${r.output.split('\n').slice(-3).join(' ').slice(0, 400)}`,
    );
  }
  return { ready: true, output: r.output.slice(-400) };
}
