/**
 * The shared vocabulary of defenseclaw-upgrade: workflow inputs and results, step names,
 * search attributes and the validation of everything that crosses the trust boundary.
 *
 * Pure and deterministic: imported by workflows, activities, the worker and the client alike.
 */
import { z } from 'zod';
import { ReleaseTicketSchema } from './release-ticket.js';
import { HOST_NAME, parseHostName } from './names.js';
import { VersionSchema } from './version.js';

export { TASK_QUEUE_PREFIX, SEARCH_ATTRIBUTES, parseHostName, taskQueueForHost } from './names.js';
/**
 * Where the local agent runs the workflows (upgrade, rollback, backups): the host's own queue
 * carries only its activities. A fleet's controller runs them on the fleet queue.
 */
export const AGENT_WORKFLOW_QUEUE = 'defenseclaw-upgrade-workflows';

/** Workflow types, as registered by the worker. */
export const WORKFLOW_UPGRADE = 'upgradeHost';
export const WORKFLOW_ROLLBACK = 'rollbackHost';
export const WORKFLOW_FLEET = 'fleetRollout';
/** Moves one host's worker (the upgrader itself) to another version: a fleet child when `component` is `worker`. */
export const WORKFLOW_WORKER_UPDATE = 'updateWorkerHost';

/** What a fleet or ring rollout moves: DefenseClaw (the default) or the hosts' own workers (issue 18). */
export const ROLLOUT_COMPONENTS = ['defenseclaw', 'worker'] as const;
export type RolloutComponent = (typeof ROLLOUT_COMPONENTS)[number];

// ---------------------------------------------------------------------------------------------
// Validation: one zod schema per thing that crosses the trust boundary. Objects are strict, so
// an extra field (a URL, a path, a command) is refused rather than ignored.
// ---------------------------------------------------------------------------------------------

export { InvalidInputError, VersionSchema, compareVersions, isVersion, parseVersion, parseWith } from './version.js';

export const HostNameSchema = z.string().regex(HOST_NAME.pattern, HOST_NAME.message);

/** Backup folder names: `upgrade-<timestamp>` (a rollback makes `rollback-<timestamp>`). */
export const BackupIdSchema = z
  .string()
  .regex(/^(?:upgrade|rollback)-[0-9]{8}T[0-9]{6,9}Z$/, 'expected a folder name like upgrade-20261124T101500Z');

export const IdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, 'a short identifier');
/** A task queue name (the host's own, where its activity-only worker polls). */
export const TaskQueueSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9@._:-]{0,199}$/, 'a task queue name');

export const ON_FAILURE = ['rollback', 'restart', 'stop'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];

/**
 * `reconnecting` after the start (the gateway serves, OpenClaw is not connected): `auto` accepts it
 * only when the gateway was not `running` before the upgrade (OpenClaw was down already: the upgrade
 * did not make it worse); `accept` always; `refuse` never (OpenClaw must be connected again).
 */
export const RECONNECTING = ['auto', 'accept', 'refuse'] as const;

export const LIMITS = {
  healthTimeoutSeconds: { min: 1, max: 3600, default: 60 },
  confirmTimeoutSeconds: { min: 10, max: 86400, default: 900 },
} as const;

const seconds = (l: { min: number; max: number; default: number }) =>
  z.number().int().min(l.min).max(l.max).default(l.default);

export const UpgradeOptionsSchema = z
  .object({
    /** Seconds to wait for `/health` to report running after the start (default 60). */
    healthTimeoutSeconds: seconds(LIMITS.healthTimeoutSeconds),
    /** What to do when anything fails after the gateway was stopped. */
    onFailure: z.enum(ON_FAILURE).default('rollback'),
    /** Whether `reconnecting` counts as healthy after the start (see RECONNECTING). */
    reconnecting: z.enum(RECONNECTING).default('auto'),
    /** Wait for an operator's confirmation (Update `confirm`) before changing anything. */
    requireConfirmation: z.boolean().default(false),
    /** How long to wait for that confirmation before giving up (nothing changed). */
    confirmTimeoutSeconds: seconds(LIMITS.confirmTimeoutSeconds),
  })
  .strict();
export type UpgradeOptions = z.output<typeof UpgradeOptionsSchema>;

export const UpgradeInputSchema = z
  .object({
    /** The host this run upgrades (must match the worker's own host). */
    host: HostNameSchema,
    /** Target version; absent means the latest release. */
    version: VersionSchema.optional(),
    options: UpgradeOptionsSchema.default(() => UpgradeOptionsSchema.parse({})),
    /** Set when a fleet rollout started this run. */
    fleetId: IdSchema.optional(),
    /** Who asked, for the audit trail (a user name, never a credential). */
    requestedBy: IdSchema.optional(),
    /**
     * The host's task queue, where its activities run when the workflow runs elsewhere (the agent's
     * or the controller's queue). Absent: the workflow's own queue (runs recorded before issue 13).
     */
    hostQueue: TaskQueueSchema.optional(),
    /**
     * The rollout's release ticket (issue 14): set by a fleet with `version`, so that this run asks
     * no releases API and verifies the files against the ticket's digests (release-ticket.ts).
     */
    ticket: ReleaseTicketSchema.optional(),
  })
  .strict()
  .refine((i) => !i.ticket || i.ticket.version === i.version, {
    message: 'the release ticket is for another version',
    path: ['ticket'],
  });
export type UpgradeInput = z.input<typeof UpgradeInputSchema>;
export type ValidUpgradeInput = z.output<typeof UpgradeInputSchema>;

export const RollbackInputSchema = z
  .object({
    host: HostNameSchema,
    /** A backup folder name under $DEFENSECLAW_HOME/backups; absent means the latest. */
    backupId: BackupIdSchema.optional(),
    healthTimeoutSeconds: seconds(LIMITS.healthTimeoutSeconds),
    requireConfirmation: z.boolean().default(false),
    confirmTimeoutSeconds: seconds(LIMITS.confirmTimeoutSeconds),
    requestedBy: IdSchema.optional(),
    /** As in UpgradeInputSchema. */
    hostQueue: TaskQueueSchema.optional(),
  })
  .strict();
export type RollbackInput = z.input<typeof RollbackInputSchema>;

/** One workflow ID per host for everything that changes it: a second start attaches or is refused. */
export function hostWorkflowId(host: string): string {
  return `defenseclaw-upgrade-${parseHostName(host)}`;
}

/**
 * The workflow ID of a host's worker update: its own, apart from hostWorkflowId (`defenseclaw-upgrade-`
 * + host never reads `defenseclaw-upgrader-…`), so that a DefenseClaw upgrade and a worker update of
 * the same host may run at once (the upgrade's activities are retried on the restarted worker); two
 * worker updates of one host may not.
 */
export function workerUpdateWorkflowId(host: string): string {
  return `defenseclaw-upgrader-${parseHostName(host)}`;
}

// ---------------------------------------------------------------------------------------------
// Steps, progress and results
// ---------------------------------------------------------------------------------------------

export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export interface StepRecord {
  name: string;
  status: StepStatus;
  /** Epoch ms (workflow time) when the step started and ended. */
  startedAt?: number;
  endedAt?: number;
  detail?: string;
}

export type Platform = { os: 'linux' | 'darwin'; arch: 'amd64' | 'arm64' };

export interface ArtifactInfo {
  name: string;
  size: number;
  sha256: string;
}

/**
 * How far checksums.txt's signature was verified: `verified` (cosign: identity, chain, transparency
 * log), `checked-locally` (certificate identity and signature checked here; cosign not installed),
 * `unsigned` (the release has no signature). `cosign-missing` is what runs before release eras said.
 */
export type SignatureStatus = 'verified' | 'checked-locally' | 'unsigned' | 'cosign-missing';

/** One hop of an upgrade: a complete upgrade from one version to the next (a bridge release, or the target). */
export interface PlanHop {
  from: string;
  to: string;
  /** goreleaser | manifest | protected */
  era: string;
  /** This hop installs a bridge release the next one requires. */
  bridge: boolean;
  gateway: { name: string; verifiedBy: string };
  wheel: { name: string; verifiedBy: string };
  /** checksums.txt.sig/.pem (and .bundle) the release publishes; empty when unsigned. */
  signatureFiles: string[];
  signatureRequired: boolean;
  /** Certificate identities accepted for this release. */
  identities: string[];
  /** Migrations that must be in the cursor after this hop, and what a missing one does. */
  migrations: string[];
  migrationFailurePolicy: 'warn' | 'fail';
}

export interface UpgradePlan {
  host: string;
  from: string;
  to: string;
  platform: Platform;
  artifacts: ArtifactInfo[];
  signature: SignatureStatus;
  /** Every hop, in order (one unless the release requires a bridge). Absent in runs before release eras. */
  route?: PlanHop[];
  /** When the gateway counts as healthy after the start. */
  health?: string;
  /** Folder name under $DEFENSECLAW_HOME/backups that the backup will create. */
  backupId: string;
  /** What happens between the stop and healthy. */
  downtimeSteps: string[];
  onFailure: OnFailure;
}

export type UpgradeOutcome =
  | 'upgraded'
  /** A rollback run reached the backup's state and is healthy. */
  | 'restored'
  | 'already-current'
  | 'declined'
  | 'cancelled'
  | 'failed-unchanged'
  | 'rolled-back'
  | 'restarted'
  | 'stopped'
  | 'rollback-failed'
  /** A chain of hops stopped after at least one hop: the host runs an intermediate version, healthy. */
  | 'partial'
  /** A worker update that was neither proven nor reverted (updateWorkerHost): see its message. */
  | 'failed';

export type Phase = 'starting' | 'preparing' | 'awaiting-confirmation' | 'upgrading' | 'compensating' | 'finished';

/** What the `progress` query answers: enough for a live view of the run. */
export interface UpgradeProgress {
  kind: 'upgrade' | 'rollback';
  host: string;
  phase: Phase;
  from?: string;
  to?: string;
  steps: StepRecord[];
  plan?: UpgradePlan;
  backupId?: string;
  outcome?: UpgradeOutcome;
  message?: string;
}

export interface UpgradeResult {
  kind: 'upgrade' | 'rollback';
  host: string;
  outcome: UpgradeOutcome;
  /** True when the host ended on the version it was asked to reach (or was already on it). */
  ok: boolean;
  from?: string;
  to?: string;
  backupId?: string;
  artifacts: ArtifactInfo[];
  signature?: SignatureStatus;
  steps: StepRecord[];
  migrationsRun?: number;
  /** One paragraph a person can act on (what happened, where the backup is, what to do). */
  message: string;
  /** For failures: the step that failed and its error, secrets scrubbed. */
  failure?: { step: string; error: string };
  /** For rollbacks after a failure: what compensation did and how it ended. */
  compensation?: { steps: StepRecord[]; hostState: string };
  /** DefenseClaw upgrade receipts this run wrote, one per hop from 0.8.4 (workflows/host/records.ts). */
  defenseclawReceipts?: Array<{
    receiptId: string;
    from: string;
    to: string;
    status: string;
    failureCode: string;
    acknowledged?: boolean;
  }>;
}

export interface ConfirmAnswer {
  approve: boolean;
  by?: string;
}
