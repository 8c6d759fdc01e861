/**
 * Test helpers: the Temporal CLI found once per process, and a TestWorkflowEnvironment on it with
 * the project's search attributes (loopback, optional SQLite file).
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../workflows/types.js';
import { findTemporalCli } from '../../worker/agent/temporal-cli.js';

let cliPath: Promise<string> | undefined;

/** findTemporalCli(), cached for the test process. */
export function temporalCliPath(): Promise<string> {
  cliPath ??= findTemporalCli({ log: (line) => process.stderr.write(`[temporal-cli] ${line}\n`) });
  return cliPath;
}

/** The five Keyword search attributes as SDK keys. */
export const SEARCH_ATTRIBUTE_KEYS = Object.values(SEARCH_ATTRIBUTES).map((name) =>
  defineSearchAttributeKey(name, 'KEYWORD'),
);

export interface TestEnvironmentOptions {
  /** Persist to this SQLite file (default: in memory). */
  dbFilename?: string;
  namespace?: string;
  /** Serve the UI (default false). */
  ui?: boolean;
  /** Server dynamic config (e.g. a low `limit.historyCount.error`, to prove a workflow's history stays bounded). */
  dynamicConfig?: Record<string, string | number>;
}

/** A local dev server (the real Temporal CLI) for integration tests; call teardown() when done. */
export async function startTestEnvironment(opts: TestEnvironmentOptions = {}): Promise<TestWorkflowEnvironment> {
  const path = await temporalCliPath();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path },
      ip: '127.0.0.1',
      searchAttributes: SEARCH_ATTRIBUTE_KEYS,
      dbFilename: opts.dbFilename,
      namespace: opts.namespace,
      ui: opts.ui ?? false,
      extraArgs: Object.entries(opts.dynamicConfig ?? {}).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${v}`]),
    },
  });
}
