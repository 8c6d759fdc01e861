/**
 * Fetching a new defenseclaw-upgrade from the source this host's configuration names, verified
 * before anything is unpacked: the operator's bundle mirror (`<base>/<v>/SHA256SUMS` and the
 * platform bundle, checked against its line) or the npm registry (the packument's
 * `dist.tarball`, checked against its SRI sha512 `dist.integrity`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig, UpgraderSource } from '../../worker/host-config.js';
import { describeHttpError, httpRequest } from '../http.js';
import { parseChecksums } from '../release-eras.js';
import { FailureType, cancellationSignal, heartbeat, refuse } from '../support.js';

export const PACKAGE_NAME = 'defenseclaw-upgrade';
const SMALL_LIMIT = 16 * 1024 * 1024;

/** The platform bundle's file name for this machine (Node's platform-arch, as make-bundle names it). */
export function bundleName(version: string): string {
  return `${PACKAGE_NAME}-${version}-${process.platform}-${process.arch}.tar.gz`;
}

export interface Fetched {
  file: string;
  source: 'bundle' | 'registry';
}

/** GET a small document (SHA256SUMS, a packument) as text, refusing more than 16 MiB. */
async function getText(config: HostConfig, src: UpgraderSource, url: string, what: string): Promise<string> {
  let res;
  try {
    res = await httpRequest(config, url, {
      headers: { accept: 'application/json, text/plain' },
      allowedHosts: src.allowedHosts,
      signal: cancellationSignal(),
    });
  } catch (err) {
    if ((err as { type?: string }).type) throw err;
    throw new Error(`${what}: ${describeHttpError(err, url)}`);
  }
  if (res.status === 404) {
    await res.body.dump();
    throw refuse(FailureType.NotFound, `${what}: not found (HTTP 404)`);
  }
  if (res.status !== 200) {
    await res.body.dump();
    throw new Error(`${what}: HTTP ${res.status}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > SMALL_LIMIT) {
      res.body.destroy();
      throw refuse(FailureType.TooLarge, `${what}: larger than ${SMALL_LIMIT} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Streams `url` into `file` (0600), heartbeating, computing `algorithm` on the way; refuses more
 * than the host's artifact cap. Answers the digest (hex for sha256, base64 for sha512).
 */
async function download(
  config: HostConfig,
  src: UpgraderSource,
  url: string,
  file: string,
  algorithm: 'sha256' | 'sha512',
  what: string,
): Promise<string> {
  let res;
  try {
    res = await httpRequest(config, url, {
      headers: { accept: 'application/octet-stream' },
      allowedHosts: src.allowedHosts,
      signal: cancellationSignal(),
    });
  } catch (err) {
    if ((err as { type?: string }).type) throw err;
    throw new Error(`${what}: ${describeHttpError(err, url)}`);
  }
  if (res.status !== 200) {
    await res.body.dump();
    if (res.status === 404) throw refuse(FailureType.NotFound, `${what}: not found (HTTP 404)`);
    throw new Error(`${what}: HTTP ${res.status}`);
  }
  const hash = createHash(algorithm);
  const out = await fs.open(file, 'w', 0o600);
  let bytes = 0;
  let lastBeat = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > config.http.maxArtifactBytes) {
        throw refuse(FailureType.TooLarge, `${what}: over the ${config.http.maxArtifactBytes}-byte cap`);
      }
      await out.write(chunk);
      hash.update(chunk);
      if (Date.now() - lastBeat > 200) {
        heartbeat({ what, bytes });
        lastBeat = Date.now();
      }
    }
    await out.sync();
  } catch (err) {
    await fs.rm(file, { force: true });
    if ((err as { type?: string }).type) throw err;
    throw new Error(`${what} was cut at byte ${bytes}: ${describeHttpError(err, res.url)}`);
  } finally {
    await out.close();
    res.body.destroy();
  }
  return hash.digest(algorithm === 'sha256' ? 'hex' : 'base64');
}

/** From the mirror: SHA256SUMS first, then the bundle, whose digest must match its line. */
export async function fetchBundle(
  config: HostConfig,
  src: UpgraderSource,
  version: string,
  dir: string,
): Promise<Fetched> {
  const base = `${src.bundleUrl}/${version}`;
  const name = bundleName(version);
  const sums = parseChecksums(await getText(config, src, `${base}/SHA256SUMS`, `SHA256SUMS of ${version}`));
  const expected = sums.get(name);
  if (!expected) throw refuse(FailureType.ChecksumsMissing, `SHA256SUMS of ${version} has no line for ${name}`);
  const file = path.join(dir, name);
  const got = await download(config, src, `${base}/${name}`, file, 'sha256', name);
  if (got !== expected) {
    await fs.rm(file, { force: true });
    throw refuse(
      FailureType.ChecksumMismatch,
      `checksum mismatch for ${name}: expected ${expected}, got ${got}; nothing was unpacked`,
    );
  }
  return { file, source: 'bundle' };
}

const Packument = z.object({
  name: z.literal(PACKAGE_NAME),
  versions: z.record(
    z.string(),
    z.object({ dist: z.object({ tarball: z.string().url(), integrity: z.string().max(4096).optional() }) }),
  ),
});

/** The sha512 of an SRI string (`sha512-<base64>`, possibly among others), or undefined. */
export function sriSha512(integrity: string | undefined): string | undefined {
  for (const part of (integrity ?? '').trim().split(/\s+/)) {
    const m = /^sha512-([A-Za-z0-9+/]{86}==)(?:\?.*)?$/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

/** From the registry: the packument's tarball for `version`, checked against its sha512 integrity. */
export async function fetchFromRegistry(
  config: HostConfig,
  src: UpgraderSource,
  version: string,
  dir: string,
): Promise<Fetched> {
  const url = `${src.registry}/${PACKAGE_NAME}`;
  let doc: z.infer<typeof Packument>;
  try {
    doc = Packument.parse(JSON.parse(await getText(config, src, url, `the registry's ${PACKAGE_NAME}`)));
  } catch (err) {
    if ((err as { type?: string }).type) throw err;
    throw refuse(FailureType.InvalidInput, `the registry's ${PACKAGE_NAME} document is not a packument`);
  }
  const entry = doc.versions[version];
  if (!entry) throw refuse(FailureType.NotFound, `the registry has no ${PACKAGE_NAME} ${version}`);
  const expected = sriSha512(entry.dist.integrity);
  if (!expected) {
    throw refuse(
      FailureType.ChecksumsMissing,
      `the registry publishes no sha512 integrity for ${PACKAGE_NAME} ${version}`,
    );
  }
  const tarball = new URL(entry.dist.tarball);
  if (!/^https?:$/.test(tarball.protocol))
    throw refuse(FailureType.UnsafeRedirect, `refusing a ${tarball.protocol} tarball`);
  const file = path.join(dir, `${PACKAGE_NAME}-${version}.tgz`);
  const got = await download(config, src, tarball.toString(), file, 'sha512', `${PACKAGE_NAME}-${version}.tgz`);
  if (got !== expected) {
    await fs.rm(file, { force: true });
    throw refuse(
      FailureType.ChecksumMismatch,
      `integrity mismatch for ${PACKAGE_NAME} ${version}: expected sha512-${expected}, got sha512-${got}; nothing was installed`,
    );
  }
  return { file, source: 'registry' };
}
