/**
 * DefenseClaw's own upgrade records on the real builds (issue 20): the real 0.8.4 bridge host upgraded
 * by us to the real 0.8.10, served as the protected era publishes them, on a real Temporal dev server.
 *
 * - the real gateway's readiness handshake (`upgrade-wait-ready --expected-version 0.8.10`) is part of
 *   the health proof;
 * - our receipt is admitted by the real 0.8.10 gateway into its compliance audit store (audit.db,
 *   `audit_events`) and deleted, as the repository's own scripts/check_upgrade_receipt.py (0.8.10,
 *   vendored in test/fixtures/native) checks it; `show` prints "DefenseClaw audit: recorded as <id>";
 * - the locks are released at the end (DefenseClaw's own resolver claim step succeeds afterwards);
 * - a failed health proof rolls back to the real 0.8.4: the receipt `rolled_back/health_check_failed`,
 *   read back by the real 0.8.4 wheel's own `load_upgrade_receipt`.
 *
 * The real gateway's `start` SIGTERMs every process named `defenseclaw-gateway`: the test runner runs
 * this file alone, after the others.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { hostWorkflowId } from '../workflows/types.js';
import { createRealHost, type RealHost } from './fixtures/host/real-host.js';
import { realBuildsFor } from './fixtures/releases/eras.js';
import { CLI_MAIN } from './helpers/cli.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';
import { nativeAcquire, receiptDir, receiptsIn, recoveryRoot } from './helpers/native-records.js';

const CHECKER = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../test/fixtures/native/check_upgrade_receipt.py',
);
const NO_COSIGN = { DEFENSECLAW_ALLOW_NO_COSIGN: '1' };

describe('real DefenseClaw 0.8.4 → 0.8.10: its own upgrade records', { concurrency: 1 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.8.4', '0.8.10'], realBuilds: realBuildsFor('0.8.4', '0.8.10') });
  });
  after(async () => {
    await h?.close();
  });

  it('our upgrade is recorded by the real 0.8.10 gateway in its audit store, which deletes the receipt', async () => {
    const host: HostUnderTest<RealHost> = await h.hostOf(await createRealHost({ version: '0.8.4' }), {
      extraEnv: NO_COSIGN,
    });
    const cliHome = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-real-records-cli-'));
    try {
      const t0 = Date.now();
      const r = await host.result(await host.upgrade({ version: '0.8.10', options: { healthTimeoutSeconds: 90 } }));
      const took = Date.now() - t0;
      assert.equal(r.outcome, 'upgraded', r.message);
      assert.equal(await host.sim.gatewayVersion(), '0.8.10');
      assert.ok(
        r.steps.some(
          (s) => s.status === 'done' && /upgrade-wait-ready --expected-version 0\.8\.10/.test(s.detail ?? ''),
        ),
        "the real gateway's readiness handshake passed",
      );
      const [rec] = r.defenseclawReceipts ?? [];
      assert.ok(rec, 'a receipt was written');
      assert.equal(rec.status, 'succeeded');
      assert.equal(rec.acknowledged, true, 'the real gateway deleted the receipt');
      assert.deepEqual(await receiptsIn(host.sim.dataDir), []);

      // The repository's own check, with the real wheel's Python (it needs PyYAML).
      const python = path.join(host.sim.dataDir, '.venv', 'bin', 'python');
      const check = await execa(
        python,
        [
          CHECKER,
          '--data-dir',
          host.sim.dataDir,
          '--from-version',
          '0.8.4',
          '--target-version',
          '0.8.10',
          '--timeout-seconds',
          '10',
        ],
        { reject: false, env: host.sim.env, extendEnv: false },
      );
      assert.equal(check.exitCode, 0, `check_upgrade_receipt.py: ${check.stderr}${check.stdout}`);

      // The row as the real gateway stored it.
      const row = await execa(
        python,
        [
          '-c',
          [
            'import json, sqlite3, sys',
            'c = sqlite3.connect(sys.argv[1])',
            'c.row_factory = sqlite3.Row',
            'rows = [dict(r) for r in c.execute("SELECT id, timestamp, action, target, actor, details, severity, bucket, signal, event_name, source, mandatory, structured_json, projected_record_json FROM audit_events WHERE action = \'upgrade\'")]',
            'print(json.dumps(rows))',
          ].join('\n'),
          path.join(host.sim.dataDir, 'audit.db'),
        ],
        { env: host.sim.env, extendEnv: false },
      );
      const rows = JSON.parse(String(row.stdout)) as Array<Record<string, unknown>>;
      assert.equal(rows.length, 1, JSON.stringify(rows));
      const event = rows[0]!;
      assert.equal(event.id, rec.receiptId);
      assert.equal(event.bucket, 'compliance.activity');
      assert.equal(event.event_name, 'legacy.audit.upgrade');
      assert.equal(event.source, 'cli');
      assert.equal(event.mandatory, 1);
      const structured = JSON.parse(String(event.structured_json));
      assert.equal(structured.status, 'succeeded');
      assert.equal(structured.from_version, '0.8.4');
      assert.equal(structured.target_version, '0.8.10');
      process.stdout.write(
        `# the real 0.8.10 gateway's audit row (upgrade in ${took} ms):\n# ${JSON.stringify({ ...event, projected_record_json: JSON.parse(String(event.projected_record_json)) })}\n`,
      );

      // `show` says so.
      const show = await execa(process.execPath, [CLI_MAIN, 'show', hostWorkflowId(host.name)], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: cliHome,
          TEMPORAL_ADDRESS: h.env.address,
          TEMPORAL_NAMESPACE: 'default',
          NO_COLOR: '1',
        },
        extendEnv: false,
        reject: false,
      });
      assert.equal(show.exitCode, 0, show.stderr);
      assert.match(String(show.stdout), new RegExp(`DefenseClaw audit: recorded as ${rec.receiptId} `));
      assert.match(String(show.stdout), /acknowledged/);

      // Released: DefenseClaw's own resolver can claim the host again.
      await assert.rejects(fs.lstat(path.join(recoveryRoot(host.sim.dataDir), 'upgrade.lock')), /ENOENT/);
      const native = await nativeAcquire(host.sim.dataDir);
      assert.equal(native.exitCode, 0, native.stderr);
    } finally {
      await host.stopWorker();
      await host.sim.cleanup();
      await fs.rm(cliHome, { recursive: true, force: true });
    }
  });

  it("a failed health proof on the real 0.8.10 rolls back; the receipt is rolled_back/health_check_failed and DefenseClaw's own reader accepts it", async () => {
    // OpenClaw's connector with no OpenClaw running: the real 0.8.10 stays `reconnecting`, which
    // --reconnecting refuse does not accept: the upgrade must roll back to the real 0.8.4.
    const host: HostUnderTest<RealHost> = await h.hostOf(await createRealHost({ version: '0.8.4', mode: 'openclaw' }), {
      extraEnv: NO_COSIGN,
    });
    try {
      const r = await host.result(
        await host.upgrade({ version: '0.8.10', options: { healthTimeoutSeconds: 8, reconnecting: 'refuse' } }),
      );
      assert.equal(r.outcome, 'rolled-back', r.message);
      assert.equal(r.failure?.step, 'health');
      assert.equal(await host.sim.gatewayVersion(), '0.8.4');
      assert.equal(await host.sim.venvPackageVersion(), '0.8.4');
      // 0.8.4 has no consumer: the receipt stays in the queue, for the next 0.8.5+ gateway.
      const files = await receiptsIn(host.sim.dataDir);
      assert.equal(files.length, 1);
      const rc = files[0]!.receipt;
      assert.equal(rc.status, 'rolled_back');
      assert.equal(rc.failure_code, 'health_check_failed');
      assert.deepEqual(
        r.defenseclawReceipts?.map((x) => [x.receiptId, x.status, x.failureCode]),
        [[rc.receipt_id, 'rolled_back', 'health_check_failed']],
      );
      // DefenseClaw's own reader (the restored real 0.8.4 wheel) accepts it, field rules and modes included.
      const python = path.join(host.sim.dataDir, '.venv', 'bin', 'python');
      const read = await execa(
        python,
        [
          '-c',
          [
            'import json, sys',
            'from pathlib import Path',
            'from dataclasses import asdict',
            'from defenseclaw.upgrade_receipt import load_upgrade_receipt',
            'print(json.dumps(asdict(load_upgrade_receipt(Path(sys.argv[1])))))',
          ].join('\n'),
          path.join(receiptDir(host.sim.dataDir), files[0]!.name),
        ],
        { reject: false, env: host.sim.env, extendEnv: false },
      );
      assert.equal(read.exitCode, 0, read.stderr);
      assert.deepEqual(JSON.parse(String(read.stdout)), rc);
      await assert.rejects(fs.lstat(path.join(recoveryRoot(host.sim.dataDir), 'upgrade.lock')), /ENOENT/);
    } finally {
      await host.stopWorker();
      await host.sim.cleanup();
    }
  });
});
