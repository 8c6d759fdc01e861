/**
 * A long-running workflow's state as a command shows it: its query while it runs (bounded, with a
 * hint when no worker answers), its result once it ended. Shared by `fleet status` and
 * `fleet rollout status`.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { CliFailure, oneLine } from '../../errors.js';

/** A promise that rejects after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]);
}

export interface SnapshotOf<P> {
  /** The workflow type the ID must be. */
  type: string;
  /** `fleet rollout`, `ring rollout`: for "no … X" and "not a …". */
  what: string;
  query: QueryDefinition<P>;
  /** The error when the running workflow does not answer its query. */
  silent: (err: unknown) => string;
  /** The ended workflow's result. */
  ended: (handle: WorkflowHandle) => Promise<P>;
}

export async function workflowSnapshot<P>(
  client: Client,
  id: string,
  o: SnapshotOf<P>,
): Promise<{ progress: P; running: boolean }> {
  const handle = client.workflow.getHandle(id);
  const d = await handle.describe().catch((err: unknown) => {
    throw new CliFailure(`no ${o.what} ${id}: ${oneLine(err)}`);
  });
  if (d.type !== o.type) throw new CliFailure(`${id} is a ${d.type} run, not a ${o.what}`);
  if (d.status.name === 'RUNNING') {
    try {
      return { progress: await withTimeout(handle.query(o.query), 10_000), running: true };
    } catch (err) {
      throw new CliFailure(o.silent(err));
    }
  }
  if (d.status.name === 'CONTINUED_AS_NEW') return workflowSnapshot(client, id, o); // raced a rotation
  return { progress: await o.ended(handle), running: false };
}
