/**
 * The signed stable channel of DefenseClaw (from 0.8.8): `stable.txt` on the `release-channel`
 * branch, parsed exactly as the real client parses it (`cli/defenseclaw/release_channel.py@0.8.10`
 * `parse_channel` / `validate_channel`): fixed-order ASCII `name=value` lines, every derived field
 * re-derived and compared, and the bytes re-rendered and compared so that a duplicate, reordered,
 * redirected or extra field fails closed. Also the GitHub ref answer that locates the branch's
 * commit (`_release_channel_commit_from_ref`), and the legacy cosign bundle beside stable.txt.
 *
 * Pure: no I/O.
 */
import { isVersion } from '../../workflows/types.js';

export const CHANNEL_BRANCH = 'release-channel';
export const CHANNEL_FILE = 'stable.txt';
export const CHANNEL_BUNDLE = 'stable.txt.bundle';
export const CHANNEL_SCHEMA = 'defenseclaw-release-channel-v1';
/** `MAX_CHANNEL_BYTES` and `_RELEASE_CHANNEL_BUNDLE_MAX_BYTES` of the real client. */
export const MAX_CHANNEL_BYTES = 16 * 1024;
export const MAX_BUNDLE_BYTES = 64 * 1024;
export const MAX_REF_BYTES = 64 * 1024;

export const FIELD_ORDER = [
  'schema',
  'channel',
  'repository',
  'target_version',
  'target_tag',
  'target_ref',
  'target_commit',
  'resolver_name',
  'resolver_url',
  'resolver_sha256',
  'posix_installer_name',
  'posix_installer_url',
  'posix_installer_sha256',
  'windows_installer_name',
  'windows_installer_url',
  'windows_installer_sha256',
] as const;
export type ChannelField = (typeof FIELD_ORDER)[number];
export type ChannelDocument = Record<ChannelField, string>;

/** Why a channel document, ref or bundle is refused (one line). */
export class ChannelError extends Error {
  override readonly name = 'ChannelError';
}

const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const REPOSITORY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** `release_asset_url`: the only URL the channel may name for an asset (always github.com). */
export function releaseAssetUrl(repository: string, version: string, name: string): string {
  return `https://github.com/${repository}/releases/download/${version}/${name}`;
}

/** The channel's fields rendered in the canonical order (what is signed). */
export function renderChannel(doc: ChannelDocument): Buffer {
  return Buffer.from(FIELD_ORDER.map((k) => `${k}=${doc[k]}\n`).join(''), 'ascii');
}

/** `validate_channel`: every fixed and derived field is what the schema says. */
export function validateChannel(doc: ChannelDocument): ChannelDocument {
  const fail = (why: string): never => {
    throw new ChannelError(why);
  };
  if (doc.schema !== CHANNEL_SCHEMA) fail(`unsupported channel schema: ${JSON.stringify(doc.schema.slice(0, 60))}`);
  if (doc.channel !== 'stable') fail(`unsupported release channel: ${JSON.stringify(doc.channel.slice(0, 60))}`);
  const repo = doc.repository;
  if (!REPOSITORY.test(repo) || repo.includes('..')) fail('repository is not a canonical owner/name slug');
  const v = doc.target_version;
  if (!isVersion(v)) fail(`target version must be canonical X.Y.Z: ${JSON.stringify(String(v).slice(0, 40))}`);
  if (doc.target_tag !== v) fail('channel target tag does not equal target version');
  if (doc.target_ref !== `refs/tags/${v}`) fail('channel target ref is not the exact immutable tag ref');
  if (!COMMIT.test(doc.target_commit)) fail('channel target commit is not a lowercase Git object ID');
  const assets: Array<[string, ChannelField, ChannelField, ChannelField]> = [
    ['defenseclaw-upgrade.sh', 'resolver_name', 'resolver_url', 'resolver_sha256'],
    ['install.sh', 'posix_installer_name', 'posix_installer_url', 'posix_installer_sha256'],
    ['install.ps1', 'windows_installer_name', 'windows_installer_url', 'windows_installer_sha256'],
  ];
  for (const [name, nameField, urlField, shaField] of assets) {
    if (doc[nameField] !== name) fail(`channel ${nameField} is not ${name}`);
    if (doc[urlField] !== releaseAssetUrl(repo, v, name))
      fail(`channel ${urlField} is not derived from repository and tag`);
    if (!SHA256.test(doc[shaField])) fail(`channel ${shaField} is not a lowercase SHA-256`);
  }
  return doc;
}

/** `parse_channel`: only the exact canonical encoding is accepted. */
export function parseChannel(payload: Buffer): ChannelDocument {
  if (payload.length === 0 || payload.length > MAX_CHANNEL_BYTES)
    throw new ChannelError('channel document has invalid size');
  if (payload.includes(0) || payload.includes(0x0d) || payload[payload.length - 1] !== 0x0a)
    throw new ChannelError('channel document must be NUL-free canonical LF text');
  if ([...payload].some((b) => b > 0x7f)) throw new ChannelError('channel document must contain only ASCII');
  const lines = payload.toString('ascii').slice(0, -1).split('\n');
  if (lines.length !== FIELD_ORDER.length)
    throw new ChannelError(`channel document must contain exactly ${FIELD_ORDER.length} fields`);
  const doc = {} as ChannelDocument;
  FIELD_ORDER.forEach((name, i) => {
    const line = lines[i]!;
    if (!line.startsWith(`${name}=`)) throw new ChannelError(`channel field order mismatch: expected ${name}`);
    const value = line.slice(name.length + 1);
    if (!value) throw new ChannelError(`channel field ${name} is empty`);
    doc[name] = value;
  });
  validateChannel(doc);
  if (!renderChannel(doc).equals(payload)) throw new ChannelError('channel document is not canonically encoded');
  return doc;
}

/**
 * `_release_channel_commit_from_ref`: GitHub's answer to `GET /repos/{repo}/git/ref/heads/release-channel`
 * must hold exactly one 40-hex `"sha"`, name the exact branch and a commit; that commit is the only
 * locator of the files (an unsigned locator: the signature is what authenticates them).
 */
export function commitFromRef(payload: Buffer): string {
  const shas = [...payload.toString('utf8').matchAll(/"sha"\s*:\s*"([0-9a-f]{40})"/g)];
  if (shas.length !== 1) throw new ChannelError('release channel ref response lacks exactly one canonical commit ID');
  let doc: { ref?: unknown; object?: { type?: unknown; sha?: unknown } };
  try {
    doc = JSON.parse(payload.toString('utf8')) as typeof doc;
  } catch {
    throw new ChannelError('release channel ref response is invalid JSON');
  }
  if (!doc || typeof doc !== 'object' || doc.ref !== `refs/heads/${CHANNEL_BRANCH}`)
    throw new ChannelError('release channel ref response does not name the exact branch');
  if (!doc.object || doc.object.type !== 'commit')
    throw new ChannelError('release channel ref response does not name a commit');
  const sha = doc.object.sha;
  if (typeof sha !== 'string' || !COMMIT.test(sha) || sha !== shas[0]![1])
    throw new ChannelError('release channel ref response commit binding is ambiguous');
  return sha;
}

/** The parts of cosign's legacy bundle (`sign-blob --bundle`, cosign 2.x) a local check uses. */
export interface LegacyBundle {
  /** base64 DER ECDSA signature of the blob. */
  signature: string;
  /** The certificate, PEM (the bundle holds it base64-encoded). */
  certificatePem: string;
  /** The sha256 the transparency-log entry (hashedrekord body) says was signed, when present. */
  loggedSha256?: string;
  /** The signature the log entry holds, when present. */
  loggedSignature?: string;
}

export function parseLegacyBundle(payload: Buffer): LegacyBundle {
  let doc: {
    base64Signature?: unknown;
    cert?: unknown;
    rekorBundle?: { Payload?: { body?: unknown } };
  };
  try {
    doc = JSON.parse(payload.toString('utf8')) as typeof doc;
  } catch {
    throw new ChannelError(`${CHANNEL_BUNDLE} is not JSON`);
  }
  if (typeof doc?.base64Signature !== 'string' || typeof doc.cert !== 'string')
    throw new ChannelError(`${CHANNEL_BUNDLE} lacks base64Signature or cert`);
  const certificatePem = Buffer.from(doc.cert, 'base64').toString('utf8');
  if (!certificatePem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ChannelError(`${CHANNEL_BUNDLE} cert is not a base64 PEM certificate`);
  const out: LegacyBundle = { signature: doc.base64Signature, certificatePem };
  const body = doc.rekorBundle?.Payload?.body;
  if (typeof body === 'string') {
    try {
      const entry = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as {
        spec?: { data?: { hash?: { algorithm?: string; value?: string } }; signature?: { content?: string } };
      };
      if (entry.spec?.data?.hash?.algorithm === 'sha256') out.loggedSha256 = entry.spec.data.hash.value;
      if (typeof entry.spec?.signature?.content === 'string') out.loggedSignature = entry.spec.signature.content;
    } catch {
      throw new ChannelError(`${CHANNEL_BUNDLE} holds a transparency-log entry that is not JSON`);
    }
  }
  return out;
}
