/**
 * Records workflow histories from real runs (a real Temporal dev server, simulated hosts, the
 * GitHub-like release server, the real workers) into test/histories/, for test/replay.test.ts:
 *
 *   npm run build && node dist/scripts/record-histories.js
 *
 * Re-record only on purpose: the committed histories stand for runs that may be in flight when
 * new workflow code is deployed, and the replay test fails when the current code cannot continue
 * them (use patched() for such changes instead of re-recording).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import {
  WorkflowIdConflictPolicy,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { confirmUpdate, progressQuery } from '../workflows/definitions.js';
import type { UpgradeResult } from '../workflows/types.js';
import type { FleetResult } from '../workflows/fleet/fleet-types.js';
import { RolloutPlanSchema, type RingRolloutInput, type RingRolloutResult } from '../workflows/fleet/ring-types.js';
import { rolloutIdFor } from '../workflows/fleet/channel-types.js';
import { installRuntime } from '../worker/runtime.js';
import {
  controlChannelSchedule,
  createChannelSchedule,
  triggerChannelSchedule,
} from '../client/commands/fleet/schedule-client.js';
import { DEFAULT_VERSIONS } from '../test/fixtures/releases/server.js';
import { Harness, type HostUnderTest } from '../test/helpers/harness.js';
import { startFleet } from '../test/helpers/fleet-sim.js';

/** dist/scripts/record-histories.js → <repo>/test/histories */
export const HISTORIES_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test',
  'histories',
);

/** How a recorded run ended: the hosts it touched (their secrets must not reach the history), its run, its outcome. */
interface Recorded {
  hosts: HostUnderTest[];
  handle: WorkflowHandle;
  /** The run to export (default: the handle's first run). */
  runId?: string;
  outcome: string;
  message?: string;
}

interface Recording {
  file: string;
  workflowType: string;
  outcome: string;
  run: (h: Harness) => Promise<Recorded>;
}

/** An upgradeHost or rollbackHost run on one host. */
async function hostRun(host: HostUnderTest, handle: WorkflowHandle): Promise<Recorded> {
  const result: UpgradeResult = await host.result(handle);
  return { hosts: [host], handle, outcome: result.outcome, message: result.message };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const RECORDINGS: Recording[] = [
  {
    file: 'upgrade-upgraded.json',
    workflowType: 'upgradeHost',
    outcome: 'upgraded',
    async run(h) {
      const host = await h.host();
      const handle = await host.upgrade({ version: '0.4.0' });
      return hostRun(host, handle);
    },
  },
  {
    file: 'upgrade-confirmed.json',
    workflowType: 'upgradeHost',
    outcome: 'upgraded',
    async run(h) {
      const host = await h.host();
      const handle = await host.upgrade({ version: '0.3.1', options: { requireConfirmation: true } });
      for (let i = 0; ; i++) {
        const p = await handle.query(progressQuery).catch(() => undefined);
        if (p?.phase === 'awaiting-confirmation') break;
        if (i > 600) throw new Error('the run never asked for confirmation');
        await sleep(100);
      }
      await handle.executeUpdate(confirmUpdate, { args: [{ approve: true, by: 'recorder' }] });
      return hostRun(host, handle);
    },
  },
  {
    file: 'upgrade-rolled-back.json',
    workflowType: 'upgradeHost',
    outcome: 'rolled-back',
    async run(h) {
      const host = await h.host({ faults: { migrations: { '0.4.0': 'raise' } } });
      const handle = await host.upgrade({ version: '0.4.0' });
      return hostRun(host, handle);
    },
  },
  {
    file: 'upgrade-chain-upgraded.json',
    workflowType: 'upgradeHost',
    outcome: 'upgraded',
    async run(h) {
      // 0.8.3 → 0.8.5 through the 0.8.4 bridge: two hops in one run.
      const host = await h.host({ version: '0.8.3', extraEnv: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' } });
      const handle = await host.upgrade({ version: '0.8.5' });
      return hostRun(host, handle);
    },
  },
  {
    file: 'upgrade-records-rolled-back.json',
    workflowType: 'upgradeHost',
    outcome: 'rolled-back',
    async run(h) {
      // DefenseClaw's own records (issue 20): the lock taken and held, a pending receipt, the health of
      // 0.8.5 failing, rolled back, the receipt rolled_back/health_check_failed, the lock released.
      const host = await h.host({
        version: '0.8.4',
        extraEnv: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' },
        faults: { gateway: { '0.8.5': { health: 'error' } } },
      });
      const handle = await host.upgrade({ version: '0.8.5', options: { healthTimeoutSeconds: 5 } });
      return hostRun(host, handle);
    },
  },
  {
    file: 'rollback-restored.json',
    workflowType: 'rollbackHost',
    outcome: 'restored',
    async run(h) {
      const host = await h.host();
      const up = await host.result(await host.upgrade({ version: '0.4.0' }));
      if (up.outcome !== 'upgraded') throw new Error(`the upgrade before the rollback ended ${up.outcome}`);
      const handle = await host.rollback({});
      return hostRun(host, handle);
    },
  },
  {
    file: 'fleet-rollout-continued.json',
    workflowType: 'fleetRollout',
    outcome: 'continued-as-new',
    async run(h) {
      // Its first run: resolve the ticket, the canary (an upgradeHost child), the bake and its
      // re-check, one more host, then continue-as-new (hostsPerRun 2); the second run ends it.
      const hosts = [await h.host(), await h.host(), await h.host()];
      const handle = await startFleet(h.client, {
        fleetId: `fleet-record-${process.pid}`,
        hosts: hosts.map((x) => x.name),
        version: '0.4.0',
        canary: 1,
        batch: { count: 2 },
        bakeSeconds: 1,
        healthTimeoutSeconds: 20,
        hostsPerRun: 2,
        requestedBy: 'recorder',
      });
      const result: FleetResult = await handle.result();
      if (result.verdict !== 'succeeded' || result.run < 1) {
        throw new Error(`the fleet rollout ended ${result.verdict} after run ${result.run}: ${result.message}`);
      }
      return { hosts, handle, outcome: 'continued-as-new' };
    },
  },
  {
    file: 'ring-rollout-succeeded.json',
    workflowType: 'ringRollout',
    outcome: 'succeeded',
    async run(h) {
      // Two rings: a canary that soaks behind the gates (probeRing, fleetRollout, soakRing
      // children), the rest with a held host; the events go to the controller's notifyRollout.
      const [a, b, held] = [await h.host(), await h.host(), await h.host()];
      const input: RingRolloutInput = {
        rolloutId: `rings-record-${process.pid}`,
        version: '0.4.0',
        requestedBy: 'recorder',
        plan: RolloutPlanSchema.parse({
          rings: [
            { name: 'canary', hosts: [a.name], soakSeconds: 2 },
            { name: 'rest', hosts: [b.name, held.name], batch: { count: 2 } },
          ],
          pins: { [held.name]: 'hold' },
          gates: { subsystems: true, counters: ['connector.errors'], operatorCheck: false },
          catchUpSeconds: 0,
        }),
      };
      const handle = await h.client.workflow.start('ringRollout', {
        taskQueue: h.workflowQueue,
        workflowId: input.rolloutId,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
      const result = (await handle.result()) as RingRolloutResult;
      return { hosts: [a, b, held], handle, outcome: result.verdict, message: result.message };
    },
  },
  {
    file: 'channel-check-started.json',
    workflowType: 'checkChannel',
    outcome: 'started',
    async run(h) {
      // A check that finds the latest release newer than anything rolled out and starts the
      // schedule's ring rollout (its hosts all held: that rollout has nothing to do).
      const scheduleId = `record-${process.pid}`;
      await createChannelSchedule(h.client, {
        plan: RolloutPlanSchema.parse({
          rings: [{ name: 'all', hosts: ['gw-record-1', 'gw-record-2'] }],
          pins: { 'gw-record-1': 'hold', 'gw-record-2': 'hold' },
        }),
        channel: 'latest',
        everySeconds: 3600,
        scheduleId,
        by: 'recorder',
      });
      try {
        const t = await triggerChannelSchedule(h.client, scheduleId);
        if (!t.triggered || !t.result) throw new Error(`the check did not end with a result: ${JSON.stringify(t)}`);
        const rollout = (await h.client.workflow.getHandle(rolloutIdFor(scheduleId)).result()) as RingRolloutResult;
        if (rollout.verdict !== 'nothing-to-do') throw new Error(`the rollout it started ended ${rollout.verdict}`);
        const handle = h.client.workflow.getHandle(t.checkId);
        const runId = (await handle.describe()).runId;
        return { hosts: [], handle, runId, outcome: t.result.outcome, message: t.result.message };
      } finally {
        await controlChannelSchedule(h.client, 'delete', scheduleId, 'recorder');
      }
    },
  },
];

/** The decoded `data` of every payload in a JSON history. */
function decodedPayloads(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) decodedPayloads(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'data' && typeof v === 'string') out.push(Buffer.from(v, 'base64').toString('utf8'));
      else decodedPayloads(v, out);
    }
  }
  return out;
}

async function main(): Promise<void> {
  installRuntime({ level: 'WARN' });
  const only = process.argv.slice(2);
  // The default releases, and a protected-era chain (0.8.5 needs the 0.8.4 bridge).
  const h = await Harness.start({ versions: [...DEFAULT_VERSIONS, '0.8.3', '0.8.4', '0.8.5'] });
  try {
    await fs.mkdir(HISTORIES_DIR, { recursive: true });
    for (const rec of RECORDINGS) {
      if (only.length && !only.includes(rec.file)) continue;
      const { hosts, handle, runId: given, outcome, message } = await rec.run(h);
      if (outcome !== rec.outcome) {
        throw new Error(`${rec.file}: the run ended ${outcome}, expected ${rec.outcome}: ${message}`);
      }
      // As `temporal workflow show --output json` exports it (the SDK's historyToJSON cannot run in
      // this install: @temporalio/common and @temporalio/proto load two copies of protobufjs).
      const runId = given ?? (handle as Partial<WorkflowHandleWithFirstExecutionRunId>).firstExecutionRunId;
      const json = await h.exportHistory(handle.workflowId, runId);
      const events = (JSON.parse(json) as { events?: unknown[] }).events ?? [];
      // Nothing secret may be committed: the hosts' gateway tokens and device keys never reach a
      // history, in plain text or inside a (base64) payload.
      const text = `${json}\n${decodedPayloads(JSON.parse(json)).join('\n')}`;
      const secrets = hosts.flatMap((x) => [
        x.sim.token,
        x.sim.deviceKey.toString('hex'),
        x.sim.deviceKey.toString('base64'),
      ]);
      if (secrets.some((s) => text.includes(s))) {
        throw new Error(`${rec.file}: the history holds a secret of a host; not written`);
      }
      // Formatted as the repository's prettier config wants it (npm run lint checks these files too).
      const file = path.join(HISTORIES_DIR, rec.file);
      const pretty = await prettier.format(json, { ...(await prettier.resolveConfig(file)), parser: 'json' });
      await fs.writeFile(file, pretty);
      process.stdout.write(
        `${rec.file}: ${rec.workflowType} ${outcome}, ${events.length} events, ${pretty.length} bytes\n`,
      );
    }
  } finally {
    await h.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`record-histories: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
