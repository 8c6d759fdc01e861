/**
 * What an idle host worker holds (issue 21): `defenseclaw-upgrade worker`, run as the service runs
 * it on a host laid out as real DefenseClaw 0.8.10 leaves it, polls its queue having loaded none of
 * the packages that only a run, or another command, needs. Every module the process loads is
 * recorded (ES imports through a loader hook, CommonJS through Module._load) until it polls.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startDevServer, type DevServer } from '../worker/agent/dev-server.js';
import { findTemporalCli } from '../worker/agent/temporal-cli.js';
import { createReal0810Home } from './fixtures/host/real-0810-home.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

/** Loaded by the first run or by other commands, never by an idle worker. */
const NOT_AT_IDLE = [
  'zod',
  'yaml', // the gateway token is found through config.yaml's token_env without parsing it
  'undici',
  'tar',
  'execa',
  'semver/index.js',
  'prom-client',
  '@inquirer',
  'cli-table3',
  'cli-progress',
  'log-update',
  'plist',
];

/** Records each module the process loads, on stderr as `LOADED <url or path>`. */
const RECORDER = `
const { register, createRequire } = await import('node:module');
const Module = createRequire(process.execPath)('module');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  try { process.stderr.write('LOADED ' + Module._resolveFilename(request, parent, isMain) + '\\n'); } catch {}
  return load.apply(this, arguments);
};
register('data:text/javascript,' + encodeURIComponent(
  "export async function load(url, context, next) { if (url.startsWith('file:')) process.stderr.write('LOADED ' + url + '\\\\n'); return next(url, context); }"
));
`;

describe('an idle host worker', () => {
  let server: DevServer;
  let home: string;
  before(async () => {
    // As 0.8.10's init and first start leave a host: the token in .env, its variable's name in config.yaml.
    home = createReal0810Home('dcu-idle-imports-').home;
    server = await startDevServer({ cliPath: await findTemporalCli({}), dbFile: path.join(home, 't.db'), ui: false });
  });
  after(async () => {
    await server?.stop();
    await fs.rm(home, { recursive: true, force: true });
  });

  it('polls without the packages a run or another command needs', async () => {
    const child = spawn(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(RECORDER)}`, MAIN, 'worker'],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_NAMESPACE: 'default',
          DEFENSECLAW_HOST: 'idle-imports',
          DEFENSECLAW_LOG_LEVEL: 'WARN',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const polling = new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`the worker did not poll within 60 s:\n${out.slice(-2000)}`)),
        60_000,
      );
      const on = (b: Buffer) => {
        out += b.toString();
        if (/polling/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
      child.once('exit', (code) =>
        reject(new Error(`the worker exited (${code}) before polling:\n${out.slice(-2000)}`)),
      );
    });
    try {
      await polling;
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
    const loaded = [...out.matchAll(/^LOADED (.+)$/gm)].map((m) => m[1]!);
    const inPackages = loaded.filter((f) => f.includes('/node_modules/'));
    // A positive control: the recorder sees what the worker must load (ES and CommonJS alike).
    assert.ok(
      loaded.some((f) => f.endsWith('/client/worker-main.js')),
      'the recorder sees our ES modules',
    );
    assert.ok(
      inPackages.some((f) => f.includes('/@temporalio/worker/')),
      'the recorder sees the SDK (CommonJS)',
    );
    for (const name of NOT_AT_IDLE) {
      const hits = inPackages.filter((f) => f.includes(`/node_modules/${name}`));
      assert.deepEqual(hits.slice(0, 3), [], `${name} is not loaded by an idle worker`);
    }
    assert.ok(
      !loaded.some((f) => f.includes('/dist/activities/host/') && !/\/(index|platform)\.js$/.test(f)),
      'no activity module before its first call',
    );
  });
});
