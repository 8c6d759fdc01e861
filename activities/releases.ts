/**
 * Resolving a release: the GitHub releases API (or a server that speaks it), read as untrusted
 * input. The token authenticates API calls only; rate limits are waited out when short.
 */
import { z } from 'zod';
import type { HostConfig } from '../worker/host-config.js';
import { VersionSchema, compareVersions, isVersion } from '../workflows/types.js';
import { describeHttpError, httpRequest } from './http.js';
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
      }),
    )
    .max(1000),
});

export const ResolveInput = z.object({ version: VersionSchema.optional() }).strict();

export interface ResolvedRelease {
  version: string;
  publishedAt?: string;
  /** Asset names that have the exact shape of this release's assets, with declared sizes. */
  assets: Array<{ name: string; size: number }>;
  /** True when checksums.txt.sig and .pem are published. */
  signed: boolean;
}

/** The exact asset names of a release; nothing else is ever downloaded. */
export function assetNames(version: string) {
  const checksums = 'checksums.txt';
  return {
    gateway: (os: string, arch: string) => `defenseclaw_${version}_${os}_${arch}.tar.gz`,
    wheel: `defenseclaw-${version}-py3-none-any.whl`,
    checksums,
    signature: `${checksums}.sig`,
    certificate: `${checksums}.pem`,
  };
}

function isExpectedAssetName(version: string, name: string): boolean {
  const n = assetNames(version);
  if ([n.wheel, n.checksums, n.signature, n.certificate].includes(name)) return true;
  return ['darwin', 'linux'].some((os) => ['amd64', 'arm64'].some((arch) => n.gateway(os, arch) === name));
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
  const assets = r.data.assets.filter((a) => isExpectedAssetName(tag, a.name));
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
  const url = apiUrl(config, input.version);
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
      throw refuse(
        FailureType.NotFound,
        input.version
          ? `release ${input.version} not found in ${config.releases.repo}`
          : `no release found in ${config.releases.repo}`,
      );
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
    return parseRelease(await readJson(res.body), input.version);
  }
}

export { compareVersions };
