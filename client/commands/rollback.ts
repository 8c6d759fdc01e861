/**
 * `rollback [--backup <folder>] [--yes]`: restores the host to a backup (the latest by default)
 * as its own workflow. `--backup` takes a folder name or a path, which must be a real folder
 * directly inside $DEFENSECLAW_HOME/backups (the host's worker checks it again).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadHostConfig } from '../../worker/host-config.js';
import { BackupIdSchema, LIMITS, WORKFLOW_ROLLBACK, type RollbackInput } from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { UsageError } from '../errors.js';
import {
  flag,
  followAndReport,
  interactiveTerminal,
  requestedBy,
  seconds,
  startOrAttach,
  type CommonFlags,
} from './shared.js';

export interface RollbackFlags extends CommonFlags {
  backup?: string;
  yes?: boolean;
  healthTimeout?: string;
}

/** A backup given as a name or a path, reduced to its name after checking where it is. */
export function backupIdFromFlag(value: string, backupsRoot: string): string {
  if (!value.includes('/') && !value.includes(path.sep)) return flag(BackupIdSchema, value, '--backup');
  const resolved = path.resolve(value);
  if (path.dirname(resolved) !== path.resolve(backupsRoot)) {
    throw new UsageError(`--backup must be a folder inside ${backupsRoot}, got ${JSON.stringify(value)}`);
  }
  // The name first: a name that is not a backup's (e.g. one with a NUL) is never handed to lstat.
  const id = flag(BackupIdSchema, path.basename(resolved), '--backup');
  const st = fs.lstatSync(resolved, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink() || !st.isDirectory()) {
    throw new UsageError(`--backup ${JSON.stringify(value)} is not a real folder (missing, a file or a symlink)`);
  }
  return id;
}

export async function rollbackCommand(flags: RollbackFlags): Promise<number> {
  const backupId =
    flags.backup === undefined
      ? undefined
      : backupIdFromFlag(flags.backup, path.join(loadHostConfig().dataDir, 'backups'));
  const healthTimeoutSeconds =
    seconds(flags.healthTimeout, '--health-timeout', LIMITS.healthTimeoutSeconds) ??
    LIMITS.healthTimeoutSeconds.default;
  if (!flags.yes && (!interactiveTerminal() || flags.json)) {
    throw new UsageError('confirming the rollback needs a terminal; pass --yes to roll back without asking');
  }
  const target = await connectTarget(flags);
  try {
    const input: RollbackInput = {
      host: target.host,
      backupId,
      healthTimeoutSeconds,
      requireConfirmation: !flags.yes,
      requestedBy: requestedBy(),
    };
    const handle = await startOrAttach(target, WORKFLOW_ROLLBACK, {
      args: [input],
      staticSummary: `Roll back ${target.host} to ${backupId ?? 'its latest backup'}`,
      staticDetails: [
        `**Host:** ${target.host}`,
        `**Backup:** ${backupId ?? 'latest'}`,
        `**Requested by:** ${input.requestedBy}`,
      ],
    });
    const result = await followAndReport(target, handle, { ...flags, answerConfirmation: !flags.yes });
    return result.ok ? 0 : 1;
  } finally {
    await target.close();
  }
}
