/**
 * rollbackHost: puts a host back to the state recorded in one of its backups (the latest by
 * default), with the same checks as an upgrade: backup of the current state first, proven stop,
 * restore, start, health on the backup's version. If the rollback fails, it is itself undone
 * from the backup it made, and fails closed when even that does not come back healthy.
 */
import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { compensating, heartbeating, quick, routeActivitiesTo } from '../proxies.js';
import { timestampId } from '../clock.js';
import { recover } from './recover.js';
import { HostRun, failureText, validateInput } from '../run.js';
import { Saga } from './saga.js';
import { RollbackInputSchema, type RollbackInput, type UpgradeResult } from '../types.js';

export async function rollbackHost(rawInput: RollbackInput): Promise<UpgradeResult> {
  const input = validateInput(RollbackInputSchema, rawInput);
  const { host } = input;
  routeActivitiesTo(input.hostQueue);
  const run = new HostRun('rollback', host);
  let stopped = false;
  try {
    // Which backup, verified against its manifest, and where the host is now.
    run.phase = 'preparing';
    await run.step('resolve', `check the run is for host ${host}`, (o) =>
      quick.checkHost.executeWithOptions(o, [{ host }]),
    );
    const chosen =
      input.backupId ??
      (await run.step('resolve', 'find the latest backup', (o) => quick.latestBackup.executeWithOptions(o, [])))
        ?.backupId;
    if (!chosen) throw ApplicationFailure.nonRetryable(`there is no backup to roll ${host} back to`, 'BackupInvalid');
    const target = await run.step('resolve', `verify backup ${chosen}`, (o) =>
      heartbeating.verifyBackup.executeWithOptions(o, [{ backupId: chosen }]),
    );
    const installed = await run.step('resolve', 'read installed gateway version', (o) =>
      quick.readInstalledVersion.executeWithOptions(o, []),
    );
    run.setVersions(installed.version, target.fromVersion);

    run.backupId = timestampId('rollback');
    run.plan = {
      host,
      from: installed.version,
      to: target.fromVersion,
      platform: await run.step('platform', 'detect platform', (o) => quick.detectPlatform.executeWithOptions(o, [])),
      artifacts: [],
      signature: 'unsigned',
      backupId: run.backupId,
      downtimeSteps: ['stop gateway', `restore from backups/${chosen}`, 'start gateway', 'wait for health'],
      onFailure: 'rollback',
    };
    if (input.requireConfirmation && !(await run.confirm(run.plan, input.confirmTimeoutSeconds))) {
      return run.finish(run.result('declined', `rollback of ${host} declined; nothing was changed.`));
    }

    // Back up the current state, so that this rollback can be undone too.
    run.phase = 'upgrading';
    const own = run.backupId;
    await run.step('backup', `back up the current state to backups/${own}`, (o) =>
      heartbeating.createBackup.executeWithOptions(o, [
        { backupId: own, fromVersion: installed.version, toVersion: target.fromVersion },
      ]),
    );

    const undo = new Saga();
    // `reconnecting` (OpenClaw not connected) is as healthy as the host was before this rollback.
    let acceptReconnecting = true;
    try {
      stopped = true;
      const stop = await run.step('stop', 'stop gateway (proven stopped)', (o) =>
        heartbeating.stopGateway.executeWithOptions(o, []),
      );
      acceptReconnecting = stop.stateBefore !== 'running';

      undo.add('put the replaced gateway binary back', () =>
        compensating.restoreGateway.executeWithOptions({ summary: 'undo: restore defenseclaw-gateway' }, [
          { backupId: own },
        ]),
      );
      await run.step('install', `restore defenseclaw-gateway ${target.fromVersion}`, (o) =>
        compensating.restoreGateway.executeWithOptions(o, [{ backupId: chosen }]),
      );
      undo.add('switch back to the replaced Python environment', () =>
        compensating.restoreVenv.executeWithOptions({ summary: 'undo: restore Python environment' }, [
          { backupId: own },
        ]),
      );
      await run.step('install', `restore the defenseclaw ${target.fromVersion} environment`, (o) =>
        compensating.restoreVenv.executeWithOptions(o, [{ backupId: chosen, preserveCurrentAs: own }]),
      );
      undo.add('put the replaced config files back', () =>
        compensating.restoreFiles.executeWithOptions({ summary: 'undo: restore config files' }, [{ backupId: own }]),
      );
      await run.step('migrate', `restore config, keys, policies and migration cursor from ${chosen}`, (o) =>
        compensating.restoreFiles.executeWithOptions(o, [{ backupId: chosen }]),
      );
      undo.add('stop the restored gateway', () =>
        compensating.stopGateway.executeWithOptions({ summary: 'undo: stop gateway' }, []),
      );
      await run.step('start', 'start gateway', (o) =>
        heartbeating.startGateway.executeWithOptions(o, [{ healthTimeoutSeconds: input.healthTimeoutSeconds }]),
      );
      await run.step('start', 'openclaw gateway restart (best effort)', (o) =>
        quick.restartOpenclaw.executeWithOptions(o, []),
      );
      await run.step('health', `wait for /health running on ${target.fromVersion}`, (o) =>
        heartbeating.waitHealthy.executeWithOptions(o, [
          { version: target.fromVersion, timeoutSeconds: input.healthTimeoutSeconds, acceptReconnecting },
        ]),
      );
      return run.finish(
        run.result(
          'restored',
          `${host} rolled back from ${installed.version} to ${target.fromVersion} (backups/${chosen}); gateway healthy. The state before the rollback is in backups/${own}.`,
        ),
      );
    } catch (err) {
      return run.finish(await recover(run, err, undo, 'rollback', input.healthTimeoutSeconds, { acceptReconnecting }));
    }
  } catch (err) {
    if (stopped || isCancellation(err)) throw err;
    const step = run.steps.filter((s) => s.status === 'failed').pop()?.name ?? 'resolve';
    return run.finish(
      run.result(
        'failed-unchanged',
        `rollback of ${host} failed at ${step}; nothing was changed: ${failureText(err)}`,
        {
          failure: { step, error: failureText(err) },
        },
      ),
    );
  }
}
