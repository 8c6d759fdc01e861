/** A run's activities as its event history records them: type, last attempt, and how they failed. */
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';

const EventType = proto.temporal.api.enums.v1.EventType;

export interface ActivityRecord {
  type: string;
  attempt?: number;
  failureType?: string;
  nonRetryable?: boolean;
  message?: string;
}

export async function activityHistory(
  handle: WorkflowHandle,
): Promise<{ activities: ActivityRecord[]; workflowTaskFailures: number }> {
  const history = await handle.fetchHistory();
  const byScheduled = new Map<string, ActivityRecord>();
  const activities: ActivityRecord[] = [];
  let workflowTaskFailures = 0;
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      const rec = { type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?' };
      byScheduled.set(String(e.eventId), rec);
      activities.push(rec);
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const a = e.activityTaskStartedEventAttributes!;
      byScheduled.get(String(a.scheduledEventId))!.attempt = a.attempt ?? undefined;
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) {
      const a = e.activityTaskFailedEventAttributes!;
      const rec = byScheduled.get(String(a.scheduledEventId))!;
      rec.failureType = a.failure?.applicationFailureInfo?.type ?? undefined;
      rec.nonRetryable = a.failure?.applicationFailureInfo?.nonRetryable ?? undefined;
      rec.message = a.failure?.message ?? undefined;
    } else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) {
      workflowTaskFailures++;
    }
  }
  return { activities, workflowTaskFailures };
}
