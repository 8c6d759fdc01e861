/**
 * createActivities(hostConfig): every side effect of an upgrade, bound to the configuration
 * this host's worker read at start. Workflows see only these names and their types.
 */
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import type { TicketRelease } from '../../workflows/release-ticket.js';
import { HostNameSchema } from '../../workflows/types.js';
import { lazyModule } from '../lazy-module.js';
import { detectPlatform } from './platform.js';
import type { Receipt } from './upgrade-receipt.js';
import { FailureType, refuse, validated, withHeartbeat } from '../support.js';

// Each step's module is loaded by its first call: an idle worker holds none of them (issue 21).
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
const nativeRecords = lazyModule(() => import('./native-records.js'));
const releases = lazyModule(() => import('../releases.js'));
const releaseTicket = lazyModule(() => import('./release-ticket.js'));
const signature = lazyModule(() => import('./signature.js'));
const receipts = lazyModule(() => import('./upgrade-receipt.js'));
const upgrader = lazyModule(() => import('./upgrader-update.js'));

export function createActivities(config: HostConfig) {
  return heartbeatAll({
    /** Refuses a run addressed to another host (the audit trail must name the right one). */
    async checkHost(input: unknown): Promise<{ host: string }> {
      const { host } = validated(z.object({ host: HostNameSchema }).strict(), input, 'checkHost');
      if (host !== config.host)
        throw refuse(FailureType.HostMismatch, `this worker serves host ${config.host}, not ${host}`);
      return { host };
    },
    resolveRelease: (input: { version?: string }) => releases.resolveRelease(config, input),
    /** A rollout's one lookup: the release as a ticket for every host (issue 14). */
    issueReleaseTicket: (input: { version?: string }) => releaseTicket.issueReleaseTicket(config, input),
    /** A host given a ticket: the release from its own source, no API call. */
    resolveFromTicket: (input: { release: TicketRelease }) => releaseTicket.resolveFromTicket(config, input),
    readInstalledVersion: () => gateway.readInstalledVersion(config),
    /** The fleet inventory's answer about this host (issue 22). */
    readInventory: () => inventory.readInventory(config),
    detectPlatform,
    createStaging: (input: { runId: string }) => artifacts.createStaging(config, input),
    preflight: (input: {
      version: string;
      platform: { os: string; arch: string };
      names: string[];
      declared?: Array<{ name: string; size: number }>;
    }) => artifacts.preflight(config, input),
    downloadArtifact: (input: {
      version: string;
      stagingId: string;
      name: string;
      size: number;
      verify: boolean;
      sha256?: string;
    }) => artifacts.downloadArtifact(config, input),
    verifySignature: (input: { version: string; stagingId: string; signed: boolean }) =>
      signature.verifySignature(config, input),
    stageGateway: (input: {
      version: string;
      stagingId: string;
      platform: { os: string; arch: string };
      asset?: string;
      sha256?: string;
    }) => stage.stageGateway(config, input),
    prepareVenv: (input: { version: string; stagingId: string; asset?: string; sha256?: string }) =>
      install.prepareVenv(config, input),
    removeStaging: (input: { stagingId: string }) => artifacts.removeStaging(config, input),
    discardVenv: (input: { venvId: string }) => install.discardVenv(config, input),
    createBackup: (input: { backupId: string; fromVersion: string; toVersion?: string }) =>
      backup.createBackup(config, input),
    verifyBackup: (input: { backupId: string }) => backup.verifyBackup(config, input),
    latestBackup: () => backup.latestBackup(config),
    listBackups: () => backup.listBackups(config),
    stopGateway: () => gateway.stopGateway(config),
    installGateway: (input: { stagingId: string; sha256: string }) => install.installGateway(config, input),
    switchVenv: (input: { venvId: string; backupId: string }) => install.switchVenv(config, input),
    runMigrations: (input: {
      fromVersion: string;
      toVersion: string;
      required?: string[];
      failurePolicy?: 'warn' | 'fail';
    }) => migrations.runMigrations(config, input),
    startGateway: (input: { healthTimeoutSeconds: number }) => gateway.startGateway(config, input),
    restartOpenclaw: () => gateway.restartOpenclaw(config),
    waitHealthy: (input: { version?: string; timeoutSeconds: number; acceptReconnecting?: boolean }) =>
      health.waitHealthy(config, input),
    /** A ring's promotion gate on this host: /health subsystems and counters, and the operator's check. */
    readGate: (input: { counters: string[]; operatorCheck: boolean }) => healthGate.readGate(config, input),
    restoreFiles: (input: { backupId: string }) => restore.restoreFiles(config, input),
    restoreGateway: (input: { backupId: string }) => restore.restoreGateway(config, input),
    restoreVenv: (input: { backupId: string; preserveCurrentAs?: string }) => restore.restoreVenv(config, input),
    /** Issue 18: this host's worker installs another defenseclaw-upgrade and restarts into it. */
    updateUpgrader: (input: { version: string; deadlineSeconds?: number }) => upgrader.updateUpgrader(config, input),
    upgraderSwitchOutcome: (input: { version: string }) => upgrader.upgraderSwitchOutcome(config, input),
    // DefenseClaw's own upgrade records (issue 20).
    checkNativeRecords: (input: { heldToken?: string; receipts: boolean }) =>
      nativeRecords.checkNativeRecords(config, input),
    acquireNativeLock: (input: { token?: string }) => nativeRecords.acquireNativeLock(config, input),
    holdNativeLock: (input: { token: string }) => nativeRecords.holdNativeLock(config, input),
    releaseNativeLock: (input: { token: string }) => nativeRecords.releaseNativeLock(config, input),
    gatewayReadyHandshake: (input: { version: string; timeoutSeconds: number }) =>
      nativeRecords.gatewayReadyHandshake(config, input),
    writeUpgradeReceipt: (input: { receipt: Receipt }) => receipts.writeUpgradeReceipt(config, input),
    awaitReceiptAcknowledged: (input: { receiptId: string; timeoutSeconds: number }) =>
      receipts.awaitReceiptAcknowledged(config, input),
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
