/**
 * Resolving a release: the GitHub releases API (or a server that speaks it), read as untrusted
 * input, then its checksums.txt and upgrade-manifest.json (small files from the download host), so
 * that release-eras.ts can decide what the release is before anything large is downloaded. The
 * token authenticates API calls only; rate limits are waited out when short.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { HostConfig } from '../worker/host-config.js';
import type { ReleaseLayout } from '../workflows/release-layout.js';
import { VersionSchema, compareVersions, isVersion, type Platform } from '../workflows/types.js';
import { describeHttpError, httpRequest, type HttpResponse } from './http.js';
import { COMMON_NAMES } from '../workflows/eras/era.js';
import { tarballName, wheelName } from '../workflows/eras/goreleaser.js';
import {
  CHECKSUMS,
  MANIFEST,
  classifyRelease,
  digestOf,
  isReleaseAssetName,
  parseChecksums,
  parseUpgradeManifest,
} from './release-eras.js';
import {
  FailureType,
  activityContext,
  cancellationSignal,
  heartbeat,
  refuse,
  scrub,
  sleep,
  validated,
} from './support.js';

/** The longest rate-limit wait we sit through; anything longer fails with advice. */
export const MAX_RATE_LIMIT_WAIT_S = 90;
/** The largest API answer we read. */
const MAX_API_BYTES = 4 * 1024 * 1024;

const ReleaseJson = z.object({
  tag_name: z.string().max(64),
  draft: z.boolean().optional().default(false),
  prerelease: z.boolean().optional().default(false),
  published_at: z.string().max(64).nullable().optional(),
  assets: z
    .array(
      z.object({
        name: z.string().max(256),
        size: z.number().int().nonnegative(),
        /** `sha256:<hex>`, which GitHub computes for every asset. */
        digest: z.string().max(200).nullish(),
      }),
    )
    .max(1000),
});

export const ResolveInput = z.object({ version: VersionSchema.optional() }).strict();

export interface ResolvedRelease {
  version: string;
  publishedAt?: string;
  /** Asset names that have the exact shape of this release's assets, with declared sizes and digests. */
  assets: Array<{ name: string; size: number; digest?: string }>;
  /** True when checksums.txt.sig and .pem are published. */
  signed: boolean;
  /** What the release is (era, assets, verification, signature, manifest); set by resolveRelease. */
  layout?: ReleaseLayout;
}

/**
 * A release's files around its payloads, and its canonical gateway archives and wheel (the names of
 * runs recorded before release layouts). Which names a release may carry: workflows/eras/index.ts.
 */
export function assetNames(version: string) {
  return {
    ...COMMON_NAMES,
    tarball: (p: Platform) => tarballName(version, p),
    wheel: wheelName(version),
    gateway: (os: Platform['os'], arch: Platform['arch']) => tarballName(version, { os, arch }),
  };
}

export function parseRelease(json: unknown, requested?: string): ResolvedRelease {
  const r = ReleaseJson.safeParse(json);
  if (!r.success) throw refuse(FailureType.InvalidInput, 'the release server answered JSON that is not a release');
  const tag = r.data.tag_name.startsWith('v') ? r.data.tag_name.slice(1) : r.data.tag_name;
  if (!isVersion(tag)) {
    throw refuse(
      FailureType.InvalidInput,
      `release tag ${JSON.stringify(r.data.tag_name.slice(0, 40))} is not a MAJOR.MINOR.PATCH version`,
    );
  }
  if (requested && tag !== requested) {
    throw refuse(FailureType.VersionMismatch, `asked for release ${requested}, the server answered ${tag}`);
  }
  if (r.data.draft || (!requested && r.data.prerelease)) {
    throw refuse(FailureType.InvalidInput, `release ${tag} is a draft or prerelease`);
  }
  // An asset name that is a path (GitHub never publishes one) means the server is hostile.
  const pathLike = r.data.assets.find(
    (a) => /[/\\]/.test(a.name) || a.name === '.' || a.name === '..' || [...a.name].some((c) => c < ' '),
  );
  if (pathLike) {
    throw refuse(
      FailureType.InvalidInput,
      `release ${tag} lists an asset name ${JSON.stringify(pathLike.name.slice(0, 80))} that is a path; refusing the release`,
    );
  }
  const assets = r.data.assets
    .filter((a) => isReleaseAssetName(tag, a.name))
    .map((a) => ({ name: a.name, size: a.size, ...(a.digest ? { digest: a.digest } : {}) }));
  const names = new Set(assets.map((a) => a.name));
  const n = assetNames(tag);
  return {
    version: tag,
    publishedAt: r.data.published_at ?? undefined,
    assets,
    signed: names.has(n.signature) && names.has(n.certificate),
  };
}

function apiUrl(config: HostConfig, version?: string): string {
  const base = `${config.releases.apiBase}/repos/${config.releases.repo}/releases`;
  return version ? `${base}/tags/${encodeURIComponent(version)}` : `${base}/latest`;
}

/** Seconds until the rate limit resets, from GitHub's headers; undefined when not rate limited. */
export function rateLimitWait(status: number, headers: Record<string, string>, nowMs: number): number | undefined {
  if (status !== 403 && status !== 429) return undefined;
  const retryAfter = headers['retry-after'];
  if (retryAfter !== undefined && /^\d+$/.test(retryAfter)) return Number(retryAfter);
  if (headers['x-ratelimit-remaining'] === '0' && /^\d+$/.test(headers['x-ratelimit-reset'] ?? '')) {
    return Math.max(0, Number(headers['x-ratelimit-reset']) - Math.floor(nowMs / 1000));
  }
  return status === 429 ? 60 : undefined;
}

async function readJson(body: AsyncIterable<Buffer>): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > MAX_API_BYTES) throw refuse(FailureType.TooLarge, 'the release API answer is too large');
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw refuse(FailureType.InvalidInput, 'the release API answered something that is not JSON');
  }
}

/** Activity: the release to install (the given version, or the latest). */
export async function resolveRelease(config: HostConfig, rawInput: unknown): Promise<ResolvedRelease> {
  const input = validated(ResolveInput, rawInput, 'resolveRelease');
  const release = await fetchRelease(config, input.version);
  return { ...release, layout: (await readLayout(config, release)).layout };
}

/** The releases API's answer for a version (or the latest), parsed: the one API call of a resolve. */
export async function fetchRelease(config: HostConfig, version?: string): Promise<ResolvedRelease> {
  const json = await apiGetJson(
    config,
    apiUrl(config, version),
    version ? `release ${version} not found in ${config.releases.repo}` : `no release found in ${config.releases.repo}`,
  );
  return parseRelease(json, version);
}

/**
 * One GET of the releases API (token attached, short rate limits waited out), parsed as JSON.
 * A 404 is refused with `notFound`; any other status but 200 is a retryable error.
 */
export async function apiGetJson(config: HostConfig, url: string, notFound: string): Promise<unknown> {
  const token = config.githubToken();
  const headers: Record<string, string> = {
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const apiHost = new URL(config.releases.apiBase).host;

  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await httpRequest(config, url, { headers, allowedHosts: [apiHost], signal: cancellationSignal() });
    } catch (err) {
      if ((err as { type?: string }).type) throw err;
      throw new Error(scrub(describeHttpError(err, url), [token]));
    }
    const wait = rateLimitWait(res.status, res.headers, Date.now());
    if (wait !== undefined) {
      await res.body.dump();
      const hint = token
        ? 'the token is rate limited too; try again later'
        : 'set GITHUB_TOKEN or GH_TOKEN to raise the limit';
      if (wait > MAX_RATE_LIMIT_WAIT_S || attempt >= 2) {
        throw refuse(FailureType.RateLimited, `GitHub API rate limit exceeded (resets in ${wait} s); ${hint}`);
      }
      activityContext()?.log.warn(`GitHub API rate limited; waiting ${wait} s for the reset`);
      for (let waited = 0; waited < wait; waited++) {
        heartbeat({ rateLimitedFor: wait - waited });
        await sleep(1000, cancellationSignal());
      }
      continue;
    }
    if (res.status === 404) {
      await res.body.dump();
      throw refuse(FailureType.NotFound, notFound);
    }
    if (res.status === 401) {
      await res.body.dump();
      throw refuse(
        FailureType.InvalidInput,
        'the release API refused the credentials (401); check GITHUB_TOKEN / GH_TOKEN',
      );
    }
    if (res.status !== 200) {
      await res.body.dump();
      throw new Error(`release API answered HTTP ${res.status} for ${config.releases.repo}`);
    }
    return readJson(res.body);
  }
}

/** The largest checksums.txt / upgrade-manifest.json we read. */
const MAX_SMALL_ASSET = 1024 * 1024;

/**
 * URL of a release asset: on the host's mirror when its configuration names one
 * (`<mirror>/<tag>/<name>`), else on the download host (GitHub answers that path, which is not the
 * rate-limited API, with a 302 to its asset host).
 */
export function assetUrl(config: HostConfig, version: string, name: string): string {
  const file = `${encodeURIComponent(version)}/${encodeURIComponent(name)}`;
  if (config.releases.mirror) return `${config.releases.mirror}/${file}`;
  return `${config.releases.downloadBase}/${config.releases.repo}/releases/download/${file}`;
}

/** HEADs a release asset on the host's source (the body drained); `what` names the request in errors. */
export async function headAsset(
  config: HostConfig,
  version: string,
  name: string,
  what: string,
): Promise<HttpResponse> {
  const url = assetUrl(config, version, name);
  let res;
  try {
    res = await httpRequest(config, url, {
      method: 'HEAD',
      allowedHosts: config.releases.allowedHosts,
      signal: cancellationSignal(),
    });
  } catch (err) {
    if ((err as { type?: string }).type) throw err;
    throw new Error(`${what} failed: ${describeHttpError(err, url)}`);
  }
  await res.body.dump();
  return res;
}

/** Fetches a small asset whole (never with the API token), with its SHA-256. */
function fetchSmallAsset(config: HostConfig, version: string, name: string) {
  return fetchSmallFile(config, assetUrl(config, version, name), {
    label: `${name} of release ${version}`,
    allowedHosts: config.releases.allowedHosts,
  });
}

/**
 * Fetches a small file whole (never with the API token): at most `maxBytes` (default 1 MiB),
 * from `allowedHosts` only, with its SHA-256. A 404 is refused (NotFound), other statuses retried.
 */
export async function fetchSmallFile(
  config: HostConfig,
  url: string,
  opts: { label: string; allowedHosts: string[]; maxBytes?: number },
) {
  const max = opts.maxBytes ?? MAX_SMALL_ASSET;
  let res;
  try {
    res = await httpRequest(config, url, { allowedHosts: opts.allowedHosts, signal: cancellationSignal() });
  } catch (err) {
    if ((err as { type?: string }).type) throw err;
    throw new Error(`fetching ${opts.label} failed: ${describeHttpError(err, url)}`);
  }
  if (res.status !== 200) {
    await res.body.dump();
    if (res.status === 404) throw refuse(FailureType.NotFound, `${opts.label} is missing (HTTP 404)`);
    throw new Error(`fetching ${opts.label} answered HTTP ${res.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) {
      res.body.destroy();
      throw refuse(FailureType.TooLarge, `${opts.label} is larger than ${max} bytes`);
    }
    chunks.push(c);
  }
  const data = Buffer.concat(chunks);
  return { data, sha256: createHash('sha256').update(data).digest('hex') };
}

/** A file's expected SHA-256: its checksums.txt line, else GitHub's digest; both present must agree. */
function expectedDigest(release: ResolvedRelease, name: string, checksums?: string): string | undefined {
  const listed = checksums ? parseChecksums(checksums).get(name) : undefined;
  const digest = digestOf(release.assets.find((a) => a.name === name)?.digest);
  if (listed && digest && listed !== digest) {
    throw refuse(
      FailureType.ChecksumMismatch,
      `checksums.txt and GitHub's digest disagree for ${name}; refusing the release`,
    );
  }
  return listed ?? digest;
}

/** What readLayout read: the layout, and the manifest file as fetched (for a release ticket). */
export interface ReadLayout {
  layout: ReleaseLayout;
  manifestFile?: { size: number; sha256: string };
}

/**
 * Reads checksums.txt and upgrade-manifest.json when the release lists them and decides the
 * release's layout. The manifest must match its checksums.txt line (or its digest). With
 * `pinChecksums` (a release ticket), checksums.txt itself must match the digest the release lists.
 */
export async function readLayout(
  config: HostConfig,
  release: ResolvedRelease,
  o: { pinChecksums?: boolean } = {},
): Promise<ReadLayout> {
  const has = (name: string) => release.assets.find((a) => a.name === name);
  const sumsAsset = has(CHECKSUMS);
  if (!sumsAsset) {
    activityContext()?.log.warn(
      `release ${release.version} has no checksums.txt: each file must be covered by GitHub's digest${config.allowMissingChecksums ? ', or goes NOT VERIFIED (DEFENSECLAW_ALLOW_MISSING_CHECKSUMS=1)' : ''}`,
    );
  }
  let checksums: { text: string; sha256: string; size: number } | undefined;
  if (sumsAsset) {
    const got = await fetchSmallAsset(config, release.version, CHECKSUMS);
    const pinned = digestOf(sumsAsset.digest);
    if (o.pinChecksums && pinned !== got.sha256) {
      throw refuse(
        FailureType.ChecksumMismatch,
        `checksum mismatch for ${CHECKSUMS} of release ${release.version}: expected ${pinned ?? 'a listed digest'}, got ${got.sha256}; refusing the release`,
      );
    }
    checksums = { text: got.data.toString('utf8'), sha256: got.sha256, size: got.data.length };
  }
  let manifest: ReturnType<typeof parseUpgradeManifest> | undefined;
  let manifestFile: ReadLayout['manifestFile'];
  if (has(MANIFEST)) {
    const got = await fetchSmallAsset(config, release.version, MANIFEST);
    manifestFile = { size: got.data.length, sha256: got.sha256 };
    // The manifest decides migrations and bridges: it is verified like any other file.
    const expected = expectedDigest(release, MANIFEST, checksums?.text);
    if (!expected && !config.allowMissingChecksums) {
      throw refuse(
        FailureType.ChecksumsMissing,
        `refusing ${MANIFEST}: neither checksums.txt nor GitHub's digest covers it`,
      );
    }
    if (expected && expected !== got.sha256) {
      throw refuse(
        FailureType.ChecksumMismatch,
        `checksum mismatch for ${MANIFEST} of release ${release.version}; refusing the release`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(got.data.toString('utf8'));
    } catch {
      throw refuse(FailureType.InvalidInput, `${MANIFEST} of release ${release.version} is not JSON`);
    }
    manifest = parseUpgradeManifest(json, release.version);
  }
  const layout = classifyRelease({
    version: release.version,
    assets: release.assets,
    checksums,
    manifest,
    repo: config.releases.repo,
    allowUnverified: config.allowMissingChecksums,
  });
  return { layout, ...(manifestFile ? { manifestFile } : {}) };
}

export { compareVersions };
