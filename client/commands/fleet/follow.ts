/** Watching a rollout to its end: a live table on a terminal (table.ts), one line per host change otherwise. */
import logUpdate from 'log-update';
import {
  fleetProgressQuery,
  type FleetHostState,
  type FleetProgress,
  type FleetResult,
} from '../../../workflows/fleet/fleet-types.js';
import { type Target } from '../../connect.js';
import { duration } from '../../render/format.js';
import { upgraderVersions, type UpgraderVersions } from './fleet-upgraders.js';
import { withTimeout } from './snapshot.js';
import { currentSteps, fleetResultOf, goneWorkers } from './progress.js';
import { renderFleet } from './table.js';

/** Watches a rollout to its end: a live table on a terminal, one line per host change otherwise. */
export async function followFleet(
  target: Target,
  fleetId: string,
  flags: { json?: boolean; all?: boolean },
): Promise<FleetResult> {
  const handle = target.client.workflow.getHandle(fleetId);
  const live = !flags.json && process.stdout.isTTY === true;
  let settled: { result?: FleetResult; error?: unknown } | undefined;
  const done = fleetResultOf(handle).then(
    (result) => (settled = { result }),
    (error) => (settled = { error }),
  );
  const onSigint = () => {
    if (live) logUpdate.done();
    process.stderr.write(
      `\nStopped watching; the rollout goes on. Watch it again with: defenseclaw-upgrade fleet status ${fleetId}\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  const seen = new Map<string, FleetHostState>();
  // The upgrader versions change rarely: read again every UPGRADERS_EVERY_MS, not every refresh.
  let upgraders: { at: number; versions: UpgraderVersions } | undefined;
  try {
    while (!settled) {
      const p = await withTimeout(handle.query(fleetProgressQuery), 10_000).catch(() => undefined);
      if (p && live) {
        if (!upgraders || Date.now() - upgraders.at > UPGRADERS_EVERY_MS) {
          upgraders = { at: Date.now(), versions: await upgraderVersions(target.client, target.namespace, p) };
        }
        logUpdate(
          renderFleet(p, {
            now: Date.now(),
            steps: await currentSteps(target.client, p),
            gone: await goneWorkers(target.client, target.namespace, p),
            upgraders: upgraders.versions,
            all: flags.all,
            maxRows: rowsAvailable(),
          }),
        );
      } else if (p && !flags.json) {
        for (const line of changes(p, seen)) process.stdout.write(`${line}\n`);
      }
      await Promise.race([done, sleep(1000)]);
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  if (settled.error) {
    if (live) logUpdate.done();
    throw settled.error;
  }
  const result = settled.result!;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (live) {
    logUpdate(
      renderFleet(result, {
        now: Date.now(),
        upgraders: upgraders?.versions,
        all: flags.all,
        maxRows: rowsAvailable(),
      }),
    );
    logUpdate.done();
  } else {
    for (const line of changes(result, seen)) process.stdout.write(`${line}\n`);
    process.stdout.write(`${renderFleet(result, { now: Date.now(), all: flags.all })}\n`);
  }
  return result;
}

const UPGRADERS_EVERY_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function rowsAvailable(): number {
  return Math.max(8, (process.stdout.rows ?? 40) - 10);
}

/** One line per host whose state changed since the last call (for pipes and logs). */
function changes(p: FleetProgress, seen: Map<string, FleetHostState>): string[] {
  const out: string[] = [];
  for (const h of p.hosts) {
    if (seen.get(h.host) === h.state) continue;
    const first = !seen.has(h.host);
    seen.set(h.host, h.state);
    if (first && h.state === 'waiting') continue;
    const versions = h.before || h.after ? ` ${h.before ?? '?'} → ${h.after ?? '?'}` : '';
    const took = h.endedAt && h.startedAt ? ` (${duration(h.endedAt - h.startedAt)})` : '';
    out.push(`${h.host}: ${h.state}${versions}${took}${h.reason && h.state !== 'healthy' ? ` — ${h.reason}` : ''}`);
  }
  return out;
}
