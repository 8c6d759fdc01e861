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
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { confirmUpdate, progressQuery } from '../workflows/definitions.js';
import type { UpgradeResult } from '../workflows/types.js';
import { installRuntime } from '../worker/runtime.js';
import { DEFAULT_VERSIONS } from '../test/fixtures/releases/server.js';
import { Harness, type HostUnderTest } from '../test/helpers/harness.js';

/** dist/scripts/record-histories.js → <repo>/test/histories */
export const HISTORIES_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test',
  'histories',
);

interface Recording {
  file: string;
  workflowType: string;
  outcome: string;
  run: (h: Harness) => Promise<{ host: HostUnderTest; handle: WorkflowHandle; result: UpgradeResult }>;
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
      return { host, handle, result: await host.result(handle) };
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
      return { host, handle, result: await host.result(handle) };
    },
  },
  {
    file: 'upgrade-rolled-back.json',
    workflowType: 'upgradeHost',
    outcome: 'rolled-back',
    async run(h) {
      const host = await h.host({ faults: { migrations: { '0.4.0': 'raise' } } });
      const handle = await host.upgrade({ version: '0.4.0' });
      return { host, handle, result: await host.result(handle) };
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
      return { host, handle, result: await host.result(handle) };
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
      return { host, handle, result: await host.result(handle) };
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
      return { host, handle, result: await host.result(handle) };
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
      const { host, handle, result } = await rec.run(h);
      if (result.outcome !== rec.outcome) {
        throw new Error(`${rec.file}: the run ended ${result.outcome}, expected ${rec.outcome}: ${result.message}`);
      }
      // As `temporal workflow show --output json` exports it (the SDK's historyToJSON cannot run in
      // this install: @temporalio/common and @temporalio/proto load two copies of protobufjs).
      const runId = (handle as Partial<WorkflowHandleWithFirstExecutionRunId>).firstExecutionRunId;
      const json = await h.exportHistory(handle.workflowId, runId);
      const events = (JSON.parse(json) as { events?: unknown[] }).events ?? [];
      // Nothing secret may be committed: the host's gateway token and its device key never reach a
      // history, in plain text or inside a (base64) payload.
      const text = `${json}\n${decodedPayloads(JSON.parse(json)).join('\n')}`;
      const secrets = [host.sim.token, host.sim.deviceKey.toString('hex'), host.sim.deviceKey.toString('base64')];
      if (secrets.some((s) => text.includes(s))) {
        throw new Error(`${rec.file}: the history holds a secret of the host; not written`);
      }
      // Formatted as the repository's prettier config wants it (npm run lint checks these files too).
      const file = path.join(HISTORIES_DIR, rec.file);
      const pretty = await prettier.format(json, { ...(await prettier.resolveConfig(file)), parser: 'json' });
      await fs.writeFile(file, pretty);
      process.stdout.write(
        `${rec.file}: ${rec.workflowType} ${result.outcome}, ${events.length} events, ${pretty.length} bytes\n`,
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
