/**
 * One hop of an upgrade: a complete upgrade from one version to the next, as a runbook.
 *
 *   pre-flight → download → verify → stage      (nothing live changes)
 *   → confirm (first hop) → backup
 *   → stop → install → migrate → start → health  (the downtime window)
 *
 * A chain (a bridge release first) runs this once per hop: each hop has its own backup, health
 * check and rollback, so a failed hop leaves the host on the last version that was healthy.
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import type { ResolvedRelease } from '../../activities/releases.js';
import { planFiles } from '../eras/hop-files.js';
import { eraNamed } from '../eras/index.js';
import { compensating, heartbeating, quick } from '../proxies.js';
import { timestampId } from '../clock.js';
import {
  HANDSHAKE_FROM,
  beginReceipt,
  checkRecords,
  endReceipt,
  receiptMigrations,
  takeLock,
  type RecordsState,
} from './records.js';
import { prepare } from './prepare.js';
import { discardVenv as discard, recover } from './recover.js';
import { prepareHopMigrations, windowMigrations } from './prepared-migrations.js';
import type { HostRun } from '../run.js';
import { Saga } from './saga.js';
import {
  compareVersions,
  type Platform,
  type PlanHop,
  type UpgradePlan,
  type UpgradeResult,
  type ValidUpgradeInput,
} from '../types.js';

export interface Hop {
  from: string;
  to: string;
  release: ResolvedRelease;
  /** This hop installs a bridge that the next one requires. */
  bridge: boolean;
}

/** What a hop leaves for its caller: folders to clean and whether the gateway was stopped. */
export interface HopState {
  stagingIds: string[];
  venvId?: string;
  stopped: boolean;
  /** DefenseClaw's own upgrade records (locks, receipts), when the run keeps them (records.ts). */
  records?: RecordsState;
}

export interface HopContext {
  input: ValidUpgradeInput;
  route: Hop[];
  index: number;
  platform: Platform;
  state: HopState;
}

/** The plan's view of a hop (its release's files and rules: workflows/eras/hop-files.ts). */
export function planHop(hop: Hop, platform: Platform): PlanHop {
  const { era, ...files } = planFiles(hop.release, hop.to, platform);
  return { from: hop.from, to: hop.to, era, bridge: hop.bridge, ...files };
}

/** What counts as healthy after the start, in words. */
function healthRule(policy: ValidUpgradeInput['options']['reconnecting']): string {
  const base = '/health gateway.state running or disabled, provenance.binary_version the new version';
  if (policy === 'accept') return `${base}; reconnecting (OpenClaw not connected) accepted`;
  if (policy === 'refuse') return `${base}; reconnecting refused (OpenClaw must reconnect)`;
  return `${base}; reconnecting accepted only if the gateway was not running before`;
}

/**
 * Runs one hop. Answers undefined when the hop's new version is healthy, or the run's final result
 * (declined, or whatever the compensation ended in). Throws before the stop, leaving the host as
 * the hop found it (the caller reports it); `state` says what to clean up.
 */
export async function upgradeHop(run: HostRun, ctx: HopContext): Promise<UpgradeResult | undefined> {
  const { input, route, index, platform, state } = ctx;
  const { host, options } = input;
  const hop = route[index]!;
  const { from, to } = hop;
  const first = index === 0;

  // Pre-flight, download and verify into a private staging folder; stage the new gateway beside the
  // old one and build the new Python environment beside the live one.
  const runId = workflowInfo().runId;
  // DefenseClaw's own records first: nothing is created on a host its own upgrader holds.
  if (state.records && !(await checkRecords(run, state.records, to))) state.records = undefined;
  const staging = await run.step('preflight', 'create private staging folder', (o) =>
    quick.createStaging.executeWithOptions(o, [{ runId: first ? runId : `${runId}-hop${index + 1}` }]),
  );
  state.stagingIds.push(staging.stagingId);
  const staged = await prepare(run, { to, platform, stagingId: staging.stagingId, release: hop.release });
  state.venvId = staged.venvId;

  // Plan, and confirm unless --yes (once, before anything of the first hop changes).
  run.backupId = timestampId('upgrade');
  if (first) {
    const plan: UpgradePlan = {
      host,
      from: route[0]!.from,
      to: route[route.length - 1]!.to,
      platform,
      artifacts: run.artifacts,
      signature: run.signature ?? 'unsigned',
      route: route.map((h) => planHop(h, platform)),
      health: healthRule(options.reconnecting),
      backupId: run.backupId,
      downtimeSteps: [
        'stop gateway',
        'swap binary',
        'switch Python environment',
        'run migrations',
        'start gateway',
        'wait for health',
      ],
      onFailure: options.onFailure,
    };
    run.plan = plan;
    if (options.requireConfirmation && !(await run.confirm(plan, options.confirmTimeoutSeconds))) {
      await discard(state.venvId);
      return run.result('declined', `upgrade of ${host} to ${plan.to} declined; nothing was changed.`);
    }
  }

  // Back up everything a rollback needs.
  run.phase = 'upgrading';
  const backupId = run.backupId;
  const records = state.records;
  if (records) await takeLock(run, records);
  await run.step('backup', `back up config, keys and gateway to backups/${backupId}`, (o) =>
    heartbeating.createBackup.executeWithOptions(o, [{ backupId, fromVersion: from, toVersion: to }]),
  );

  // Verified artifacts: every file checked against checksums.txt (always), its signature checked (with cosign, or
  // identity and signature locally when the operator allowed no cosign).
  if (records)
    await beginReceipt(run, records, hop, run.signature === 'verified' || run.signature === 'checked-locally');

  // The migrations, prepared in isolation before the stop (runs since patched('prepared-migrations')).
  const layout = hop.release.layout;
  const migrationArgs = {
    fromVersion: from,
    toVersion: to,
    ...eraNamed(layout?.era ?? 'goreleaser').migrations(layout?.manifest),
  };
  const prepared = await prepareHopMigrations(run, migrationArgs, {
    stagingId: staging.stagingId,
    venvId: staged.venvId,
  });

  // The downtime window: each step registers its undo before it runs.
  const undo = new Saga();
  let degraded = false;
  let acceptReconnecting = options.reconnecting === 'accept';
  // A rollback restores the state before the upgrade: `reconnecting` then is as healthy as it was.
  let rollbackAccepts = true;
  try {
    state.stopped = true;
    const stopped = await run.step('stop', 'stop gateway (proven stopped)', (o) =>
      heartbeating.stopGateway.executeWithOptions(o, []),
    );
    rollbackAccepts = stopped.stateBefore !== 'running';
    if (options.reconnecting === 'auto') acceptReconnecting = rollbackAccepts;

    // Added after the first release: runs recorded before it replay without this undo. It unwinds
    // last, once the previous environment is live again.
    if (patched('discard-new-venv-on-rollback')) {
      undo.add('remove the new Python environment', () =>
        compensating.discardVenv.executeWithOptions({ summary: 'rollback: remove new Python environment' }, [
          { venvId: staged.venvId },
        ]),
      );
    }
    undo.add('put the previous gateway binary back', () =>
      compensating.restoreGateway.executeWithOptions({ summary: 'rollback: restore defenseclaw-gateway' }, [
        { backupId },
      ]),
    );
    await run.step('install', `install defenseclaw-gateway ${to}`, (o) =>
      quick.installGateway.executeWithOptions(o, [
        {
          stagingId: staging.stagingId,
          sha256: staged.gatewaySha256,
          ...(staged.gatewayStamp ? { stamp: staged.gatewayStamp } : {}),
        },
      ]),
    );

    undo.add('switch back to the previous Python environment', () =>
      compensating.restoreVenv.executeWithOptions({ summary: 'rollback: restore Python environment' }, [{ backupId }]),
    );
    await run.step('install', `switch to the defenseclaw ${to} environment`, (o) =>
      quick.switchVenv.executeWithOptions(o, [{ venvId: staged.venvId, backupId }]),
    );

    undo.add('restore config, keys, policies and migration cursor', () =>
      compensating.restoreFiles.executeWithOptions({ summary: 'rollback: restore config files' }, [{ backupId }]),
    );
    const migrated = await windowMigrations(run, migrationArgs, prepared);
    run.migrationsRun = (run.migrationsRun ?? 0) + migrated.ran;
    if (migrated.warning) run.warnings.push(migrated.warning);
    degraded = Boolean(migrated.warning);
    if (records) await receiptMigrations(run, records, migrated.ran, degraded);

    undo.add('stop the new gateway', () =>
      compensating.stopGateway.executeWithOptions({ summary: 'rollback: stop new gateway' }, []),
    );
    await run.step('start', 'start gateway', (o) =>
      heartbeating.startGateway.executeWithOptions(o, [{ healthTimeoutSeconds: options.healthTimeoutSeconds }]),
    );
    const openclaw = await run.step('start', 'openclaw gateway restart (best effort)', (o) =>
      quick.restartOpenclaw.executeWithOptions(o, []),
    );
    if (openclaw.warning) run.warnings.push(openclaw.warning);
    await run.step('health', `wait for /health running on ${to}`, (o) =>
      heartbeating.waitHealthy.executeWithOptions(o, [
        { version: to, timeoutSeconds: options.healthTimeoutSeconds, acceptReconnecting },
      ]),
    );
    // The gateway's own readiness handshake, where the release has it (as its resolver runs it).
    if (records && compareVersions(to, HANDSHAKE_FROM) >= 0) {
      await run.step('health', `defenseclaw-gateway upgrade-wait-ready --expected-version ${to}`, (o) =>
        heartbeating.gatewayReadyHandshake.executeWithOptions(o, [
          { version: to, timeoutSeconds: options.healthTimeoutSeconds },
        ]),
      );
    }
    state.stopped = false;
    state.venvId = undefined;
    if (records) await endReceipt(run, records, { outcome: 'upgraded', degraded, running: to });
    return undefined;
  } catch (err) {
    let result: UpgradeResult;
    try {
      result = await recover(run, err, undo, options.onFailure, options.healthTimeoutSeconds, {
        from,
        acceptReconnecting: rollbackAccepts,
      });
    } catch (cancelled) {
      // A cancel, compensated: the receipt says the upgrade was interrupted and how the host ended.
      if (records) {
        await endReceipt(run, records, {
          outcome: run.outcome,
          failure: { step: 'cancel', error: 'cancelled' },
          degraded,
          running: run.outcome === 'rolled-back' ? from : undefined,
        });
      }
      throw cancelled;
    }
    if (records) {
      await endReceipt(run, records, {
        outcome: result.outcome,
        failure: result.failure,
        degraded,
        running: result.outcome === 'rolled-back' || result.outcome === 'failed-unchanged' ? from : undefined,
      });
      result.defenseclawReceipts = records.recorded;
    }
    if (index > 0 && result.outcome === 'rolled-back') {
      result.message = `${result.message} The host stays on ${from}, which hop ${index} of ${route.length} installed.`;
    }
    return result;
  }
}
