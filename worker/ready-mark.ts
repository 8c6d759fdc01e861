/**
 * The proof the launcher waits for after a switch: `<root>/ready/<TOOL_VERSION>`, written once
 * Temporal lists this worker (its identity) among the pollers of its task queue, which proves the
 * connection, the namespace and the poll. Only under the launcher.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { queuePollers } from './queue-pollers.js';
import type { NativeConnection } from '@temporalio/worker';
import { TOOL_VERSION } from './tool-version.js';
import { rootPaths, underLauncher, writeAtomic } from './upgrader-root.js';

export interface ReadyMarkOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  identity: string;
  kind: 'activity' | 'workflow';
  env?: NodeJS.ProcessEnv;
  /** Stops watching (the worker is shutting down). */
  signal: AbortSignal;
  intervalMs?: number;
}

/** Resolves with the ready file once written, or undefined (not under the launcher, or stopped first). */
export async function markReadyWhenPolling(opts: ReadyMarkOptions): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  if (!underLauncher(env)) return undefined;
  while (!opts.signal.aborted) {
    try {
      const pollers = await queuePollers(opts.connection.workflowService, opts.namespace, opts.taskQueue, opts.kind);
      if (pollers.some((p) => p.identity === opts.identity)) {
        const dir = rootPaths(path.resolve(env.DEFENSECLAW_UPGRADER_ROOT!)).readyDir;
        await fsp.mkdir(dir, { recursive: true });
        const file = path.join(dir, TOOL_VERSION);
        await writeAtomic(
          file,
          `${JSON.stringify({ pid: process.pid, identity: opts.identity, at: new Date().toISOString() })}\n`,
        );
        return file;
      }
    } catch {
      // the server did not answer this time: ask again
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250).unref());
  }
  return undefined;
}
