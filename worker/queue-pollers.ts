/**
 * Who polls a task queue, as Temporal reports it (describeTaskQueue): each poller's identity, the
 * upgrader version that identity names (worker/identity.ts), and when it last polled. One reader
 * for every caller: the controller's proof of a worker switch, the inventory's "unreachable since",
 * `fleet status`'s upgrader column, the CLI's supervision, a worker's own ready mark.
 */
import proto from '@temporalio/proto';
import { parseWorkerIdentity } from './identity.js';

type WorkflowService = proto.temporal.api.workflowservice.v1.WorkflowService;

export interface QueuePoller {
  identity: string;
  /** The upgrader version the identity names (undefined: a worker before 0.2, or another program). */
  version?: string;
  /** When it last polled (epoch ms, server time). */
  lastAccessTime?: number;
}

/** A protobuf Timestamp in epoch milliseconds. */
export function timestampMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined;
}

/** The pollers of `taskQueue`'s activity (default) or workflow tasks. */
export async function queuePollers(
  service: Pick<WorkflowService, 'describeTaskQueue'>,
  namespace: string,
  taskQueue: string,
  kind: 'activity' | 'workflow' = 'activity',
): Promise<QueuePoller[]> {
  const { TaskQueueType, TaskQueueKind } = proto.temporal.api.enums.v1;
  const r = await service.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType:
      kind === 'activity' ? TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY : TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (r.pollers ?? []).map((p) => {
    const identity = p.identity ?? '';
    return { identity, version: parseWorkerIdentity(identity).version, lastAccessTime: timestampMs(p.lastAccessTime) };
  });
}

/** The latest time any of these pollers polled, if Temporal still remembers one. */
export function lastPollOf(pollers: QueuePoller[]): number | undefined {
  let last: number | undefined;
  for (const p of pollers)
    if (p.lastAccessTime !== undefined && (last === undefined || p.lastAccessTime > last)) last = p.lastAccessTime;
  return last;
}

/**
 * Whether a workflow worker polls `queue` (before a command starts a workflow there). A server that
 * does not answer counts as yes: the start then says what is wrong.
 */
export async function hasWorkflowPollers(
  service: Pick<WorkflowService, 'describeTaskQueue'>,
  namespace: string,
  queue: string,
): Promise<boolean> {
  try {
    return (await queuePollers(service, namespace, queue, 'workflow')).length > 0;
  } catch {
    return true;
  }
}
