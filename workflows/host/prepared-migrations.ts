/**
 * Migrations prepared before the stop (issue 21), behind patched('prepared-migrations'): runs recorded
 * before it replay without the prepare step, and their window runs the migrations as it always did.
 *
 *   before the stop   prepareMigrations: the target's migrations, isolated, against the live host; a
 *                     failure fails the hop here (nothing live changed, the gateway still serves)
 *   in the window     runMigrations with the run's staging folder: the prepared changes put in place by
 *                     rename when every input is byte-identical, else the migrations run there (warm)
 *
 * The step records say which path was taken.
 */
import { patched } from '@temporalio/workflow';
import type { MigrateArgs, MigrationsResult } from '../../activities/host/migration-program.js';
import { heartbeating } from '../proxies.js';
import { NOT_REGISTERED, notRegistered } from './older-worker.js';
import type { HostRun } from '../run.js';

export const PREPARED_MIGRATIONS = 'prepared-migrations';

/** What the window needs from the prepare step: the staging folder, when the run prepares. */
export interface PreparedRef {
  stagingId?: string;
}

/** Before the stop: prepares the hop's migrations (new runs only). */
export async function prepareHopMigrations(
  run: HostRun,
  args: MigrateArgs,
  ids: { stagingId: string; venvId: string },
): Promise<PreparedRef> {
  if (!patched(PREPARED_MIGRATIONS)) return {};
  let r;
  try {
    r = await run.step(
      'stage',
      `prepare migrations ${args.fromVersion} → ${args.toVersion} (isolated, before the stop)`,
      (o) =>
        heartbeating.prepareMigrations.executeWithOptions(
          { ...o, retry: { maximumAttempts: 3, nonRetryableErrorTypes: [NOT_REGISTERED] } },
          [{ ...args, ...ids }],
        ),
    );
  } catch (err) {
    if (!notRegistered(err)) throw err;
    // A host worker of an earlier release: its window runs the migrations, with the input it knows.
    run.amendLastStep(
      () => `prepare migrations: SKIPPED, this host's worker predates prepared migrations; the window runs them`,
      true,
    );
    return {};
  }
  run.amendLastStep((was) =>
    r.prepared
      ? `${was}: ${r.ran ?? 0} ran, ${r.changed ?? 0} paths changed in the staged copy (${(r.paths ?? []).join(', ')})`
      : `${was}: not prepared (${r.reason ?? 'unavailable'}); the window runs them`,
  );
  return { stagingId: ids.stagingId };
}

/** In the window: the migrations (prepared or run there); the step says which. */
export async function windowMigrations(run: HostRun, args: MigrateArgs, ref: PreparedRef): Promise<MigrationsResult> {
  const migrated = await run.step('migrate', `run migrations ${args.fromVersion} → ${args.toVersion}`, (o) =>
    heartbeating.runMigrations.executeWithOptions(o, [{ ...args, ...ref }]),
  );
  if (migrated.path) {
    run.amendLastStep((was) =>
      migrated.path === 'prepared'
        ? `${was}: prepared before the stop, put in place by rename (${migrated.applied?.paths ?? 0} paths, ${migrated.applied?.ms ?? 0} ms)`
        : `${was}: in the window (${migrated.reason ?? 'not prepared'}; ${migrated.warm ? 'warm' : 'cold'} interpreter, ${migrated.ms ?? 0} ms)`,
    );
  }
  return migrated;
}
