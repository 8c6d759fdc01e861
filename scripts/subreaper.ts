/**
 * Runs this process again under a reaping subreaper, for figures that must not measure the host's init.
 *
 * The real `defenseclaw-gateway stop` returns once its daemon's pid has vanished, which is when the
 * orphaned daemon is reaped: under systemd or any subreaper that is at once; under a PID 1 that reaps
 * late (a sandbox's, some container inits) it is 1.5–1.9 s later, and every figure would measure that
 * init. In order of preference:
 *
 *   pid-namespace  root and `unshare` works: `unshare --pid --fork --mount-proc tini -s -- node …`
 *                  (also keeps the real gateway's machine-wide SIGTERM of `defenseclaw-gateway`
 *                  processes inside the namespace)
 *   tini           `tini -s -- node …` (PR_SET_CHILD_SUBREAPER)
 *   python         a few lines of python3: prctl(PR_SET_CHILD_SUBREAPER) by ctypes, spawn node,
 *                  os.waitpid(-1) in a loop
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Set in the child: which subreaper it runs under. */
export const REAPER_ENV = 'DCU_BENCH_REAPER';

export type Reaper = 'pid-namespace' | 'tini' | 'python';

const PYTHON_REAPER = [
  'import ctypes, os, signal, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'if libc.prctl(36, 1, 0, 0, 0) != 0:',
  '    sys.stderr.write("prctl(PR_SET_CHILD_SUBREAPER) failed\\n"); sys.exit(70)',
  'child = os.fork()',
  'if child == 0:',
  '    os.execvp(sys.argv[1], sys.argv[1:])',
  'for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):',
  '    signal.signal(s, lambda n, f: os.kill(child, n))',
  'while True:',
  '    try:',
  '        pid, status = os.waitpid(-1, 0)',
  '    except ChildProcessError:',
  '        sys.exit(70)',
  '    except InterruptedError:',
  '        continue',
  '    if pid == child:',
  '        sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)',
].join('\n');

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The command prefix of the best subreaper this machine offers. */
export function chooseReaper(): { reaper: Reaper; prefix: string[] } | undefined {
  const tini = onPath('tini');
  const unshare = onPath('unshare');
  if (tini && unshare && process.getuid?.() === 0) {
    const probe = [unshare, '--pid', '--fork', '--mount-proc', tini, '-s', '--'];
    if (spawnSync(probe[0]!, [...probe.slice(1), 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0) {
      return { reaper: 'pid-namespace', prefix: probe };
    }
  }
  if (tini) return { reaper: 'tini', prefix: [tini, '-s', '--'] };
  const python = onPath('python3');
  if (python) return { reaper: 'python', prefix: [python, '-c', PYTHON_REAPER] };
  return undefined;
}

/** A line saying what this process runs under. */
export function reaperNote(): string {
  const r = process.env[REAPER_ENV] as Reaper | undefined;
  if (r === 'pid-namespace') return 'under a subreaper: its own PID namespace, tini as PID 1 (unshare --pid; tini -s)';
  if (r === 'tini') return 'under a subreaper: tini -s (PR_SET_CHILD_SUBREAPER); NOT in a PID namespace';
  if (r === 'python') return 'under a subreaper: python3 prctl(PR_SET_CHILD_SUBREAPER); NOT in a PID namespace';
  return 'NOT under a subreaper: the real stop includes the host init reaping the daemon';
}

/**
 * Unless already there, runs `node <this script> <args>` under a subreaper and answers its exit
 * code; undefined when already under one (go on here) or when none is available (go on, and say so).
 */
export async function reexecUnderReaper(args: string[]): Promise<number | undefined> {
  if (process.env[REAPER_ENV]) return undefined;
  const chosen = chooseReaper();
  if (!chosen) {
    process.stderr.write('no subreaper available (unshare+tini, tini, python3): measuring under this init\n');
    return undefined;
  }
  const [file, ...pre] = chosen.prefix;
  const child = spawn(file!, [...pre, process.execPath, ...process.execArgv, process.argv[1]!, ...args], {
    stdio: 'inherit',
    env: { ...process.env, [REAPER_ENV]: chosen.reaper },
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}
