/**
 * The CLI watching a run also watches the worker the run needs. On one machine that is the local
 * agent's process: when it is gone the CLI says so in one line, starts a new agent on the same
 * ports (same SQLite history) and the run resumes where it stopped. With a cluster it is the
 * host's task queue as Temporal reports it (its pollers): the CLI cannot restart a remote worker
 * (systemd does), it says that none polls. Either way, a worker gone longer than the operator's
 * bound (--stuck-after, DEFENSECLAW_STUCK_AFTER) ends the watch as STUCK with the step the run
 * was on and whether the host was before or after the gateway's stop.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { readAgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { lastPollOf, queuePollers, timestampMs } from '../worker/queue-pollers.js';
import { activitySteps } from './commands/show.js';
import type { Target } from './connect.js';
import { CliFailure, UsageError, oneLine } from './errors.js';

export const DEFAULT_STUCK_AFTER_S = 300;
/** A healthy idle worker re-polls at least once a minute (the server's long poll). */
export const DEFAULT_POLLER_FRESH_S = 90;

/** --stuck-after (or DEFENSECLAW_STUCK_AFTER), validated before anything is contacted. */
export function stuckAfterSeconds(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const raw = flag ?? env.DEFENSECLAW_STUCK_AFTER;
  if (raw === undefined || raw === '') return DEFAULT_STUCK_AFTER_S;
  const n = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 5 || n > 86_400) {
    throw new UsageError(`--stuck-after must be from 5 to 86400 seconds, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export type HostState = 'before-stop' | 'after-stop';

export interface StuckReport {
  stuck: true;
  host: string;
  workflowId: string;
  /** The step (its summary) the run was on. */
  step?: string;
  activity?: string;
  hostState: HostState;
  hostStateText: string;
  workerGoneForS: number;
  stuckAfterS: number;
  message: string;
}

export class StuckRunError extends CliFailure {
  constructor(readonly report: StuckReport) {
    super(report.message);
  }
}

/** Where a run is, from its history alone (no worker needed): its current step, before or after the stop. */
export async function runPosition(
  handle: WorkflowHandle,
): Promise<{ step?: string; activity?: string; hostState: HostState; hostStateText: string }> {
  const steps = activitySteps((await handle.fetchHistory()).events ?? []);
  const current = steps.filter((s) => s.status === 'running').pop() ?? steps.at(-1);
  const stop = steps.find((s) => s.activity === 'stopGateway');
  const started = stop && steps.some((s) => s.activity === 'startGateway' && s.status === 'completed');
  const hostState: HostState = stop ? 'after-stop' : 'before-stop';
  const hostStateText = !stop
    ? 'before the stop: the gateway was not touched and runs the old version'
    : started
      ? 'after the stop: a gateway was started again but not proven healthy'
      : 'after the stop: the gateway may be stopped; restore with `defenseclaw-upgrade rollback` if the worker cannot come back';
  return { step: current?.summary, activity: current?.activity, hostState, hostStateText };
}

/** The latest time any worker polled the queue (workflow or activity tasks), per Temporal. */
export async function lastPoll(client: Client, namespace: string, taskQueue: string): Promise<number | undefined> {
  const pollers = await Promise.all(
    (['workflow', 'activity'] as const).map((kind) => queuePollers(client.workflowService, namespace, taskQueue, kind)),
  );
  return lastPollOf(pollers.flat());
}

/** Work a live worker picks up in milliseconds: scheduled this long ago and still not started means none is there. */
export const OVERDUE_S = 10;

/**
 * Whether the host's worker is gone, as Temporal sees it: the run has a workflow or activity task
 * scheduled OVERDUE_S ago that nobody started, or no worker polled the host's queue within freshS
 * seconds. undefined: cannot tell (the server did not answer).
 */
export async function workerGone(
  client: Client,
  namespace: string,
  taskQueue: string,
  run?: WorkflowHandle,
  freshS = pollerFreshSeconds(),
): Promise<{ gone: boolean; since?: number; why?: string } | undefined> {
  try {
    const now = Date.now();
    if (run) {
      const d = await run.describe();
      if (d.status.name !== 'RUNNING') return { gone: false };
      const { PendingActivityState, PendingWorkflowTaskState } = proto.temporal.api.enums.v1;
      const waiting: number[] = [];
      for (const a of d.raw.pendingActivities ?? []) {
        const t = timestampMs(a.scheduledTime);
        if (a.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED && t !== undefined) waiting.push(t);
      }
      const wt = d.raw.pendingWorkflowTask;
      const t = timestampMs(wt?.originalScheduledTime ?? wt?.scheduledTime);
      if (wt?.state === PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED && t !== undefined)
        waiting.push(t);
      const oldest = waiting.length ? Math.min(...waiting) : undefined;
      if (oldest !== undefined && now - oldest > OVERDUE_S * 1000) {
        return {
          gone: true,
          since: oldest,
          why: `work scheduled ${Math.round((now - oldest) / 1000)} s ago was not picked up`,
        };
      }
    }
    const at = await lastPoll(client, namespace, taskQueue);
    if (at === undefined || now - at > freshS * 1000) {
      return {
        gone: true,
        since: at,
        why: at ? `no poll since ${new Date(at).toISOString()}` : 'no worker ever polled',
      };
    }
    return { gone: false };
  } catch {
    return undefined;
  }
}

export function pollerFreshSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DEFENSECLAW_POLLER_FRESH_S);
  return Number.isInteger(n) && n >= 1 ? n : DEFAULT_POLLER_FRESH_S;
}

export interface SupervisorOptions {
  stuckAfterS: number;
  /** One line per event (stderr). */
  log: (line: string) => void;
}

/** Called about every second by watchRun with the time the run last answered its query. */
export function superviseRun(
  target: Target,
  handle: WorkflowHandle,
  opts: SupervisorOptions,
): (answeredAt: number, final?: boolean) => Promise<void> {
  let goneSince: number | undefined;
  let restartedAt: number | undefined;
  let nextCheck = 0;

  const stuck = async (now: number) => {
    const pos = await runPosition(handle).catch(() => undefined);
    const goneFor = Math.round((now - goneSince!) / 1000);
    const report: StuckReport = {
      stuck: true,
      host: target.host,
      workflowId: handle.workflowId,
      step: pos?.step,
      activity: pos?.activity,
      hostState: pos?.hostState ?? 'before-stop',
      hostStateText: pos?.hostStateText ?? 'unknown: the run history could not be read',
      workerGoneForS: goneFor,
      stuckAfterS: opts.stuckAfterS,
      message: `the run on ${target.host} is stuck: its worker has been gone for ${goneFor} s (bound ${opts.stuckAfterS} s) at step "${pos?.step ?? '?'}"; host ${pos?.hostStateText ?? 'state unknown'}`,
    };
    throw new StuckRunError(report);
  };

  const resumed = (at: number) => {
    opts.log(`the run resumed ${((at - goneSince!) / 1000).toFixed(1)} s after the worker was found gone`);
    goneSince = restartedAt = undefined;
  };

  return async (answeredAt: number, final?: boolean) => {
    const now = Date.now();
    if (final) {
      // The run ended (so it ran again) before the check that would have said it resumed.
      if (goneSince !== undefined && restartedAt !== undefined) resumed(answeredAt);
      return;
    }
    if (now < nextCheck) return;
    if (target.agent) {
      nextCheck = now + 1000;
      const info = await readAgentInfo(target.agent.dataDir);
      const alive = !!info && isAlive(info.pid) && (info.state === 'ready' || info.state === 'starting');
      if (alive) {
        if (goneSince !== undefined && restartedAt !== undefined && answeredAt > restartedAt) {
          opts.log(`the run resumed ${((answeredAt - goneSince) / 1000).toFixed(1)} s after the worker was found gone`);
          goneSince = restartedAt = undefined;
        }
        return;
      }
      if (goneSince === undefined) {
        goneSince = now;
        restartedAt = undefined;
        opts.log(
          `the local agent's worker (pid ${info?.pid ?? '?'}) is gone${info?.state === 'failed' && info.error ? ` (${info.error})` : ''}; restarting it`,
        );
      }
      if (now - goneSince > opts.stuckAfterS * 1000) await stuck(now);
      try {
        // Bounded, so that a restart that cannot succeed still ends at the stuck bound.
        const left = goneSince + opts.stuckAfterS * 1000 - now;
        const next = await target.agent.restart(Math.max(10_000, left));
        restartedAt = Date.now();
        opts.log(`restarted the local agent (pid ${next.pid}) in ${((restartedAt - now) / 1000).toFixed(1)} s`);
      } catch (err) {
        opts.log(`could not restart the local agent: ${oneLine(err)}; trying again`);
        nextCheck = Date.now() + 5000;
      }
      return;
    }
    // A cluster: the host's worker as its task queue's pollers show it.
    nextCheck = now + 5000;
    const w = await workerGone(target.client, target.namespace, target.taskQueue, handle);
    if (!w) return;
    if (!w.gone) {
      if (goneSince !== undefined) opts.log(`the worker of ${target.host} is back; the run resumes`);
      goneSince = undefined;
      return;
    }
    if (goneSince === undefined) {
      goneSince = now;
      opts.log(
        `the worker of ${target.host} (queue ${target.taskQueue}) is gone: ${w.why}; the run waits for it (on the host: systemctl restart defenseclaw-upgrade-worker)`,
      );
    }
    if (now - goneSince > opts.stuckAfterS * 1000) await stuck(now);
  };
}
