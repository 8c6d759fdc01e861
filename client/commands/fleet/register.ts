/**
 * `defenseclaw-upgrade fleet`: one release to many hosts as one durable workflow (fleetRollout on
 * the `defenseclaw-upgrade-fleet` queue), each host upgraded by its own worker. The command tree:
 *
 *   fleet --hosts a,b,c | --hosts-file FILE …   start a rollout and watch it (start.ts)
 *   fleet status <id> [--json] [--all]      live table (TTY) or one snapshot (status.ts)
 *   fleet pause|resume|abort <id>           Updates on the running rollout (control.ts)
 *   fleet rollout …                         a ring rollout (rollout.ts)
 *   fleet schedule …                        a release channel on a schedule (schedule.ts)
 *   fleet worker                            the worker that runs fleet workflows (fleet-worker.ts)
 *   fleet inventory …                       what every host runs (inventory.ts)
 */
import { Command, Option } from 'commander';
import { FLEET_LIMITS, FLEET_TASK_QUEUE } from '../../../workflows/fleet/fleet-types.js';
import { action } from '../../errors.js';
import { componentOption } from './component.js';
import { registerRolloutCommands } from './rollout.js';
import { registerScheduleCommands } from './schedule.js';
import { registerInventoryCommands } from './inventory.js';
import { fleetControlCommand } from './control.js';
import { runFleetWorker } from './fleet-worker.js';
import { fleetStartCommand, type FleetFlags } from './start.js';
import { fleetStatusCommand } from './status.js';

export function registerFleetCommands(program: Command): void {
  const fleet = program
    .command('fleet')
    .description(
      'roll a release out to many hosts: canaries, a bake, then a sliding window with a failure budget (each host upgraded by its own worker)',
    );
  // `fleet --hosts …` starts a rollout: `start` is the default subcommand, so that the options of
  // `fleet status ID --json` reach `status` (the program parses options apart from operands).
  fleet
    .command('start', { isDefault: true })
    .description('start a rollout (the default: `fleet --hosts a,b,c` is `fleet start --hosts a,b,c`) and watch it')
    .option('--hosts <a,b,c>', 'the hosts, comma-separated, in rollout order (the first are the canaries)')
    .option('--hosts-file <file>', 'the hosts, one per line (# comments and blank lines allowed)')
    .option('--version <X.Y.Z>', 'target release (default: the latest, resolved once for the whole fleet)')
    .addOption(componentOption())
    .option('--canary <n>', 'upgrade the first N hosts first and bake them', String(FLEET_LIMITS.canary.default))
    .option('--batch <n|p%>', 'at most this many hosts upgrading at once', String(FLEET_LIMITS.batch.default))
    .option('--max-failures <n|p%>', 'stop starting hosts when failures exceed this', '0')
    .option('--bake <seconds>', 'how long the canaries must stay healthy', String(FLEET_LIMITS.bakeSeconds.default))
    .option('--health-timeout <seconds>', 'seconds each host waits for gateway health', '60')
    .option(
      '--unreachable-timeout <seconds>',
      'a host whose worker does not answer within this fails as unreachable',
      String(FLEET_LIMITS.unreachableSeconds.default),
    )
    .option(
      '--jitter <ms>',
      'spread host starts: each host waits its own delay of 0..ms, a hash of its name',
      String(FLEET_LIMITS.jitterMs.default),
    )
    .option('--controller <host>', "resolve the release on this host's worker (default: the first canary)")
    .option('--id <fleet-id>', 'the rollout ID (default: fleet-<time>-<random>)')
    .addOption(
      new Option('--fleet-queue <queue>', 'task queue of the fleet worker').default(FLEET_TASK_QUEUE).hideHelp(),
    )
    .option('-y, --yes', 'start without asking')
    .option('--detach', 'print the rollout ID and return; watch with `fleet status <id>`')
    .option('--all', 'show every host in the table')
    .option('--json', 'machine-readable output')
    .action(action((flags: FleetFlags) => fleetStartCommand(flags)));

  fleet
    .command('status <fleet-id>')
    .description('live table of a rollout: per host state, step, versions, time; then the failures')
    .option('--all', 'show every host')
    .option('--json', 'machine-readable output')
    .action(action((id: string, flags: { json?: boolean; all?: boolean }) => fleetStatusCommand(id, flags)));
  fleet
    .command('pause <fleet-id>')
    .description('start no new host (in-flight hosts finish)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; json?: boolean }) => fleetControlCommand('pause', id, flags)),
    );
  fleet
    .command('resume <fleet-id>')
    .description('continue a paused rollout')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; json?: boolean }) => fleetControlCommand('resume', id, flags)),
    );
  fleet
    .command('abort <fleet-id>')
    .description(
      'stop the rollout: no new host starts; in-flight hosts finish (or are cancelled and undo their changes)',
    )
    .option('--cancel-in-flight', 'also cancel the hosts in flight (each compensates its own changes)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(
      action((id: string, flags: { reason?: string; cancelInFlight?: boolean; json?: boolean }) =>
        fleetControlCommand('abort', id, flags),
      ),
    );
  registerRolloutCommands(fleet);
  registerScheduleCommands(fleet);
  fleet
    .command('worker')
    .description('run the worker that executes fleet rollouts, in the foreground (on a controller machine)')
    .option('--task-queue <queue>', 'task queue to serve', FLEET_TASK_QUEUE)
    .action(
      action(async (flags: { taskQueue?: string }) => {
        await runFleetWorker({
          taskQueue: flags.taskQueue,
          onReady: (line) => process.stderr.write(`${line}\n`),
        });
        return 0;
      }),
    );
  registerInventoryCommands(fleet);
}
