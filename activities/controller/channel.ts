/**
 * Resolving a release channel on the controller (a channel schedule's check):
 *
 * - `latest`: the releases API's latest release (resolveRelease: one API call, its checksums.txt
 *   and manifest read and classified as for any upgrade).
 * - `stable`: the signed channel of DefenseClaw 0.8.8+, found and verified as the real client
 *   finds it (`_download_authenticated_channel_pair`, cmd_upgrade.py@0.8.10): one API call for
 *   `git/ref/heads/release-channel`, then `stable.txt` and `stable.txt.bundle` from that exact
 *   commit (raw files, no token), then the bundle: its certificate must be the release workflow
 *   on main (`release.yaml@refs/heads/main`, issued by GitHub Actions), its signature must verify
 *   over the exact bytes of stable.txt, and its transparency-log entry must name those bytes and
 *   that signature; then `cosign verify-blob --bundle` when cosign is installed (the real client
 *   always uses cosign; without it this is refused unless the controller's operator set
 *   DEFENSECLAW_ALLOW_NO_COSIGN=1, as for a 0.8.4+ release). stable.txt is then parsed with the
 *   real contract (channel-document.ts) and must name this repository.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import type { Channel } from '../../workflows/fleet/channel-types.js';
import { CHANNELS } from '../../workflows/fleet/channel-types.js';
import {
  CHANNEL_BRANCH,
  CHANNEL_BUNDLE,
  CHANNEL_FILE,
  ChannelError,
  MAX_BUNDLE_BYTES,
  MAX_CHANNEL_BYTES,
  MAX_REF_BYTES,
  commitFromRef,
  parseChannel,
  parseLegacyBundle,
  type ChannelDocument,
} from './channel-document.js';
import { run, which } from '../exec.js';
import { OIDC_ISSUER } from '../../workflows/eras/era.js';
import { apiGetJson, fetchSmallFile, resolveRelease } from '../releases.js';
import { checkIdentity, readCertificate, signatureVerifies } from '../host/signature.js';
import { FailureType, activityContext, refuse, validated } from '../support.js';

/** Failure type of a channel that is missing, malformed, unsigned or signed by anyone else. */
export const CHANNEL_REFUSED = 'ChannelRefused';

const ResolveChannelInput = z.object({ channel: z.enum(CHANNELS) }).strict();
export type ResolveChannelInput = z.input<typeof ResolveChannelInput>;

export interface ResolvedChannel {
  channel: Channel;
  version: string;
  /** Where it came from: `releases/latest`, or `release-channel@<commit>`. */
  source: string;
  /** stable only: how far the signature was checked. */
  signature?: 'verified' | 'checked-locally';
}

/** The only identity the stable channel may be signed by (the real client's `_RELEASE_WORKFLOW_IDENTITY`). */
export function channelIdentity(repo: string): string {
  return `https://github.com/${repo}/.github/workflows/release.yaml@refs/heads/main`;
}

/** Activity: the version a channel names now. */
export async function resolveChannel(config: HostConfig, rawInput: unknown): Promise<ResolvedChannel> {
  const { channel } = validated(ResolveChannelInput, rawInput, 'resolveChannel');
  if (channel === 'latest') {
    const release = await resolveRelease(config, {});
    return { channel, version: release.version, source: 'releases/latest' };
  }
  return resolveStable(config);
}

async function resolveStable(config: HostConfig): Promise<ResolvedChannel> {
  const { repo, apiBase, channelBase } = config.releases;
  const ref = await apiGetJson(
    config,
    `${apiBase}/repos/${repo}/git/ref/heads/${CHANNEL_BRANCH}`,
    `${repo} publishes no stable channel (no ${CHANNEL_BRANCH} branch; the signed channel exists from DefenseClaw 0.8.8)`,
  ).catch(rethrowRefused);
  const refBytes = Buffer.from(JSON.stringify(ref));
  if (refBytes.length > MAX_REF_BYTES) throw refused('the release channel ref answer is too large');
  const commit = guard(() => commitFromRef(refBytes));
  const fetchRaw = (name: string, maxBytes: number) =>
    fetchSmallFile(config, `${channelBase}/${repo}/${commit}/${name}`, {
      label: `${name} of ${CHANNEL_BRANCH}@${commit.slice(0, 12)}`,
      allowedHosts: [new URL(channelBase).host],
      maxBytes,
    }).catch(rethrowRefused);
  const stable = (await fetchRaw(CHANNEL_FILE, MAX_CHANNEL_BYTES)).data;
  const bundleBytes = (await fetchRaw(CHANNEL_BUNDLE, MAX_BUNDLE_BYTES).catch(missingSignature)).data;
  const signature = await verifyChannelSignature(config, stable, bundleBytes);
  const doc = guard(() => parseChannel(stable));
  if (doc.repository !== repo)
    throw refused(`the stable channel names repository ${doc.repository}, not ${repo}; refusing it`);
  activityContext()?.log.info(
    `stable channel ${CHANNEL_BRANCH}@${commit.slice(0, 12)} names ${doc.target_version} (signature ${signature})`,
  );
  return { channel: 'stable', version: doc.target_version, source: `${CHANNEL_BRANCH}@${commit}`, signature };
}

/**
 * The bundle's certificate, signature and log entry against stable.txt's exact bytes, then cosign.
 * Exported for the tests that check it against the real 0.8.10 channel.
 */
export async function verifyChannelSignature(
  config: Pick<HostConfig, 'releases' | 'allowNoCosign' | 'commandEnv'>,
  stable: Buffer,
  bundleBytes: Buffer,
): Promise<'verified' | 'checked-locally'> {
  const bundle = guard(() => parseLegacyBundle(bundleBytes));
  const identity = channelIdentity(config.releases.repo);
  const cert = readCertificate(bundle.certificatePem, `${CHANNEL_BUNDLE}'s certificate`);
  try {
    checkIdentity(cert, [identity], CHANNEL_FILE);
  } catch (err) {
    throw refused((err as Error).message);
  }
  if (!signatureVerifies(stable, bundle.signature, cert))
    throw refused(
      `${CHANNEL_FILE}'s signature does not verify against its certificate: the file was changed after signing`,
    );
  const sha = createHash('sha256').update(stable).digest('hex');
  if (bundle.loggedSha256 !== undefined && bundle.loggedSha256.toLowerCase() !== sha)
    throw refused(`the transparency-log entry of ${CHANNEL_BUNDLE} names other bytes than ${CHANNEL_FILE}`);
  if (bundle.loggedSignature !== undefined && bundle.loggedSignature !== bundle.signature)
    throw refused(`the transparency-log entry of ${CHANNEL_BUNDLE} holds another signature`);

  const cosign = await which('cosign', config.commandEnv);
  if (!cosign) {
    if (!config.allowNoCosign)
      throw refused(
        `verifying the stable channel needs cosign (the transparency log), which is not installed; install cosign, or set DEFENSECLAW_ALLOW_NO_COSIGN=1 on the controller to accept the local check`,
      );
    activityContext()?.log.warn(
      `${CHANNEL_FILE}: identity and signature checked locally; cosign is not installed, so the Sigstore chain and transparency log were NOT verified`,
    );
    return 'checked-locally';
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'defenseclaw-channel-'));
  try {
    await fs.writeFile(path.join(dir, CHANNEL_FILE), stable, { mode: 0o600 });
    await fs.writeFile(path.join(dir, CHANNEL_BUNDLE), bundleBytes, { mode: 0o600 });
    const r = await run(
      cosign,
      [
        'verify-blob',
        '--bundle',
        path.join(dir, CHANNEL_BUNDLE),
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        OIDC_ISSUER,
        path.join(dir, CHANNEL_FILE),
      ],
      { env: config.commandEnv, timeoutMs: 60_000 },
    );
    if (r.exitCode !== 0) throw refused(`cosign did not verify ${CHANNEL_FILE}: ${r.output.slice(-300)}`);
    return 'verified';
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export type { ChannelDocument };

function refused(message: string) {
  return refuse(CHANNEL_REFUSED, `stable channel refused: ${message}`);
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ChannelError) throw refused(err.message);
    throw err;
  }
}

/** A refusal of the API or a raw fetch (404, too large, bad credentials) is a refused channel too. */
function rethrowRefused(err: unknown): never {
  const e = err as { type?: string; nonRetryable?: boolean; message?: string };
  if (e?.nonRetryable && e.type !== FailureType.RateLimited) throw refused(e.message ?? String(err));
  throw err;
}

function missingSignature(err: unknown): never {
  const e = err as { type?: string; message?: string };
  if (e?.type === CHANNEL_REFUSED && /HTTP 404/.test(e.message ?? ''))
    throw refused(`${CHANNEL_FILE} is not signed (no ${CHANNEL_BUNDLE} beside it)`);
  throw err;
}
