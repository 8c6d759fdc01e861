/**
 * Replay: histories recorded from real runs (scripts/record-histories.ts → test/histories/) are
 * replayed against the current workflow code, exactly as a worker would replay a run that was in
 * flight when new code was deployed. A change that such a run could not continue (a step added,
 * removed or reordered without patched()) fails here.
 *
 * A negative control proves the check can fail: the same history against a bundle whose
 * upgradeHost runs one extra activity first must be refused as non-deterministic.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { DEFAULT_WORKFLOWS_PATH, resolveWorkflowCode } from '../worker/worker.js';
import { installRuntime } from '../worker/runtime.js';

installRuntime({ level: 'WARN' });

/** dist/test/replay.test.js → <repo>/test/histories */
const HISTORIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'histories');

/** Every recorded history, with how its run ended (a run that did not succeed fails its workflow). */
const EXPECTED = [
  { file: 'upgrade-upgraded.json', workflowType: 'upgradeHost', closed: 'WorkflowExecutionCompleted' },
  { file: 'upgrade-confirmed.json', workflowType: 'upgradeHost', closed: 'WorkflowExecutionCompleted' },
  { file: 'upgrade-rolled-back.json', workflowType: 'upgradeHost', closed: 'WorkflowExecutionFailed' },
  { file: 'upgrade-chain-upgraded.json', workflowType: 'upgradeHost', closed: 'WorkflowExecutionCompleted' },
  { file: 'upgrade-records-rolled-back.json', workflowType: 'upgradeHost', closed: 'WorkflowExecutionFailed' },
  { file: 'rollback-restored.json', workflowType: 'rollbackHost', closed: 'WorkflowExecutionCompleted' },
  // The fleet's: a fleet rollout's first run (canary, bake, one more host, then continue-as-new),
  // a ring rollout (probe, fleet and soak children, events), a channel check that starts a rollout.
  { file: 'fleet-rollout-continued.json', workflowType: 'fleetRollout', closed: 'WorkflowExecutionContinuedAsNew' },
  { file: 'ring-rollout-succeeded.json', workflowType: 'ringRollout', closed: 'WorkflowExecutionCompleted' },
  { file: 'channel-check-started.json', workflowType: 'checkChannel', closed: 'WorkflowExecutionCompleted' },
];

const EVENT_TYPES: Record<number, string> = {
  1: 'WorkflowExecutionStarted',
  2: 'WorkflowExecutionCompleted',
  3: 'WorkflowExecutionFailed',
  28: 'WorkflowExecutionContinuedAsNew',
};

/**
 * historyFromJSON of @temporalio/common, with protobufjs taken from @temporalio/proto: in this
 * install the two packages load separate copies of protobufjs, and the SDK's own historyFromJSON
 * (also what runReplayHistory does with a JSON history) throws "type must be a Type".
 */
const require = createRequire(import.meta.url);
const { fromJson } = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
  fromJson: (type: unknown, json: unknown, opts: { ignoreUnknownFields: boolean }) => History | null;
};
const { patchProtobufRoot } = require('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot: (root: unknown) => { lookupType: (name: string) => unknown };
};
const historyType = patchProtobufRoot(require('@temporalio/proto')).lookupType('temporal.api.history.v1.History');

type JsonObject = Record<string, unknown>;

/** Older exports name enum values in PascalCase (`WorkflowExecutionStarted`): the proto names, as the SDK does. */
function fixEnum(obj: JsonObject | undefined, attr: string, prefix: string): JsonObject {
  const v = obj?.[attr];
  if (typeof v !== 'string' || v.startsWith(prefix)) return {};
  return { [attr]: `${prefix}_${v.replace(/[^\b][A-Z]/g, (m) => `${m[0]}_${m[1]}`).toUpperCase()}` };
}

function historyFromJSON(json: { events: JsonObject[] }): History {
  const events = json.events.map((e) => {
    const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes'));
    if (!kind) throw new TypeError(`a history event without attributes: ${JSON.stringify(e).slice(0, 200)}`);
    const attrs = e[kind] as JsonObject;
    const taskQueue = attrs.taskQueue as JsonObject | undefined;
    return {
      ...e,
      ...fixEnum(e, 'eventType', 'EVENT_TYPE'),
      [kind]: {
        ...attrs,
        ...(taskQueue && { taskQueue: { ...taskQueue, ...fixEnum(taskQueue, 'kind', 'TASK_QUEUE_KIND') } }),
        ...fixEnum(attrs, 'workflowIdReusePolicy', 'WORKFLOW_ID_REUSE_POLICY'),
        ...fixEnum(attrs, 'retryState', 'RETRY_STATE'),
      },
    };
  });
  const history = fromJson(historyType, { events }, { ignoreUnknownFields: true });
  if (!history) throw new TypeError('not a history');
  return history;
}

async function loadHistory(file: string): Promise<History> {
  return historyFromJSON(JSON.parse(await fs.readFile(path.join(HISTORIES_DIR, file), 'utf8')));
}

describe('replay of recorded histories against the current workflow code', () => {
  it('test/histories holds exactly the recorded runs', async () => {
    const files = (await fs.readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, EXPECTED.map((e) => e.file).sort());
  });

  for (const e of EXPECTED) {
    it(`${e.file} (${e.workflowType}) replays without a nondeterminism error`, async () => {
      const history = await loadHistory(e.file);
      const events = history.events ?? [];
      assert.ok(events.length > 20, 'a real run');
      const first = events[0]!;
      const last = events[events.length - 1]!;
      assert.equal(EVENT_TYPES[Number(first.eventType)], 'WorkflowExecutionStarted');
      assert.equal(first.workflowExecutionStartedEventAttributes?.workflowType?.name, e.workflowType);
      assert.equal(EVENT_TYPES[Number(last.eventType)], e.closed, 'the run is complete');
      // The current code: the prebuilt bundle when it is fresh, else the compiled sources.
      await Worker.runReplayHistory({ ...resolveWorkflowCode(), replayName: e.file }, history);
    });
  }
});

describe('negative control: an incompatible change is caught', () => {
  let mutantDir: string;
  let mutantBundle: string;

  before(async () => {
    // Inside dist/ so that the bundler resolves @temporalio/workflow from the project's node_modules.
    mutantDir = await fs.mkdtemp(path.join(path.dirname(fileURLToPath(import.meta.url)), '.replay-mutant-'));
    const real = JSON.stringify(DEFAULT_WORKFLOWS_PATH);
    await fs.writeFile(
      path.join(mutantDir, 'index.js'),
      [
        "import { proxyActivities } from '@temporalio/workflow';",
        `import * as real from ${real};`,
        `export * from ${real};`,
        "const { detectPlatform } = proxyActivities({ startToCloseTimeout: '1 minute' });",
        '// A new first step, without patched(): runs already in flight cannot continue with this code.',
        'export async function upgradeHost(input) {',
        '  await detectPlatform();',
        '  return real.upgradeHost(input);',
        '}',
        '',
      ].join('\n'),
    );
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(mutantDir, 'index.js'),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    mutantBundle = path.join(mutantDir, 'bundle.cjs');
    await fs.writeFile(mutantBundle, code);
  });
  after(async () => {
    if (mutantDir) await fs.rm(mutantDir, { recursive: true, force: true });
  });

  it('upgrade-upgraded.json against upgradeHost with one extra first step: DeterminismViolationError', async () => {
    const history = await loadHistory('upgrade-upgraded.json');
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: { codePath: mutantBundle }, replayName: 'mutant' }, history),
      (err: unknown) => {
        assert.ok(err instanceof DeterminismViolationError, `expected a DeterminismViolationError, got ${String(err)}`);
        return true;
      },
    );
  });
});
