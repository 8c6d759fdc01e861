/**
 * Which upgrader version each fleet host runs, as Temporal sees it: the identity its queue's
 * freshest activity poller reports (worker/identity.ts). One describeTaskQueue per queue, a few at
 * a time; a host whose queue has no fresh poller, or a poller of a release before 0.2 (which did
 * not report its version), has no entry.
 */
import type { Client } from '@temporalio/client';
import { queuePollers } from '../../../worker/queue-pollers.js';
import type { FleetProgress } from '../../../workflows/fleet/fleet-types.js';
import { taskQueueForHost } from '../../../workflows/types.js';
import { pollerFreshSeconds } from '../../supervise.js';

/** Per host, the upgrader version its worker reports. */
export type UpgraderVersions = Map<string, string>;

const CONCURRENCY = 8;

/** The version the freshest activity poller of `taskQueue` reports, if any. */
export async function queueUpgraderVersion(
  client: Client,
  namespace: string,
  taskQueue: string,
  freshS = pollerFreshSeconds(),
): Promise<string | undefined> {
  const now = Date.now();
  let best: { at: number; version?: string } | undefined;
  for (const p of await queuePollers(client.workflowService, namespace, taskQueue)) {
    const at = p.lastAccessTime ?? 0;
    if (now - at > freshS * 1000) continue;
    if (!best || at > best.at) best = { at, version: p.version };
  }
  return best?.version;
}

/** Per host of the rollout, the upgrader version of its queue's worker (unknown hosts left out). */
export async function upgraderVersions(client: Client, namespace: string, p: FleetProgress): Promise<UpgraderVersions> {
  const queueOf = (host: string) => p.settings.taskQueue ?? taskQueueForHost(host);
  const queues = [...new Set(p.hosts.map((h) => queueOf(h.host)))];
  const byQueue = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < queues.length) {
      const q = queues[next++]!;
      const v = await queueUpgraderVersion(client, namespace, q).catch(() => undefined);
      if (v) byQueue.set(q, v);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queues.length) }, worker));
  const out: UpgraderVersions = new Map();
  for (const h of p.hosts) {
    const v = byQueue.get(queueOf(h.host));
    if (v) out.set(h.host, v);
  }
  return out;
}
