/**
 * A separate process that downloads like a host worker, from a release mirror given on the
 * command line, with a slow consumer: its event loop is kept busy (a loaded worker) and, for the
 * raw reader, every chunk is read late. Prints one JSON line with what it got; a crash of the
 * HTTP client shows as this process dying (the parent test reads its exit status and stderr).
 *
 *   node download-child.js <base-url> <home> <version> <tarball> <size>
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createStaging, downloadArtifact, preflight } from '../../activities/host/artifacts.js';
import { httpRequest } from '../../activities/http.js';
import { loadHostConfig } from '../../worker/host-config.js';

const [base, home, version, tarball, sizeArg] = process.argv.slice(2) as [string, string, string, string, string];
const size = Number(sizeArg);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A busy worker: the event loop is blocked 15 ms out of every 20.
const busy = setInterval(() => {
  const until = Date.now() + 15;
  while (Date.now() < until);
}, 20);

async function main(): Promise<void> {
  const config = loadHostConfig({
    HOME: home,
    DEFENSECLAW_HOST: 'unit',
    PATH: process.env.PATH ?? '',
    DEFENSECLAW_RELEASES_URL: base,
  });
  const allowedHosts = config.releases.allowedHosts;
  const out: Record<string, unknown> = {};

  // 1. The raw reader, slower than the network, five times over.
  const sums: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await httpRequest(config, `${base}/raw`, { allowedHosts });
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      hash.update(c);
      n += c.length;
      await sleep(2);
    }
    if (n !== size) throw new Error(`raw read ${n} of ${size} bytes`);
    sums.push(hash.digest('hex'));
  }
  out.raw = sums;

  // 2. The activities: HEAD pre-flight of the assets, then the downloads (the first one cut halfway
  //    by the mirror, so the second attempt resumes with a Range request), three runs.
  const runs: unknown[] = [];
  for (let run = 0; run < 3; run++) {
    const { stagingId } = await createStaging(config, { runId: `crash-${run}` });
    const names = ['checksums.txt', tarball];
    const sizes = await preflight(config, {
      version,
      platform: { os: tarball.split('_')[2], arch: tarball.split('_')[3]!.split('.')[0] },
      names,
    });
    await downloadArtifact(config, { version, stagingId, name: 'checksums.txt', size: sizes[0]!.size, verify: false });
    const errors: string[] = [];
    let info;
    for (let attempt = 0; attempt < 4 && !info; attempt++) {
      try {
        info = await downloadArtifact(config, { version, stagingId, name: tarball, size, verify: true });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    const file = path.join(config.dataDir, 'staging', stagingId, tarball);
    runs.push({ sha256: info?.sha256, errors, onDisk: (await fs.stat(file).catch(() => undefined))?.size });
  }
  out.runs = runs;
  clearInterval(busy);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`download-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(3);
});
