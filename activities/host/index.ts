/**
 * createActivities(hostConfig): every side effect of an upgrade, bound to the configuration
 * this host's worker read at start. Workflows see only these names and their types; each input
 * type is the one its module's schema accepts (z.input), the schema the activity validates with.
 */
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { HostNameSchema } from '../../workflows/types.js';
import * as artifacts from './artifacts.js';
import * as stage from './stage-gateway.js';
import * as backup from './backup.js';
import * as restore from './restore.js';
import * as gateway from './gateway.js';
import * as health from './health.js';
import * as healthGate from './health-gate.js';
import * as install from './install.js';
import { readInventory } from './inventory.js';
import * as migrations from './migrations.js';
import * as migrationStage from './migration-stage.js';
import * as nativeRecords from './native-records.js';
import { detectPlatform } from './platform.js';
import * as releases from '../releases.js';
import * as releaseTicket from './release-ticket.js';
import * as signature from './signature.js';
import * as receipts from './upgrade-receipt.js';
import { FailureType, refuse, validated, withHeartbeat } from '../support.js';
import * as upgrader from './upgrader-update.js';

const CheckHostInput = z.object({ host: HostNameSchema }).strict();

export function createActivities(config: HostConfig) {
  return heartbeatAll({
    /** Refuses a run addressed to another host (the audit trail must name the right one). */
    async checkHost(input: z.input<typeof CheckHostInput>): Promise<{ host: string }> {
      const { host } = validated(CheckHostInput, input, 'checkHost');
      if (host !== config.host)
        throw refuse(FailureType.HostMismatch, `this worker serves host ${config.host}, not ${host}`);
      return { host };
    },
    resolveRelease: (input: z.input<typeof releases.ResolveInput>) => releases.resolveRelease(config, input),
    /** A rollout's one lookup: the release as a ticket for every host (issue 14). */
    issueReleaseTicket: (input: z.input<typeof releases.ResolveInput>) =>
      releaseTicket.issueReleaseTicket(config, input),
    /** A host given a ticket: the release from its own source, no API call. */
    resolveFromTicket: (input: releaseTicket.FromTicketInput) => releaseTicket.resolveFromTicket(config, input),
    readInstalledVersion: () => gateway.readInstalledVersion(config),
    /** The fleet inventory's answer about this host (issue 22). */
    readInventory: () => readInventory(config),
    detectPlatform,
    createStaging: (input: artifacts.CreateStagingInput) => artifacts.createStaging(config, input),
    preflight: (input: artifacts.PreflightInput) => artifacts.preflight(config, input),
    downloadArtifact: (input: artifacts.DownloadInput) => artifacts.downloadArtifact(config, input),
    verifySignature: (input: signature.VerifySignatureInput) => signature.verifySignature(config, input),
    stageGateway: (input: stage.StageGatewayInput) => stage.stageGateway(config, input),
    prepareVenv: (input: install.PrepareVenvInput) => install.prepareVenv(config, input),
    removeStaging: (input: artifacts.RemoveStagingInput) => artifacts.removeStaging(config, input),
    discardVenv: (input: install.DiscardVenvInput) => install.discardVenv(config, input),
    createBackup: (input: backup.CreateBackupInput) => backup.createBackup(config, input),
    verifyBackup: (input: backup.BackupRef) => backup.verifyBackup(config, input),
    latestBackup: () => backup.latestBackup(config),
    listBackups: () => backup.listBackups(config),
    stopGateway: () => gateway.stopGateway(config),
    installGateway: (input: install.InstallGatewayInput) => install.installGateway(config, input),
    switchVenv: (input: install.SwitchVenvInput) => install.switchVenv(config, input),
    runMigrations: (input: migrations.MigrateInput) => migrations.runMigrations(config, input),
    /** Issue 21: the hop's migrations, prepared in isolation before the stop. */
    prepareMigrations: (input: migrationStage.PrepareInput) => migrationStage.prepareMigrations(config, input),
    startGateway: (input: gateway.StartInput) => gateway.startGateway(config, input),
    restartOpenclaw: () => gateway.restartOpenclaw(config),
    waitHealthy: (input: health.WaitHealthyInput) => health.waitHealthy(config, input),
    /** A ring's promotion gate on this host: /health subsystems and counters, and the operator's check. */
    readGate: (input: healthGate.ReadGateInput) => healthGate.readGate(config, input),
    restoreFiles: (input: backup.BackupRef) => restore.restoreFiles(config, input),
    restoreGateway: (input: backup.BackupRef) => restore.restoreGateway(config, input),
    restoreVenv: (input: restore.RestoreVenvInput) => restore.restoreVenv(config, input),
    /** Issue 18: this host's worker installs another defenseclaw-upgrade and restarts into it. */
    updateUpgrader: (input: upgrader.UpdateInput) => upgrader.updateUpgrader(config, input),
    upgraderSwitchOutcome: (input: upgrader.OutcomeInput) => upgrader.upgraderSwitchOutcome(config, input),
    // DefenseClaw's own upgrade records (issue 20).
    checkNativeRecords: (input: nativeRecords.CheckRecordsInput) => nativeRecords.checkNativeRecords(config, input),
    acquireNativeLock: (input: nativeRecords.AcquireLockInput) => nativeRecords.acquireNativeLock(config, input),
    holdNativeLock: (input: nativeRecords.LockInput) => nativeRecords.holdNativeLock(config, input),
    releaseNativeLock: (input: nativeRecords.LockInput) => nativeRecords.releaseNativeLock(config, input),
    gatewayReadyHandshake: (input: nativeRecords.HandshakeInput) => nativeRecords.gatewayReadyHandshake(config, input),
    writeUpgradeReceipt: (input: receipts.WriteInput) => receipts.writeUpgradeReceipt(config, input),
    awaitReceiptAcknowledged: (input: receipts.AwaitAckInput) => receipts.awaitReceiptAcknowledged(config, input),
  });
}

/** Activities that heartbeat on their own, with details a retried attempt resumes from. */
const OWN_HEARTBEATS = new Set(['downloadArtifact', 'waitHealthy', 'holdNativeLock', 'awaitReceiptAcknowledged']);

/**
 * Every other activity heartbeats every second while it runs, so that a killed worker is noticed
 * within the heartbeat timeout (seconds) rather than the start-to-close timeout.
 */
function heartbeatAll<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    out[name] = OWN_HEARTBEATS.has(name) ? fn : (...args: never[]) => withHeartbeat(() => fn(...args));
  }
  return out as T;
}

export type Activities = ReturnType<typeof createActivities>;
