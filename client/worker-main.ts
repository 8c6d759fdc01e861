/**
 * The executable's entry: a plain `defenseclaw-upgrade worker` run (what the launcher and the
 * service run on every host) parses with the worker command alone, so that an idle host worker
 * holds none of the other commands' modules (prompts, tables, the fleet, the service installer);
 * anything else goes to the full command tree (cli.ts).
 */
import { newProgram, runProgram } from './program.js';
import { onlyOwnFlags, workerCommand } from './commands/worker-run.js';

export async function main(argv: string[]): Promise<number> {
  if (argv[2] === 'worker') {
    const program = newProgram();
    const worker = workerCommand(program);
    if (onlyOwnFlags(worker, argv.slice(3))) return runProgram(program, argv);
  }
  const cli = await import('./cli.js');
  return cli.main(argv);
}
