/**
 * The root of the command tree and how a parse ends (0 ok, 1 failure, 2 usage): shared by the full
 * CLI (cli.ts) and the host worker's light entry (worker-main.ts).
 */
import { Command, CommanderError } from 'commander';
import { TOOL_VERSION } from '../worker/tool-version.js';
import { exitCodeOf, oneLine, scrubbed } from './errors.js';

export function newProgram(): Command {
  return new Command('defenseclaw-upgrade')
    .description('Durable, auditable upgrades of the DefenseClaw gateway, as Temporal workflows.')
    .version(TOOL_VERSION, '--tool-version', 'print the version of defenseclaw-upgrade')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}

export async function runProgram(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`defenseclaw-upgrade: ${scrubbed(oneLine(err))}\n`);
    return exitCodeOf(err);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
