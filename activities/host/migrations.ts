/**
 * Migrations: `defenseclaw.migrations.run_migrations(...)` of the target wheel, in the live
 * environment's interpreter, called with the signature that release has:
 *
 *   0.3.x          run_migrations(from, to, openclaw_home)                 exceptions propagate
 *   0.4.0 – 0.8.3  run_migrations(from, to, openclaw_home, data_dir=None)  exceptions swallowed
 *   0.8.x          … plus keyword-only arguments; `strict_required` (0.8.10) gets the required list
 *
 * Because the real functions swallow their own errors, success is judged from the cursor
 * (`$DEFENSECLAW_HOME/.migration_state.json`, `applied`): every required migration (the manifest's
 * `required_cli_migrations`, else the registry's versions in (from, to]) must be in it afterwards.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { VersionSchema, compareVersions, isVersion } from '../../workflows/types.js';
import { venvPath } from './backup.js';
import { run } from '../exec.js';
import { liveRoots } from './host-files.js';
import { FailureType, activityContext, cancellationSignal, refuse, validated } from '../support.js';

const MigrateInput = z
  .object({
    fromVersion: VersionSchema,
    toVersion: VersionSchema,
    /** The release manifest's required_cli_migrations (absent: the registry's versions in (from, to]). */
    required: z.array(VersionSchema).max(200).optional(),
    /** The manifest's migration_failure_policy; without a manifest a missing migration fails. */
    failurePolicy: z.enum(['warn', 'fail']).optional(),
  })
  .strict();
export type MigrateInput = z.input<typeof MigrateInput>;

const MARK = 'DEFENSECLAW-UPGRADE-MIGRATIONS ';

/** Paths and versions go in as argv, never as code. Introspects the installed signature. */
const PROGRAM = [
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
  `print(${JSON.stringify(MARK)} + json.dumps({"ran": n if isinstance(n, int) else None, "error": error, "registry": registry, "cursor": "data_dir" in params}))`,
].join('\n');

const Report = z.object({
  ran: z.number().int().min(0).nullable(),
  error: z.string().nullable(),
  registry: z.array(z.string().max(64)).max(500),
  cursor: z.boolean(),
});

async function appliedMigrations(config: HostConfig): Promise<string[] | undefined> {
  try {
    const doc = JSON.parse(await fs.readFile(path.join(config.dataDir, '.migration_state.json'), 'utf8')) as {
      applied?: unknown;
    };
    return Array.isArray(doc.applied) ? doc.applied.filter((x): x is string => typeof x === 'string') : undefined;
  } catch {
    return undefined;
  }
}

export interface MigrationsResult {
  ran: number;
  /** The migrations that had to be applied, and were (read from the cursor). */
  required: string[];
  /** A warning the run carries (policy `warn` with a migration missing). */
  warning?: string;
}

/**
 * Activity: runs the migrations between two versions and proves they applied. A required one
 * missing from the cursor fails the upgrade (rolled back), unless the release's policy is `warn`.
 */
export async function runMigrations(config: HostConfig, rawInput: unknown): Promise<MigrationsResult> {
  const input = validated(MigrateInput, rawInput, 'runMigrations');
  const python = path.join(venvPath(config), 'bin', 'python');
  const roots = await liveRoots(config);
  const r = await run(
    python,
    [
      '-I',
      '-c',
      PROGRAM,
      input.fromVersion,
      input.toVersion,
      roots.openclaw,
      config.dataDir,
      JSON.stringify(input.required ?? []),
    ],
    { env: config.commandEnv, timeoutMs: 10 * 60_000, signal: cancellationSignal() },
  );
  const line = r.output.split('\n').find((l) => l.startsWith(MARK));
  let report: z.infer<typeof Report>;
  try {
    report = Report.parse(JSON.parse(line!.slice(MARK.length)));
  } catch {
    const why =
      r.output
        .split('\n')
        .filter((l) => /Error|Exception/.test(l))
        .pop() ?? r.output.split('\n').pop();
    throw refuse(
      FailureType.CommandFailed,
      `migrations ${input.fromVersion} → ${input.toVersion} did not run (exit ${r.exitCode}): ${(why ?? '').slice(0, 300)}`,
    );
  }
  if (report.error) {
    throw refuse(
      FailureType.CommandFailed,
      `migrations ${input.fromVersion} → ${input.toVersion} failed: ${report.error}`,
    );
  }
  const required =
    input.required ??
    report.registry.filter(
      (v) => isVersion(v) && compareVersions(v, input.fromVersion) > 0 && compareVersions(v, input.toVersion) <= 0,
    );
  if (!report.cursor) return { ran: report.ran ?? 0, required }; // 0.3.x: no cursor; no exception means done
  const applied = new Set((await appliedMigrations(config)) ?? []);
  const missing = required.filter((v) => !applied.has(v));
  if (missing.length === 0) return { ran: report.ran ?? 0, required };
  const said = r.output
    .split('\n')
    .filter((l) => /migration .* failed/i.test(l))
    .pop();
  const what = `migration${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not apply${said ? ` (${said.trim().slice(0, 200)})` : ''}`;
  if (input.failurePolicy === 'warn') {
    activityContext()?.log.warn(what);
    return { ran: report.ran ?? 0, required, warning: what };
  }
  throw refuse(FailureType.MigrationsIncomplete, `required ${what}`);
}
