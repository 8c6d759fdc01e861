/**
 * Getting a release onto the host without touching anything live: a private staging folder,
 * pre-flight HEADs, resumable downloads checked while they stream against the digest the release
 * layout expects (checksums.txt, or GitHub's digest), protected payloads decoded, and a tarball
 * extracted with suspicion (extract.ts), then staged (stage-gateway.ts). The signature: signature.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { VersionSchema, type ArtifactInfo } from '../../workflows/types.js';
import { lstatOrUndefined, ensureRealDir, inside } from '../fsutil.js';
import { describeHttpError, httpRequest } from '../http.js';
import { gatewayPlatform } from '../../workflows/eras/index.js';
import { isReleaseAssetName, parseChecksums } from '../release-eras.js';
import { assetNames, assetUrl, headAsset } from '../releases.js';
import { killWarm } from './warm-python.js';
import {
  FailureType,
  cancellationSignal,
  heartbeat,
  lastHeartbeat,
  refuse,
  validated,
  activityContext,
} from '../support.js';

export const STAGING_ID = z.string().regex(/^[A-Za-z0-9-]{8,80}$/, 'a staging folder name');
export const PlatformSchema = z.object({ os: z.enum(['linux', 'darwin']), arch: z.enum(['amd64', 'arm64']) }).strict();

export function stagingRoot(config: HostConfig): string {
  return path.join(config.dataDir, 'staging');
}

/** The staging folder of a run, refused unless it is a real folder made by us inside the data dir. */
export async function stagingDir(config: HostConfig, stagingId: string): Promise<string> {
  const dir = inside(stagingRoot(config), stagingId);
  const st = await lstatOrUndefined(dir);
  if (!st || st.isSymbolicLink() || !st.isDirectory()) {
    throw refuse(FailureType.UnsafePath, `staging folder ${stagingId} is missing or not a real folder`);
  }
  return dir;
}

const downloadUrl = assetUrl;
export const SHA256 = z.string().regex(/^[0-9a-f]{64}$/);

/** Refuses a name that is not one of the release's own assets, or a gateway of another platform. */
export function checkAssetName(version: string, name: string, platform?: { os: string; arch: string }): void {
  const of = platform && gatewayPlatform(version, name);
  const otherPlatform = of ? of.os !== platform!.os || of.arch !== platform!.arch : false;
  if (!isReleaseAssetName(version, name) || otherPlatform) {
    throw refuse(FailureType.InvalidInput, `refusing asset name ${JSON.stringify(name.slice(0, 120))}`);
  }
}

// ------------------------------------------------------------------ staging

const CreateStagingInput = z.object({ runId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/) }).strict();
export type CreateStagingInput = z.input<typeof CreateStagingInput>;

/**
 * Activity: the private staging folder (0700) of one run, inside the data directory. Named after
 * the run, so that a retried attempt (the worker died after creating it, before its result was
 * recorded) finds the same folder instead of leaking another one.
 */
export async function createStaging(config: HostConfig, rawInput: unknown): Promise<{ stagingId: string }> {
  const { runId } = validated(CreateStagingInput, rawInput, 'createStaging');
  await ensureRealDir(config.dataDir, stagingRoot(config));
  const stagingId = `staging-${runId}`;
  const dir = inside(stagingRoot(config), stagingId);
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await lstatOrUndefined(dir);
    if (!st?.isDirectory() || st.isSymbolicLink())
      throw refuse(FailureType.UnsafePath, `staging folder ${stagingId} exists and is not a real folder`);
  }
  await fs.chmod(dir, 0o700);
  return { stagingId };
}

const RemoveStagingInput = z.object({ stagingId: STAGING_ID }).strict();
export type RemoveStagingInput = z.input<typeof RemoveStagingInput>;

/** Activity: removes a run's staging folder and anything it staged beside the binary. Idempotent. */
export async function removeStaging(config: HostConfig, rawInput: unknown): Promise<void> {
  const { stagingId } = validated(RemoveStagingInput, rawInput, 'removeStaging');
  killWarm(stagingId); // the run's warm interpreter (warm-python.ts), if the window did not use it
  const dir = inside(stagingRoot(config), stagingId);
  const st = await lstatOrUndefined(dir);
  if (st?.isSymbolicLink()) await fs.unlink(dir);
  else if (st) await fs.rm(dir, { recursive: true, force: true });
  await fs.rm(stagedBinaryPath(config, stagingId), { force: true });
}

// ------------------------------------------------------------------ pre-flight

const PreflightInput = z
  .object({
    version: VersionSchema,
    platform: PlatformSchema,
    names: z.array(z.string().max(256)).min(1).max(8),
    /** The sizes the release JSON declares for these assets: a HEAD that answers another size is refused. */
    declared: z
      .array(z.object({ name: z.string().max(256), size: z.number().int().nonnegative() }).strict())
      .max(8)
      .optional(),
  })
  .strict();
export type PreflightInput = z.input<typeof PreflightInput>;

/**
 * Activity: HEAD every asset the run needs; answers their sizes. Nothing is written. A release
 * without checksums.txt is refused unless the host allows it (then checksums.txt is left out).
 */
export async function preflight(config: HostConfig, rawInput: unknown): Promise<Array<{ name: string; size: number }>> {
  const input = validated(PreflightInput, rawInput, 'preflight');
  const n = assetNames(input.version);
  const out: Array<{ name: string; size: number }> = [];
  for (const name of input.names) {
    checkAssetName(input.version, name, input.platform);
    const res = await headAsset(config, input.version, name, `pre-flight of ${name}`);
    if (res.status === 404 && name === n.checksums) {
      if (!config.allowMissingChecksums) {
        throw refuse(
          FailureType.ChecksumsMissing,
          `pre-flight: the release has no checksums.txt; refusing downloads that cannot be verified (HTTP 404)`,
        );
      }
      activityContext()?.log.warn(
        `NOT VERIFIED: release ${input.version} has no checksums.txt and this host allows missing checksums (DEFENSECLAW_ALLOW_MISSING_CHECKSUMS=1)`,
      );
      continue;
    }
    if (res.status === 404)
      throw refuse(FailureType.NotFound, `pre-flight: ${name} is missing from release ${input.version} (HTTP 404)`);
    if (res.status !== 200) throw new Error(`pre-flight: ${name} answered HTTP ${res.status}`);
    const size = Number(res.headers['content-length'] ?? NaN);
    if (!Number.isFinite(size) || size < 0) throw refuse(FailureType.InvalidInput, `pre-flight: ${name} has no length`);
    if (size > config.http.maxArtifactBytes) {
      throw refuse(
        FailureType.TooLarge,
        `pre-flight: ${name} is ${size} bytes, over the ${config.http.maxArtifactBytes}-byte cap`,
      );
    }
    const declared = input.declared?.find((d) => d.name === name);
    if (input.declared && declared?.size !== size) {
      throw refuse(
        declared && size > declared.size ? FailureType.TooLarge : FailureType.InvalidInput,
        declared
          ? `pre-flight: ${name} is ${size} bytes but the release declares ${declared.size}; refused`
          : `pre-flight: ${name} is not listed in release ${input.version}; refused`,
      );
    }
    out.push({ name, size });
  }
  return out;
}

// ------------------------------------------------------------------ checksums

export { parseChecksums };

async function expectedDigest(config: HostConfig, dir: string, name: string): Promise<string | undefined> {
  const file = path.join(dir, 'checksums.txt');
  const st = await lstatOrUndefined(file);
  if (!st?.isFile()) {
    if (config.allowMissingChecksums) return undefined;
    throw refuse(FailureType.ChecksumsMissing, `refusing ${name}: the release has no checksums.txt`);
  }
  const digest = parseChecksums(await fs.readFile(file, 'utf8')).get(name);
  if (!digest && !config.allowMissingChecksums) {
    throw refuse(FailureType.ChecksumsMissing, `refusing ${name}: checksums.txt has no line for it`);
  }
  return digest;
}

// ------------------------------------------------------------------ download

const DownloadInput = z
  .object({
    version: VersionSchema,
    stagingId: STAGING_ID,
    name: z.string().max(256),
    size: z.number().int().nonnegative(),
    /** checksums.txt itself (and its signature) is not in checksums.txt. */
    verify: z.boolean(),
    /** The SHA-256 the release layout expects (checksums.txt line or GitHub's digest); else read from the staged checksums.txt. */
    sha256: SHA256.optional(),
  })
  .strict();
export type DownloadInput = z.input<typeof DownloadInput>;

export interface DownloadProgressDetails {
  name: string;
  offset: number;
  total: number;
}

/**
 * Activity: streams one asset into staging. SHA-256 is computed while it streams; a retried
 * attempt resumes from the bytes already on disk with a Range request. A body longer than
 * declared is cut and refused. Answers the digest, checked against checksums.txt.
 */
export async function downloadArtifact(config: HostConfig, rawInput: unknown): Promise<ArtifactInfo> {
  const input = validated(DownloadInput, rawInput, 'downloadArtifact');
  const dir = await stagingDir(config, input.stagingId);
  checkAssetName(input.version, input.name);
  const total = input.size;
  if (total > config.http.maxArtifactBytes) throw refuse(FailureType.TooLarge, `${input.name} exceeds the size cap`);

  const final = inside(dir, input.name);
  const part = `${final}.part`;
  const expected = input.sha256 ?? (input.verify ? await expectedDigest(config, dir, input.name) : undefined);

  // Resume: the bytes already on disk (a previous attempt heartbeated how far it got).
  const prior = lastHeartbeat<DownloadProgressDetails>();
  const st = await lstatOrUndefined(part);
  if (st && (!st.isFile() || st.isSymbolicLink()))
    throw refuse(FailureType.UnsafePath, `refusing ${part}: not a regular file`);
  let offset = st && st.size <= total ? st.size : 0;
  if (st && offset === 0) await fs.rm(part, { force: true });
  const hash = createHash('sha256');
  if (offset > 0) {
    for await (const c of createReadStream(part)) hash.update(c as Buffer);
    activityContext()?.log.info(`resuming ${input.name} at byte ${offset} of ${total}`, {
      heartbeatOffset: prior?.offset,
    });
  }

  if (offset < total || total === 0) {
    const url = downloadUrl(config, input.version, input.name);
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res;
    try {
      res = await httpRequest(config, url, {
        headers,
        allowedHosts: config.releases.allowedHosts,
        signal: cancellationSignal(),
      });
    } catch (err) {
      if ((err as { type?: string }).type) throw err;
      throw new Error(`download of ${input.name} failed: ${describeHttpError(err, url)}`);
    }
    if (res.status === 404) {
      await res.body.dump();
      throw refuse(FailureType.NotFound, `${input.name} is missing from release ${input.version} (HTTP 404)`);
    }
    if (offset > 0 && res.status === 200) {
      // The server ignored the Range: start over.
      offset = 0;
      return restartDownload(config, rawInput, part);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body.dump();
      throw new Error(`download of ${input.name} answered HTTP ${res.status}`);
    }
    if (res.status === 206 && !new RegExp(`^bytes ${offset}-`).test(res.headers['content-range'] ?? '')) {
      await res.body.dump();
      await fs.rm(part, { force: true });
      throw new Error(`download of ${input.name}: the server answered a different range; starting over`);
    }
    // Every chunk is written (awaited) before the next is read, so whatever arrived before a
    // cut is on disk for the next attempt to resume from.
    const out = await fs.open(part, offset > 0 ? 'a' : 'w', 0o600);
    let lastBeat = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (offset + chunk.length > total) {
          throw refuse(FailureType.TooLarge, `${input.name} is larger than its declared ${total} bytes; refused`);
        }
        await out.write(chunk);
        hash.update(chunk);
        offset += chunk.length;
        const now = Date.now();
        if (now - lastBeat > 200) {
          heartbeat({ name: input.name, offset, total } satisfies DownloadProgressDetails);
          lastBeat = now;
        }
      }
      await out.sync();
    } catch (err) {
      heartbeat({ name: input.name, offset, total } satisfies DownloadProgressDetails);
      if ((err as { type?: string }).type === FailureType.TooLarge) await fs.rm(part, { force: true });
      if ((err as { type?: string }).type) throw err;
      throw new Error(
        `download of ${input.name} was cut at byte ${offset} of ${total}: ${describeHttpError(err, res.url)}`,
      );
    } finally {
      await out.close();
      res.body.destroy();
    }
  }
  if (offset !== total) throw new Error(`download of ${input.name} ended at byte ${offset} of ${total}`);
  heartbeat({ name: input.name, offset, total } satisfies DownloadProgressDetails);

  const sha256 = hash.digest('hex');
  if (expected !== undefined && sha256 !== expected) {
    await fs.rm(part, { force: true });
    throw refuse(
      FailureType.ChecksumMismatch,
      `checksum mismatch for ${input.name}: expected ${expected}, got ${sha256}; nothing was installed`,
    );
  }
  if (expected === undefined && (input.verify || input.sha256 !== undefined)) {
    activityContext()?.log.warn(`NOT VERIFIED: ${input.name} has no checksum and the host allows missing checksums`);
  }
  await fs.rename(part, final);
  return { name: input.name, size: total, sha256 };
}

async function restartDownload(config: HostConfig, rawInput: unknown, part: string): Promise<ArtifactInfo> {
  await fs.rm(part, { force: true });
  return downloadArtifact(config, rawInput);
}

/** Where a run stages the new gateway: beside the target, so the swap is one rename. */
export function stagedBinaryPath(config: HostConfig, stagingId: string): string {
  return path.join(config.binDir, `.defenseclaw-gateway.${stagingId}.new`);
}
