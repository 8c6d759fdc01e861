/**
 * upgradeHost: one DefenseClaw host from its installed version to a release, as a runbook.
 *
 *   resolve → platform → pre-flight → download → verify → stage     (nothing live changes)
 *   → confirm → backup
 *   → stop → install → migrate → start → health                      (the downtime window)
 *
 * Anything that fails before the stop leaves the host exactly as it was. Anything that fails
 * after it is compensated according to `onFailure` (default: roll back to the backup and prove
 * the old gateway healthy again; if that fails too, leave the gateway stopped and say so).
 */
import { ApplicationFailure, CancellationScope, isCancellation, patched, workflowInfo } from '@temporalio/workflow';
import { compensating, heartbeating, network, quick } from './activities.js';
import { timestampId } from './clock.js';
import { discardVenv as discard, recover } from './recover.js';
import { HostRun, failureText, validateInput } from './run.js';
import { Saga } from './saga.js';
import {
  UpgradeInputSchema,
  compareVersions,
  type ArtifactInfo,
  type Platform,
  type UpgradeInput,
  type UpgradePlan,
  type UpgradeResult,
} from './types.js';

export async function upgradeHost(rawInput: UpgradeInput): Promise<UpgradeResult> {
  const input = validateInput(UpgradeInputSchema, rawInput);
  const { host, options } = input;
  const run = new HostRun('upgrade', host, input.fleetId);

  let stagingId: string | undefined;
  let venvId: string | undefined;
  let stopped = false;
  try {
    // 1. Resolve the target and read what is installed.
    run.phase = 'preparing';
    await run.step('resolve', `check the run is for host ${host}`, (o) =>
      quick.checkHost.executeWithOptions(o, [{ host }]),
    );
    const release = await run.step('resolve', `resolve release ${input.version ?? 'latest'}`, (o) =>
      network.resolveRelease.executeWithOptions(o, [{ version: input.version }]),
    );
    const installed = await run.step('resolve', 'read installed gateway version', (o) =>
      quick.readInstalledVersion.executeWithOptions(o, []),
    );
    const from = installed.version;
    const to = release.version;
    run.setVersions(from, to);
    if (compareVersions(from, to) === 0) {
      return run.finish(run.result('already-current', `${host} already runs DefenseClaw ${to}; nothing to do.`));
    }
    if (compareVersions(from, to) > 0) {
      throw ApplicationFailure.nonRetryable(
        `refusing to downgrade ${host} from ${from} to ${to}; use \`defenseclaw-upgrade rollback\``,
        'DowngradeRefused',
      );
    }

    // 2. Platform.
    const platform = await run.step('platform', 'detect platform', (o) =>
      quick.detectPlatform.executeWithOptions(o, []),
    );

    // 3–4. Pre-flight, download and verify into a private staging folder; stage the new gateway
    //      beside the old one and build the new Python environment beside the live one.
    const staging = await run.step('preflight', 'create private staging folder', (o) =>
      quick.createStaging.executeWithOptions(o, [{ runId: workflowInfo().runId }]),
    );
    stagingId = staging.stagingId;
    const staged = await prepare(run, {
      to,
      platform,
      stagingId: staging.stagingId,
      signed: release.signed,
      assets: release.assets,
    });
    venvId = staged.venvId;

    // 5. Plan, and confirm unless --yes.
    run.backupId = timestampId('upgrade');
    const plan: UpgradePlan = {
      host,
      from,
      to,
      platform,
      artifacts: run.artifacts,
      signature: run.signature ?? 'unsigned',
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
      await discard(venvId);
      return run.finish(run.result('declined', `upgrade of ${host} to ${to} declined; nothing was changed.`));
    }

    // 6. Back up everything a rollback needs.
    run.phase = 'upgrading';
    const backupId = run.backupId;
    await run.step('backup', `back up config, keys and gateway to backups/${backupId}`, (o) =>
      heartbeating.createBackup.executeWithOptions(o, [{ backupId, fromVersion: from, toVersion: to }]),
    );

    // 7–11. The downtime window: each step registers its undo before it runs.
    const undo = new Saga();
    try {
      stopped = true;
      await run.step('stop', 'stop gateway (proven stopped)', (o) =>
        heartbeating.stopGateway.executeWithOptions(o, []),
      );

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
        quick.installGateway.executeWithOptions(o, [{ stagingId: staging.stagingId, sha256: staged.gatewaySha256 }]),
      );

      undo.add('switch back to the previous Python environment', () =>
        compensating.restoreVenv.executeWithOptions({ summary: 'rollback: restore Python environment' }, [
          { backupId },
        ]),
      );
      await run.step('install', `switch to the defenseclaw ${to} environment`, (o) =>
        quick.switchVenv.executeWithOptions(o, [{ venvId: staged.venvId, backupId }]),
      );

      undo.add('restore config, keys, policies and migration cursor', () =>
        compensating.restoreFiles.executeWithOptions({ summary: 'rollback: restore config files' }, [{ backupId }]),
      );
      const migrated = await run.step('migrate', `run migrations ${from} → ${to}`, (o) =>
        heartbeating.runMigrations.executeWithOptions(o, [{ fromVersion: from, toVersion: to }]),
      );
      run.migrationsRun = migrated.ran;

      undo.add('stop the new gateway', () =>
        compensating.stopGateway.executeWithOptions({ summary: 'rollback: stop new gateway' }, []),
      );
      await run.step('start', 'start gateway', (o) =>
        heartbeating.startGateway.executeWithOptions(o, [{ healthTimeoutSeconds: options.healthTimeoutSeconds }]),
      );
      const openclaw = await run.step('start', 'openclaw gateway restart (best effort)', (o) =>
        quick.restartOpenclaw.executeWithOptions(o, []),
      );
      await run.step('health', `wait for /health running on ${to}`, (o) =>
        heartbeating.waitHealthy.executeWithOptions(o, [{ version: to, timeoutSeconds: options.healthTimeoutSeconds }]),
      );
      const warn = openclaw.warning ? ` Warning: ${openclaw.warning}.` : '';
      return run.finish(
        run.result(
          'upgraded',
          `${host} upgraded from ${from} to ${to}; gateway healthy. Backup: backups/${backupId}.${warn}`,
        ),
      );
    } catch (err) {
      return run.finish(await recover(run, err, undo, options.onFailure, options.healthTimeoutSeconds));
    }
  } catch (err) {
    if (stopped) throw err; // recover() has already compensated and described it
    // Before the stop: nothing live was changed.
    await discard(venvId);
    if (isCancellation(err)) {
      run.result('cancelled', `upgrade of ${host} cancelled before the gateway was stopped; nothing was changed.`);
      throw err;
    }
    const step = run.steps.filter((s) => s.status === 'failed').pop()?.name ?? 'resolve';
    const target = run.to ?? input.version ?? 'the latest release';
    return run.finish(
      run.result(
        'failed-unchanged',
        `upgrade of ${host} to ${target} failed at ${step} before the gateway was stopped; nothing was changed: ${failureText(err)}`,
        { failure: { step, error: failureText(err) } },
      ),
    );
  } finally {
    if (stagingId) {
      const id = stagingId;
      await CancellationScope.nonCancellable(() =>
        quick.removeStaging.executeWithOptions({ summary: 'remove staging folder' }, [{ stagingId: id }]),
      );
    }
  }
}

/** An asset's size as the release JSON declares it. */
type ArtifactSize = { name: string; size: number };

/** Steps 3–4: pre-flight, downloads checked against checksums.txt, signature, staging. */
async function prepare(
  run: HostRun,
  a: { to: string; platform: Platform; stagingId: string; signed: boolean; assets: ArtifactSize[] },
): Promise<{ gatewaySha256: string; venvId: string }> {
  const gatewayName = `defenseclaw_${a.to}_${a.platform.os}_${a.platform.arch}.tar.gz`;
  const wheelName = `defenseclaw-${a.to}-py3-none-any.whl`;
  const names = [
    'checksums.txt',
    gatewayName,
    wheelName,
    ...(a.signed ? ['checksums.txt.sig', 'checksums.txt.pem'] : []),
  ];
  const sizes = await run.step('preflight', `HEAD ${names.length} release assets`, (o) =>
    network.preflight.executeWithOptions(o, [
      { version: a.to, platform: a.platform, names, declared: a.assets.filter((x) => names.includes(x.name)) },
    ]),
  );
  for (const { name, size } of sizes) {
    const verify = !name.startsWith('checksums.txt');
    const info: ArtifactInfo = await run.step('download', `download ${name}`, (o) =>
      heartbeating.downloadArtifact.executeWithOptions(o, [
        { version: a.to, stagingId: a.stagingId, name, size, verify },
      ]),
    );
    if (verify) run.artifacts.push(info);
  }
  const sig = await run.step('verify', 'verify checksums.txt signature (cosign)', (o) =>
    heartbeating.verifySignature.executeWithOptions(o, [{ version: a.to, stagingId: a.stagingId, signed: a.signed }]),
  );
  run.signature = sig.signature;
  const gateway = await run.step('stage', `extract and stage defenseclaw-gateway ${a.to}`, (o) =>
    heartbeating.stageGateway.executeWithOptions(o, [{ version: a.to, stagingId: a.stagingId, platform: a.platform }]),
  );
  const venv = await run.step('stage', `prepare Python environment with defenseclaw ${a.to}`, (o) =>
    heartbeating.prepareVenv.executeWithOptions(o, [{ version: a.to, stagingId: a.stagingId }]),
  );
  return { gatewaySha256: gateway.sha256, venvId: venv.venvId };
}
