/**
 * `defenseclaw-upgrade [--yes] [--version X.Y.Z] [--health-timeout S]`: the original command's
 * surface, as a durable workflow on this host's worker. A second invocation attaches.
 */
import {
  LIMITS,
  UpgradeOptionsSchema,
  VersionSchema,
  WORKFLOW_UPGRADE,
  type UpgradeInput,
} from '../../workflows/types.js';
import { connectTarget } from '../connect.js';
import { stuckAfterSeconds } from '../supervise.js';
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

export interface UpgradeFlags extends CommonFlags {
  yes?: boolean;
  version?: string;
  healthTimeout?: string;
  onFailure?: string;
  reconnecting?: string;
}

export async function upgradeCommand(flags: UpgradeFlags): Promise<number> {
  // Everything is validated before anything is contacted.
  const version = flags.version === undefined ? undefined : flag(VersionSchema, flags.version, '--version');
  const options = flag(
    UpgradeOptionsSchema,
    {
      healthTimeoutSeconds:
        seconds(flags.healthTimeout, '--health-timeout', LIMITS.healthTimeoutSeconds) ??
        LIMITS.healthTimeoutSeconds.default,
      onFailure: flags.onFailure ?? 'rollback',
      reconnecting: flags.reconnecting ?? 'auto',
      requireConfirmation: !flags.yes,
    },
    'option',
  );
  if (!flags.yes && (!interactiveTerminal() || flags.json)) {
    throw new UsageError('confirming the plan needs a terminal; pass --yes to upgrade without asking');
  }

  stuckAfterSeconds(flags.stuckAfter);
  const target = await connectTarget(flags);
  try {
    const input: UpgradeInput = { host: target.host, version, options, requestedBy: requestedBy() };
    const handle = await startOrAttach(target, WORKFLOW_UPGRADE, {
      args: [input],
      staticSummary: `Upgrade ${target.host} to ${version ?? 'the latest release'}`,
      staticDetails: [
        `**Host:** ${target.host}`,
        `**Target:** ${version ?? 'latest release'}`,
        `**Requested by:** ${input.requestedBy}`,
        `**On failure:** ${options.onFailure}; health timeout ${options.healthTimeoutSeconds} s`,
        `**Confirmation:** ${options.requireConfirmation ? 'asked before any change' : 'skipped (`--yes`)'}`,
      ],
    });
    const result = await followAndReport(target, handle, { ...flags, answerConfirmation: !flags.yes });
    return result.ok ? 0 : 1;
  } finally {
    await target.close();
  }
}
