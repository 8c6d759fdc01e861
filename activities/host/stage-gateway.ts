/**
 * Staging the new gateway beside the live one: extracted from the verified archive (a protected
 * payload decoded first), checked to report the target version, fsynced, and stamped so the swap
 * inside the window needs no second hash. Nothing live changes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { VersionSchema } from '../../workflows/types.js';
import { ensureRealDir, inside, readHead, sha256File } from '../fsutil.js';
import { payloadEra } from '../../workflows/eras/index.js';
import { isRefusalEnvelope } from '../release-eras.js';
import { assetNames } from '../releases.js';
import { run } from '../exec.js';
import { FailureType, refuse, validated } from '../support.js';
import { PlatformSchema, SHA256, STAGING_ID, checkAssetName, stagedBinaryPath, stagingDir } from './artifacts.js';
import { UnsafeArchiveError, extractGateway } from './extract.js';
import { decodeProtected } from './protected-artifact.js';

const StageGatewayInput = z
  .object({
    version: VersionSchema,
    stagingId: STAGING_ID,
    platform: PlatformSchema,
    /** The downloaded gateway asset (default: the canonical tarball); a `.dcgateway` is decoded first. */
    asset: z.string().max(256).optional(),
    /** Its verified SHA-256, checked again while a protected payload is decoded. */
    sha256: SHA256.optional(),
  })
  .strict();
export type StageGatewayInput = z.input<typeof StageGatewayInput>;

/**
 * The gateway archive to extract: the tarball itself, or a payload decoded beside it as its era
 * encodes it (workflows/eras/: a protected payload is `DEFENSECLAW-PROTECTED-ARTIFACT-V1\n` + archive
 * XOR 0xA5). A refusal envelope is never an archive.
 */
async function gatewayArchive(dir: string, version: string, asset: string, sha256?: string): Promise<string> {
  const file = inside(dir, asset);
  let archive = file;
  const encoding = payloadEra(version, asset)?.encoding;
  if (encoding?.kind === 'xor') {
    archive = inside(dir, 'gateway.decoded.tar.gz');
    await fs.rm(archive, { force: true });
    await decodeProtected(file, archive, sha256, encoding);
  }
  if (isRefusalEnvelope(await readHead(archive))) {
    throw refuse(
      FailureType.UnsafeArchive,
      `${asset} is a refusal envelope, not an archive: this release installs only from its protected payload`,
    );
  }
  return archive;
}

/**
 * Activity: extracts the gateway out of the verified tarball, checks that it reports the target
 * version, signs it on darwin, and stages it beside the live binary (fsynced). Nothing live changes.
 */
export async function stageGateway(config: HostConfig, rawInput: unknown): Promise<{ sha256: string; stamp?: string }> {
  const input = validated(StageGatewayInput, rawInput, 'stageGateway');
  const dir = await stagingDir(config, input.stagingId);
  const asset = input.asset ?? assetNames(input.version).gateway(input.platform.os, input.platform.arch);
  checkAssetName(input.version, asset, input.platform);
  const tarball = await gatewayArchive(dir, input.version, asset, input.sha256);
  const extracted = path.join(dir, 'defenseclaw');
  await fs.rm(extracted, { force: true });
  try {
    await extractGateway(tarball, extracted);
  } catch (err) {
    if (err instanceof UnsafeArchiveError)
      throw refuse(FailureType.UnsafeArchive, `${path.basename(tarball)}: ${err.message}`);
    throw err;
  }
  await fs.chmod(extracted, 0o755);
  if (input.platform.os === 'darwin') {
    const r = await run('codesign', ['-f', '-s', '-', extracted], { env: config.commandEnv, timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new Error(`codesign failed: ${r.output.slice(-300)}`);
  }
  const r = await run(extracted, ['--version'], { env: config.commandEnv, timeoutMs: 30_000 });
  const reported = /(\d+\.\d+\.\d+)/.exec(r.output)?.[1];
  if (r.exitCode !== 0 || reported !== input.version) {
    throw refuse(
      FailureType.VersionMismatch,
      `the new gateway reports ${reported ?? 'no version'} (exit ${r.exitCode}), expected ${input.version}`,
    );
  }
  await ensureRealDir(config.homeDir, config.binDir, 0o755).catch(async () =>
    fs.mkdir(config.binDir, { recursive: true }),
  );
  const staged = stagedBinaryPath(config, input.stagingId);
  await fs.rm(staged, { force: true });
  await fs.copyFile(extracted, staged, fs.constants.COPYFILE_EXCL);
  const fh = await fs.open(staged, 'r+');
  try {
    await fh.chmod(0o755);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { sha256: await sha256File(staged), stamp: await fileStamp(staged) };
}

/**
 * What identifies one state of a file without reading it: device, inode, size and the change and
 * modification times in nanoseconds. Any write, chmod, rename onto it or utimes moves its ctime,
 * which nothing but a clock change can set back: a file with the same stamp is the file that was hashed.
 */
export async function fileStamp(file: string): Promise<string> {
  const st = await fs.lstat(file, { bigint: true });
  return [st.dev, st.ino, st.size, st.ctimeNs, st.mtimeNs].join(':');
}
export const FILE_STAMP = /^[0-9]{1,20}(:[0-9]{1,30}){4}$/;
