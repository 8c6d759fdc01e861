/**
 * The audit trail: `history` and `show` (the real CLI, as a separate process) against real runs on
 * a real dev server (upgraded, rolled back, failed before any change), their text fitting 80
 * columns without colour codes off a terminal or under NO_COLOR, and the worker's JSON log file
 * (the Runtime logger of this process) carrying workflow and activity metadata and no secret.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { installRuntime, runtimeLogger } from '../worker/runtime.js';
import { REDACTED, Scrubber, createWorkerLogger } from '../worker/logging.js';
import { collectSecrets, gatewayTokensFrom } from '../worker/host-secrets.js';
import { hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import { hostPlatform, tarballName } from './fixtures/host/build.js';
import { DEFAULT_VERSIONS } from './fixtures/releases/server.js';
import type { HistoryRow } from '../client/commands/history.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');
const GITHUB_TOKEN = 'ghp_auditTokenThatMustNeverLeak0123456789';
const UI_BASE = 'http://127.0.0.1:8233';
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/;
// eslint-disable-next-line no-control-regex
const ANSI_ALL = /\x1b\[[0-9;?]*[A-Za-z]/g;

// The Runtime (and so every worker of this file) logs JSON lines into logDir; the terminal lines
// are kept in memory so that the test output stays readable.
const logDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-audit-logs-'));
const terminal: string[] = [];
installRuntime({ level: 'WARN', logDir, write: (line) => terminal.push(line) });
/** Outputs kept for a human to look at (gitignored). */
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');

after(async () => {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await fs
    .copyFile(path.join(logDir, 'worker.jsonl'), path.join(ARTIFACTS, 'audit-worker.jsonl'))
    .catch(() => undefined);
  await fs.rm(logDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
// The logger on its own

describe('worker logging', () => {
  it('scrubs known secrets, bearer headers, GitHub tokens and secret-named keys', () => {
    const s = new Scrubber(['gateway-token-0123456789abcdef']);
    assert.equal(s.text('token gateway-token-0123456789abcdef sent'), `token ${REDACTED} sent`);
    assert.equal(s.text('Authorization: Bearer abc.def-ghi'), `Authorization: Bearer ${REDACTED}`);
    assert.equal(s.text('authorization=token123456'), `authorization=${REDACTED}`);
    assert.equal(s.text('{"authorization":"token abcdef123"}'), `{"authorization":"token ${REDACTED}"}`);
    assert.equal(s.text('curl -H "Authorization: Bearer sk-12345678"'), `curl -H "Authorization: Bearer ${REDACTED}"`);
    assert.equal(s.text('sends the bearer token on API calls'), 'sends the bearer token on API calls');
    assert.equal(s.text(`using ${GITHUB_TOKEN}!`), `using ${REDACTED}!`);
    const err = new Error('GET failed with Bearer gateway-token-0123456789abcdef', {
      cause: new Error('inner gateway-token-0123456789abcdef'),
    });
    const v = s.value({ token: 'abcdefgh12345', githubToken: 'set', nested: { apiKey: 'k-1234567890' }, err }) as {
      token: string;
      githubToken: string;
      nested: { apiKey: string };
      err: { message: string; cause: { message: string } };
    };
    assert.equal(v.token, REDACTED);
    assert.equal(v.githubToken, 'set', 'whether a token is set is not a secret');
    assert.equal(v.nested.apiKey, REDACTED);
    assert.equal(v.err.message, `GET failed with Bearer ${REDACTED}`);
    assert.equal(v.err.cause.message, `inner ${REDACTED}`);
    assert.ok(!JSON.stringify(v).includes('gateway-token-0123456789abcdef'));
  });

  it('reads the gateway token and device.key of a data dir once, and the credentials of the env', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-secrets-'));
    try {
      await fs.writeFile(
        path.join(dir, 'config.yaml'),
        'gateway:\n  api_port: 18970\n  token: "tok-0123456789abcdef"\n',
      );
      const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
      await fs.writeFile(path.join(dir, 'device.key'), key, { mode: 0o600 });
      assert.deepEqual(gatewayTokensFrom(dir, {}), ['tok-0123456789abcdef']);
      const secrets = collectSecrets({ env: { GITHUB_TOKEN }, dataDir: dir });
      assert.ok(secrets.includes(GITHUB_TOKEN));
      assert.ok(secrets.includes('tok-0123456789abcdef'));
      assert.ok(secrets.includes(key.toString('hex')) && secrets.includes(key.toString('base64')));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('writes JSON lines 0600 in a 0700 folder, rotates at the cap and keeps a bounded number', async () => {
    const dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-rotate-')), 'logs');
    try {
      const lines: string[] = [];
      const logger = createWorkerLogger({
        level: 'INFO',
        write: (l) => lines.push(l),
        file: { dir, maxBytes: 2048, keep: 2 },
        scrubber: new Scrubber(['secret-value-123456']),
        fields: { host: 'h1' },
      });
      for (let i = 0; i < 60; i++) logger.info(`entry ${i} with secret-value-123456`, { workflowId: 'wf', i });
      logger.debug('file only', { activityId: '7' });
      logger.close();
      assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
      const names = (await fs.readdir(dir)).sort();
      assert.deepEqual(names, ['worker.jsonl', 'worker.jsonl.1', 'worker.jsonl.2']);
      for (const n of names) {
        const st = await fs.stat(path.join(dir, n));
        assert.equal(st.mode & 0o777, 0o600, n);
        assert.ok(st.size <= 2048, `${n} is ${st.size} bytes`);
      }
      const last = (await fs.readFile(path.join(dir, 'worker.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(last.at(-1), {
        ...last.at(-1),
        level: 'DEBUG',
        msg: 'file only',
        component: 'app',
        host: 'h1',
        activityId: '7',
      });
      assert.equal(last.at(-2).msg, `entry 59 with ${REDACTED}`);
      assert.equal(last.at(-2).i, 59);
      assert.match(last.at(-2).ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(lines.length, 60, 'DEBUG stays off the terminal at INFO');
      assert.match(lines[0]!, /^\S+Z INFO {2}entry 0 with \[redacted\] \{"workflowId":"wf","i":0\}$/);
    } finally {
      await fs.rm(path.dirname(dir), { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------------------------------------
// The CLI on real runs

interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

let h: Harness;
let cliHome: string;
let happy: HostUnderTest;
let rolled: HostUnderTest;
let unchanged: HostUnderTest;
const results: Record<string, UpgradeResult & { ui?: string }> = {};

function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cliHome,
    TEMPORAL_ADDRESS: h.env.address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_UI_URL: UI_BASE,
    ...extra,
  };
}

async function cli(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  const r = await execa(process.execPath, [CLI, ...args], {
    env: cliEnv(extra),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 180_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The CLI with a real terminal as stdout (python's pty), so that colour depends on NO_COLOR only. */
async function cliOnTty(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  const r = await execa(
    'python3',
    ['-c', 'import pty,sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)', process.execPath, CLI, ...args],
    {
      env: cliEnv({ TERM: 'xterm-256color', ...extra }),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 60_000,
    },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout).replace(/\r/g, ''), stderr: String(r.stderr) };
}

function json<T>(r: CliRun, what: string): T {
  assert.equal(r.exitCode, 0, `${what}: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Every line of a table (everything but the UI-link lines) fits 80 columns. */
function assertFits80(text: string, what: string): void {
  const plain = text.replace(ANSI_ALL, '');
  for (const line of plain.split('\n')) {
    if (/https?:\/\//.test(line)) continue;
    assert.ok([...line].length <= 80, `${what}: a line of ${[...line].length} columns:\n${line}`);
  }
}

interface ShowStep {
  activity: string;
  summary: string;
  attempts: number;
  status: string;
  error?: string;
}

interface ShowJson {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  steps: ShowStep[];
  result?: UpgradeResult;
  ui?: string;
}

describe('audit trail: history and show on real runs', { timeout: 600_000 }, () => {
  const platform = hostPlatform();
  const tarball040 = tarballName('0.4.0', platform);

  before(async () => {
    cliHome = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-audit-home-'));
    // 0.3.2's wheel is served corrupt: an upgrade to it stops at its download, nothing changed.
    h = await Harness.start({
      versions: [...DEFAULT_VERSIONS, '0.3.2'],
      corrupt: ['defenseclaw-0.3.2-py3-none-any.whl'],
      requireToken: GITHUB_TOKEN,
      // The happy run's gateway download is cut once: a second attempt resumes it.
      cutShort: { name: tarball040, afterBytes: 1000, times: 1 },
    });
    const extraEnv = { GITHUB_TOKEN };
    [happy, rolled, unchanged] = await Promise.all([
      h.host({ extraEnv }),
      h.host({ extraEnv, faults: { gateway: { '0.3.1': { health: 'starting' } } } }),
      h.host({ extraEnv }),
    ]);
    const runs = await Promise.all([
      cli(['upgrade', '--yes', '--json', '--host', happy.name]),
      cli(['upgrade', '--yes', '--json', '--host', rolled.name, '--version', '0.3.1', '--health-timeout', '3']),
      cli(['upgrade', '--yes', '--json', '--host', unchanged.name, '--version', '0.3.2']),
    ]);
    const expect = [0, 1, 1];
    runs.forEach((r, i) => {
      assert.equal(r.exitCode, expect[i], `upgrade ${i}: ${r.stderr}\n${r.stdout}`);
      const res = JSON.parse(r.stdout) as UpgradeResult;
      results[res.host] = res;
    });
    assert.equal(results[happy.name]?.outcome, 'upgraded', results[happy.name]?.message);
    assert.equal(results[rolled.name]?.outcome, 'rolled-back', results[rolled.name]?.message);
    assert.equal(results[unchanged.name]?.outcome, 'failed-unchanged', results[unchanged.name]?.message);
    // Visibility is eventually consistent: wait (bounded) until the three outcomes are indexed.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const rows = json<HistoryRow[]>(await cli(['history', '--json']), 'history');
      if (rows.length === 3 && rows.every((r) => r.status !== 'RUNNING' && r.to)) break;
      if (Date.now() > deadline) assert.fail(`history did not settle: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(async () => {
    await h?.close();
    if (cliHome) await fs.rm(cliHome, { recursive: true, force: true });
  });

  it('history --json: one row per run with host, from, to, outcome, IDs and UI link', async () => {
    const rows = json<HistoryRow[]>(await cli(['history', '--json']), 'history');
    const byHost = new Map(rows.map((r) => [r.host, r]));
    const want: Array<[HostUnderTest, string, string, string, string]> = [
      [happy, '0.3.0', '0.4.0', 'upgraded', 'COMPLETED'],
      [rolled, '0.3.0', '0.3.1', 'rolled-back', 'FAILED'],
      [unchanged, '0.3.0', '0.3.2', 'failed-unchanged', 'FAILED'],
    ];
    for (const [host, from, to, outcome, status] of want) {
      const row = byHost.get(host.name);
      assert.ok(row, `a row for ${host.name}: ${JSON.stringify(rows)}`);
      assert.deepEqual(
        {
          workflowId: row.workflowId,
          type: row.type,
          from: row.from,
          to: row.to,
          outcome: row.outcome,
          status: row.status,
        },
        { workflowId: hostWorkflowId(host.name), type: 'upgrade', from, to, outcome, status },
      );
      assert.match(row.runId, /^[0-9a-f-]{36}$/);
      assert.equal(
        row.ui,
        `${UI_BASE}/namespaces/default/workflows/${encodeURIComponent(row.workflowId)}/${row.runId}/history`,
      );
    }
  });

  it('history filters: --failed, --host, --version', async () => {
    const [failed, byHost, byTo, byFrom, bad] = await Promise.all([
      cli(['history', '--json', '--failed']),
      cli(['history', '--json', '--host', rolled.name]),
      cli(['history', '--json', '--version', '0.3.2']),
      cli(['history', '--json', '--version', '0.3.0']),
      cli(['history', '--json', '--host', "x' OR '1'='1"]),
    ]);
    const hosts = (r: CliRun, what: string) =>
      json<HistoryRow[]>(r, what)
        .map((x) => x.host)
        .sort();
    assert.deepEqual(hosts(failed, '--failed'), [rolled.name, unchanged.name].sort());
    assert.deepEqual(hosts(byHost, '--host'), [rolled.name]);
    assert.deepEqual(hosts(byTo, '--version 0.3.2'), [unchanged.name]);
    assert.deepEqual(hosts(byFrom, '--version 0.3.0'), [happy.name, rolled.name, unchanged.name].sort());
    assert.equal(bad.exitCode, 2, 'a host name that is not one is a usage error');
    assert.equal(bad.stdout, '');
  });

  it('show --json: the steps are the activity summaries, with attempts and the failed step’s error', async () => {
    const shows = await Promise.all(
      [happy, rolled, unchanged].map(async (host) =>
        json<ShowJson>(await cli(['show', hostWorkflowId(host.name), '--json']), `show ${host.name}`),
      ),
    );
    const [a, b, c] = shows as [ShowJson, ShowJson, ShowJson];
    // Upgraded: every step completed; the cut-short download took a second attempt.
    assert.equal(a.status, 'COMPLETED');
    assert.equal(a.type, 'upgradeHost');
    assert.equal(a.result?.outcome, 'upgraded');
    const summaries = a.steps.map((s) => s.summary);
    for (const want of [
      `check the run is for host ${happy.name}`,
      'resolve release latest',
      `download ${tarball040}`,
      'download defenseclaw-0.4.0-py3-none-any.whl',
      'stop gateway (proven stopped)',
      'install defenseclaw-gateway 0.4.0',
      'run migrations 0.3.0 → 0.4.0',
      'start gateway',
    ]) {
      assert.ok(summaries.includes(want), `step "${want}" in ${JSON.stringify(summaries)}`);
    }
    assert.ok(
      a.steps.every((s) => s.status === 'completed' && !s.error),
      JSON.stringify(a.steps),
    );
    const dl = a.steps.find((s) => s.summary === `download ${tarball040}`)!;
    assert.equal(dl.activity, 'downloadArtifact');
    assert.equal(dl.attempts, 2, 'the cut-short download was retried once');
    assert.ok(a.steps.filter((s) => s !== dl).every((s) => s.attempts === 1));
    assert.equal(a.ui, `${UI_BASE}/namespaces/default/workflows/${hostWorkflowId(happy.name)}/${a.runId}/history`);

    // Rolled back: the health step failed with its reason; the compensation steps ran after it.
    assert.equal(b.status, 'FAILED');
    assert.equal(b.result?.outcome, 'rolled-back');
    const failedB = b.steps.filter((s) => s.status === 'failed');
    assert.equal(failedB.length, 1, JSON.stringify(b.steps));
    assert.match(failedB[0]!.error!, /did not become healthy within 3 s \(last state: starting\)/);
    const afterFail = b.steps.slice(b.steps.indexOf(failedB[0]!) + 1).map((s) => s.summary);
    assert.ok(afterFail.includes('rollback: restore defenseclaw-gateway'), JSON.stringify(afterFail));
    assert.ok(
      b.steps.filter((s) => s.summary.startsWith('rollback:')).every((s) => s.status === 'completed'),
      JSON.stringify(b.steps),
    );
    assert.equal(b.result?.failure?.step, 'health');

    // Failed unchanged: the download refused the corrupt wheel; nothing after it ran.
    assert.equal(c.status, 'FAILED');
    assert.equal(c.result?.outcome, 'failed-unchanged');
    const failedC = c.steps.filter((s) => s.status === 'failed');
    assert.equal(failedC.length, 1, JSON.stringify(c.steps));
    assert.match(failedC[0]!.error!, /checksum mismatch for defenseclaw-0\.3\.2-py3-none-any\.whl/);
    assert.equal(failedC[0]!.attempts, 1, 'a refusal is not retried');
    assert.ok(!c.steps.some((s) => /^(back up|stop gateway)/.test(s.summary)), JSON.stringify(c.steps));
  });

  it('text output fits 80 columns and has no colour codes off a terminal or under NO_COLOR', async () => {
    const id = hostWorkflowId(rolled.name);
    const [hist, show, showOk, histTty, histTtyNoColor, showTtyNoColor] = await Promise.all([
      cli(['history']),
      cli(['show', id]),
      cli(['show', hostWorkflowId(happy.name)]),
      cliOnTty(['history']),
      cliOnTty(['history'], { NO_COLOR: '1' }),
      cliOnTty(['show', id], { NO_COLOR: '1' }),
    ]);
    for (const [r, what] of [
      [hist, 'history'],
      [show, 'show'],
      [showOk, 'show (upgraded)'],
      [histTty, 'history on a terminal'],
      [histTtyNoColor, 'history on a terminal with NO_COLOR'],
      [showTtyNoColor, 'show on a terminal with NO_COLOR'],
    ] as const) {
      assert.equal(r.exitCode, 0, `${what}: ${r.stderr}`);
      assertFits80(r.stdout, what);
    }
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await fs.writeFile(
      path.join(ARTIFACTS, 'audit-cli.txt'),
      [hist, show, showOk].map((r) => r.stdout).join(`\n${'='.repeat(80)}\n`),
    );
    // Not a terminal, or NO_COLOR: plain text.
    for (const r of [hist, show, showOk, histTtyNoColor, showTtyNoColor]) assert.doesNotMatch(r.stdout, ANSI);
    // The same command on a terminal without NO_COLOR does paint (so the checks above can fail).
    assert.match(histTty.stdout, ANSI);
    // The table names each run; the UI link follows on its own line.
    for (const host of [happy, rolled, unchanged]) assert.ok(hist.stdout.includes(host.name.slice(0, 12)));
    for (const o of ['upgraded', 'rolled-back', 'failed-unchanged']) assert.ok(hist.stdout.includes(o), o);
    assert.ok(hist.stdout.includes(`${UI_BASE}/namespaces/default/workflows/`));
    assert.match(show.stdout, /did not become healthy within 3 s/);
    assert.match(show.stdout, /rollback: restore defenseclaw-gateway/);
    assert.match(show.stdout, /ROLLED-BACK/);
    assert.match(showOk.stdout, /stop gateway \(proven stopped\)/);
  });

  it('the JSON log has workflow and activity entries and no secret', async () => {
    const file = path.join(logDir, 'worker.jsonl');
    // The process's own lines are written at once (a line logged just before an exit is not lost).
    runtimeLogger().info('audit marker', { token: 'not-a-real-token-123' });
    const marker = (await fs.readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => r.msg === 'audit marker');
    assert.equal(marker?.token, REDACTED, 'written synchronously, and a secret-named key is scrubbed');
    assert.equal((await fs.stat(logDir)).mode & 0o777, 0o700);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    const text = await fs.readFile(file, 'utf8');
    const records = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const wf = hostWorkflowId(happy.name);
    const activity = records.filter((r) => r.workflowId === wf && typeof r.activityId === 'string');
    assert.ok(activity.length >= 10, `activity entries of ${wf}: ${activity.length}`);
    assert.ok(
      activity.some(
        (r) => r.activityType === 'downloadArtifact' && /^resuming /.test(String(r.msg)) && r.attempt === 2,
      ),
      'the resumed download logged from inside the activity, with its attempt',
    );
    const finished = records.find((r) => r.component === 'workflow' && r.workflowId === wf && r.outcome === 'upgraded');
    assert.ok(finished, 'the workflow logged its outcome');
    assert.equal(finished.runId, (await h.client.workflow.getHandle(wf).describe()).runId);
    assert.deepEqual([finished.from, finished.to, finished.host], ['0.3.0', '0.4.0', happy.name]);
    assert.ok(
      (finished.artifacts as string[]).some((a) => a.startsWith(`${tarball040} sha256:`)),
      JSON.stringify(finished),
    );
    const failed = records.find(
      (r) => r.component === 'workflow' && r.workflowId === hostWorkflowId(rolled.name) && r.outcome === 'rolled-back',
    );
    assert.equal(failed?.failedStep, 'health');
    for (const r of records) {
      assert.equal(typeof r.ts, 'string');
      assert.equal(typeof r.level, 'string');
      assert.ok(!('taskToken' in r), 'no task tokens in the log');
    }
    // No secret: the GitHub token, any host's gateway token, device.key in any form.
    const raw = await fs.readFile(file);
    assert.ok(!text.includes(GITHUB_TOKEN), 'GitHub token in the log');
    for (const host of [happy, rolled, unchanged]) {
      assert.ok(!text.includes(host.sim.token), `gateway token of ${host.name} in the log`);
      assert.ok(!text.includes(host.sim.deviceKey.toString('hex')), 'device.key (hex) in the log');
      assert.ok(!text.includes(host.sim.deviceKey.toString('base64')), 'device.key (base64) in the log');
      assert.equal(raw.indexOf(host.sim.deviceKey), -1, 'device.key bytes in the log');
    }
    assert.ok(!terminal.join('\n').includes(GITHUB_TOKEN), 'GitHub token on the terminal');
  });
});
