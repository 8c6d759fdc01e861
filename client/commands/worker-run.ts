/**
 * `defenseclaw-upgrade worker`: this host's worker in the foreground. Its flags and action are
 * declared here once, for the full command tree (cli.ts) and for the light entry that a plain
 * `worker` run takes (worker-main.ts).
 */
import type { Command } from 'commander';
import { RESTART_EXIT_CODE, restartRequested } from '../../worker/restart.js';
import { runWorkerForeground } from '../../worker/worker.js';
import { action } from '../errors.js';

export function sourceOptions(cmd: Command): Command {
  return cmd
    .option(
      '--releases-url <url>',
      'release API base for the local agent (env DEFENSECLAW_RELEASES_URL; default https://api.github.com)',
    )
    .option('--repo <owner/name>', 'release repository for the local agent (env DEFENSECLAW_REPO)');
}

/** Adds `worker` to the program and answers it (the service subcommands are the full tree's). */
export function workerCommand(program: Command): Command {
  return sourceOptions(
    program
      .command('worker')
      .description("run this host's worker in the foreground for a remote cluster (TEMPORAL_ADDRESS, TLS / API key)")
      .option('--host <name>', 'this host name (default: the machine name)')
      .option('--task-queue <queue>', 'override the task queue')
      .option(
        '--with-workflows',
        "also run workflows on this host's queue (runs started by a release before activity-only host workers)",
      ),
  ).action(
    action(
      async (flags: {
        host?: string;
        taskQueue?: string;
        releasesUrl?: string;
        repo?: string;
        withWorkflows?: boolean;
      }) => {
        await runWorkerForeground({
          workflows: Boolean(flags.withWorkflows),
          hostOverrides: {
            host: flags.host,
            taskQueue: flags.taskQueue,
            releasesUrl: flags.releasesUrl,
            repo: flags.repo,
          },
          onReady: (i) =>
            process.stderr.write(
              `worker for host ${i.host} polling ${i.taskQueue} on ${i.address} (namespace ${i.namespace}), ${flags.withWorkflows ? 'activities and workflows' : 'activities only'}\n`,
            ),
        });
        return restartRequested() ? RESTART_EXIT_CODE : 0;
      },
    ),
  );
}

/**
 * Whether `args` (what follows `worker`) are only the worker's own flags, each value given: no
 * subcommand, no help, nothing the full tree would answer differently.
 */
export function onlyOwnFlags(worker: Command, args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const option = worker.options.find((o) => o.long === name);
    if (!option || option.negate || option.optional || option.variadic) return false;
    if (option.required) {
      if (eq > 0) continue;
      const value = args[i + 1];
      if (value === undefined || value.startsWith('-')) return false;
      i += 1;
    } else if (eq > 0) {
      return false;
    }
  }
  return true;
}
