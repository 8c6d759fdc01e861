/** Migrations: `defenseclaw.migrations.run_migrations(...)` in the live environment's interpreter. */
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../worker/host-config.js';
import { VersionSchema } from '../workflows/types.js';
import { venvPath } from './backup.js';
import { run } from './exec.js';
import { FailureType, cancellationSignal, refuse, validated } from './support.js';

const MigrateInput = z.object({ fromVersion: VersionSchema, toVersion: VersionSchema }).strict();

/** Paths and versions go in as argv, never as code. */
const PROGRAM = [
  'import json, sys',
  'from defenseclaw.migrations import run_migrations',
  'n = run_migrations(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])',
  'print(json.dumps({"ran": int(n or 0)}))',
].join('\n');

/**
 * Activity: runs the migrations between two versions. Each migration records itself in the
 * cursor as it completes, so a retry skips what already ran.
 */
export async function runMigrations(config: HostConfig, rawInput: unknown): Promise<{ ran: number }> {
  const input = validated(MigrateInput, rawInput, 'runMigrations');
  const python = path.join(venvPath(config), 'bin', 'python');
  const r = await run(
    python,
    ['-c', PROGRAM, input.fromVersion, input.toVersion, config.openclawHome, config.dataDir],
    {
      env: config.commandEnv,
      timeoutMs: 10 * 60_000,
      signal: cancellationSignal(),
    },
  );
  const last = r.output.split('\n').pop() ?? '';
  if (r.exitCode !== 0) {
    const why =
      r.output
        .split('\n')
        .filter((l) => /Error|Exception/.test(l))
        .pop() ?? last;
    throw refuse(
      FailureType.CommandFailed,
      `migrations ${input.fromVersion} → ${input.toVersion} failed: ${why.slice(0, 300)}`,
    );
  }
  try {
    return { ran: z.object({ ran: z.number().int().min(0) }).parse(JSON.parse(last)).ran };
  } catch {
    throw refuse(FailureType.CommandFailed, 'run_migrations did not report how many migrations ran');
  }
}
