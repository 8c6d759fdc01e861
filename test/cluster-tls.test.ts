/**
 * Secured connections. A real cluster whose frontend requires mTLS (certificates made by the test
 * with openssl): `defenseclaw-upgrade worker` and the CLI connect only through the SDK's
 * environment configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*) and upgrade a
 * host; without a client certificate, or without TLS, the connection is refused and the user gets
 * one line naming the fix. The API key path (Temporal Cloud) is checked up to the header the CLI
 * and the worker send, against a TLS gRPC endpoint of the test's own.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { hostWorkflowId, type UpgradeResult } from '../workflows/types.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { CLI, assertHostOn, clusterCli, upgradeBackupsOf, waitFor, type CliRun } from './helpers/cluster-cli.js';

let cluster: Cluster;
let releases: ReleaseServer;
const sims: SimHost[] = [];
const children: ChildProcess[] = [];

before(async () => {
  [cluster, releases] = await Promise.all([startCluster({ tls: true }), startReleaseServer()]);
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) =>
      c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined,
    ),
  );
  await Promise.all(sims.map((s) => s.cleanup()));
  await releases?.close();
  await cluster?.teardown();
});

/**
 * `defenseclaw-upgrade worker` for a host, as its systemd unit runs it (or, with `args`, another
 * worker such as the controller's `fleet worker`); resolves once it polls (or exits).
 */
function startWorker(
  env: Record<string, string>,
  args: string[] = ['worker'],
): Promise<{ child: ChildProcess; output: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('polling')) resolve({ child, output: () => out, exit });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then(() => resolve({ child, output: () => out, exit }));
  });
}

function without(env: Record<string, string>, ...keys: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !keys.includes(k)));
}

function oneLine(r: CliRun | string): string {
  const text = typeof r === 'string' ? r : r.stderr;
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${text}`);
  return lines[0]!;
}

describe('mTLS cluster', { timeout: 300_000 }, () => {
  it('the worker and the CLI connect through TEMPORAL_ADDRESS/TEMPORAL_TLS_* and upgrade a host', async () => {
    const sim = await createSimHost();
    sims.push(sim);
    const name = `tls-${process.pid}`;
    const worker = await startWorker({ ...sim.env, ...releases.env(), DEFENSECLAW_HOST: name, ...cluster.env });
    // The workflows run on the controller (the host's worker runs its activities only), over the same mTLS.
    const controller = await startWorker({ PATH: sim.env.PATH!, HOME: sim.home, ...cluster.env }, ['fleet', 'worker']);
    assert.match(controller.output(), /fleet worker polling/);
    assert.match(
      worker.output(),
      new RegExp(`worker for host ${name} polling defenseclaw-upgrade@${name} on ${cluster.address}`),
    );
    const cli = clusterCli(cluster.env);
    const r = await cli(['upgrade', '--yes', '--json', '--host', name]);
    assert.equal(r.exitCode, 0, r.stderr);
    const result = JSON.parse(r.stdout) as UpgradeResult;
    assert.equal(result.outcome, 'upgraded', result.message);
    await assertHostOn(sim, '0.4.0', name);
    assert.equal((await upgradeBackupsOf(sim)).length, 1);
    const rows = await waitFor('the run in visibility', async () => {
      const h = await cli(['history', '--json', '--host', name]);
      const parsed = h.exitCode === 0 ? (JSON.parse(h.stdout) as Array<{ workflowId: string; outcome: string }>) : [];
      return parsed.length === 1 && parsed[0]!.outcome === 'upgraded' && parsed;
    });
    assert.equal(rows[0]!.workflowId, hostWorkflowId(name));
  });

  it('without a client certificate the connection is refused: one line naming the fix, exit 1 (CLI and worker)', async () => {
    const noCert = without(cluster.env, 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH');
    const r = await clusterCli(noCert)(['history']);
    assert.equal(r.exitCode, 1);
    assert.equal(
      oneLine(r),
      `defenseclaw-upgrade: cannot reach Temporal at ${cluster.address}: TLS refused: the server requires a client certificate; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH`,
    );
    const sim = await createSimHost({ start: false });
    sims.push(sim);
    const w = await startWorker({ ...sim.env, DEFENSECLAW_HOST: 'tls-refused', ...noCert });
    assert.equal(await w.exit, 1);
    assert.match(
      oneLine(w.output()),
      /cannot reach Temporal at .*: TLS refused: the server requires a client certificate; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH$/,
    );
    // A client without TLS at all; one that does not trust the server's CA; TLS to a plain server.
    const plain = await clusterCli({ TEMPORAL_ADDRESS: cluster.address })(['history']);
    assert.equal(plain.exitCode, 1);
    assert.match(oneLine(plain), /: the server only accepts TLS connections; set TEMPORAL_TLS=true/);
    const systemCas = await clusterCli(without(cluster.env, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'))(['history']);
    assert.equal(systemCas.exitCode, 1);
    assert.match(
      oneLine(systemCas),
      /: the server's TLS certificate is not trusted \([A-Z_]+\); set TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA/,
    );
    // (By name: with an IP address and no TEMPORAL_TLS_SERVER_NAME, grpc-js adds a Node deprecation warning.)
    const plainServer = `localhost:${new URL(releases.env().DEFENSECLAW_RELEASES_URL!).port}`;
    const tlsToPlain = await clusterCli({ TEMPORAL_ADDRESS: plainServer, TEMPORAL_TLS: 'true' })(['history']);
    assert.equal(tlsToPlain.exitCode, 1);
    assert.match(oneLine(tlsToPlain), /: the server does not speak TLS; unset TEMPORAL_TLS/);
  });
});

describe('API key (Temporal Cloud)', () => {
  it('the CLI and the worker send `authorization: Bearer <key>` over TLS; a refusal is one line without the key', async () => {
    const tls = cluster.tls!;
    const seen: Array<{ path: string; authorization?: string; namespace?: string }> = [];
    // A gRPC endpoint that records the headers and refuses, as Temporal Cloud does a wrong key.
    const server = http2.createSecureServer({
      cert: fs.readFileSync(tls.serverCert),
      key: fs.readFileSync(tls.serverKey),
    });
    server.on('stream', (stream, headers) => {
      seen.push({
        path: String(headers[':path']),
        authorization: headers.authorization as string | undefined,
        namespace: headers['temporal-namespace'] as string | undefined,
      });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': '16', 'grpc-message': 'Request unauthorized.' }),
      );
      stream.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const key = 'tmprl-test-key-0123456789abcdef';
    const env = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: key,
      // The endpoint's certificate is the test CA's; Temporal Cloud's is publicly trusted.
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: tls.caCert,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
    };
    try {
      const r = await clusterCli(env)(['history']);
      assert.equal(r.exitCode, 1);
      assert.match(
        oneLine(r),
        new RegExp(`^defenseclaw-upgrade: cannot reach Temporal at ${address}: .*unauthorized`, 'i'),
      );
      assert.ok(!`${r.stdout}${r.stderr}`.includes(key), 'the key is never printed');
      const fromCli = seen.filter((s) => s.path.startsWith('/temporal.api.workflowservice.v1.WorkflowService/'));
      assert.ok(fromCli.length > 0, JSON.stringify(seen));
      for (const s of fromCli) assert.equal(s.authorization, `Bearer ${key}`);

      seen.length = 0;
      const sim = await createSimHost({ start: false });
      sims.push(sim);
      const w = await startWorker({ ...sim.env, DEFENSECLAW_HOST: 'api-key', ...env });
      assert.equal(await w.exit, 1);
      assert.ok(!w.output().includes(key), 'the key is never printed');
      assert.match(oneLine(w.output()), new RegExp(`cannot reach Temporal at ${address}: .*unauthorized`, 'i'));
      assert.ok(seen.length > 0, 'the worker reached the endpoint');
      for (const s of seen) assert.equal(s.authorization, `Bearer ${key}`, `worker call ${s.path}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
