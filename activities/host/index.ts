/**
 * createActivities(hostConfig): every side effect of an upgrade, bound to the configuration
 * this host's worker read at start. Workflows see only these names and their types; each input
 * type is the one its module's schema accepts (z.input), the schema the activity validates with.
 */
import type { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { lazyModule } from '../lazy-module.js';
import type * as HostCheck from './host-check.js';
import type * as Artifacts from './artifacts.js';
import type * as Stage from './stage-gateway.js';
import type * as Backup from './backup.js';
import type * as Restore from './restore.js';
import type * as Gateway from './gateway.js';
import type * as Health from './health.js';
import type * as HealthGate from './health-gate.js';
import type * as Install from './install.js';
import type * as Migrations from './migrations.js';
import type * as MigrationStage from './migration-stage.js';
import type * as NativeRecords from './native-records.js';
import type * as Receipts from './upgrade-receipt.js';
import type * as Releases from '../releases.js';
import type * as ReleaseTicket from './release-ticket.js';
import type * as Signature from './signature.js';
import type * as Upgrader from './upgrader-update.js';
import { detectPlatform } from './platform.js';
import { withHeartbeat } from '../support.js';

// Each step's module is loaded by its first call: an idle worker holds none of them (issue 21).
const hostCheck = lazyModule(() => import('./host-check.js'));
const artifacts = lazyModule(() => import('./artifacts.js'));
const stage = lazyModule(() => import('./stage-gateway.js'));
const backup = lazyModule(() => import('./backup.js'));
const restore = lazyModule(() => import('./restore.js'));
const gateway = lazyModule(() => import('./gateway.js'));
const health = lazyModule(() => import('./health.js'));
const healthGate = lazyModule(() => import('./health-gate.js'));
const install = lazyModule(() => import('./install.js'));
const inventory = lazyModule(() => import('./inventory.js'));
const migrations = lazyModule(() => import('./migrations.js'));
const migrationStage = lazyModule(() => import('./migration-stage.js'));
const nativeRecords = lazyModule(() => import('./native-records.js'));
const releases = lazyModule(() => import('../releases.js'));
const releaseTicket = lazyModule(() => import('./release-ticket.js'));
const signature = lazyModule(() => import('./signature.js'));
const receipts = lazyModule(() => import('./upgrade-receipt.js'));
const upgrader = lazyModule(() => import('./upgrader-update.js'));

export function createActivities(config: HostConfig) {
  return heartbeatAll({
    /** Refuses a run addressed to another host (the audit trail must name the right one). */
    checkHost: (input: HostCheck.CheckHostInput) => hostCheck.checkHost(config, input),
    resolveRelease: (input: z.input<typeof Releases.ResolveInput>) => releases.resolveRelease(config, input),
    /** A rollout's one lookup: the release as a ticket for every host (issue 14). */
    issueReleaseTicket: (input: z.input<typeof Releases.ResolveInput>) =>
      releaseTicket.issueReleaseTicket(config, input),
    /** A host given a ticket: the release from its own source, no API call. */
    resolveFromTicket: (input: ReleaseTicket.FromTicketInput) => releaseTicket.resolveFromTicket(config, input),
    readInstalledVersion: () => gateway.readInstalledVersion(config),
    /** The fleet inventory's answer about this host (issue 22). */
    readInventory: () => inventory.readInventory(config),
    detectPlatform,
    createStaging: (input: Artifacts.CreateStagingInput) => artifacts.createStaging(config, input),
    preflight: (input: Artifacts.PreflightInput) => artifacts.preflight(config, input),
    downloadArtifact: (input: Artifacts.DownloadInput) => artifacts.downloadArtifact(config, input),
    verifySignature: (input: Signature.VerifySignatureInput) => signature.verifySignature(config, input),
    stageGateway: (input: Stage.StageGatewayInput) => stage.stageGateway(config, input),
    prepareVenv: (input: Install.PrepareVenvInput) => install.prepareVenv(config, input),
    removeStaging: (input: Artifacts.RemoveStagingInput) => artifacts.removeStaging(config, input),
    discardVenv: (input: Install.DiscardVenvInput) => install.discardVenv(config, input),
    createBackup: (input: Backup.CreateBackupInput) => backup.createBackup(config, input),
    verifyBackup: (input: Backup.BackupRef) => backup.verifyBackup(config, input),
    latestBackup: () => backup.latestBackup(config),
    listBackups: () => backup.listBackups(config),
    stopGateway: () => gateway.stopGateway(config),
    installGateway: (input: Install.InstallGatewayInput) => install.installGateway(config, input),
    switchVenv: (input: Install.SwitchVenvInput) => install.switchVenv(config, input),
    runMigrations: (input: Migrations.MigrateInput) => migrations.runMigrations(config, input),
    /** Issue 21: the hop's migrations, prepared in isolation before the stop. */
    prepareMigrations: (input: MigrationStage.PrepareInput) => migrationStage.prepareMigrations(config, input),
    startGateway: (input: Gateway.StartInput) => gateway.startGateway(config, input),
    restartOpenclaw: () => gateway.restartOpenclaw(config),
    waitHealthy: (input: Health.WaitHealthyInput) => health.waitHealthy(config, input),
    /** A ring's promotion gate on this host: /health subsystems and counters, and the operator's check. */
    readGate: (input: HealthGate.ReadGateInput) => healthGate.readGate(config, input),
    restoreFiles: (input: Backup.BackupRef) => restore.restoreFiles(config, input),
    restoreGateway: (input: Backup.BackupRef) => restore.restoreGateway(config, input),
    restoreVenv: (input: Restore.RestoreVenvInput) => restore.restoreVenv(config, input),
    /** Issue 18: this host's worker installs another defenseclaw-upgrade and restarts into it. */
    updateUpgrader: (input: Upgrader.UpdateInput) => upgrader.updateUpgrader(config, input),
    upgraderSwitchOutcome: (input: Upgrader.OutcomeInput) => upgrader.upgraderSwitchOutcome(config, input),
    // DefenseClaw's own upgrade records (issue 20).
    checkNativeRecords: (input: NativeRecords.CheckRecordsInput) => nativeRecords.checkNativeRecords(config, input),
    acquireNativeLock: (input: NativeRecords.AcquireLockInput) => nativeRecords.acquireNativeLock(config, input),
    holdNativeLock: (input: NativeRecords.LockInput) => nativeRecords.holdNativeLock(config, input),
    releaseNativeLock: (input: NativeRecords.LockInput) => nativeRecords.releaseNativeLock(config, input),
    gatewayReadyHandshake: (input: NativeRecords.HandshakeInput) => nativeRecords.gatewayReadyHandshake(config, input),
    writeUpgradeReceipt: (input: Receipts.WriteInput) => receipts.writeUpgradeReceipt(config, input),
    awaitReceiptAcknowledged: (input: Receipts.AwaitAckInput) => receipts.awaitReceiptAcknowledged(config, input),
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
