/**
 * A release channel on a schedule (issue 14, item 4): the signed stable channel parsed and verified
 * as the real client does (against the real 0.8.10 channel files), the channel state rules (skip
 * list, last rolled out), and, on a real dev server with the controller's real activities and the
 * GitHub-like release server publishing the channel, the `fleet schedule` commands' code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { resolveChannel, verifyChannelSignature } from '../activities/controller/channel.js';
import { ChannelError, FIELD_ORDER, commitFromRef, parseChannel } from '../activities/controller/channel-document.js';
import { readChannelSchedule, updateChannelState } from '../activities/controller/schedule-state.js';
import { parsePlan } from '../client/rollout-plan.js';
import { parseEvery } from '../client/commands/fleet/schedule.js';
import {
  clearChannelSkip,
  controlChannelSchedule,
  createChannelSchedule,
  describeChannelSchedule,
  listChannelSchedules,
  triggerChannelSchedule,
} from '../client/commands/fleet/schedule-client.js';
import { UsageError } from '../client/errors.js';
import { loadHostConfig } from '../worker/host-config.js';
import {
  EMPTY_CHANNEL_STATE,
  clearSkip,
  decideCheck,
  recordRollout,
  rolloutIdFor,
  type ChannelState,
  type CheckChannelResult,
  type PreviousRollout,
} from '../workflows/fleet/channel-types.js';
import { RolloutPlanSchema } from '../workflows/fleet/ring-types.js';
import { runCli } from './helpers/cli.js';
import { Harness } from './helpers/harness.js';

const REAL = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test',
  'fixtures',
  'releases',
  'real-channel',
);
const real = (name: string) => fs.readFileSync(path.join(REAL, name));
const REPO = 'cisco-ai-defense/defenseclaw';
const LOCAL_OK = {
  releases: { repo: REPO },
  allowNoCosign: true,
  commandEnv: { PATH: process.env.PATH ?? '' },
} as never;

// -------------------------------------------------------------------------------------------------
// The stable channel document and its signature (pure, on the real 0.8.10 channel)

describe('the signed stable channel, as the real client reads it', () => {
  it('the real release-channel tip (stable -> 0.8.10) parses and its bundle verifies: release.yaml on main, GitHub Actions', async () => {
    const doc = parseChannel(real('stable.txt'));
    assert.equal(doc.target_version, '0.8.10');
    assert.equal(doc.repository, REPO);
    assert.equal(
      await verifyChannelSignature(LOCAL_OK, real('stable.txt'), real('stable.txt.bundle')),
      'checked-locally',
    );
  });

  it('one changed byte of stable.txt, another repository, or no cosign without the operator’s consent is refused', async () => {
    const tampered = Buffer.from(real('stable.txt').toString().replaceAll('0.8.10', '0.8.11'));
    await assert.rejects(
      verifyChannelSignature(LOCAL_OK, tampered, real('stable.txt.bundle')),
      /changed after signing/,
    );
    await assert.rejects(
      verifyChannelSignature(
        { ...(LOCAL_OK as object), releases: { repo: 'evil/defenseclaw' } } as never,
        real('stable.txt'),
        real('stable.txt.bundle'),
      ),
      /not by this repository's release workflow/,
    );
    const bundle = JSON.parse(real('stable.txt.bundle').toString()) as Record<string, unknown>;
    bundle.base64Signature = real('stable.txt.sig').toString().replace(/^MEY/, 'MEU');
    await assert.rejects(
      verifyChannelSignature(LOCAL_OK, real('stable.txt'), Buffer.from(JSON.stringify(bundle))),
      /stable channel refused/,
    );
    if (!process.env.PATH?.split(':').some((d) => fs.existsSync(path.join(d, 'cosign')))) {
      await assert.rejects(
        verifyChannelSignature(
          { ...(LOCAL_OK as object), allowNoCosign: false } as never,
          real('stable.txt'),
          real('stable.txt.bundle'),
        ),
        /needs cosign/,
      );
    }
  });

  it('only the canonical encoding is accepted: reordered, extra, CRLF, redirected or inconsistent fields fail closed', () => {
    const good = real('stable.txt').toString('ascii');
    const lines = good.slice(0, -1).split('\n');
    const bad: Array<[string, string, RegExp]> = [
      ['reordered', [lines[1], lines[0], ...lines.slice(2)].join('\n') + '\n', /order mismatch/],
      ['extra field', `${good}extra=1\n`, /exactly 16 fields/],
      ['CRLF', good.replaceAll('\n', '\r\n'), /canonical LF/],
      ['no final newline', good.slice(0, -1), /canonical LF/],
      [
        'redirected resolver',
        good.replace(
          'https://github.com/cisco-ai-defense/defenseclaw/releases/download/0.8.10/defenseclaw-upgrade.sh',
          'https://evil.example/defenseclaw-upgrade.sh',
        ),
        /resolver_url is not derived/,
      ],
      ['tag not the version', good.replace('target_tag=0.8.10', 'target_tag=0.8.9'), /target tag does not equal/],
      ['empty value', good.replace(/target_commit=[0-9a-f]+/, 'target_commit='), /is empty/],
    ];
    for (const [what, text, re] of bad) assert.throws(() => parseChannel(Buffer.from(text)), re, what);
    assert.equal(FIELD_ORDER.length, lines.length);
  });

  it('the branch ref must name exactly one commit of the exact branch', () => {
    const sha = 'a'.repeat(40);
    const ok = { ref: 'refs/heads/release-channel', object: { sha, type: 'commit' } };
    assert.equal(commitFromRef(Buffer.from(JSON.stringify(ok))), sha);
    assert.throws(() => commitFromRef(Buffer.from(JSON.stringify({ ...ok, ref: 'refs/heads/main' }))), ChannelError);
    assert.throws(
      () => commitFromRef(Buffer.from(JSON.stringify({ ...ok, object: { sha, type: 'tag' } }))),
      ChannelError,
    );
    assert.throws(
      () => commitFromRef(Buffer.from(JSON.stringify({ ...ok, other: { sha: 'b'.repeat(40) } }))),
      /exactly one/,
    );
  });
});

// -------------------------------------------------------------------------------------------------
// The channel state rules (pure)

const run = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const ended = (n: number, version: string, verdict: string, ring?: string): PreviousRollout => ({
  runId: run(n),
  status: verdict === 'succeeded' ? 'completed' : 'failed',
  version,
  verdict,
  message: `${verdict} (test)`,
  ...(ring ? { ring } : {}),
  endedAt: '2026-05-01T10:00:00.000Z',
});
const NOW = '2026-05-02T00:00:00.000Z';

describe('what a check decides', () => {
  it('a success raises lastRolledOut; a ring over budget or a failed gate skips the version; each run is recorded once', () => {
    let s: ChannelState = EMPTY_CHANNEL_STATE;
    s = recordRollout(s, ended(1, '0.8.5', 'succeeded'), NOW).state;
    assert.equal(s.lastRolledOut, '0.8.5');
    assert.deepEqual(decideCheck(s, '0.8.5'), { outcome: 'up-to-date', message: 'nothing newer than 0.8.5' });
    assert.deepEqual(decideCheck(s, '0.8.4'), { outcome: 'up-to-date', message: 'nothing newer than 0.8.5' });
    assert.deepEqual(decideCheck(s, '0.8.6'), { outcome: 'start' });

    const failed = recordRollout(s, ended(2, '0.8.6', 'ring-over-budget', 'canary'), NOW);
    s = failed.state;
    assert.match(failed.recorded!, /0\.8\.6 is now skipped: ring canary went over its failure budget on 2026-05-01/);
    assert.equal(s.lastRolledOut, '0.8.5');
    const d = decideCheck(s, '0.8.6');
    assert.equal(d.outcome, 'skipped');
    assert.match((d as { message: string }).message, /^0\.8\.6 is skipped \(ring canary went over its failure budget/);
    assert.deepEqual(recordRollout(s, ended(2, '0.8.6', 'ring-over-budget', 'canary'), NOW).state, s, 'idempotent');
    assert.deepEqual(decideCheck(s, '0.8.7'), { outcome: 'start' }, 'a newer release is not held back');

    s = recordRollout(s, ended(3, '0.8.7', 'gate-failed', 'early'), NOW).state;
    assert.match((decideCheck(s, '0.8.7') as { message: string }).message, /ring early failed the promotion gate/);
    for (const verdict of ['aborted', 'resolve-failed']) {
      const t = recordRollout(s, ended(4, '0.8.8', verdict), NOW).state;
      assert.deepEqual(decideCheck(t, '0.8.8'), { outcome: 'start' }, `${verdict} does not skip`);
    }
    assert.deepEqual(recordRollout(s, { runId: run(9), status: 'running', version: '0.8.9' }, NOW).state, s);
  });

  it('clear-skip lets the version through again and keeps the entry with who cleared it', () => {
    let s = recordRollout(EMPTY_CHANNEL_STATE, ended(1, '0.8.6', 'ring-over-budget', 'canary'), NOW).state;
    const r = clearSkip(s, '0.8.6', 'alice@ops', NOW, 'fixed the canary hosts');
    assert.equal(r.cleared, true);
    s = r.state;
    assert.deepEqual(decideCheck(s, '0.8.6'), { outcome: 'start' });
    assert.equal(s.skipped[0]!.clearedBy, 'alice@ops');
    assert.equal(clearSkip(s, '0.8.6', 'bob', NOW).cleared, false);
  });

  it('bad flags and plans are one-line usage errors', () => {
    assert.equal(parseEvery('1h'), 3600);
    assert.equal(parseEvery('15m'), 900);
    assert.throws(() => parseEvery('10s'), /from 1m to 30d/);
    assert.throws(() => parseEvery('hourly'), UsageError);
  });

  it('bad plans are one-line usage errors (the same reader as fleet rollout --plan)', async () => {
    await assert.rejects(parsePlan('rings: []\n', 'plan.yaml', '.'), UsageError);
    await assert.rejects(
      parsePlan('rings:\n  - name: a\n    hosts: [h1]\n    url: http://x\n', 'plan.yaml', '.'),
      /url/,
    );
    await assert.rejects(
      parsePlan('rings:\n  - name: a\n    hosts: [h1]\n  - name: b\n    hosts: [h1]\n', 'p', '.'),
      /h1 is in ring a and ring b/,
    );
  });
});

// -------------------------------------------------------------------------------------------------
// On a real dev server: the schedule commands' code, the controller's real activities

const PLAN = RolloutPlanSchema.parse({
  rings: [
    { name: 'canary', hosts: ['gw-canary-1'], soakSeconds: 0 },
    { name: 'rest', hosts: ['gw-2', 'gw-3'], batch: { count: 2 } },
  ],
});

describe('fleet schedule on a real Temporal dev server', () => {
  let h: Harness;
  const create = (scheduleId: string, channel: 'stable' | 'latest') =>
    createChannelSchedule(h.client, { plan: PLAN, channel, everySeconds: 3600, scheduleId, by: 'test' });
  before(async () => {
    h = await Harness.start({ versions: ['0.8.4', '0.8.8', '0.8.9'] });
    await h.ensureController({ DEFENSECLAW_ALLOW_NO_COSIGN: '1' });
  });
  after(async () => {
    await h?.close();
  });

  it('create, list, pause, unpause, trigger (nothing newer), delete: through the commands’ code and the CLI', async () => {
    const client = h.client;
    await create('life', 'stable');
    await assert.rejects(create('life', 'stable'), /already exists/);
    const info = await describeChannelSchedule(client, 'life');
    assert.equal(info.channel, 'stable');
    assert.equal(info.everySeconds, 3600);
    assert.equal(info.paused, false);
    assert.deepEqual(info.rings, ['canary', 'rest']);
    for (let i = 0; ; i++) {
      if ((await listChannelSchedules(client)).some((s) => s.scheduleId === 'life')) break;
      assert.ok(i < 50, 'the schedule never showed in the list');
      await new Promise((r) => setTimeout(r, 200));
    }

    await controlChannelSchedule(client, 'pause', 'life', 'paused by test: maintenance');
    assert.equal((await describeChannelSchedule(client, 'life')).paused, true);
    assert.match((await describeChannelSchedule(client, 'life')).note ?? '', /maintenance/);
    await controlChannelSchedule(client, 'unpause', 'life', 'unpaused by test');
    assert.equal((await describeChannelSchedule(client, 'life')).paused, false);

    // The fleet already runs the channel's version: the check says so and starts nothing.
    await updateChannelState(client, 'life', (s) => ({ ...s, lastRolledOut: '0.8.9' }));
    const t = await triggerChannelSchedule(client, 'life');
    assert.equal(t.triggered, true);
    assert.ok(t.triggered && t.result, JSON.stringify(t));
    assert.equal(t.result.outcome, 'up-to-date');
    assert.equal(t.result.version, '0.8.9');
    assert.equal(t.result.message, 'nothing newer than 0.8.9');
    await assert.rejects(client.workflow.getHandle('rollout-life').describe(), /not found/i);

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: h.env.address,
      TEMPORAL_NAMESPACE: h.env.namespace ?? 'default',
    };
    delete env.TEMPORAL_PROFILE;
    const listed = await runCli(['fleet', 'schedule', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /life: stable channel, every 1h/);
    assert.match(listed.stdout, /last rolled out: 0\.8\.9/);
    const bad = await runCli(
      ['fleet', 'schedule', 'create', '--plan', '/nonexistent.yaml', '--channel', 'beta', '--every', '1h'],
      env,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--channel must be stable or latest/);

    await controlChannelSchedule(client, 'delete', 'life', 'deleted by test');
    await assert.rejects(describeChannelSchedule(client, 'life'), /no schedule life/);
    await assert.rejects(triggerChannelSchedule(client, 'life'), /no schedule life/);
  });

  it("the README's own plan.yaml (a ring with hostsFile) is accepted by fleet schedule create, as by fleet rollout --plan", async () => {
    const readme = await fs.promises.readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /```yaml\n# plan\.yaml\n([\s\S]*?)```/.exec(readme);
    assert.ok(block, 'the README shows a plan.yaml');
    assert.match(block[1]!, /hostsFile: broad-hosts\.txt/);
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dcu-readme-plan-'));
    try {
      await fs.promises.writeFile(path.join(dir, 'plan.yaml'), block[1]!);
      await fs.promises.writeFile(path.join(dir, 'broad-hosts.txt'), '# the broad ring\ngw-eu-3\ngw-us-2\n');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TEMPORAL_ADDRESS: h.env.address,
        TEMPORAL_NAMESPACE: h.env.namespace ?? 'default',
      };
      delete env.TEMPORAL_PROFILE;
      const planFile = path.join(dir, 'plan.yaml');
      const created = await runCli(
        ['fleet', 'schedule', 'create', '--plan', planFile, '--channel', 'stable', '--every', '1h', '--id', 'readme'],
        env,
      );
      assert.equal(created.code, 0, created.stderr);
      const info = await describeChannelSchedule(h.client, 'readme');
      assert.deepEqual(info.rings, ['canary', 'early', 'broad']);
      await controlChannelSchedule(h.client, 'pause', 'readme', 'paused by test');
      await controlChannelSchedule(h.client, 'delete', 'readme', 'deleted by test');
      // A hosts file that names a bad host is still refused, in one line, before anything is created.
      await fs.promises.writeFile(path.join(dir, 'broad-hosts.txt'), 'gw-eu-3\n../etc\n');
      const bad = await runCli(
        ['fleet', 'schedule', 'create', '--plan', planFile, '--channel', 'stable', '--every', '1h', '--id', 'readme2'],
        env,
      );
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /rings\.2\.hostsFile: .*line 2: invalid host/);
      await assert.rejects(describeChannelSchedule(h.client, 'readme2'), /no schedule readme2/);
    } finally {
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  });

  it('the stable channel is read from the release-channel branch the release server publishes: its tip names 0.8.9', async () => {
    const config = loadHostConfig({
      ...h.releases.env(),
      DEFENSECLAW_HOST: 'controller',
      DEFENSECLAW_ALLOW_NO_COSIGN: '1',
    });
    const r = await resolveChannel(config, { channel: 'stable' });
    assert.equal(r.version, '0.8.9');
    assert.equal(r.signature, 'checked-locally');
    assert.match(r.source, /^release-channel@[0-9a-f]{40}$/);
    const latest = await resolveChannel(config, { channel: 'latest' });
    assert.equal(latest.version, '0.8.9');
    const noCosign = loadHostConfig({ ...h.releases.env(), DEFENSECLAW_HOST: 'controller', PATH: '/nonexistent' });
    await assert.rejects(resolveChannel(noCosign, { channel: 'stable' }), /needs cosign/);
  });

  it('a tampered, unsigned or foreign-signed stable channel is refused by the check with a clear reason', async () => {
    const client = h.client;
    await create('refuse', 'stable');
    const cases: Array<[object, RegExp]> = [
      [{ tamper: true }, /stable channel refused: stable\.txt's signature does not verify .*changed after signing/],
      [{ unsigned: true }, /stable channel refused: stable\.txt is not signed \(no stable\.txt\.bundle beside it\)/],
      [
        { identity: 'https://github.com/evil/defenseclaw/.github/workflows/release.yaml@refs/heads/main' },
        /stable channel refused: stable\.txt is signed by "https:\/\/github\.com\/evil\/.*not by this repository's release workflow/,
      ],
      [{ publish: false }, /publishes no stable channel/],
    ];
    try {
      for (const [channel, re] of cases) {
        await h.releases.setOptions({ channel });
        const t = await triggerChannelSchedule(client, 'refuse');
        assert.ok(t.triggered && t.failure, JSON.stringify(t));
        assert.match(t.failure, re);
      }
      await assert.rejects(client.workflow.getHandle('rollout-refuse').describe(), /not found/i, 'nothing started');
      assert.equal((await readChannelSchedule(client, 'refuse')).input.state.skipped.length, 0);
    } finally {
      await h.releases.setOptions({ channel: {} });
      await controlChannelSchedule(client, 'delete', 'refuse', 'test');
    }
  });

  it('clear-skip through the commands’ code: the entry stays, marked with who cleared it', async () => {
    const client = h.client;
    await create('clear', 'latest');
    await updateChannelState(
      client,
      'clear',
      (s) => recordRollout(s, ended(7, '0.8.9', 'gate-failed', 'canary'), NOW).state,
    );
    const t = await triggerChannelSchedule(client, 'clear');
    assert.ok(t.triggered && t.result, JSON.stringify(t));
    assert.equal(t.result.outcome, 'skipped');
    assert.match(t.result.message, /^0\.8\.9 is skipped \(ring canary failed the promotion gate on 2026-05-01/);
    const r = await clearChannelSkip(client, 'clear', '0.8.9', 'alice@ops', 'gate fixed');
    assert.equal(r.cleared, true);
    const state = (await readChannelSchedule(client, 'clear')).input.state;
    assert.equal(state.skipped[0]!.clearedBy, 'alice@ops');
    assert.equal((await clearChannelSkip(client, 'clear', '0.8.9', 'bob', undefined)).cleared, false);
    await controlChannelSchedule(client, 'delete', 'clear', 'test');
  });
});

// -------------------------------------------------------------------------------------------------
// End to end: the real ringRollout on simulated hosts, started by the schedule's checks

const BAD_040 = { gateway: { '0.4.0': { health: 'starting' as const } } };
const SLOW_040 = { gateway: { '0.4.0': { healthDelayMs: 8000 } } };

describe('a channel schedule rolls out through real ring rollouts', { timeout: 600_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ versions: ['0.3.0', '0.3.1'] });
    await h.ensureController();
  });
  after(async () => {
    await h?.close();
  });

  /** The schedule's rollout's end: its verdict and version (a halted rollout fails with its result). */
  async function rolloutResult(id: string): Promise<{ verdict: string; version: string; message: string }> {
    const handle = h.client.workflow.getHandle(rolloutIdFor(id));
    try {
      return (await handle.result()) as { verdict: string; version: string; message: string };
    } catch (err) {
      const cause = (err as { cause?: { details?: unknown[] } }).cause;
      if (cause?.details?.[0]) return cause.details[0] as { verdict: string; version: string; message: string };
      throw err;
    }
  }
  async function check(id: string): Promise<CheckChannelResult> {
    const t = await triggerChannelSchedule(h.client, id);
    assert.ok(t.triggered && t.result, JSON.stringify(t));
    return t.result;
  }

  it('picks up a new release, skips a version that failed its canary ring until clear-skip, and never runs two rollouts', async () => {
    const canary = await h.host({ version: '0.3.0' });
    const rest = await h.host({ version: '0.3.0' });
    const plan = RolloutPlanSchema.parse({
      rings: [
        { name: 'canary', hosts: [canary.name] },
        { name: 'rest', hosts: [rest.name] },
      ],
    });
    await createChannelSchedule(h.client, {
      plan,
      channel: 'latest',
      everySeconds: 3600,
      scheduleId: 'e2e',
      by: 'test',
    });

    // 1. The first check starts the channel's version; the next one records it and has nothing to do.
    let r = await check('e2e');
    assert.equal(r.outcome, 'started');
    assert.equal(r.message, 'started 0.3.1');
    {
      const end = await rolloutResult('e2e');
      assert.deepEqual([end.verdict, end.version], ['succeeded', '0.3.1'], end.message);
    }
    r = await check('e2e');
    assert.equal(r.recorded, '0.3.1 rolled out (succeeded)');
    assert.equal(r.message, 'nothing newer than 0.3.1');

    // 2. A new release appears on the channel between two checks; the canary ring fails it.
    await h.releases.setOptions({ versions: ['0.3.0', '0.3.1', '0.4.0'] });
    await canary.sim.setFaults(BAD_040);
    r = await check('e2e');
    assert.equal(r.message, 'started 0.4.0');
    {
      const end = await rolloutResult('e2e');
      assert.deepEqual([end.verdict, end.version], ['ring-over-budget', '0.4.0'], end.message);
      // Halted by the canary's own failure, not by a ring that could not even start.
      assert.match(end.message, /HALTED at ring canary/);
      assert.doesNotMatch(end.message, /could not start|no result|failed: /, end.message);
    }
    assert.equal(await rest.sim.gatewayVersion(), '0.3.1', 'the rest ring never started');
    assert.equal(await canary.sim.gatewayVersion(), '0.3.1', 'the canary rolled back');

    // 3. The next checks skip 0.4.0 and start nothing.
    r = await check('e2e');
    assert.equal(r.outcome, 'skipped');
    assert.match(r.recorded ?? '', /^0\.4\.0 is now skipped: ring canary went over its failure budget/);
    assert.match(r.message, /^0\.4\.0 is skipped \(ring canary went over its failure budget on \d{4}-\d{2}-\d{2}: /);
    const failedRun = (await h.client.workflow.getHandle(rolloutIdFor('e2e')).describe()).runId;
    r = await check('e2e');
    assert.equal(r.outcome, 'skipped');
    assert.equal((await h.client.workflow.getHandle(rolloutIdFor('e2e')).describe()).runId, failedRun);
    const listed = await describeChannelSchedule(h.client, 'e2e');
    assert.equal(listed.skipped[0]?.version, '0.4.0');
    assert.equal(listed.skipped[0]?.ring, 'canary');

    // 4. The operator fixes the canary and clears the skip: the next check rolls 0.4.0 out again; a
    //    check while that rollout runs starts no second one.
    await canary.sim.setFaults({});
    await rest.sim.setFaults(SLOW_040);
    assert.equal((await clearChannelSkip(h.client, 'e2e', '0.4.0', 'alice@ops', 'canary fixed')).cleared, true);
    r = await check('e2e');
    assert.equal(r.message, 'started 0.4.0');
    const running = await h.client.workflow.getHandle(rolloutIdFor('e2e')).describe();
    r = await check('e2e');
    assert.equal(r.outcome, 'already-running');
    assert.match(r.message, /^a rollout is already running \(.*rollout-e2e\)$/);
    const runs = await h.listWorkflows(`WorkflowId = '${rolloutIdFor('e2e')}' AND ExecutionStatus = 'Running'`);
    assert.equal(runs.length, 1);
    {
      const end = await rolloutResult('e2e');
      assert.deepEqual([end.verdict, end.version], ['succeeded', '0.4.0'], end.message);
    }
    assert.equal((await h.client.workflow.getHandle(rolloutIdFor('e2e')).describe()).runId, running.runId);
    r = await check('e2e');
    assert.equal(r.recorded, '0.4.0 rolled out (succeeded)');
    assert.equal(r.message, 'nothing newer than 0.4.0');
    await controlChannelSchedule(h.client, 'delete', 'e2e', 'test');
  });
});
