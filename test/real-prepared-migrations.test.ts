/**
 * Migrations prepared before the stop (issue 21), on the real builds (../shared/realdc): the real
 * 0.4.0 → 0.5.0 and 0.8.4 → 0.8.10 upgrades, served as their eras publish them, on a real Temporal
 * dev server.
 *
 * - the prepared run's files equal, byte for byte, those of a run inside the window on an identical
 *   copy of the host (the same HOME restored from a copy, the prepared path turned off): the cursor,
 *   config.yaml (`config_version: 8` for 0.8.10), the recovery copy 0.8.5 writes, every file; only
 *   0.8.5's random backup folder name and the timestamps differ;
 * - an input changed between the staging and the stop (by a writer, here just before the stop) makes
 *   the window run the migrations itself, in the interpreter warmed before the stop, correctly;
 * - a prepared migration that fails (the real 0.8.5 refuses a malformed .env) fails the upgrade before
 *   the stop: config and keys byte-identical, the real 0.8.4 gateway still running, same pid.
 *
 * The real gateway's `start` SIGTERMs every process named `defenseclaw-gateway`: run this file alone,
 * in its own PID namespace: unshare --pid --fork --mount-proc tini -s -- node --test dist/test/real-prepared-migrations.test.js
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { createRealHost, type RealHost } from './fixtures/host/real-host.js';
import { realBuildsFor } from './fixtures/releases/eras.js';
import { Harness, type Activities, type HostUnderTest } from './helpers/harness.js';
import { receiptsIn } from './helpers/native-records.js';
import type { StepRecord, UpgradeResult } from '../workflows/types.js';

const NO_COSIGN = { DEFENSECLAW_ALLOW_NO_COSIGN: '1' };
const OFF = { DEFENSECLAW_PREPARED_MIGRATIONS: '0' };

/** Paths of a host that are not the migrations' (runtime state, our own folders). */
const RUNTIME =
  /^\.defenseclaw\/(staging|venvs|\.venv|backups\/upgrade-[^/]*|gateway\.(log|pid)|watchdog\.(log|pid|state)|\.upgrade-receipts|.*\.db(-wal|-shm|-journal)?|logs|.*\.log|.*\.jsonl|(.*\/)?upgrade(\.advisory)?\.lock)(\/|$)/;

/** Every file and folder of the data dir and OpenClaw's home: mode and content digest, normalised. */
async function capture(home: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(home, rel);
    const st = await fs.lstat(abs).catch(() => undefined);
    if (!st || RUNTIME.test(rel)) return;
    const name = rel.replace(/observability-v8-[0-9a-f]{32}/g, 'observability-v8-X');
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[name] = `dir ${mode}`;
      for (const n of await fs.readdir(abs)) await walk(path.join(rel, n));
    } else if (st.isSymbolicLink()) out[name] = `link ${await fs.readlink(abs)}`;
    else {
      // Timestamps (the cursor's applied_at, 0.8.5's created_at) are the clock's, not the migration's.
      const text = (await fs.readFile(abs))
        .toString('latin1')
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?/g, 'T');
      out[name] = `file ${mode} ${createHash('sha256').update(text, 'latin1').digest('hex')}`;
    }
  };
  await walk('.defenseclaw');
  await walk('.openclaw');
  return out;
}

const stepOf = (r: UpgradeResult, name: string, re: RegExp): StepRecord | undefined =>
  r.steps.find((s) => s.name === name && re.test(s.detail ?? ''));

for (const [from, to] of [
  ['0.4.0', '0.5.0'],
  ['0.8.4', '0.8.10'],
] as const) {
  describe(`real DefenseClaw ${from} → ${to}: migrations prepared before the stop`, { concurrency: 1 }, () => {
    let h: Harness;
    before(async () => {
      h = await Harness.start({ versions: [from, to], realBuilds: realBuildsFor(from, to) });
    });
    after(async () => {
      await h?.close();
    });

    /** An upgrade whose migrated files are captured right before the new gateway starts. */
    const upgrade = async (
      sim: RealHost,
      extraEnv: Record<string, string>,
      wrapMore?: (a: Activities) => Partial<Activities>,
    ) => {
      let files: Record<string, string> | undefined;
      const host: HostUnderTest<RealHost> = await h.hostOf(sim, {
        extraEnv: { ...NO_COSIGN, ...extraEnv },
        wrap: (a) => ({
          startGateway: async (i) => {
            files ??= await capture(sim.home);
            return a.startGateway(i);
          },
          ...wrapMore?.(a),
        }),
      });
      try {
        const r = await host.result(await host.upgrade({ version: to, options: { healthTimeoutSeconds: 90 } }));
        return { r, files };
      } finally {
        await host.stopWorker();
      }
    };

    it('the prepared run equals, byte for byte, a run inside the window on an identical copy of the host', async () => {
      const sim = await createRealHost({ version: from as '0.4.0' | '0.8.4' });
      const copy = `${sim.home}.copy`;
      try {
        // The identical copy: the same HOME (config.yaml names its paths), restored between the two runs.
        assert.equal((await sim.gateway(['stop'])).exitCode, 0);
        await execa('cp', ['-a', sim.home, copy]);
        assert.equal((await sim.gateway(['start'])).exitCode, 0);
        await sim.waitState(['disabled']);

        const t0 = Date.now();
        const a = await upgrade(sim, {});
        assert.equal(a.r.outcome, 'upgraded', a.r.message);
        const prepared = stepOf(a.r, 'migrate', /prepared before the stop, put in place by rename/);
        assert.ok(prepared, a.r.steps.map((s) => `${s.name}: ${s.detail}`).join('\n'));
        const staged = stepOf(a.r, 'stage', /prepare migrations .*paths changed in the staged copy/);
        assert.ok(staged);
        process.stderr.write(
          `${from} → ${to}: ${staged.detail} (${staged.endedAt! - staged.startedAt!} ms); ${prepared.detail}\n`,
        );
        const stop = a.r.steps.find((s) => s.name === 'stop')!;
        const prep = a.r.steps.find((s) => s.name === 'stage' && /prepare migrations/.test(s.detail ?? ''))!;
        assert.ok(prep.endedAt! <= stop.startedAt!, 'prepared before the stop');
        process.stderr.write(
          `${from} → ${to}: in-window migrate step, prepared: ${prepared.endedAt! - prepared.startedAt!} ms (upgrade ${Date.now() - t0} ms)\n`,
        );

        assert.equal((await sim.gateway(['stop'])).exitCode, 0);
        await fs.rm(sim.home, { recursive: true, force: true });
        await execa('cp', ['-a', copy, sim.home]);
        assert.equal((await sim.gateway(['start'])).exitCode, 0);
        await sim.waitState(['disabled']);
        const b = await upgrade(sim, OFF);
        assert.equal(b.r.outcome, 'upgraded', b.r.message);
        const inWindow = stepOf(
          b.r,
          'migrate',
          /in the window \(prepared migrations are turned off.*; cold interpreter/,
        );
        assert.ok(inWindow, b.r.steps.map((s) => `${s.name}: ${s.detail}`).join('\n'));
        process.stderr.write(
          `${from} → ${to}: in-window migrate step, run in the window: ${inWindow.endedAt! - inWindow.startedAt!} ms; ${inWindow.detail}\n`,
        );

        assert.ok(a.files && b.files);
        assert.deepEqual(a.files, b.files);
        // What the migrations did, on both.
        const cursor = JSON.parse(await fs.readFile(path.join(sim.dataDir, '.migration_state.json'), 'utf8'));
        assert.ok(cursor.applied.includes(to === '0.5.0' ? '0.5.0' : '0.8.5'), JSON.stringify(cursor));
        if (to === '0.8.10') {
          assert.match(await fs.readFile(path.join(sim.dataDir, 'config.yaml'), 'utf8'), /^config_version: 8$/m);
          assert.ok(Object.keys(a.files).some((k) => /backups\/observability-v8-X\/manifest\.json$/.test(k)));
        }
      } finally {
        await sim.cleanup();
        await fs.rm(copy, { recursive: true, force: true });
      }
    });

    it('an input changed between the staging and the stop: the window runs the migrations itself, warm', async () => {
      const sim = await createRealHost({ version: from as '0.4.0' | '0.8.4' });
      const rego = path.join(sim.dataDir, 'policies', 'rego', 'custom.rego');
      try {
        const { r } = await upgrade(sim, {}, (a) => ({
          // A writer changes an input after the prepared run, right before the stop.
          stopGateway: async () => {
            await fs.appendFile(rego, '# changed after the staging\n');
            return a.stopGateway();
          },
        }));
        assert.equal(r.outcome, 'upgraded', r.message);
        const warm = stepOf(r, 'migrate', /warm interpreter/);
        if (warm)
          process.stderr.write(
            `${from} → ${to}: in-window migrate step, fallback in the warm interpreter: ${warm.endedAt! - warm.startedAt!} ms; ${warm.detail}\n`,
          );
        assert.ok(
          stepOf(
            r,
            'migrate',
            /in the window \(.*custom\.rego changed after the migrations were prepared; warm interpreter, \d+ ms\)/,
          ),
          r.steps.map((s) => `${s.name}: ${s.detail}`).join('\n'),
        );
        assert.match(await fs.readFile(rego, 'utf8'), /# changed after the staging\n$/);
        const cursor = JSON.parse(await fs.readFile(path.join(sim.dataDir, '.migration_state.json'), 'utf8'));
        assert.ok(cursor.applied.includes(to === '0.5.0' ? '0.5.0' : '0.8.5'), JSON.stringify(cursor));
        if (to === '0.8.10')
          assert.match(await fs.readFile(path.join(sim.dataDir, 'config.yaml'), 'utf8'), /^config_version: 8$/m);
        assert.equal(await sim.gatewayVersion(), to);
      } finally {
        await sim.cleanup();
      }
    });

    if (to === '0.8.10') {
      it('a prepared migration that fails fails the upgrade before the stop, nothing changed, the old gateway running', async () => {
        const sim = await createRealHost({ version: '0.8.4' });
        try {
          // The real 0.8.5 migration refuses a .env line it cannot parse (environment_read_failed).
          await fs.appendFile(path.join(sim.dataDir, '.env'), 'this is not an assignment\n');
          const snap = await sim.snapshot();
          const config = await fs.readFile(path.join(sim.dataDir, 'config.yaml'));
          const pid = await sim.gatewayPid();
          const { r } = await upgrade(sim, {});
          assert.equal(r.outcome, 'failed-unchanged', r.message);
          assert.equal(r.failure?.step, 'stage');
          assert.match(
            r.failure!.error,
            /^migrations 0\.8\.4 → 0\.8\.10 \(prepared before the stop; nothing was changed\) failed: .*environment_read_failed/,
          );
          assert.doesNotMatch(r.failure!.error, /\n/);
          assert.ok(!r.steps.some((s) => s.name === 'stop'), 'the gateway was never stopped');
          // DefenseClaw's own receipt says what failed: a migration.
          assert.deepEqual(
            (await receiptsIn(sim.dataDir)).map((x) => [x.receipt.status, x.receipt.failure_code]),
            [['failed', 'migration_failed']],
          );
          assert.deepEqual(await sim.snapshot(), snap);
          assert.deepEqual(await fs.readFile(path.join(sim.dataDir, 'config.yaml')), config);
          assert.equal(await sim.gatewayPid(), pid);
          assert.equal(await sim.gatewayVersion(), '0.8.4');
          const body = await sim.waitState(['disabled']);
          assert.equal(body.provenance?.binary_version, '0.8.4');
        } finally {
          await sim.cleanup();
        }
      });
    }
  });
}
