/**
 * defenseclaw-upgrade: the command tree. Each command lives in commands/<name>.ts; this file only
 * declares flags and maps errors to one line and an exit code (0 ok, 1 failure, 2 usage).
 */
import { Command, Option } from 'commander';
import { TOOL_VERSION } from '../worker/tool-version.js';
import { ON_FAILURE, RECONNECTING } from '../workflows/types.js';
import { agentStart, agentStatusCommand, agentStop } from './commands/agent.js';
import { backupsCommand } from './commands/backups.js';
import { cancelCommand } from './commands/cancel.js';
import { historyCommand } from './commands/history.js';
import { rollbackCommand } from './commands/rollback.js';
import { selfUpdateCommand } from './commands/self-update.js';
import { showCommand } from './commands/show.js';
import { statusCommand } from './commands/status.js';
import { upgradeCommand } from './commands/upgrade.js';
import { registerFleetCommands } from './commands/fleet/register.js';
import { registerWorkerServiceCommands } from './commands/worker-service.js';
import { sourceOptions, workerCommand } from './commands/worker-run.js';
import { action } from './errors.js';
import { newProgram, runProgram } from './program.js';

export { TOOL_VERSION };

function targetOptions(cmd: Command): Command {
  return cmd
    .option('--host <name>', 'the host to act on (its worker must poll its task queue); default: this host')
    .option('--task-queue <queue>', 'override the task queue (default defenseclaw-upgrade@<host>)')
    .option('--json', 'machine-readable output');
}

export function buildProgram(): Command {
  const program = newProgram();

  const upgrade = program
    .command('upgrade', { isDefault: true })
    .description(
      'upgrade this host (the default command): resolve, download, verify, back up, swap, migrate, restart, check health',
    )
    .option('-y, --yes', 'skip the confirmation prompt')
    .option('--version <X.Y.Z>', 'target release (default: the latest from the releases API)')
    .option('--health-timeout <seconds>', 'seconds to wait for gateway health after the restart', '60')
    .option(
      '--stuck-after <seconds>',
      'report the run as stuck when its worker has been gone this long (env DEFENSECLAW_STUCK_AFTER, default 300)',
    )
    .addOption(
      new Option('--on-failure <policy>', 'after a failure past the stop').choices([...ON_FAILURE]).default('rollback'),
    )
    .addOption(
      new Option(
        '--reconnecting <policy>',
        'whether the gateway counts as healthy while OpenClaw is not connected (auto: only if it was not running before)',
      )
        .choices([...RECONNECTING])
        .default('auto'),
    );
  sourceOptions(targetOptions(upgrade)).action(action((flags) => upgradeCommand(flags)));

  targetOptions(
    program
      .command('status')
      .description("attach to this host's running upgrade or show how the last one ended")
      .option(
        '--stuck-after <seconds>',
        'report the run as stuck when its worker has been gone this long (env DEFENSECLAW_STUCK_AFTER, default 300)',
      ),
  ).action(action((flags) => statusCommand(flags)));
  targetOptions(
    program
      .command('cancel')
      .description('cancel the running upgrade (compensating if the gateway was already stopped)'),
  ).action(action((flags) => cancelCommand(flags)));
  targetOptions(
    program
      .command('rollback')
      .description('restore this host to a backup (the latest by default)')
      .option('--backup <folder>', 'a backup folder name or path inside $DEFENSECLAW_HOME/backups')
      .option('-y, --yes', 'skip the confirmation prompt')
      .option('--health-timeout <seconds>', 'seconds to wait for gateway health', '60'),
  ).action(action((flags) => rollbackCommand(flags)));
  targetOptions(program.command('backups').description("list this host's backups with version, date and size")).action(
    action((flags) => backupsCommand(flags)),
  );
  program
    .command('history')
    .description('past upgrades and rollbacks from Temporal visibility')
    .option('--host <name>', 'only this host')
    .option('--version <X.Y.Z>', 'only upgrades to or from this version')
    .option('--failed', 'only runs that did not succeed')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'machine-readable output')
    .action(action((flags) => historyCommand(flags)));
  program
    .command('show <workflow-id>')
    .description("one run's steps with times, attempts and errors, from its history")
    .option('--run-id <id>', 'a specific run (default: the latest)')
    .option('--json', 'machine-readable output')
    .action(action((id: string, flags) => showCommand(id, flags)));

  const agent = program
    .command('agent')
    .description('the local agent: embedded Temporal dev server + this host worker, in the background');
  sourceOptions(
    agent
      .command('start')
      .description('start the agent (no-op when it runs)')
      .option('--temporal-port <port>', 'dev server gRPC port (default 7233 when free)')
      .option('--ui-port <port>', 'dev server UI port (default 8233 when free)')
      .option('--json', 'machine-readable output'),
  ).action(action((flags) => agentStart(flags)));
  agent
    .command('stop')
    .description('stop the agent')
    .option('--json', 'machine-readable output')
    .action(action((flags) => agentStop(flags)));
  agent
    .command('status')
    .description('is the agent running, and where')
    .option('--json', 'machine-readable output')
    .action(action((flags) => agentStatusCommand(flags)));

  const worker = workerCommand(program);
  program
    .command('self-update')
    .description(
      "move this machine's defenseclaw-upgrade to another version (the controller's fleet worker, the local agent): install side by side, switch, restart through the launcher, which reverts a version that does not poll",
    )
    .option(
      '--version <X.Y.Z>',
      'the version to install (from DEFENSECLAW_UPGRADER_BUNDLE_URL, else DEFENSECLAW_UPGRADER_REGISTRY)',
    )
    .option('--root <dir>', 'the upgrader root (env DEFENSECLAW_UPGRADER_ROOT)')
    .option('--deadline <seconds>', 'how long the new version has to poll before the launcher reverts it', '120')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: { version?: string; root?: string; deadline?: string; json?: boolean }) =>
        selfUpdateCommand(flags),
      ),
    );
  registerFleetCommands(program);
  registerWorkerServiceCommands(worker);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
