/**
 * The one Python program that runs a release's migrations, and how its outcome is judged: shared by
 * the run inside the downtime window (migrations.ts, cold or in a warm interpreter) and the prepared
 * run before the stop (migration-stage.ts), so that both run exactly the same code.
 *
 * `defenseclaw.migrations.run_migrations(...)` of the target wheel, called with the signature that
 * release has:
 *
 *   0.3.x          run_migrations(from, to, openclaw_home)                 exceptions propagate
 *   0.4.0 – 0.8.3  run_migrations(from, to, openclaw_home, data_dir=None)  exceptions swallowed
 *   0.8.x          … plus keyword-only arguments; `strict_required` (0.8.10) gets the required list
 *
 * Because the real functions swallow their own errors, success is judged from the cursor
 * (`$DEFENSECLAW_HOME/.migration_state.json`, `applied`): every required migration (the manifest's
 * `required_cli_migrations`, else the registry's versions in (from, to]) must be in it afterwards.
 */
import { z } from 'zod';
import { VersionSchema, compareVersions, isVersion } from '../../workflows/types.js';
import { FailureType, activityContext, refuse } from '../support.js';

export const MigrateArgs = z
  .object({
    fromVersion: VersionSchema,
    toVersion: VersionSchema,
    /** The release manifest's required_cli_migrations (absent: the registry's versions in (from, to]). */
    required: z.array(VersionSchema).max(200).optional(),
    /** The manifest's migration_failure_policy; without a manifest a missing migration fails. */
    failurePolicy: z.enum(['warn', 'fail']).optional(),
  })
  .strict();
export type MigrateArgs = z.infer<typeof MigrateArgs>;

export const MARK = 'DEFENSECLAW-UPGRADE-MIGRATIONS ';

/** Paths and versions go in as argv, never as code. Introspects the installed signature. */
export const PROGRAM = [
  'import inspect, json, sys',
  'from defenseclaw import migrations as m',
  'frm, to, oc_home, data_dir, required = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])',
  'params = inspect.signature(m.run_migrations).parameters',
  'kwargs = {}',
  "if 'data_dir' in params: kwargs['data_dir'] = data_dir",
  "if 'strict_required' in params: kwargs['strict_required'] = tuple(required)",
  'error = None',
  'n = None',
  'try:',
  '    n = m.run_migrations(frm, to, oc_home, **kwargs)',
  'except Exception as e:',
  "    error = (type(e).__name__ + ': ' + str(e))[:300]",
  'registry = [e[0] for e in getattr(m, "MIGRATIONS", []) if isinstance(e, (tuple, list)) and e and isinstance(e[0], str)]',
  `print(${JSON.stringify(MARK)} + json.dumps({"ran": n if isinstance(n, int) else None, "error": error, "registry": registry, "cursor": "data_dir" in params}), flush=True)`,
].join('\n');

/** The program's argv after `-c PROGRAM`. */
export function programArgs(a: MigrateArgs, openclawHome: string, dataDir: string): string[] {
  return [a.fromVersion, a.toVersion, openclawHome, dataDir, JSON.stringify(a.required ?? [])];
}

export const Report = z.object({
  ran: z.number().int().min(0).nullable(),
  error: z.string().nullable(),
  registry: z.array(z.string().max(64)).max(500),
  cursor: z.boolean(),
});
export type Report = z.infer<typeof Report>;

export interface MigrationsResult {
  ran: number;
  /** The migrations that had to be applied, and were (read from the cursor). */
  required: string[];
  /** A warning the run carries (policy `warn` with a migration missing). */
  warning?: string;
  /** Where they ran: prepared before the stop and put in place by rename, or inside the window. */
  path?: 'prepared' | 'in-window';
  /** Why the window ran them itself (an input changed, no prepared run, isolation unavailable). */
  reason?: string;
  /** The in-window run used an interpreter started and imported before the stop. */
  warm?: boolean;
  /** In the window: how long the migrations' run took inside the activity. */
  ms?: number;
  /** Prepared: how many paths were put in place, and how long the digests and renames took. */
  applied?: { paths: number; ms: number };
}

/** The program's report from its output, or a refusal naming the last error line. */
export function parseReport(a: MigrateArgs, output: string, exitCode: number, where = ''): Report {
  const line = output.split('\n').find((l) => l.startsWith(MARK));
  try {
    return Report.parse(JSON.parse(line!.slice(MARK.length)));
  } catch {
    const why =
      output
        .split('\n')
        .filter((l) => /Error|Exception/.test(l))
        .pop() ?? output.split('\n').pop();
    throw refuse(
      FailureType.CommandFailed,
      `migrations ${a.fromVersion} → ${a.toVersion}${where} did not run (exit ${exitCode}): ${(why ?? '').slice(0, 300)}`,
    );
  }
}

/**
 * Judges a run: an exception fails it; a required migration missing from the cursor (`applied`, read
 * from where the run wrote it) fails it unless the policy is `warn`. 0.3.x has no cursor: no exception
 * means done.
 */
export function judge(
  a: MigrateArgs,
  report: Report,
  applied: string[] | undefined,
  output: string,
  where = '',
): MigrationsResult {
  if (report.error) {
    throw refuse(
      FailureType.CommandFailed,
      `migrations ${a.fromVersion} → ${a.toVersion}${where} failed: ${report.error}`,
    );
  }
  const required =
    a.required ??
    report.registry.filter(
      (v) => isVersion(v) && compareVersions(v, a.fromVersion) > 0 && compareVersions(v, a.toVersion) <= 0,
    );
  if (!report.cursor) return { ran: report.ran ?? 0, required };
  const have = new Set(applied ?? []);
  const missing = required.filter((v) => !have.has(v));
  if (missing.length === 0) return { ran: report.ran ?? 0, required };
  const said = output
    .split('\n')
    .filter((l) => /migration .* failed/i.test(l))
    .pop();
  const what = `migration${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not apply${where}${said ? ` (${said.trim().slice(0, 200)})` : ''}`;
  if (a.failurePolicy === 'warn') {
    activityContext()?.log.warn(what);
    return { ran: report.ran ?? 0, required, warning: what };
  }
  throw refuse(FailureType.MigrationsIncomplete, `required ${what}`);
}

/** The cursor's `applied` list from its bytes (undefined: absent or unreadable). */
export function appliedFrom(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const doc = JSON.parse(text) as { applied?: unknown };
    return Array.isArray(doc.applied) ? doc.applied.filter((x): x is string => typeof x === 'string') : undefined;
  } catch {
    return undefined;
  }
}
