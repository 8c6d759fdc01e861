/**
 * A warm interpreter: the new environment's Python, started before the stop with the target wheel's
 * `defenseclaw.migrations` (and what it imports lazily) already imported, waiting on stdin for the go
 * signal. The window's in-window migrations (the fallback of a prepared run) then skip the start and
 * the imports. Held by this worker process, keyed by the run's staging folder: a restarted worker has
 * none and the window starts Python cold.
 *
 * It dies on every path: after its one run, when killed (the window, removeStaging), when its stdin
 * closes (this worker exited), and after WARM_MS unused.
 */
import { execa, type ResultPromise } from 'execa';
import { PROGRAM } from './migration-program.js';

const WARM_MS = 30 * 60_000;

/** Imports done before the go signal; the ones a release lacks are skipped. */
const PRELOAD = [
  'defenseclaw.migration_state',
  'defenseclaw.config_inspect',
  'defenseclaw.observability.v8_migration',
  'defenseclaw.observability.v8_activation',
  'defenseclaw.process_liveness',
];

/** Waits for one line (the program's argv as JSON), then runs PROGRAM exactly as `python -c` would. */
const WARM = [
  'import importlib, json, sys',
  'from defenseclaw import migrations',
  `for name in ${JSON.stringify(PRELOAD)}:`,
  '    try:',
  '        importlib.import_module(name)',
  '    except Exception:',
  '        pass',
  'print("WARM-READY", flush=True)',
  'line = sys.stdin.readline()',
  'if not line.strip():',
  '    sys.exit(0)',
  "sys.argv = ['-c'] + json.loads(line)",
  'del importlib, json, line, name, migrations',
  `exec(compile(${JSON.stringify(PROGRAM)}, '<string>', 'exec'))`,
].join('\n');

interface Warm {
  proc: ResultPromise<{ stdin: 'pipe'; all: true; reject: false; env: Record<string, string>; extendEnv: false }>;
  ready: Promise<boolean>;
  timer: NodeJS.Timeout;
}

const registry = new Map<string, Warm>();

/** Starts (or replaces) the warm interpreter of a run. Never throws: a warm start is an optimisation. */
export function startWarm(key: string, python: string, env: Record<string, string>): void {
  killWarm(key);
  try {
    const proc = execa(python, ['-I', '-c', WARM], {
      env,
      extendEnv: false,
      stdin: 'pipe',
      all: true,
      reject: false,
      maxBuffer: 64 * 1024,
      forceKillAfterDelay: 2000,
    });
    const ready = new Promise<boolean>((resolve) => {
      let seen = '';
      proc.all?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('WARM-READY')) resolve(true);
      });
      void proc.then(() => resolve(false));
    });
    const timer = setTimeout(() => killWarm(key), WARM_MS);
    timer.unref();
    // The worker's exit must not wait for it: its stdin closes and it exits by itself.
    (proc as unknown as { unref?: () => void }).unref?.();
    registry.set(key, { proc, ready, timer });
  } catch {
    registry.delete(key);
  }
}

/** Runs PROGRAM with `args` in the run's warm interpreter; undefined when there is none (or it died). */
export async function runWarm(
  key: string,
  args: string[],
  timeoutMs: number,
): Promise<{ exitCode: number; output: string } | undefined> {
  const w = registry.get(key);
  if (!w) return undefined;
  registry.delete(key);
  clearTimeout(w.timer);
  if (!(await w.ready) || w.proc.exitCode !== null) {
    w.proc.kill('SIGKILL');
    return undefined;
  }
  const output: string[] = [];
  w.proc.all?.on('data', (d: Buffer) => output.push(d.toString()));
  w.proc.stdin?.end(`${JSON.stringify(args)}\n`);
  const kill = setTimeout(() => w.proc.kill('SIGKILL'), timeoutMs);
  try {
    const r = await w.proc;
    const all = String(r.all ?? output.join(''))
      .replace(/^WARM-READY\n?/m, '')
      .trim();
    return {
      exitCode: r.exitCode ?? (r.signal ? 137 : 1),
      output: all.length > 64 * 1024 ? all.slice(-64 * 1024) : all,
    };
  } finally {
    clearTimeout(kill);
  }
}

/** Kills a run's warm interpreter, if this worker holds one. */
export function killWarm(key: string): void {
  const w = registry.get(key);
  if (!w) return;
  registry.delete(key);
  clearTimeout(w.timer);
  w.proc.kill('SIGKILL');
  void w.proc.catch(() => undefined);
}

/** How many warm interpreters this worker holds (tests). */
export function warmCount(): number {
  return registry.size;
}
