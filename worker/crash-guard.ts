/**
 * The worker process's safety net. Temporal retries an activity that fails, but an exception
 * thrown outside any activity's promise (an event handler deep in a library, a forgotten
 * rejection) kills the whole process: Node prints an unscrubbed stack and the host's upgrade
 * waits for a worker that is gone. Here such an error is logged once, scrubbed, with the
 * activities that were running, and the process exits non-zero (FATAL_EXIT_CODE) so that its
 * supervisor (the CLI for the local agent, systemd for a host worker) restarts it; the run then
 * resumes from its history.
 */
import type { Logger } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** Exit status of a worker process that died of an uncaught error (EX_SOFTWARE). */
export const FATAL_EXIT_CODE = 70;

export interface RunningActivity {
  activityType: string;
  workflowId?: string;
  attempt: number;
  since: string;
}

const running = new Map<string, RunningActivity>();

/** Activities executing in this process now (for the crash report). */
export function runningActivities(): RunningActivity[] {
  return [...running.values()];
}

/** Records an activity as running until the returned function is called. */
export function trackRunning(key: string, what: RunningActivity): () => void {
  running.set(key, what);
  return () => running.delete(key);
}

/** Activity interceptor: every execution is in runningActivities() while it runs. */
export const trackActivities: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const { info } = ctx;
      const done = trackRunning(`${info.workflowExecution?.runId ?? ''}/${info.activityId}/${info.attempt}`, {
        activityType: info.activityType,
        workflowId: info.workflowExecution?.workflowId,
        attempt: info.attempt,
        since: new Date().toISOString(),
      });
      try {
        return await next(input);
      } finally {
        done();
      }
    },
  },
});

export function describeRunning(list: RunningActivity[] = runningActivities()): string {
  return list.length
    ? list.map((a) => `${a.activityType} (${a.workflowId ?? '?'}, attempt ${a.attempt})`).join(', ')
    : 'no activity';
}

export interface CrashGuardOptions {
  logger: Logger;
  /** Scrubs a line before it leaves the process's logger (agent.json, the one-line summary). */
  scrub: (text: string) => string;
  /** Last words, synchronous (e.g. record the death in agent.json); its errors are ignored. */
  onFatal?: (summary: string, activities: RunningActivity[]) => void;
  /** Flushes buffered log entries before exiting. */
  flush?: () => void;
}

let installed: ((err: unknown) => void) | undefined;

/** Installs the uncaughtException / unhandledRejection handlers (once per process). */
export function installCrashGuard(opts: CrashGuardOptions): void {
  if (installed) return;
  let dying = false;
  const fatal = (kind: string) => (err: unknown) => {
    if (dying) process.exit(FATAL_EXIT_CODE);
    dying = true;
    const activities = runningActivities();
    const e = err instanceof Error ? err : new Error(String(err));
    const first = (e.message || e.name).split('\n')[0]!;
    const summary = opts.scrub(
      `${kind} ${e.name}: ${first.slice(0, 300)} while running ${describeRunning(activities)}`,
    );
    try {
      opts.logger.error(`worker process dying: ${summary}; exiting with ${FATAL_EXIT_CODE} to be restarted`, {
        error: e,
        running: activities,
      });
    } catch {
      process.stderr.write(`worker process dying: ${summary}\n`);
    }
    try {
      opts.onFatal?.(summary, activities);
    } catch {
      // last words only
    }
    try {
      opts.flush?.();
    } catch {
      // exiting anyway
    }
    process.exit(FATAL_EXIT_CODE);
  };
  installed = fatal('uncaught exception');
  process.on('uncaughtException', installed);
  process.on('unhandledRejection', fatal('unhandled rejection'));
}
