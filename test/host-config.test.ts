/**
 * What a host's worker trusts, read at start (worker/host-config.ts): bad settings are refused in
 * one line, before anything runs, without quoting a credential; and the commands the worker runs
 * (the gateway, Python, OpenClaw) get neither its credentials nor its own runtime tuning.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { loadHostConfig } from '../worker/host-config.js';
import { WORKER_GLIBC_TUNABLES, WORKER_NODE_OPTIONS } from '../worker/runtime-tuning.js';
import { InvalidInputError } from '../workflows/types.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');
const base = { HOME: os.tmpdir(), DEFENSECLAW_HOST: 'cfg-test' };

describe('the host configuration', () => {
  const refused = (env: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => loadHostConfig({ ...base, ...env }),
      (err: Error) => err instanceof InvalidInputError && message.test(err.message) && !err.message.includes('\n'),
    );

  it('refuses a URL that is not one, or not http(s), in one line naming the setting', () => {
    refused({ DEFENSECLAW_RELEASES_URL: 'not a url' }, /^invalid releases URL "not a url": Invalid URL$/);
    refused({ DEFENSECLAW_RELEASES_URL: 'http://' }, /^invalid releases URL "http:\/\/": Invalid URL$/);
    refused(
      { DEFENSECLAW_RELEASE_MIRROR: 'file:///etc' },
      /^invalid release mirror URL "file:\/\/\/etc": must be an http\(s\) URL$/,
    );
    refused(
      { DEFENSECLAW_UPGRADER_REGISTRY: 'javascript:alert(1)' },
      /^invalid upgrader registry URL .*: must be an http\(s\) URL$/,
    );
    refused({ DEFENSECLAW_REPO: 'a/b/c' }, /^invalid repository "a\/b\/c": expected owner\/name$/);
    refused({ DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS: 'ok.example, bad_host' }, /^invalid allowed host "bad_host"/);
    refused({ DEFENSECLAW_HOST: 'gw 01' }, /^invalid host "gw 01"/);
  });

  it('refuses a URL that is wrong in any way without quoting a user or password in it', () => {
    for (const [url, why] of [
      ['https://bot:s3cr3t-pass@mirror.example:99999/dc', 'Invalid URL'],
      ['ftp://bot:s3cr3t-pass@mirror.example/dc', 'must be an http(s) URL'],
    ] as const) {
      assert.throws(
        () => loadHostConfig({ ...base, DEFENSECLAW_RELEASE_MIRROR: url }),
        (err: Error) =>
          err.message.endsWith(`: ${why}`) && !err.message.includes('s3cr3t') && !err.message.includes('bot'),
      );
    }
  });

  it('refuses a URL that carries a user or password, and does not quote them', () => {
    for (const url of ['https://bot:s3cr3t-pass@mirror.example/dc', 'https://s3cr3t-pass@mirror.example/dc']) {
      assert.throws(
        () => loadHostConfig({ ...base, DEFENSECLAW_RELEASE_MIRROR: url }),
        (err: Error) =>
          err.message === 'invalid release mirror URL "https://mirror.example/dc": must not carry a user or password' &&
          !err.message.includes('s3cr3t'),
      );
    }
  });

  it('accepts what it did (trailing slashes dropped, surrounding blanks ignored, IPv6 literals)', () => {
    const c = loadHostConfig({ ...base, DEFENSECLAW_RELEASES_URL: ' http://[::1]:8080/api/// ' });
    assert.equal(c.releases.apiBase, 'http://[::1]:8080/api');
    assert.deepEqual(c.releases.allowedHosts, ['[::1]:8080']);
  });

  it("gives the commands it runs neither credentials nor the worker's own tuning, and keeps an operator's", () => {
    const env = {
      ...base,
      PATH: '/usr/bin:/bin',
      GITHUB_TOKEN: 'ghp_notForTheGateway0123456789',
      TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer x',
      NODE_OPTIONS: WORKER_NODE_OPTIONS,
      GLIBC_TUNABLES: WORKER_GLIBC_TUNABLES,
    };
    const c = loadHostConfig(env);
    for (const k of ['GITHUB_TOKEN', 'TEMPORAL_GRPC_META_AUTHORIZATION', 'NODE_OPTIONS', 'GLIBC_TUNABLES']) {
      assert.equal(c.commandEnv[k], undefined, `${k} is not passed on`);
    }
    assert.equal(c.commandEnv.PATH, '/usr/bin:/bin');
    const own = loadHostConfig({
      ...env,
      NODE_OPTIONS: '--max-old-space-size=4096',
      GLIBC_TUNABLES: 'glibc.malloc.arena_max=4',
    });
    assert.equal(own.commandEnv.NODE_OPTIONS, '--max-old-space-size=4096');
    assert.equal(own.commandEnv.GLIBC_TUNABLES, 'glibc.malloc.arena_max=4');
  });

  it('`worker` with a bad setting exits 1 with one line, before connecting anywhere', async () => {
    const r = await execa(process.execPath, [MAIN, 'worker'], {
      env: {
        ...base,
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DEFENSECLAW_RELEASES_URL: 'not a url',
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      },
      extendEnv: false,
      reject: false,
      timeout: 30_000,
    });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.equal(r.stderr.trim(), 'defenseclaw-upgrade: invalid releases URL "not a url": Invalid URL');
  });
});
