/**
 * Workflow time. Inside the workflow sandbox Temporal replaces `Date` with the deterministic
 * time of the current workflow task (the same on replay), never the host clock. This is the one
 * place workflows read it.
 */
export function workflowTime(): number {
  return new Date().getTime();
}

/** A backup folder name for a run, from workflow time: `upgrade-20261124T101500123Z`. */
export function timestampId(prefix: 'upgrade' | 'rollback'): string {
  const iso = new Date(workflowTime()).toISOString(); // 2026-11-24T10:15:00.123Z
  return `${prefix}-${iso.replace(/[-:]/g, '').replace('.', '')}`;
}
