/** Running host commands: execa with argument arrays, a timeout, output captured (never a shell). */
import { execa } from 'execa';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface RunResult {
  exitCode: number;
  /** stdout and stderr interleaved, trimmed, capped at 64 KiB. */
  output: string;
  timedOut: boolean;
}

export async function run(
  file: string,
  args: string[],
  opts: { env: Record<string, string>; timeoutMs: number; cwd?: string; signal?: AbortSignal },
): Promise<RunResult> {
  const r = await execa(file, args, {
    env: opts.env,
    extendEnv: false,
    cwd: opts.cwd,
    timeout: opts.timeoutMs,
    cancelSignal: opts.signal,
    reject: false,
    all: true,
    stdin: 'ignore',
    maxBuffer: 64 * 1024,
    forceKillAfterDelay: 2000,
  });
  const output = String(r.all ?? '').trim();
  return {
    exitCode: r.exitCode ?? (r.timedOut ? 124 : 1),
    output: output.length > 64 * 1024 ? output.slice(-64 * 1024) : output,
    timedOut: Boolean(r.timedOut),
  };
}

/** The full path of an executable on the environment's PATH, or undefined. */
export async function which(name: string, env: Record<string, string>): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      const st = await fs.stat(candidate);
      if (st.isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
