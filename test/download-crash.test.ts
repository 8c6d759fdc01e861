/**
 * No download can kill the worker: against a mirror whose asset host closes every connection
 * after the response (HTTP/1.0-style, `Connection: close`), with a large body and a consumer
 * slower than the network, undici 7's HTTP/1 parser asserted `!this.paused` on the socket's end
 * and took the whole process down (nodejs/undici#5360). A separate process does what a host
 * worker does (a slow raw reader, the HEAD pre-flight, the downloads, a cut download resumed with
 * Range) and must live to print its results, with every byte right.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'download-child.js');
const VERSION = '0.4.0';
const TARBALL = `defenseclaw_${VERSION}_linux_amd64.tar.gz`;
const SIZE = 6 * 1024 * 1024 + 123;
const body = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) body[i] = (i * 7919) % 251;
const digest = createHash('sha256').update(body).digest('hex');
const checksums = Buffer.from(`${digest}  ${TARBALL}\n`);

interface Seen {
  method?: string;
  url?: string;
  range?: string;
}

let server: http.Server;
let base: string;
let home: string;
const seen: Seen[] = [];
let cutsLeft = 3;

before(async () => {
  server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, range: req.headers.range });
    const name = req.url?.split('/').pop();
    const asset = req.url === '/raw' || name === TARBALL ? body : name === 'checksums.txt' ? checksums : undefined;
    if (!asset) {
      res.writeHead(404, { connection: 'close' });
      return res.end();
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    const part = asset.subarray(from);
    res.writeHead(m ? 206 : 200, {
      'content-length': String(part.length),
      'content-type': 'application/octet-stream',
      connection: 'close',
      ...(m ? { 'content-range': `bytes ${from}-${asset.length - 1}/${asset.length}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    // The first download of the tarball in each run is cut halfway: the socket just closes.
    if (name === TARBALL && !m && cutsLeft > 0) {
      cutsLeft -= 1;
      res.write(part.subarray(0, part.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-download-crash-'));
  await fs.mkdir(path.join(home, '.defenseclaw'), { mode: 0o700 });
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await fs.rm(home, { recursive: true, force: true });
});

describe('downloads from a mirror that closes each connection', () => {
  it('a slow reader, the pre-flight and cut downloads never kill the process; the bytes are right', async () => {
    const child = spawn(process.execPath, [CHILD, base, home, VERSION, TARBALL, String(SIZE)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.once('exit', (c, s) => r([c, s])),
    );
    assert.doesNotMatch(stderr, /AssertionError|assert\(!this\.paused\)/, 'the HTTP parser assertion fired');
    assert.equal(code, 0, `the downloading process died (${signal ?? `code ${code}`}): ${stderr.slice(-2000)}`);
    const out = JSON.parse(stdout.trim()) as {
      raw: string[];
      runs: Array<{ sha256?: string; errors: string[]; onDisk?: number }>;
    };
    assert.deepEqual(out.raw, Array(5).fill(digest), 'every slow read got the whole body');
    assert.equal(out.runs.length, 3);
    for (const run of out.runs) {
      assert.equal(run.sha256, digest, `download verified (errors: ${run.errors.join(' | ')})`);
      assert.equal(run.onDisk, SIZE);
      // The cut attempt failed as a cut, and the next one resumed from the bytes on disk.
      assert.equal(run.errors.length, 1, run.errors.join(' | '));
      assert.match(run.errors[0]!, /was cut at byte \d+ of \d+/);
    }
    const resumed = seen.filter((s) => s.url?.endsWith(TARBALL) && s.method === 'GET' && s.range);
    assert.equal(resumed.length, 3, 'each run resumed with one Range request');
    for (const s of resumed) assert.match(s.range!, /^bytes=[1-9]\d*-$/);
    assert.equal(seen.filter((s) => s.method === 'HEAD').length, 6, 'the pre-flight HEADed both assets, 3 times');
  });
});
