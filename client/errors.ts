/** Errors the CLI reports in one line, with the exit code they mean. */

/** Bad input on the command line: exit 2, nothing was contacted or changed. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** The job failed (or the host could not be reached): exit 1. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  readonly exitCode = 1;
}

export function exitCodeOf(err: unknown): number {
  const code = (err as { exitCode?: unknown })?.exitCode;
  return typeof code === 'number' ? code : 1;
}

/** The first line of an error, without stack or noise. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n').find((l) => l.trim()) ?? msg).trim();
}

/** Hides any credential of this process's environment from a message. */
export function scrubbed(text: string): string {
  let out = text;
  for (const k of ['GITHUB_TOKEN', 'GH_TOKEN', 'TEMPORAL_API_KEY']) {
    const v = process.env[k];
    if (v && v.length >= 4) out = out.split(v).join('[redacted]');
  }
  return out;
}

/** A command's action: its exit code, or one scrubbed line on stderr and the error's exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      process.stderr.write(`defenseclaw-upgrade: ${scrubbed(oneLine(err))}\n`);
      process.exitCode = exitCodeOf(err);
    }
  };
}
