/**
 * The fleet inventory (issue 22): which host runs which DefenseClaw, read from every host's own
 * worker (readInventory on `defenseclaw-upgrade@<host>`) and, for what Temporal knows (a run in
 * flight, the last outcome, when a queue was last polled), from the controller's client
 * (inventoryVisibility). Types, limits and the pure parts shared by workflows, activities and CLI.
 */
import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { FLEET_LIMITS } from './fleet-types.js';
import { HostNameSchema, TaskQueueSchema, VersionSchema, compareVersions } from '../types.js';

export const WORKFLOW_INVENTORY = 'fleetInventory';
export const WORKFLOW_INVENTORY_BATCH = 'inventoryBatch';
export const WORKFLOW_STANDING_INVENTORY = 'standingInventory';

/** The standing inventory's fixed workflow ID, and its schedule's. */
export const STANDING_INVENTORY_ID = 'defenseclaw-inventory';
export const INVENTORY_SCHEDULE_ID = 'defenseclaw-inventory-refresh';

export const INVENTORY_LIMITS = {
  hosts: FLEET_LIMITS.hosts,
  /** Host answers in flight per batch. */
  concurrency: { min: 1, max: 200, default: 32 },
  /** How long a host's worker has to pick its activity up before the host is `unreachable`. */
  answerSeconds: { min: 1, max: 600, default: 15 },
  /** Hosts per child batch: the parent's history grows with the batches, each child's with its hosts. */
  batchHosts: 200,
  /** Child batches running at once. */
  parallelBatches: 4,
} as const;

export const InventoryInputSchema = z
  .object({
    hosts: z.array(HostNameSchema).min(1).max(INVENTORY_LIMITS.hosts),
    concurrency: z
      .number()
      .int()
      .min(INVENTORY_LIMITS.concurrency.min)
      .max(INVENTORY_LIMITS.concurrency.max)
      .optional(),
    answerSeconds: z
      .number()
      .int()
      .min(INVENTORY_LIMITS.answerSeconds.min)
      .max(INVENTORY_LIMITS.answerSeconds.max)
      .optional(),
    /** Resolve the latest release on the controller (for `--behind latest`). */
    resolveLatest: z.boolean().optional(),
    /** One queue for every host (benchmarks with stub hosts); default each host's own queue. */
    taskQueue: TaskQueueSchema.optional(),
  })
  .strict()
  .refine((i) => new Set(i.hosts).size === i.hosts.length, 'a host is listed twice');
export type InventoryInput = z.input<typeof InventoryInputSchema>;

/** What a host's worker answers about itself. */
export interface HostReport {
  /** `defenseclaw-gateway --version`, when the gateway answers it. */
  gatewayVersion?: string;
  /** The installed defenseclaw wheel (its dist-info in the live venv). */
  wheelVersion?: string;
  /** /health: the gateway's state (`running`, `starting`, …, `unreachable`, `invalid`) and every subsystem's. */
  health: { state: string; subsystems: Record<string, string> };
  /** The release era of the installed version (goreleaser, manifest, protected). */
  era?: string;
  /** The upgrader this worker runs. */
  upgraderVersion: string;
  /** Problems reading a part (one short line each). */
  notes?: string[];
}

/** What Temporal knows about a host, read on the controller. */
export interface HostVisibility {
  /** The host's fixed-ID run (upgrade or rollback) now running. */
  inFlight?: { kind: string; runId: string; startedAt: string };
  /** The last closed upgrade or rollback of the host. */
  lastOutcome?: { kind: string; outcome: string; toVersion?: string; closedAt?: string };
  /** The last time Temporal saw the host's queue polled (describeTaskQueue), if it still remembers. */
  lastPolledAt?: string;
}

export type InventoryStatus = 'ok' | 'unreachable' | 'error';

export interface HostInventory extends Partial<HostReport>, HostVisibility {
  host: string;
  status: InventoryStatus;
  /** When this record was read (workflow time, ISO). */
  at: string;
  /** Unreachable: since when (last poll seen, or the last inventory that reached it). */
  unreachableSince?: string;
  /** Error: why the host's answer failed. */
  error?: string;
}

export interface InventoryResult {
  startedAt: string;
  finishedAt: string;
  hosts: HostInventory[];
  /** The latest release as the controller resolves it (when asked for). */
  latest?: string;
  latestError?: string;
}

/** Versions, newest first; hosts without a version go last as `unknown`. */
export function groupByVersion(hosts: readonly HostInventory[]): Array<{ version: string; hosts: HostInventory[] }> {
  const groups = new Map<string, HostInventory[]>();
  for (const h of hosts) {
    const v = h.status === 'unreachable' ? 'unreachable' : (h.gatewayVersion ?? 'unknown');
    groups.set(v, [...(groups.get(v) ?? []), h]);
  }
  const rank = (v: string) => (v === 'unreachable' ? 2 : v === 'unknown' ? 1 : 0);
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || (rank(a) === 0 ? compareVersions(b, a) : 0))
    .map(([version, hs]) => ({ version, hosts: hs.sort((x, y) => x.host.localeCompare(y.host)) }));
}

/** Hosts whose gateway is older than `target` (hosts whose version is not known are not "behind"). */
export function hostsBehind(hosts: readonly HostInventory[], target: string): HostInventory[] {
  VersionSchema.parse(target);
  return hosts.filter((h) => h.gatewayVersion !== undefined && compareVersions(h.gatewayVersion, target) < 0);
}

/** The standing inventory's state, answered by its query. */
export interface StandingInventory {
  /** The last refresh's result (undefined before the first). */
  latest?: InventoryResult;
  refreshes: number;
  /** Per host, the last time an inventory reached it (carried across continue-as-new). */
  lastSeen: Record<string, string>;
}

export const standingInventoryQuery = defineQuery<StandingInventory>('standingInventory');
