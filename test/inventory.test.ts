/**
 * The fleet inventory (issue 22) on a real Temporal dev server: six simulated hosts on three
 * versions (0.3.0, 0.3.1, 0.4.0; one upgraded by a fleet rollout so it has a last outcome), one
 * whose worker stopped (unreachable, since its last poll), and a real `fleet worker` process (the
 * controller). The CLI as an operator runs it: the table, --json, --behind, the standing inventory.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { heartbeat } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { TOOL_VERSION } from '../worker/tool-version.js';
import {
  STANDING_INVENTORY_ID,
  standingInventoryQuery,
  type HostInventory,
} from '../workflows/fleet/inventory-types.js';
import { mergeRefresh } from '../workflows/fleet/standing-inventory.js';
import { FleetSim } from './helpers/fleet-sim.js';
import { CLI_MAIN, runCli } from './helpers/cli.js';
import { startTestEnvironment } from './helpers/temporal.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { startFleet } from './helpers/fleet-sim.js';
import { freeLoopbackPort } from '../worker/metrics-address.js';
import { outageSeconds } from '../worker/metrics-refresh.js';

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
let sim: FleetSim;
let controller: ChildProcess | undefined;
let tmp: string;
let METRICS_PORT = 0;

const ns = () => env.namespace ?? 'default';
const cliEnv = () => ({ ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: ns(), NO_COLOR: '1' });
const cli = (args: string[]) => runCli(args, cliEnv(), 180_000);

/** `fleet worker` as its own process: the controller, with the release source and metrics address given. */
async function spawnController(extra: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI_MAIN, 'fleet', 'worker'], {
    env: { ...cliEnv(), ...releases.env(), HOME: tmp, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('fleet worker polling')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`fleet worker exited (${code}): ${out.slice(-2000)}`)));
  });
  return child;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

let letGo = false;
/** Holds while the test says so, heartbeating (the activity is alive, only slow). */
async function held(): Promise<void> {
  while (!letGo) {
    heartbeat();
    await new Promise((r) => setTimeout(r, 500));
  }
}

let names: string[];
let [h030a, h030b, h031, h040, hUpgraded, hGone] = [''] as string[];

before(async () => {
  METRICS_PORT = await freeLoopbackPort();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'inventory-test-'));
  [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer()]);
  sim = await FleetSim.create({
    connection: env.nativeConnection,
    namespace: ns(),
    releases,
    prefix: `inv${process.pid}`,
    hosts: [
      { version: '0.3.0' },
      // Its upgrade holds at createStaging until the in-flight test lets it go.
      { version: '0.3.0', wrap: (a) => ({ createStaging: async (i) => (await held(), a.createStaging(i)) }) },
      { version: '0.3.1' },
      { version: '0.4.0' },
      { version: '0.3.0' },
      { version: '0.3.1' },
    ],
    concurrency: 3,
  });
  names = sim.names;
  [h030a, h030b, h031, h040, hUpgraded, hGone] = names as [string, string, string, string, string, string];
  controller = await spawnController({
    DEFENSECLAW_METRICS_ADDRESS: `127.0.0.1:${METRICS_PORT}`,
    DEFENSECLAW_METRICS_REFRESH_SECONDS: '2',
  });
  // One host upgraded by a fleet rollout: its last outcome is in visibility.
  const handle = await startFleet(env.client, {
    fleetId: `inv-upgrade-${process.pid}`,
    hosts: [hUpgraded!],
    version: '0.4.0',
    canary: 0,
    batch: { count: 1 },
    bakeSeconds: 0,
    healthTimeoutSeconds: 30,
    requestedBy: 'test',
  });
  const r = await fleetResultOf(handle);
  assert.equal(r.verdict, 'succeeded', r.message);
  // A host whose worker polled, then stopped: unreachable since its last poll.
  await sim.host(hGone!).stopWorker();
});

after(async () => {
  if (controller && controller.exitCode === null) {
    const exited = new Promise((r) => controller!.once('exit', r));
    controller.kill('SIGTERM');
    await exited;
  }
  await sim?.close().catch(() => undefined);
  await releases?.close();
  await env?.teardown();
  await fs.rm(tmp, { recursive: true, force: true });
});

function hostsArg(): string {
  return names.join(',');
}

describe('outage per host run (pure)', () => {
  it('from each stop to the health after it; a run that never stopped the gateway has none', () => {
    const step = (name: string, startedAt: number, endedAt: number, status: 'done' | 'skipped' = 'done') => ({
      name,
      status,
      startedAt,
      endedAt,
    });
    assert.equal(
      outageSeconds({
        steps: [
          step('resolve', 0, 1),
          step('stop', 10, 11),
          step('install', 11, 12),
          step('start', 12, 13),
          step('health', 13, 15500 / 1000 + 13),
        ],
      }),
      (13 + 15.5 - 10) / 1000,
    );
    assert.equal(
      outageSeconds({
        steps: [
          step('stop', 0, 1000),
          step('health', 1000, 3000),
          step('stop', 5000, 6000),
          step('health', 6000, 7000),
        ],
      }),
      5,
    );
    assert.equal(outageSeconds({ steps: [step('resolve', 0, 1), step('stop', 1, 1, 'skipped')] }), undefined);
    assert.equal(
      outageSeconds({ steps: [step('stop', 0, 1000), step('install', 1000, 4000)] }),
      4,
      'a run that failed before health: until its last step',
    );
  });
});

describe('the standing inventory (pure)', () => {
  it('an unreachable host is unreachable since the later of its last poll and the last inventory that reached it', () => {
    const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString();
    const result = (hosts: HostInventory[]) => ({ startedAt: at(0), finishedAt: at(0), hosts });
    let state = mergeRefresh(
      { refreshes: 0, lastSeen: {} },
      result([
        { host: 'a', status: 'ok', at: at(1) },
        { host: 'b', status: 'ok', at: at(1) },
      ]),
    );
    state = mergeRefresh(
      state,
      result([
        { host: 'a', status: 'unreachable', at: at(5) },
        { host: 'b', status: 'unreachable', at: at(5), unreachableSince: at(3) },
      ]),
    );
    const by = new Map(state.latest!.hosts.map((h) => [h.host, h]));
    assert.equal(by.get('a')!.unreachableSince, at(1), 'the last inventory that reached it');
    assert.equal(by.get('b')!.unreachableSince, at(3), 'its last poll, later');
    assert.equal(state.refreshes, 2);
    assert.deepEqual(state.lastSeen, { a: at(1), b: at(1) }, 'kept while it stays unreachable');
  });
});

describe('fleet inventory', { timeout: 600_000 }, () => {
  it('a table grouped by version, counts first, every host with its health, wheel, era, upgrader and last outcome', async () => {
    const r = await cli(['fleet', 'inventory', '--hosts', hostsArg(), '--answer-timeout', '3']);
    process.stderr.write(
      `\n$ defenseclaw-upgrade fleet inventory --hosts ${hostsArg()} --answer-timeout 3\n${r.stdout}${r.stderr}\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const countLine = (v: string) =>
      lines.findIndex((l) => new RegExp(`^  ${v.replace(/\./g, '\\.')}\\s+\\d+ hosts?$`).test(l));
    const order = ['0.4.0', '0.3.1', '0.3.0', 'unreachable'].map(countLine);
    assert.ok(
      order.every((i) => i > 0),
      `a count line per version: ${order}`,
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      'newest first, unreachable last',
    );
    assert.match(lines[order[0]!]!, /2 hosts$/);
    assert.match(lines[order[1]!]!, /1 host$/);
    assert.match(lines[order[2]!]!, /2 hosts$/);
    assert.match(lines[order[3]!]!, /1 host$/);
    const tableStart = lines.findIndex((l) => l.includes('│ version'));
    assert.ok(tableStart > order[3]!, 'the counts come before the hosts');
    const row = (host: string) => lines.find((l) => l.includes(` ${host} `)) ?? '';
    assert.match(row(hUpgraded!), /0\.4\.0.*running.*0\.4\.0.*goreleaser/);
    assert.match(r.stdout, /last upgrade 0\.4\.0: upgraded/);
    assert.match(row(hGone!), /unreachable/);
    assert.match(r.stdout, /unreachable since 20\d\d-/);
  });

  it('--json: every host with its versions, health, era, upgrader; the unreachable one since its last poll', async () => {
    const r = await cli(['fleet', 'inventory', '--hosts', hostsArg(), '--answer-timeout', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { counts: Record<string, number>; total: number; hosts: HostInventory[] };
    assert.deepEqual(doc.counts, { '0.4.0': 2, '0.3.1': 1, '0.3.0': 2, unreachable: 1 });
    assert.equal(doc.total, 6);
    const by = new Map(doc.hosts.map((h) => [h.host, h]));
    const want: Record<string, string> = {
      [h030a!]: '0.3.0',
      [h030b!]: '0.3.0',
      [h031!]: '0.3.1',
      [h040!]: '0.4.0',
      [hUpgraded!]: '0.4.0',
    };
    for (const [host, v] of Object.entries(want)) {
      const h = by.get(host)!;
      assert.equal(h.status, 'ok', JSON.stringify(h));
      assert.equal(h.gatewayVersion, v);
      assert.equal(h.wheelVersion, v, `${host}'s wheel`);
      assert.equal(h.era, 'goreleaser');
      assert.equal(h.health?.state, 'running');
      assert.equal(h.health?.subsystems.gateway, 'running');
      assert.equal(h.upgraderVersion, TOOL_VERSION);
      assert.equal(h.inFlight, undefined);
    }
    assert.deepEqual(
      {
        kind: by.get(hUpgraded!)!.lastOutcome?.kind,
        outcome: by.get(hUpgraded!)!.lastOutcome?.outcome,
        to: by.get(hUpgraded!)!.lastOutcome?.toVersion,
      },
      { kind: 'upgrade', outcome: 'upgraded', to: '0.4.0' },
    );
    assert.equal(by.get(h030a!)!.lastOutcome, undefined, 'a host never upgraded has no last outcome');
    const gone = by.get(hGone!)!;
    assert.equal(gone.status, 'unreachable');
    assert.ok(gone.unreachableSince && Date.parse(gone.unreachableSince) <= Date.now(), JSON.stringify(gone));
    assert.ok(Date.now() - Date.parse(gone.unreachableSince) < 10 * 60_000, 'since its last poll, minutes ago');
  });

  it('--behind X.Y.Z and --behind latest list the hosts older than it', async () => {
    const behind = async (v: string) => {
      const r = await cli([
        'fleet',
        'inventory',
        '--hosts',
        hostsArg(),
        '--answer-timeout',
        '3',
        '--behind',
        v,
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as { latest?: string; hosts: HostInventory[] };
      return { latest: doc.latest, hosts: doc.hosts.map((h) => h.host).sort() };
    };
    assert.deepEqual((await behind('0.4.0')).hosts, [h030a, h030b, h031].sort());
    assert.deepEqual((await behind('0.3.1')).hosts, [h030a, h030b].sort());
    const latest = await behind('latest');
    assert.equal(latest.latest, '0.4.0', 'the latest release as the controller resolves it');
    assert.deepEqual(latest.hosts, [h030a, h030b, h031].sort());
    const table = await cli([
      'fleet',
      'inventory',
      '--hosts',
      hostsArg(),
      '--answer-timeout',
      '3',
      '--behind',
      'latest',
    ]);
    assert.match(table.stdout, /3 hosts behind 0\.4\.0/);
    assert.doesNotMatch(table.stdout, new RegExp(` ${h040} `));
    const bad = await cli(['fleet', 'inventory', '--hosts', hostsArg(), '--behind', 'newest']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });

  it('the schedule refreshes the standing inventory; --cached reads it by query; its history stays bounded', async () => {
    const created = await cli([
      'fleet',
      'inventory',
      'schedule',
      'create',
      '--hosts',
      hostsArg(),
      '--every',
      '10',
      '--answer-timeout',
      '3',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const cached = async () => {
      const r = await cli(['fleet', 'inventory', '--cached', '--json']);
      return r.code === 0
        ? (JSON.parse(r.stdout) as { source: string; counts: Record<string, number>; hosts: HostInventory[] })
        : undefined;
    };
    const first = await waitFor('the first refresh', cached);
    assert.deepEqual(first.counts, { '0.4.0': 2, '0.3.1': 1, '0.3.0': 2, unreachable: 1 });
    // The stopped host comes back: a later refresh shows it.
    await sim.host(hGone!).startWorker();
    const t0 = Date.now();
    const second = await waitFor('a refresh that reaches the returned host', async () => {
      const c = await cached();
      return c && c.counts.unreachable === undefined ? c : undefined;
    });
    assert.deepEqual(second.counts, { '0.4.0': 2, '0.3.1': 2, '0.3.0': 2 });
    const q = Date.now();
    const state = await env.client.workflow.getHandle(STANDING_INVENTORY_ID).query(standingInventoryQuery);
    assert.ok(Date.now() - q < 2000, 'a query, instantly');
    assert.ok(state.refreshes >= 2);
    const d = await env.client.workflow.getHandle(STANDING_INVENTORY_ID).describe();
    assert.ok(d.historyLength <= 20, `one run holds one refresh (history ${d.historyLength})`);
    assert.ok(Date.now() - t0 < 60_000);
  });

  it('a real Prometheus scrapes the controller and answers the hosts per version', async () => {
    // The host goes away again: the next refresh counts it unreachable.
    await sim.host(hGone!).stopWorker();
    await waitFor('the standing inventory to see the host gone', async () => {
      const r = await cli(['fleet', 'inventory', '--cached', '--json']);
      return r.code === 0 && (JSON.parse(r.stdout) as { counts: Record<string, number> }).counts.unreachable === 1;
    });
    const prom = await startPrometheus(tmp, `127.0.0.1:${METRICS_PORT}`);
    try {
      const perVersion = await waitFor(
        'Prometheus to answer the hosts per version',
        async () => {
          const v = await prom.query('sum by (version) (defenseclaw_hosts)');
          const got = Object.fromEntries(v.map((r) => [r.metric.version, Number(r.value[1])]));
          return got['0.3.1'] === 1 ? got : undefined;
        },
        120_000,
      );
      process.stderr.write(`\nPromQL sum by (version) (defenseclaw_hosts) → ${JSON.stringify(perVersion)}\n`);
      assert.deepEqual(perVersion, { '0.4.0': 2, '0.3.1': 1, '0.3.0': 2 });
      const one = async (q: string) => Number((await prom.query(q))[0]?.value[1]);
      assert.equal(await one('defenseclaw_hosts_unreachable'), 1);
      assert.equal(await one('sum(defenseclaw_hosts_by_health{state="running"})'), 5);
      assert.ok((await one('defenseclaw_host_runs{kind="upgrade",outcome="upgraded"}')) >= 1);
      assert.ok((await one('sum(defenseclaw_upgrade_outage_seconds_count)')) >= 1, "the fleet upgrade's outage");
      assert.ok((await one('count({__name__=~"temporal_.+"})')) > 0, "the SDK's own worker metrics, merged");
    } finally {
      await prom.stop();
    }
  });

  it("the dashboard's every PromQL expression names only metrics the controller exports", async () => {
    const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
    const exported = exportedNames(text);
    const dashboard = JSON.parse(await fs.readFile(DASHBOARD, 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const used = new Set<string>();
    for (const p of dashboard.panels) for (const t of p.targets) for (const m of metricNames(t.expr)) used.add(m);
    assert.ok(used.size >= 10, `the dashboard names metrics: ${[...used].join(', ')}`);
    const missing = [...used].filter((m) => !exported.has(m));
    assert.deepEqual(missing, [], 'every metric the dashboard names is exported');
    // The check itself can fail: a name the controller does not export is caught.
    assert.deepEqual(metricNames('sum by (version) (defenseclaw_hostz{a="b"}[5m])'), ['defenseclaw_hostz']);
  });

  it("an upgrade in flight shows on its host (visibility, from the controller) and in the controller's metrics", async () => {
    const handle = await startFleet(env.client, {
      fleetId: `inv-inflight-${process.pid}`,
      hosts: [h030b!],
      version: '0.4.0',
      canary: 0,
      batch: { count: 1 },
      bakeSeconds: 0,
      healthTimeoutSeconds: 30,
      requestedBy: 'test',
    });
    try {
      const doc = await waitFor('the inventory to show the upgrade in flight', async () => {
        const r = await cli(['fleet', 'inventory', '--hosts', hostsArg(), '--answer-timeout', '3', '--json']);
        const d = JSON.parse(r.stdout) as { hosts: HostInventory[] };
        return d.hosts.find((h) => h.host === h030b)?.inFlight ? d : undefined;
      });
      const h = doc.hosts.find((x) => x.host === h030b)!;
      assert.equal(h.inFlight!.kind, 'upgrade');
      assert.equal(h.gatewayVersion, '0.3.0', 'still on its version while the upgrade holds');
      assert.equal(doc.hosts.filter((x) => x.inFlight).length, 1, 'only that host');
      const table = await cli(['fleet', 'inventory', '--hosts', hostsArg(), '--answer-timeout', '3']);
      assert.match(table.stdout, new RegExp(`${h030b}.*upgrade in flight`));
      await waitFor('the metrics to count the upgrade and the rollout in flight', async () => {
        const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
        return (
          /^defenseclaw_host_runs_in_flight\{kind="upgrade"\} 1$/m.test(text) &&
          /^defenseclaw_rollouts_in_flight\{kind="fleet"\} 1$/m.test(text) &&
          new RegExp(
            `^defenseclaw_rollout_hosts\\{rollout="inv-inflight-${process.pid}",state="upgrading"\\} 1$`,
            'm',
          ).test(text)
        );
      });
    } finally {
      letGo = true;
    }
    const r = await fleetResultOf(handle);
    assert.equal(r.verdict, 'succeeded', r.message);
  });

  it('schedule delete ends the standing inventory', async () => {
    const del = await cli(['fleet', 'inventory', 'schedule', 'delete']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await cli(['fleet', 'inventory', '--cached'])).code, 1);
    assert.equal((await cli(['fleet', 'inventory', 'schedule', 'delete'])).code, 1);
  });
});

// -------------------------------------------------------------------------------------------------
// Prometheus and the dashboard

const DASHBOARD = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'deploy',
  'grafana',
  'defenseclaw-upgrade.json',
);

/** Metric names in /metrics output: every sample's name and every declared family (with a histogram's series). */
function exportedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
    if (t) {
      out.add(t[1]!);
      if (t[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(t[1]! + s);
      if (t[2] === 'summary') for (const s of ['_sum', '_count']) out.add(t[1]! + s);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression selects: identifiers not called as functions, outside labels, strings and ranges. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Debian's prometheus, as a child process with its config and storage in `dir`, on a free loopback port. */
async function startPrometheus(dir: string, target: string) {
  const port = await freeLoopbackPort();
  const config = path.join(dir, 'prometheus.yml');
  await fs.writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: defenseclaw-upgrade',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
  const exited = new Promise((r) => child.once('exit', r));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`prometheus to be ready (${log})`, async () => (await fetch(`${base}/-/ready`)).ok, 60_000);
  return {
    async query(q: string): Promise<PromSample[]> {
      const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; data: { result: PromSample[] } };
      if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body).slice(0, 300)}`);
      return body.data.result;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
