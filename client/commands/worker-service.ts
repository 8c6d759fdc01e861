/**
 * `defenseclaw-upgrade worker install|uninstall|status`: the host's service for the worker
 * (systemd or launchd), under the launcher. `worker` alone still runs the worker in the foreground.
 */
import { Command, Option } from 'commander';
import { installService, type InstallFlags } from '../../worker/service/install.js';
import { renderStatus, serviceStatus } from '../../worker/service/status.js';
import { uninstallService, type UninstallFlags } from '../../worker/service/uninstall.js';
import type { ServiceFlags } from '../../worker/service/resolve.js';
import { action } from '../errors.js';

const out = (s: string) => {
  process.stdout.write(s);
};

function where(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--platform <os>', 'the service manager to write for (default: this host)').choices([
        'linux',
        'darwin',
      ]),
    )
    .addOption(
      new Option(
        '--scope <scope>',
        'system (as root: /etc/systemd/system, LaunchDaemons) or user (default when not root)',
      ).choices(['system', 'user']),
    )
    .option(
      '--root <dir>',
      'write every file under DIR (DIR/etc/systemd/system/…) and run no systemctl/launchctl (tests, image builds)',
    )
    .option(
      '--upgrader-root <dir>',
      'the upgrader root (env DEFENSECLAW_UPGRADER_ROOT; default /opt/defenseclaw-upgrade as root, ~/.local/share/defenseclaw-upgrade otherwise)',
    );
}

export function registerWorkerServiceCommands(worker: Command): void {
  where(
    worker
      .command('install')
      .description("write and enable this host's service running the worker under its launcher (systemd or launchd)")
      .option('--dry-run', 'print what would be written and run (secrets masked), change nothing')
      .option('--force', 'replace a service installed with other settings')
      .option(
        '--user <name>',
        'system scope: the account the worker runs as (default: the owner of DEFENSECLAW_HOME, else defenseclaw)',
      )
      .option('--node <path>', 'the node binary the service runs (default: the one running this command)')
      .option('--address <host:port>', 'TEMPORAL_ADDRESS for the environment file')
      .option('--namespace <ns>', 'TEMPORAL_NAMESPACE for the environment file')
      .option('--host <name>', 'DEFENSECLAW_HOST for the environment file')
      .option('--tls-cert <path>', 'TEMPORAL_TLS_CLIENT_CERT_PATH')
      .option('--tls-key <path>', 'TEMPORAL_TLS_CLIENT_KEY_PATH')
      .option('--tls-ca <path>', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH')
      .option(
        '--api-key-env <name>',
        'the NAME of a variable of this environment holding the API key (written as TEMPORAL_API_KEY)',
      ),
  ).action(
    // `worker install --host gw-01`: commander gives --host to `worker` (the foreground worker's own
    // flag), which parses the options after its subcommand name too; take it from there.
    action((flags: InstallFlags) =>
      installService({ ...flags, host: flags.host ?? (worker.opts() as { host?: string }).host }, process.env, out),
    ),
  );

  where(
    worker
      .command('uninstall')
      .description("stop, disable and remove this host's worker service (the environment file stays unless --purge)")
      .option('--dry-run', 'print what would be removed and run, change nothing')
      .option('--purge', 'also remove the environment file'),
  ).action(action((flags: UninstallFlags) => uninstallService(flags, process.env, out)));

  where(
    worker
      .command('status')
      .description(
        "this host's worker service: installed, enabled/active, current and previous version, pending switch, last revert",
      )
      .option('--json', 'machine-readable output'),
  ).action(
    action(async (flags: ServiceFlags & { json?: boolean }) => {
      const s = await serviceStatus(flags, process.env);
      out(flags.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
      return 0;
    }),
  );
}
