/**
 * Migrations inside the downtime window: the target wheel's `run_migrations(...)` (the program and its
 * judgement: migration-program.ts), in the live environment's interpreter.
 *
 * Given the run's staging folder (runs since patched('prepared-migrations')), the window first looks
 * for the run prepared before the stop (migration-stage.ts): when every input it read is still
 * byte-identical, its changes are put in place by rename and the cursor is checked as always. Otherwise
 * (an input changed, no prepared run, isolation unavailable) the window runs the migrations itself, in
 * the interpreter started and imported before the stop when this worker holds one (warm-python.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { STAGING_ID } from './artifacts.js';
import { venvPath } from './backup.js';
import { run } from '../exec.js';
import { liveRoots } from './host-files.js';
import { applyChanges, digestInputs, firstDifference } from './migration-files.js';
import {
  appliedFrom,
  judge,
  MigrateArgs,
  parseReport,
  PROGRAM,
  programArgs,
  type MigrationsResult,
} from './migration-program.js';
import { migrationsDir, Prepared, uppersIn } from './migration-stage.js';
import { killWarm, runWarm } from './warm-python.js';
import { cancellationSignal, validated } from '../support.js';

export type { MigrationsResult } from './migration-program.js';

const MigrateInput = MigrateArgs.extend({
  /** The run's staging folder: where a prepared run is, and the key of its warm interpreter. */
  stagingId: STAGING_ID.optional(),
}).strict();
export type MigrateInput = z.input<typeof MigrateInput>;

const cursorOf = (dataDir: string) =>
  fs.readFile(path.join(dataDir, '.migration_state.json'), 'utf8').catch(() => undefined);

const sameArgs = (a: MigrateArgs, b: MigrateArgs) =>
  a.fromVersion === b.fromVersion &&
  a.toVersion === b.toVersion &&
  JSON.stringify(a.required ?? null) === JSON.stringify(b.required ?? null) &&
  (a.failurePolicy ?? null) === (b.failurePolicy ?? null);

/** The prepared run put in place, or why the window must run the migrations itself. */
async function usePrepared(
  config: HostConfig,
  args: MigrateArgs,
  stagingId: string,
): Promise<MigrationsResult | { reason: string }> {
  let prep: Prepared;
  let dir: string;
  try {
    dir = await migrationsDir(config, stagingId);
    prep = Prepared.parse(JSON.parse(await fs.readFile(path.join(dir, 'prepared.json'), 'utf8')));
  } catch {
    return { reason: 'no prepared run' };
  }
  if (!sameArgs(prep.args, args)) return { reason: 'the prepared run was for other versions' };
  if (!prep.prepared || !prep.inputs || !prep.changes || !prep.report || !prep.after)
    return { reason: prep.reason ?? 'no prepared run' };
  const t0 = performance.now();
  const roots = await liveRoots(config);
  const changed = firstDifference(prep.inputs, await digestInputs(roots, prep.changes), prep.after);
  if (changed) return { reason: `${changed} changed after the migrations were prepared` };
  await applyChanges(roots, uppersIn(dir), prep.changes, prep.after);
  const output = prep.output ?? '';
  const judged = judge(args, prep.report, appliedFrom(await cursorOf(config.dataDir)), output);
  const applied = { paths: prep.changes.length, ms: Math.round(performance.now() - t0) };
  return { ...judged, path: 'prepared', applied };
}

/**
 * Activity: runs the migrations between two versions (or puts the prepared run in place) and proves
 * they applied. A required one missing from the cursor fails the upgrade (rolled back), unless the
 * release's policy is `warn`.
 */
export async function runMigrations(config: HostConfig, rawInput: unknown): Promise<MigrationsResult> {
  const input = validated(MigrateInput, rawInput, 'runMigrations');
  const { stagingId, ...args } = input;
  let reason: string | undefined;
  if (stagingId) {
    const prepared = await usePrepared(config, args, stagingId);
    if (!('reason' in prepared)) {
      killWarm(stagingId);
      return prepared;
    }
    reason = prepared.reason;
  }
  const python = path.join(venvPath(config), 'bin', 'python');
  const roots = await liveRoots(config);
  const argv = programArgs(args, roots.openclaw, config.dataDir);
  const timeoutMs = 10 * 60_000;
  const t0 = performance.now();
  const warm = stagingId ? await runWarm(stagingId, argv, timeoutMs) : undefined;
  const r =
    warm ??
    (await run(python, ['-I', '-c', PROGRAM, ...argv], {
      env: config.commandEnv,
      timeoutMs,
      signal: cancellationSignal(),
    }));
  const report = parseReport(args, r.output, r.exitCode);
  const judged = judge(args, report, report.cursor ? appliedFrom(await cursorOf(config.dataDir)) : undefined, r.output);
  const ms = Math.round(performance.now() - t0);
  return stagingId ? { ...judged, path: 'in-window', reason, warm: Boolean(warm), ms } : judged;
}
