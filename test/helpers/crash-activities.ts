/**
 * Crash injection for durability tests: wraps a worker's activities so that the worker process
 * kills itself (SIGKILL, no cleanup, no last heartbeat) at one chosen point of one activity.
 *
 *   DCU_CRASH='<activity>:<before|after|mid>:<ms|rename>[:<match>]'
 *     before   killed after the activity task was received, before the activity ran
 *     after    killed after the activity completed, before its result reached Temporal (result lost)
 *     mid:<ms> killed <ms> into the activity (the marker records whether it had already finished)
 *     mid:rename killed right after the activity's first fs rename (e.g. the binary swap), before it returns
 *     match    only a call whose JSON input contains this text (e.g. a download's asset name)
 *   DCU_CRASH_MARKER  a file; the crash happens only while it does not exist and writes it first,
 *                     so the next worker on the same host does not crash again.
 *   DCU_ACTIVITY_LOG  a file each activity call appends one JSON line to ({ name, at, pid }), to
 *                     measure how long after a kill the work resumed.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';

export type CrashWhen = 'before' | 'after' | 'mid';

export interface CrashSpec {
  activity: string;
  when: CrashWhen;
  /** For 'mid': milliseconds into the activity, or 'rename'. */
  at: number | 'rename';
  match?: string;
}

/** What the crashing worker wrote just before it killed itself. */
export interface CrashMarker {
  activity: string;
  when: CrashWhen;
  /** 'mid' when the activity was still running at the kill; 'completed-first' when a mid timer came too late. */
  phase: 'before' | 'after' | 'mid' | 'completed-first';
  killedAt: number;
  pid: number;
}

export function parseCrashSpec(text: string | undefined): CrashSpec | undefined {
  if (!text) return undefined;
  const [activity, when, at, ...rest] = text.split(':');
  if (!activity || (when !== 'before' && when !== 'after' && when !== 'mid')) {
    throw new Error(`DCU_CRASH: expected <activity>:<before|after|mid>:<ms|rename>[:<match>], got ${text}`);
  }
  const ms = at === 'rename' ? 'rename' : Number(at ?? 0);
  if (ms !== 'rename' && !(Number.isInteger(ms) && ms >= 0)) throw new Error(`DCU_CRASH: bad time ${at}`);
  return { activity, when, at: ms, match: rest.length ? rest.join(':') : undefined };
}

function die(markerFile: string, marker: Omit<CrashMarker, 'killedAt' | 'pid'>): never {
  const full: CrashMarker = { ...marker, killedAt: Date.now(), pid: process.pid };
  // Synchronously and durably: nothing after this line runs.
  const fd = fs.openSync(markerFile, 'wx', 0o600);
  fs.writeSync(fd, `${JSON.stringify(full)}\n`);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered at once; should it not be, never let the activity go on.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}

type AnyActivity = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps every activity: each call is logged (when DCU_ACTIVITY_LOG is set) and the one the spec
 * names crashes the process at the chosen point, once per marker file.
 */
export function wrapForCrash<T extends object>(
  activities: T,
  opts: { spec?: CrashSpec; markerFile?: string; activityLog?: string },
): T {
  const { spec, markerFile, activityLog } = opts;
  if (spec && !markerFile) throw new Error('DCU_CRASH needs DCU_CRASH_MARKER');
  if (spec && !(spec.activity in activities)) throw new Error(`DCU_CRASH: no activity named ${spec.activity}`);
  const out: Record<string, AnyActivity> = {};
  for (const [name, fn] of Object.entries(activities) as Array<[string, AnyActivity]>) {
    out[name] = async (...args: unknown[]) => {
      if (activityLog) {
        await fsp.appendFile(activityLog, `${JSON.stringify({ name, at: Date.now(), pid: process.pid })}\n`);
      }
      const armed =
        spec !== undefined &&
        spec.activity === name &&
        (spec.match === undefined || JSON.stringify(args).includes(spec.match)) &&
        !fs.existsSync(markerFile!);
      if (!armed) return fn(...args);
      const base = { activity: name, when: spec.when };
      if (spec.when === 'before') die(markerFile!, { ...base, phase: 'before' });
      if (spec.when === 'after') {
        await fn(...args);
        die(markerFile!, { ...base, phase: 'after' });
      }
      if (spec.at === 'rename') return withKillAfterRename(markerFile!, name, () => fn(...args));
      let settled = false;
      const running = fn(...args).finally(() => {
        settled = true;
      });
      running.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, spec.at as number));
      die(markerFile!, { ...base, phase: settled ? 'completed-first' : 'mid' });
    };
  }
  return out as T;
}

/** Runs fn with fs.promises.rename patched to kill the process right after the first rename completes. */
async function withKillAfterRename(markerFile: string, activity: string, fn: () => Promise<unknown>): Promise<unknown> {
  const promises = fs.promises as { rename: typeof fsp.rename };
  const real = promises.rename;
  promises.rename = async (from, to) => {
    await real(from, to);
    die(markerFile, { activity, when: 'mid', phase: 'mid' });
  };
  try {
    return await fn();
  } finally {
    promises.rename = real;
  }
}
