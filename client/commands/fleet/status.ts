/** `fleet status <id> [--json] [--all]`: one snapshot, or the live table on a terminal while it runs. */
import { type FleetResult } from '../../../workflows/fleet/fleet-types.js';
import { IdSchema } from '../../../workflows/types.js';
import { connectTarget } from '../../connect.js';
import { upgraderVersions } from './fleet-upgraders.js';
import { flag } from '../shared.js';
import { followFleet } from './follow.js';
import { currentSteps, fleetSnapshot, goneWorkers } from './progress.js';
import { renderFleet } from './table.js';

export async function fleetStatusCommand(fleetId: string, flags: { json?: boolean; all?: boolean }): Promise<number> {
  flag(IdSchema, fleetId, 'fleet id');
  const target = await connectTarget({});
  try {
    const snap = await fleetSnapshot(target.client, fleetId);
    const live = !flags.json && process.stdout.isTTY === true;
    if (snap.running && live) {
      const result = await followFleet(target, fleetId, flags);
      return result.ok ? 0 : 1;
    }
    const steps = snap.running ? await currentSteps(target.client, snap.progress) : new Map<string, string>();
    const gone = snap.running ? await goneWorkers(target.client, target.namespace, snap.progress) : new Map();
    const upgraders = await upgraderVersions(target.client, target.namespace, snap.progress);
    if (flags.json) {
      const hosts = snap.progress.hosts.map((h) => ({
        ...h,
        ...(steps.has(h.host) ? { step: steps.get(h.host) } : {}),
        ...(gone.has(h.host) ? { worker: 'gone', workerGone: gone.get(h.host) } : {}),
        ...(upgraders.has(h.host) ? { upgrader: upgraders.get(h.host) } : {}),
      }));
      process.stdout.write(`${JSON.stringify({ ...snap.progress, hosts, running: snap.running }, null, 2)}\n`);
    } else {
      process.stdout.write(
        `${renderFleet(snap.progress, { now: Date.now(), steps, gone, upgraders, all: flags.all })}\n`,
      );
    }
    if (snap.running) return 0;
    return (snap.progress as FleetResult).ok ? 0 : 1;
  } finally {
    await target.close();
  }
}
