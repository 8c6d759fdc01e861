/**
 * A hop's first steps, before anything live changes: pre-flight HEADs of the release files, the
 * downloads checked against the digests the release layout expects, the signature, and staging the
 * new gateway and Python environment. Which files, and what each is checked against, is the
 * release's era's business (workflows/eras/hop-files.ts); this module runs the steps.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { ResolvedRelease } from '../../activities/releases.js';
import { hopDownloads } from '../eras/hop-files.js';
import { heartbeating, network } from '../proxies.js';
import type { HostRun } from '../run.js';
import type { ArtifactInfo, Platform } from '../types.js';

/** Pre-flight, downloads checked against the digests the release layout expects, signature, staging. */
export async function prepare(
  run: HostRun,
  a: { to: string; platform: Platform; stagingId: string; release: ResolvedRelease },
): Promise<{ gatewaySha256: string; gatewayStamp?: string; venvId: string }> {
  const files = hopDownloads(a.release, a.to, a.platform);
  if ('unsupported' in files) throw ApplicationFailure.nonRetryable(files.unsupported, 'UnsupportedPlatform');
  const { names, signed } = files;
  const sizes = await run.step('preflight', `HEAD ${names.length} release assets`, (o) =>
    network.preflight.executeWithOptions(o, [{ version: a.to, platform: a.platform, names, declared: files.declared }]),
  );
  for (const { name, size } of sizes) {
    const verify = files.verify(name);
    const sha256 = files.sha256(name);
    const info: ArtifactInfo = await run.step('download', `download ${name}`, (o) =>
      heartbeating.downloadArtifact.executeWithOptions(o, [
        { version: a.to, stagingId: a.stagingId, name, size, verify, ...(sha256 ? { sha256 } : {}) },
      ]),
    );
    if (verify) run.artifacts.push(info);
  }
  const sig = await run.step('verify', 'verify checksums.txt signature (cosign)', (o) =>
    heartbeating.verifySignature.executeWithOptions(o, [{ version: a.to, stagingId: a.stagingId, signed }]),
  );
  run.signature = sig.signature;
  run.noteSignature(sig.signature);
  const staged = await run.step('stage', `extract and stage defenseclaw-gateway ${a.to}`, (o) =>
    heartbeating.stageGateway.executeWithOptions(o, [
      { version: a.to, stagingId: a.stagingId, platform: a.platform, ...files.gateway },
    ]),
  );
  const venv = await run.step('stage', `prepare Python environment with defenseclaw ${a.to}`, (o) =>
    heartbeating.prepareVenv.executeWithOptions(o, [{ version: a.to, stagingId: a.stagingId, ...files.wheel }]),
  );
  return { gatewaySha256: staged.sha256, gatewayStamp: staged.stamp, venvId: venv.venvId };
}
