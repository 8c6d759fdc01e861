/**
 * One release lookup per rollout (issue 14, item 7): the fleet resolves the release once and hands
 * every host a ticket; hosts make no releases-API call, download from their own source (or the
 * mirror their configuration names) and still verify every file themselves. Plus the jitter of
 * host starts. Real Temporal dev server; the release server counts API requests apart from
 * downloads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { fleetResultOf } from '../client/commands/fleet/progress.js';
import { fleetInputFromFlags } from '../client/commands/fleet/start.js';
import { FleetInputSchema, type FleetInput, type FleetResult } from '../workflows/fleet/fleet-types.js';
import { jitterDelayMs } from '../workflows/fleet/jitter.js';
import { ReleaseTicketSchema, TICKET_LIMITS, type ReleaseTicket } from '../workflows/release-ticket.js';
import { UpgradeInputSchema, hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import { startDownloadHosts, type DownloadHosts } from './helpers/download-hosts.js';
import { FleetSim, startFleet, startFleetWorker } from './helpers/fleet-sim.js';
import { startTestEnvironment } from './helpers/temporal.js';
import { startReleaseMirror, type ReleaseMirror } from './fixtures/releases/mirror.js';
import { sha256OfBytes, startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

const run = promisify(execFile);
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

const TARBALL = 'defenseclaw_0.4.0_linux_amd64.tar.gz';
const WHEEL = 'defenseclaw-0.4.0-py3-none-any.whl';
const sha = (c: string) => c.repeat(64);

const GOOD_TICKET: ReleaseTicket = {
  version: '0.4.0',
  era: 'goreleaser',
  assets: [
    { name: 'checksums.txt', size: 700, sha256: sha('a') },
    { name: TARBALL, size: 5000, sha256: sha('b') },
    { name: WHEEL, size: 4000, sha256: sha('c') },
    { name: 'checksums.txt.sig', size: 96 },
    { name: 'checksums.txt.pem', size: 1200, sha256: sha('d') },
  ],
};

// -------------------------------------------------------------------------------------------------
// Pure parts

describe('release tickets and jitter (pure)', () => {
  it('a ticket is bounded: names are file names, never URLs or paths; digests are SHA-256; nothing else fits', () => {
    assert.ok(ReleaseTicketSchema.safeParse(GOOD_TICKET).success);
    const bad: Array<[string, unknown]> = [
      ['a URL as a name', { ...GOOD_TICKET, assets: [{ name: 'https://evil.example/x.tar.gz', size: 1 }] }],
      ['a path as a name', { ...GOOD_TICKET, assets: [{ name: '../../etc/passwd', size: 1 }] }],
      ['a folder in a name', { ...GOOD_TICKET, assets: [{ name: 'dist/defenseclaw', size: 1 }] }],
      ['a digest that is not SHA-256', { ...GOOD_TICKET, assets: [{ name: WHEEL, size: 1, sha256: 'md5:abc' }] }],
      ['an upper-case digest', { ...GOOD_TICKET, assets: [{ name: WHEEL, size: 1, sha256: sha('A') }] }],
      ['a negative size', { ...GOOD_TICKET, assets: [{ name: WHEEL, size: -1 }] }],
      ['a file listed twice', { ...GOOD_TICKET, assets: [GOOD_TICKET.assets[1], GOOD_TICKET.assets[1]] }],
      [
        'too many files',
        {
          ...GOOD_TICKET,
          assets: Array.from({ length: TICKET_LIMITS.assets + 1 }, (_, i) => ({ name: `f${i}`, size: 1 })),
        },
      ],
      ['a URL field', { ...GOOD_TICKET, url: 'https://evil.example/' }],
      ['a command on a file', { ...GOOD_TICKET, assets: [{ name: WHEEL, size: 1, run: 'sh -c id' }] }],
      ['a version that is not X.Y.Z', { ...GOOD_TICKET, version: '0.4.0; rm -rf /' }],
      ['an unknown era', { ...GOOD_TICKET, era: 'custom' }],
      ['a bridge that is the target', { ...GOOD_TICKET, bridge: { ...GOOD_TICKET } }],
    ];
    for (const [what, value] of bad) assert.equal(ReleaseTicketSchema.safeParse(value).success, false, what);
  });

  it('a fleet or a host run refuses a ticket for another version than its own', () => {
    const fleet: FleetInput = { fleetId: 'f', hosts: ['a'], version: '0.3.1', ticket: GOOD_TICKET };
    assert.match(FleetInputSchema.safeParse(fleet).error?.issues[0]?.message ?? '', /another version/);
    assert.ok(FleetInputSchema.safeParse({ ...fleet, version: '0.4.0' }).success);
    assert.ok(FleetInputSchema.safeParse({ ...fleet, version: undefined }).success, 'the ticket names the version');
    const host = { host: 'a', version: '0.3.1', ticket: GOOD_TICKET };
    assert.match(UpgradeInputSchema.safeParse(host).error?.issues[0]?.message ?? '', /another version/);
    assert.equal(UpgradeInputSchema.safeParse({ ...host, version: undefined }).success, false);
    assert.ok(UpgradeInputSchema.safeParse({ ...host, version: 'v0.4.0' }).success);
  });

  it('jitter: each host waits its own delay in 0..jitterMs, the same every time, spread over the range', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/);
    fc.assert(
      fc.property(name, fc.integer({ min: 0, max: 600_000 }), (host, j) => {
        const d = jitterDelayMs(host, j);
        assert.ok(Number.isInteger(d) && d >= 0 && d <= j, `${d} in 0..${j}`);
        assert.equal(jitterDelayMs(host, j), d);
      }),
    );
    assert.equal(jitterDelayMs('any-host', 0), 0);
    // 1,000 hosts named like a real fleet over 1,000 ms: every tenth of the range gets some, none gets 3× its share.
    const buckets = new Array<number>(10).fill(0);
    for (let i = 1; i <= 1000; i++)
      buckets[Math.min(9, Math.floor(jitterDelayMs(`gw-${i}.dc.internal`, 1000) / 100))]! += 1;
    for (const b of buckets) assert.ok(b > 0 && b < 300, `buckets ${buckets.join(',')}`);
  });

  it('--jitter: milliseconds within the bound, else a one-line usage error and exit 2', async () => {
    assert.equal((await fleetInputFromFlags({ hosts: 'a,b', jitter: '1500' })).jitterMs, 1500);
    assert.equal((await fleetInputFromFlags({ hosts: 'a,b' })).jitterMs, 0);
    for (const bad of ['abc', '-5', '1.5', '600001', '99999999999'])
      await assert.rejects(fleetInputFromFlags({ hosts: 'a', jitter: bad }), /--jitter must be a whole number/);
    const r = await run(process.execPath, [MAIN, 'fleet', '--hosts', 'a', '--jitter', 'soon', '--yes']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--jitter must be a whole number of milliseconds/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});

// -------------------------------------------------------------------------------------------------
// Rollouts on a real server

let env: TestWorkflowEnvironment;
let releases: ReleaseServer;
let fleetWorker: Awaited<ReturnType<typeof startFleetWorker>>;
let pool: DownloadHosts | undefined;
let sim: FleetSim | undefined;
const mirrors: ReleaseMirror[] = [];
let rollouts = 0;

function ns(): string {
  return env.namespace ?? 'default';
}

before(async () => {
  [env, releases] = await Promise.all([startTestEnvironment(), startReleaseServer()]);
  fleetWorker = await startFleetWorker(env.nativeConnection, ns());
});

after(async () => {
  await fleetWorker?.stop();
  await pool?.stop();
  await sim?.close().catch(() => undefined);
  for (const m of mirrors) await m.close();
  await releases?.close();
  await env?.teardown();
});

/** A host run's result, whether it completed or failed. */
async function hostResult(host: string): Promise<UpgradeResult> {
  try {
    return (await env.client.workflow.getHandle(hostWorkflowId(host)).result()) as UpgradeResult;
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.details?.[0])
      return err.cause.details[0] as UpgradeResult;
    throw err;
  }
}

/** A rollout without canaries or bake, every host allowed to fail (each host's own result is what is checked). */
function rollout(fleetId: string, hosts: string[], extra: Partial<FleetInput> = {}): Promise<FleetResult> {
  const input = { fleetId, hosts, canary: 0, bakeSeconds: 0, maxFailures: { percent: 100 }, ...extra };
  return startFleet(env.client, input).then(fleetResultOf);
}

/** A rollout of `n` download hosts on the shared queue; the release server's counts for it alone. */
async function poolRollout(
  n: number,
  extra: Partial<FleetInput> = {},
): Promise<{ r: FleetResult; hosts: string[]; counts: ReturnType<ReleaseServer['counts']> }> {
  const id = `ticket-${process.pid}-${++rollouts}`;
  const hosts = Array.from({ length: n }, (_, i) => `${id}-h${i + 1}`);
  releases.resetLog();
  pool!.calls.clear();
  const r = await rollout(id, hosts, { batch: { count: 50 }, taskQueue: pool!.queue, ...extra });
  return { r, hosts, counts: releases.counts() };
}

describe('one release lookup per rollout', { concurrency: 1, timeout: 600_000 }, () => {
  before(async () => {
    pool = await startDownloadHosts({ connection: env.nativeConnection, namespace: ns(), releases });
  });

  it('5 hosts and 50 hosts: exactly one releases-API request each; every host downloads and verifies its own files', async () => {
    const small = await poolRollout(5);
    const smallCalls = new Map(pool!.calls);
    const large = await poolRollout(50, { jitterMs: 3000 });
    const largeCalls = new Map(pool!.calls);

    for (const [{ r, hosts, counts }, calls] of [
      [small, smallCalls],
      [large, largeCalls],
    ] as const) {
      const n = hosts.length;
      assert.equal(r.verdict, 'succeeded', r.message);
      assert.equal(r.counts.healthy, n);
      // The count: one API request for the whole rollout, however many hosts.
      assert.equal(counts.api, 1, `${n} hosts: API requests ${JSON.stringify(counts)}`);
      assert.equal(calls.get('issueReleaseTicket'), 1);
      assert.equal(calls.get('resolveRelease') ?? 0, 0, 'no host resolved through the API');
      assert.equal(calls.get('resolveFromTicket'), n);
      // Each host fetched its files itself, by the download path (302 to the asset host).
      assert.equal(calls.get('downloadArtifact'), 5 * n, 'checksums.txt, tarball, wheel, .sig, .pem per host');
      assert.equal(calls.get('verifySignature'), n);
      assert.ok(counts.download >= 11 * n, `download-path requests ${counts.download}`);
      assert.equal(counts.asset, counts.download, 'every download-path request was redirected to the asset host');
    }
    assert.equal(small.counts.api, large.counts.api, 'the same API count for 5 and for 50 hosts');

    // Every host's own run verified its files against the ticket's digests, and took no API path.
    const expected = new Map([
      [TARBALL, await releases.sha256(TARBALL, '0.4.0')],
      [WHEEL, await releases.sha256(WHEEL, '0.4.0')],
    ]);
    for (const host of large.hosts) {
      const res = await hostResult(host);
      assert.equal(res.outcome, 'upgraded', res.message);
      assert.deepEqual(new Map(res.artifacts.map((a) => [a.name, a.sha256])), expected);
      assert.equal(res.signature, 'checked-locally');
      const resolve = res.steps.filter((s) => s.name === 'resolve').map((s) => s.detail ?? '');
      assert.ok(resolve.includes("release 0.4.0 from the rollout's ticket (no API call)"), resolve.join('; '));
      assert.ok(!resolve.some((s) => s.startsWith('resolve release')), resolve.join('; '));
    }

    // Jitter: each host's run started no earlier than its own delay after the fleet took it up.
    assert.equal(large.r.settings.jitterMs, 3000);
    const late = large.r.hosts.filter((h) => jitterDelayMs(h.host, 3000) >= 1500);
    assert.ok(late.length >= 10, `${late.length} hosts with a delay of 1.5 s or more`);
    for (const h of late) {
      const started = (await env.client.workflow.getHandle(hostWorkflowId(h.host)).describe()).startTime.getTime();
      const delay = jitterDelayMs(h.host, 3000);
      assert.ok(started - h.startedAt! >= delay, `${h.host} started ${started - h.startedAt!} ms in, delay ${delay}`);
    }
  });

  it('a ticket given by a parent: no lookup at all; a ticket without the signature its source publishes is refused', async () => {
    const file = async (name: string) => {
      const bytes = (await releases.assetBytes(name, '0.4.0'))!;
      return { name, size: bytes.length, sha256: sha256OfBytes(bytes) };
    };
    const names = ['checksums.txt', TARBALL, WHEEL, 'checksums.txt.sig', 'checksums.txt.pem'];
    const ticket: ReleaseTicket = { version: '0.4.0', era: 'goreleaser', assets: await Promise.all(names.map(file)) };
    const given = await poolRollout(3, { ticket });
    assert.equal(given.r.verdict, 'succeeded', given.r.message);
    assert.equal(given.counts.api, 0, 'the parent resolved it: no API request in this rollout');
    assert.equal(pool!.calls.get('issueReleaseTicket') ?? 0, 0);

    const unsigned = { ...ticket, assets: ticket.assets.filter((a) => !a.name.startsWith('checksums.txt.')) };
    const stripped = await poolRollout(3, { ticket: unsigned });
    assert.equal(stripped.r.counts.failed, 3, stripped.r.message);
    for (const h of stripped.r.hosts)
      assert.match(h.reason ?? '', /resolve: the release ticket lists no signature .* publishes checksums\.txt\.sig/);
    assert.equal(pool!.calls.get('downloadArtifact') ?? 0, 0, 'refused before any download');
  });

  it('a wheel served corrupt: the one lookup passes, and every one of 50 hosts refuses its download', async () => {
    await releases.setOptions({ corrupt: [WHEEL] });
    try {
      const { r, hosts, counts } = await poolRollout(50);
      assert.equal(counts.api, 1);
      assert.equal(r.verdict, 'completed-with-failures', r.message);
      assert.equal(r.counts.failed, 50);
      for (const host of hosts) {
        const res = await hostResult(host);
        assert.equal(res.outcome, 'failed-unchanged', res.message);
        assert.equal(res.failure?.step, 'download');
        assert.match(res.failure?.error ?? '', new RegExp(`checksum mismatch for ${WHEEL.replace(/\./g, '\\.')}`));
      }
      assert.equal(pool!.calls.get('verifySignature') ?? 0, 0, 'nothing past the refused download ran');
    } finally {
      await releases.setOptions({ corrupt: [] });
    }
  });
});

describe('a release that needs a bridge', { timeout: 600_000 }, () => {
  it('two API requests for the rollout (target and bridge); each host runs both hops from the ticket', async () => {
    const bridged = await startReleaseServer({ versions: ['0.8.3', '0.8.4', '0.8.5'] });
    const hosts = await startDownloadHosts({
      connection: env.nativeConnection,
      namespace: ns(),
      releases: bridged,
      installed: '0.8.3',
      env: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' },
    });
    try {
      const id = `ticket-bridge-${process.pid}`;
      const names = [1, 2, 3].map((i) => `${id}-h${i}`);
      const r = await rollout(id, names, { version: '0.8.5', batch: { count: 3 }, taskQueue: hosts.queue });
      assert.equal(r.verdict, 'succeeded', r.message);
      assert.equal(bridged.counts().api, 2, JSON.stringify(bridged.counts()));
      assert.equal(hosts.calls.get('resolveRelease') ?? 0, 0);
      assert.equal(hosts.calls.get('resolveFromTicket'), 2 * names.length, 'bridge and target, per host');
      for (const host of names) {
        const res = await hostResult(host);
        assert.equal(res.outcome, 'upgraded', res.message);
        assert.match(res.message, /from 0\.8\.3 to 0\.8\.5 through 0\.8\.4 \(bridge\)/);
        const resolved = res.steps.filter((s) => s.name === 'resolve').map((s) => s.detail ?? '');
        assert.ok(
          resolved.includes("bridge release 0.8.4 (required by 0.8.5) from the rollout's ticket (no API call)"),
        );
      }
    } finally {
      await hosts.stop();
      await bridged.close();
    }
  });
});

describe('a host with a mirror', { concurrency: 1, timeout: 600_000 }, () => {
  it('downloads only from its mirror, and refuses a mirror file whose digest is not the ticket’s', async () => {
    const [good, bad] = await Promise.all([
      startReleaseMirror(releases),
      startReleaseMirror(releases, { tamper: [WHEEL] }),
    ]);
    mirrors.push(good, bad);
    // Host 1: the controller (no mirror; it asks the API once). Host 2: a good mirror. Host 3: a mirror serving a tampered wheel.
    sim = await FleetSim.create({
      connection: env.nativeConnection,
      namespace: ns(),
      releases,
      hosts: [{}, { env: { DEFENSECLAW_RELEASE_MIRROR: good.url } }, { env: { DEFENSECLAW_RELEASE_MIRROR: bad.url } }],
      concurrency: 3,
    });
    const [controller, mirrored, tampered] = sim.names as [string, string, string];
    releases.resetLog();
    const r = await rollout(`ticket-mirror-${process.pid}`, [mirrored, tampered], { controller, batch: { count: 2 } });
    const byHost = new Map(r.hosts.map((h) => [h.host, h]));
    assert.equal(byHost.get(mirrored)?.state, 'healthy', byHost.get(mirrored)?.reason);
    assert.equal(await sim.host(mirrored).sim.gatewayVersion(), '0.4.0');
    assert.equal(byHost.get(tampered)?.state, 'failed');
    assert.match(byHost.get(tampered)?.reason ?? '', /checksum mismatch for defenseclaw-0\.4\.0-py3-none-any\.whl/);
    assert.equal(await sim.host(tampered).sim.gatewayVersion(), '0.3.0', 'the tampered host was left as it was');

    // The release server saw the controller's lookup only: one API request and its checksums.txt.
    const c = releases.counts();
    assert.equal(c.api, 1, JSON.stringify(c));
    const fetched = releases.requests.filter((q) => q.kind === 'download').map((q) => path.basename(q.path));
    assert.deepEqual([...new Set(fetched)], ['checksums.txt'], 'no host downloaded from the release server');
    // The mirrors served the hosts: every file, HEAD then GET.
    const got = (m: ReleaseMirror) => new Set(m.requests.filter((q) => q.method === 'GET').map((q) => q.file));
    for (const f of ['checksums.txt', TARBALL, WHEEL, 'checksums.txt.sig', 'checksums.txt.pem'])
      assert.ok(got(good).has(`0.4.0/${f}`), `${f} from the good mirror`);
    assert.ok(got(bad).has(`0.4.0/${WHEEL}`), 'the tampered wheel was fetched from the mirror');
    assert.ok(good.requests.every((q) => q.status === 200));

    // A mirror's checksums.txt that is not the ticket's is refused before anything is downloaded.
    bad.setTamper(['checksums.txt']);
    bad.requests.length = 0;
    const again = await rollout(`ticket-mirror-sums-${process.pid}`, [tampered], { controller });
    assert.equal(again.hosts[0]?.state, 'failed');
    assert.match(again.hosts[0]?.reason ?? '', /resolve: checksum mismatch for checksums\.txt/);
    assert.deepEqual(
      bad.requests.map((q) => q.file),
      ['0.4.0/checksums.txt'],
      'refused at the first file, before any download',
    );
    assert.equal(await sim.host(tampered).sim.gatewayVersion(), '0.3.0');
  });
  it('a host worker of an earlier release (no resolveFromTicket) still upgrades: it asks the API itself, and says so', async () => {
    const old = await FleetSim.create({
      connection: env.nativeConnection,
      namespace: ns(),
      releases,
      hosts: [{}, { omit: ['resolveFromTicket', 'issueReleaseTicket'] }],
      concurrency: 2,
    });
    try {
      const [controller, earlier] = old.names as [string, string];
      releases.resetLog();
      const r = await rollout(`ticket-old-worker-${process.pid}`, [earlier], { controller });
      assert.equal(r.hosts[0]?.state, 'healthy', r.hosts[0]?.reason);
      assert.equal(await old.host(earlier).sim.gatewayVersion(), '0.4.0');
      // The controller's lookup, then the old host's own: two API requests, not a failed rollout.
      assert.equal(releases.counts().api, 2, JSON.stringify(releases.counts()));
      const res = await hostResult(earlier);
      assert.equal(res.outcome, 'upgraded', res.message);
      const resolve = res.steps.filter((x) => x.name === 'resolve');
      const at = resolve.findIndex((x) => x.status === 'skipped');
      const said = resolve.map((x) => `${x.status}: ${x.detail}`).join('; ');
      assert.match(resolve[at]?.detail ?? '', /from the rollout's ticket: SKIPPED, this host's worker predates/, said);
      assert.equal(resolve[at + 1]?.status, 'done', said);
      assert.match(resolve[at + 1]?.detail ?? '', /^resolve release 0\.4\.0 \(this host's worker predates/, said);
      assert.match(res.message, /Warning: .*predates release tickets/);
    } finally {
      await old.close();
    }
  });
});
