/**
 * DefenseClaw's own upgrade records on simulated hosts (issue 20; the real builds are in
 * real-records.test.ts):
 *
 * - refusals before anything changes (the whole HOME byte-identical): a live native `upgrade.lock`,
 *   the advisory flock held, a recovery journal, a full receipt queue;
 * - a dead holder's claim reclaimed the way DefenseClaw reclaims it;
 * - 0.8.4 → 0.8.10: the receipt as DefenseClaw writes it, consumed by the 0.8.5+ gateway; meanwhile
 *   DefenseClaw's own resolver refuses to start (its claim step, verbatim, run against the host);
 * - the gateway's readiness handshake failing: rolled back, the receipt `rolled_back/health_check_failed`;
 * - a bridge chain: one receipt per hop;
 * - a worker SIGKILLed mid-run: exactly one terminal receipt, the lock re-taken and released.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { resultOf } from '../client/watch.js';
import { progressQuery } from '../workflows/definitions.js';
import { hostWorkflowId, taskQueueForHost, type UpgradeInput, type UpgradeResult } from '../workflows/types.js';
import { createSimHost, type Faults } from './fixtures/host/sim-host.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';
import {
  deadPid,
  fillQueue,
  holdAdvisory,
  liveProcess,
  nativeAcquire,
  receiptDir,
  receiptsIn,
  recoveryRoot,
  simAuditEvents,
  treeSnapshot,
  writeJournal,
  writeNativeClaim,
} from './helpers/native-records.js';

const NO_COSIGN = { DEFENSECLAW_ALLOW_NO_COSIGN: '1' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const KEYS = [
  'artifacts_verified',
  'completed_at',
  'created_at',
  'failure_code',
  'from_version',
  'migration_count',
  'migration_status',
  'receipt_id',
  'schema_version',
  'status',
  'target_version',
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let h: Harness;
const children: ChildProcess[] = [];

before(async () => {
  h = await Harness.start({ versions: ['0.8.3', '0.8.4', '0.8.10'] });
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await h?.close();
});

async function host084(faults?: Faults): Promise<HostUnderTest> {
  return h.host({ version: '0.8.4', extraEnv: NO_COSIGN, ...(faults ? { faults } : {}) });
}

async function done(host: HostUnderTest): Promise<void> {
  await host.stopWorker();
  await host.sim.cleanup();
}

/** An upgrade refused before anything changed: failed-unchanged, the message matching, HOME byte-identical. */
async function assertRefused(host: HostUnderTest, message: RegExp): Promise<UpgradeResult> {
  const before = await treeSnapshot(host.sim.home);
  const r = await host.result(await host.upgrade({ version: '0.8.10' }));
  assert.equal(r.outcome, 'failed-unchanged', r.message);
  assert.equal(r.failure?.step, 'preflight');
  assert.match(r.message, message);
  assert.match(r.message, /nothing was changed/);
  assert.deepEqual(await treeSnapshot(host.sim.home), before, 'the host is byte-identical');
  assert.equal(await host.sim.gatewayVersion(), '0.8.4');
  return r;
}

describe('refusals before anything changes', { concurrency: 1 }, () => {
  it('a live native upgrade.lock: refused, naming the file, the pid and the native command', async () => {
    const host = await host084();
    const holder = liveProcess();
    children.push(holder);
    try {
      const file = await writeNativeClaim(host.sim.dataDir, holder.pid!);
      const r = await assertRefused(
        host,
        new RegExp(`${file.replace(/[.]/g, '\\.')} is held by live process ${holder.pid}`),
      );
      assert.match(r.message, /defenseclaw upgrade/);
    } finally {
      holder.kill('SIGKILL');
      await done(host);
    }
  });

  it("the advisory flock held by another process (a native upgrade's surviving child): refused", async () => {
    const host = await host084();
    const holder = await holdAdvisory(host.sim.dataDir);
    children.push(holder);
    try {
      await assertRefused(host, /holds DefenseClaw's advisory upgrade lock .*upgrade\.advisory\.lock/);
    } finally {
      holder.kill('SIGKILL');
      await done(host);
    }
  });

  for (const journal of ['phase-one-active.json', 'phase-two-active.json'] as const) {
    it(`a recovery journal (${journal}): refused, naming the file and the resolver that recovers it`, async () => {
      const host = await host084();
      try {
        const file = await writeJournal(host.sim.dataDir, journal);
        const r = await assertRefused(host, new RegExp(`recovery journal ${file.replace(/[.]/g, '\\.')} exists`));
        assert.match(r.message, /release-owned resolver/);
        assert.match(r.message, /scripts\/upgrade\.sh/);
      } finally {
        await done(host);
      }
    });
  }

  it('a full receipt queue (64): refused, saying why and that a 0.8.5+ gateway drains it', async () => {
    const host = await host084();
    try {
      await fillQueue(host.sim.dataDir, 64);
      await assertRefused(host, /receipt queue .* is full \(64 of 64\).*only a running 0\.8\.5\+ gateway drains it/);
    } finally {
      await done(host);
    }
  });
});

describe('locks and receipts on a 0.8.4 → 0.8.10 upgrade', { concurrency: 1 }, () => {
  it('a claim left by a dead process is reclaimed; the upgrade proceeds and leaves no claim', async () => {
    const host = await host084();
    try {
      const file = await writeNativeClaim(host.sim.dataDir, await deadPid(), 'linux:1');
      const r = await host.result(await host.upgrade({ version: '0.8.10' }));
      assert.equal(r.outcome, 'upgraded', r.message);
      await assert.rejects(fs.lstat(file), /ENOENT/, 'the claim is released at the end');
      const left = await fs.readdir(recoveryRoot(host.sim.dataDir));
      assert.deepEqual(left, ['upgrade.advisory.lock'], `no quarantined or stale claim left: ${left.join(', ')}`);
    } finally {
      await done(host);
    }
  });

  it('holds the locks through the downtime (the native resolver refuses), writes the receipt as DefenseClaw does, the 0.8.10 gateway records and deletes it', async () => {
    // A slow start of the new gateway: time to try a native upgrade while ours runs.
    const host = await host084({ gateway: { '0.8.10': { healthDelayMs: 4000 } } });
    try {
      const handle = await host.upgrade({ version: '0.8.10' });
      // Wait for the stop (the downtime window), then try DefenseClaw's own resolver.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const p = await handle.query(progressQuery);
        if (p.steps.some((s) => s.name === 'start')) break;
        await sleep(100);
      }
      const claim = JSON.parse(await fs.readFile(path.join(recoveryRoot(host.sim.dataDir), 'upgrade.lock'), 'utf8'));
      assert.equal(claim.pid, process.pid, 'the claim names the worker process');
      assert.equal(claim.schema_version, 2);
      assert.match(claim.process_start, /^linux:\d+$/);
      const pending = await receiptsIn(host.sim.dataDir);
      assert.equal(pending.length, 1);
      assert.equal(pending[0]!.receipt.status, 'pending');
      const native = await nativeAcquire(host.sim.dataDir);
      assert.notEqual(native.exitCode, 0, native.stdout);
      assert.match(native.stderr, new RegExp(`another DefenseClaw upgrade is active \\(pid ${process.pid}\\)`));

      const r = await resultOf(handle);
      assert.equal(r.outcome, 'upgraded', r.message);
      assert.ok(
        r.steps.some(
          (s) => s.name === 'health' && /upgrade-wait-ready --expected-version 0\.8\.10/.test(s.detail ?? ''),
        ),
        'the readiness handshake ran',
      );
      const [rec] = r.defenseclawReceipts ?? [];
      assert.ok(rec, 'the run recorded its receipt');
      assert.match(rec.receiptId, UUID);
      assert.deepEqual(
        { ...rec },
        {
          receiptId: rec.receiptId,
          from: '0.8.4',
          to: '0.8.10',
          status: 'succeeded',
          failureCode: '',
          acknowledged: true,
        },
      );
      // Acknowledged: recorded by the gateway and deleted.
      assert.deepEqual(await receiptsIn(host.sim.dataDir), []);
      const events = await simAuditEvents(host.sim.dataDir);
      assert.equal(events.length, 1);
      const row = events[0]!;
      assert.equal(row.id, rec.receiptId);
      assert.deepEqual(Object.keys(row.structured).sort(), KEYS);
      assert.equal(row.structured.status, 'succeeded');
      assert.equal(row.structured.migration_status, 'completed');
      assert.equal(typeof row.structured.migration_count, 'number');
      assert.match(String(row.structured.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.ok(String(row.structured.completed_at) >= String(row.structured.created_at));
      const st = await fs.stat(receiptDir(host.sim.dataDir));
      assert.equal(st.mode & 0o777, 0o700);
      // Released: DefenseClaw's resolver can claim the host again (and we put its claim back).
      await assert.rejects(fs.lstat(path.join(recoveryRoot(host.sim.dataDir), 'upgrade.lock')), /ENOENT/);
      const again = await nativeAcquire(host.sim.dataDir);
      assert.equal(again.exitCode, 0, again.stderr);
    } finally {
      await done(host);
    }
  });

  it("the gateway's readiness handshake fails: rolled back, the receipt rolled_back/health_check_failed, 0600 in 0700, DefenseClaw's bytes", async () => {
    const host = await host084({ gateway: { '0.8.10': { waitReady: 'fail' } } });
    try {
      const r = await host.result(await host.upgrade({ version: '0.8.10' }));
      assert.equal(r.outcome, 'rolled-back', r.message);
      assert.equal(r.failure?.step, 'health');
      assert.match(r.failure?.error ?? '', /upgrade-wait-ready/);
      assert.equal(await host.sim.gatewayVersion(), '0.8.4');
      // 0.8.4 has no consumer: the receipt stays, as DefenseClaw wrote it.
      const files = await receiptsIn(host.sim.dataDir);
      assert.equal(files.length, 1);
      const f = files[0]!;
      const rc = f.receipt;
      assert.equal(f.name, `${rc.receipt_id}.json`);
      assert.match(String(rc.receipt_id), UUID);
      assert.equal(f.mode, 0o600);
      assert.equal((await fs.stat(receiptDir(host.sim.dataDir))).mode & 0o777, 0o700);
      assert.deepEqual(Object.keys(rc), KEYS, 'sorted keys');
      assert.equal(f.bytes, JSON.stringify(rc), 'compact, as json.dumps(sort_keys=True, separators=(",", ":"))');
      assert.equal(rc.schema_version, 1);
      assert.equal(rc.status, 'rolled_back');
      assert.equal(rc.failure_code, 'health_check_failed');
      assert.equal(rc.from_version, '0.8.4');
      assert.equal(rc.target_version, '0.8.10');
      assert.equal(rc.migration_status, 'completed');
      assert.ok(rc.completed_at && String(rc.completed_at) >= String(rc.created_at));
      assert.deepEqual(
        r.defenseclawReceipts?.map((x) => [x.status, x.failureCode]),
        [['rolled_back', 'health_check_failed']],
      );
      await assert.rejects(fs.lstat(path.join(recoveryRoot(host.sim.dataDir), 'upgrade.lock')), /ENOENT/);
    } finally {
      await done(host);
    }
  });

  it('a bridge chain 0.8.3 → 0.8.4 → 0.8.10 writes one receipt per hop; the 0.8.10 gateway records both', async () => {
    const host = await h.host({ version: '0.8.3', extraEnv: NO_COSIGN });
    try {
      const r = await host.result(await host.upgrade({ version: '0.8.10' }));
      assert.equal(r.outcome, 'upgraded', r.message);
      const recs = r.defenseclawReceipts ?? [];
      assert.deepEqual(
        recs.map((x) => [x.from, x.to, x.status]),
        [
          ['0.8.3', '0.8.4', 'succeeded'],
          ['0.8.4', '0.8.10', 'succeeded'],
        ],
      );
      assert.notEqual(recs[0]!.receiptId, recs[1]!.receiptId);
      for (let i = 0; i < 50 && (await receiptsIn(host.sim.dataDir)).length; i++) await sleep(200);
      assert.deepEqual(await receiptsIn(host.sim.dataDir), []);
      const ids = (await simAuditEvents(host.sim.dataDir)).map((e) => e.id).sort();
      assert.deepEqual(ids, recs.map((x) => x.receiptId).sort());
    } finally {
      await done(host);
    }
  });
});

describe('a worker SIGKILLed mid-run', { concurrency: 1 }, () => {
  const WORKER = fileURLToPath(new URL('./helpers/worker-process.js', import.meta.url));

  it('ends with exactly one terminal receipt, the lock re-taken by the next worker and released', async () => {
    const sim = await createSimHost({ version: '0.8.4' });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-records-'));
    const name = `records-kill-${process.pid}`;
    const env = { ...sim.env, ...h.releases.env(), ...NO_COSIGN, DEFENSECLAW_HOST: name };
    const marker = path.join(dir, 'crash.marker');
    const startWorker = async (crash?: string) => {
      const config = JSON.stringify({ address: h.env.address, namespace: h.env.namespace ?? 'default', env });
      const childEnv: NodeJS.ProcessEnv = { ...process.env, DCU_CRASH_MARKER: marker };
      delete childEnv.DCU_CRASH;
      if (crash) childEnv.DCU_CRASH = crash;
      const child = spawn(process.execPath, [WORKER, config], { env: childEnv, stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(child);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          if (/READY \d+/.test(out)) resolve();
        });
        void exited.then(() => reject(new Error('worker exited before it was ready')));
      });
      return { child, exited };
    };
    try {
      // Killed right before the migrations: after the lock, the pending receipt and the stop.
      const first = await startWorker('runMigrations:before');
      const input: UpgradeInput = {
        host: name,
        version: '0.8.10',
        options: {
          healthTimeoutSeconds: 30,
          onFailure: 'rollback',
          requireConfirmation: false,
          confirmTimeoutSeconds: 900,
        },
        requestedBy: 'records-test',
      };
      const handle = await h.client.workflow.start('upgradeHost', {
        taskQueue: taskQueueForHost(name),
        workflowId: hostWorkflowId(name),
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      });
      await first.exited;
      const killed = JSON.parse(await fs.readFile(marker, 'utf8'));
      assert.equal(killed.activity, 'runMigrations');
      // The dead worker's claim and one pending receipt are on the host.
      const claim = JSON.parse(await fs.readFile(path.join(recoveryRoot(sim.dataDir), 'upgrade.lock'), 'utf8'));
      assert.equal(claim.pid, first.child.pid);
      assert.deepEqual(
        (await receiptsIn(sim.dataDir)).map((f) => f.receipt.status),
        ['pending'],
      );

      const second = await startWorker();
      const r = await resultOf(handle);
      assert.equal(r.outcome, 'upgraded', r.message);
      assert.equal(r.defenseclawReceipts?.length, 1);
      const id = r.defenseclawReceipts![0]!.receiptId;
      // Exactly one receipt ever: recorded once by the gateway, none left (pending or not).
      for (let i = 0; i < 50 && (await receiptsIn(sim.dataDir)).length; i++) await sleep(200);
      assert.deepEqual(await receiptsIn(sim.dataDir), []);
      const events = await simAuditEvents(sim.dataDir);
      assert.deepEqual(
        events.map((e) => [e.id, e.structured.status]),
        [[id, 'succeeded']],
      );
      await assert.rejects(fs.lstat(path.join(recoveryRoot(sim.dataDir), 'upgrade.lock')), /ENOENT/);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      await sim.cleanup();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
