/**
 * What a host's worker trusts, read once at start from its own environment and flags.
 *
 * A workflow can name a version, bounded options and IDs; everything else that decides what
 * runs on this machine (where releases come from, where files live, credentials) comes from
 * here and nowhere else.
 */
import os from 'node:os';
import path from 'node:path';
import {
  checkText,
  describeValue,
  InvalidInputError,
  parseHostName,
  taskQueueForHost,
  TASK_QUEUE_PREFIX,
  type TextRule,
} from '../workflows/names.js';
import { isWorkerTuning } from './runtime-tuning.js';
import { underLauncher, upgraderRootFrom } from './upgrader-root.js';

export const GITHUB_API = 'https://api.github.com';
export const GITHUB_WEB = 'https://github.com';
/** Where GitHub serves a branch's files (the signed stable channel, on branch release-channel). */
export const GITHUB_RAW = 'https://raw.githubusercontent.com';
export const DEFAULT_REPO = 'cisco-ai-defense/defenseclaw';
/** Hosts that GitHub redirects release downloads to. */
export const GITHUB_DOWNLOAD_HOSTS = [
  'github.com',
  'objects.githubusercontent.com',
  'release-assets.githubusercontent.com',
  'github-releases.githubusercontent.com',
];

export interface ReleaseSource {
  /** API base, e.g. https://api.github.com */
  apiBase: string;
  /** Base of asset downloads: `${downloadBase}/${repo}/releases/download/${ver}/${name}` */
  downloadBase: string;
  /** owner/name */
  repo: string;
  /** host[:port] entries that downloads (and their redirects) may reach. */
  allowedHosts: string[];
  /**
   * DEFENSECLAW_RELEASE_MIRROR: a base URL whose `<tag>/<name>` serves the release's files. When
   * set, every release file is downloaded from it instead of the download host (the releases API
   * is still asked when no rollout ticket names the release); each file is verified as before.
   */
  mirror?: string;
  /** Base of a branch's raw files: `${channelBase}/${repo}/${commit}/stable.txt` (the stable channel). */
  channelBase: string;
}

export const DEFAULT_NPM_REGISTRY = 'https://registry.npmjs.org';

/** Where this host gets a new defenseclaw-upgrade (its own configuration, never a workflow's). */
export interface UpgraderSource {
  /** DEFENSECLAW_UPGRADER_ROOT (or the default root). */
  root: string;
  /** This process runs under the launcher (DEFENSECLAW_UPGRADER_LAUNCHER=1 and the root set). */
  underLauncher: boolean;
  /** DEFENSECLAW_UPGRADER_BUNDLE_URL: `<base>/<v>/SHA256SUMS` and the platform bundle; preferred when set. */
  bundleUrl?: string;
  /** DEFENSECLAW_UPGRADER_REGISTRY (default https://registry.npmjs.org). */
  registry: string;
  /** Hosts downloads may reach: the mirror's or the registry's. */
  allowedHosts: string[];
}

export interface HostConfig {
  /** This host's name, as workflows address it. */
  host: string;
  taskQueue: string;
  /** The user's HOME on this host. */
  homeDir: string;
  /** DEFENSECLAW_HOME: config, state, backups, staging, the agent's files. */
  dataDir: string;
  /** Where defenseclaw-gateway and the defenseclaw symlink live (~/.local/bin). */
  binDir: string;
  /** OpenClaw's home (~/.openclaw). */
  openclawHome: string;
  releases: ReleaseSource;
  http: {
    /** Per-request timeout (headers and each body chunk). */
    requestTimeoutMs: number;
    maxRedirects: number;
    /** No artifact larger than this is accepted, whatever the release says. */
    maxArtifactBytes: number;
  };
  /** Set by the host's operator only: accept a release without checksums.txt (logged loudly). */
  allowMissingChecksums: boolean;
  /** Operator only: accept a 0.8.4+ release without a signature (DEFENSECLAW_ALLOW_UNSIGNED=1). */
  allowUnsigned: boolean;
  /** Operator only: accept a 0.8.4+ signature checked locally when cosign is not installed (DEFENSECLAW_ALLOW_NO_COSIGN=1). */
  allowNoCosign: boolean;
  /** Environment for commands run on the host (gateway, python, uv, openclaw): no credentials, none of the worker's tuning. */
  commandEnv: Record<string, string>;
  /**
   * The operator's own promotion check for ring rollouts (DEFENSECLAW_UPGRADE_CHECK: a JSON array,
   * program then arguments, run without a shell; exit 0 passes). Never from a workflow input.
   */
  operatorCheck?: { argv: string[]; timeoutMs: number };
  /** The GitHub token for API calls; a function so it is never serialized with the config. */
  githubToken: () => string | undefined;
  /** Where a new defenseclaw-upgrade comes from (updateUpgrader); loadHostConfig always sets it. */
  upgrader?: UpgraderSource;
}

// Checked with the WHATWG URL parser and two patterns, not a schema library: this runs at every
// worker's start, and an idle worker holds no schema library (issue 21).
const REPO: TextRule = {
  pattern: /^[A-Za-z0-9._-]{1,100}\/[A-Za-z0-9._-]{1,100}$/,
  message: 'expected owner/name',
};
const HOST_PORT: TextRule = {
  pattern: /^[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?$/,
  message: 'expected host or host:port',
};

/** An http(s) URL without credentials, trailing slashes removed; else a one-line InvalidInputError. */
export function httpUrl(input: string, what: string): string {
  const text = input.trim();
  // A refusal quotes the URL without what could be a user or password, whatever is wrong with it.
  const shown = text.replace(/^([a-z][\w+.-]*:\/\/)[^/?#]*@/i, '$1');
  const refuse = (why: string) => new InvalidInputError(`invalid ${what} ${describeValue(shown)}: ${why}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse('Invalid URL');
  }
  if (!/^https?:$/.test(url.protocol) || !url.hostname) throw refuse('must be an http(s) URL');
  // They would reach the logs (describeHostConfig) and, through a failed download's message, a
  // run's history.
  if (url.username || url.password) throw refuse('must not carry a user or password');
  return text.replace(/\/+$/, '');
}

/** Secrets that must never reach a child process or a log. */
const SECRET_ENV = ['GITHUB_TOKEN', 'GH_TOKEN', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CLIENT_KEY_DATA'];
/** gRPC metadata for Temporal (env-config) may carry credentials too (e.g. an authorization header). */
const isSecretEnv = (k: string) => SECRET_ENV.includes(k) || k.startsWith('TEMPORAL_GRPC_META_');

export interface HostConfigOverrides {
  host?: string;
  taskQueue?: string;
  releasesUrl?: string;
  downloadUrl?: string;
  repo?: string;
  allowedHosts?: string[];
  allowMissingChecksums?: boolean;
}

function hostOf(u: string): string {
  return new URL(u).host;
}

/** Reads the host's trusted configuration from an environment (default: this process's). */
export function loadHostConfig(env: NodeJS.ProcessEnv = process.env, overrides: HostConfigOverrides = {}): HostConfig {
  const homeDir = path.resolve(env.HOME || os.homedir());
  const dataDir = path.resolve(env.DEFENSECLAW_HOME || path.join(homeDir, '.defenseclaw'));
  const binDir = path.resolve(env.DEFENSECLAW_BIN_DIR || path.join(homeDir, '.local', 'bin'));
  const openclawHome = path.resolve(env.OPENCLAW_HOME || path.join(homeDir, '.openclaw'));

  const host = parseHostName(overrides.host ?? env.DEFENSECLAW_HOST ?? defaultHostName());
  const taskQueue = overrides.taskQueue ?? env.DEFENSECLAW_TASK_QUEUE ?? taskQueueForHost(host);
  if (!taskQueue.startsWith(TASK_QUEUE_PREFIX) && !/^[A-Za-z0-9@._:-]{1,200}$/.test(taskQueue)) {
    throw new Error(`invalid task queue ${JSON.stringify(taskQueue)}`);
  }

  const apiBase = httpUrl(overrides.releasesUrl ?? env.DEFENSECLAW_RELEASES_URL ?? GITHUB_API, 'releases URL');
  const customSource = apiBase !== GITHUB_API;
  const downloadBase = httpUrl(
    overrides.downloadUrl ?? env.DEFENSECLAW_DOWNLOAD_URL ?? (customSource ? apiBase : GITHUB_WEB),
    'download URL',
  );
  const repo = checkText(REPO, overrides.repo ?? env.DEFENSECLAW_REPO ?? DEFAULT_REPO, 'repository');
  const channelBase = httpUrl(env.DEFENSECLAW_CHANNEL_URL ?? (customSource ? downloadBase : GITHUB_RAW), 'channel URL');
  const allowedList =
    overrides.allowedHosts ??
    (env.DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS
      ? env.DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS.split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : customSource
        ? []
        : GITHUB_DOWNLOAD_HOSTS);
  const mirror = env.DEFENSECLAW_RELEASE_MIRROR
    ? httpUrl(env.DEFENSECLAW_RELEASE_MIRROR, 'release mirror URL')
    : undefined;
  const allowedHosts = [
    ...new Set([
      hostOf(downloadBase),
      ...(mirror ? [hostOf(mirror)] : []),
      ...allowedList.map((h) => checkText(HOST_PORT, h, 'allowed host')),
    ]),
  ];

  const token = (env.GITHUB_TOKEN || env.GH_TOKEN || '').trim() || undefined;
  const commandEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    // Neither a credential nor the worker's own runtime tuning (OpenClaw is a Node application too).
    if (v !== undefined && !isSecretEnv(k) && !isWorkerTuning(k, v)) commandEnv[k] = v;
  }
  commandEnv.HOME = homeDir;
  commandEnv.DEFENSECLAW_HOME = dataDir;

  return {
    host,
    taskQueue,
    homeDir,
    dataDir,
    binDir,
    openclawHome,
    releases: { apiBase, downloadBase, repo, allowedHosts, channelBase, ...(mirror ? { mirror } : {}) },
    http: {
      requestTimeoutMs: positiveInt(env.DEFENSECLAW_HTTP_TIMEOUT_MS, 30_000),
      maxRedirects: 5,
      maxArtifactBytes: positiveInt(env.DEFENSECLAW_MAX_ARTIFACT_BYTES, 512 * 1024 * 1024),
    },
    allowMissingChecksums: overrides.allowMissingChecksums ?? env.DEFENSECLAW_ALLOW_MISSING_CHECKSUMS === '1',
    allowUnsigned: env.DEFENSECLAW_ALLOW_UNSIGNED === '1',
    allowNoCosign: env.DEFENSECLAW_ALLOW_NO_COSIGN === '1',
    commandEnv,
    operatorCheck: parseOperatorCheck(env.DEFENSECLAW_UPGRADE_CHECK, env.DEFENSECLAW_UPGRADE_CHECK_TIMEOUT_MS),
    githubToken: () => token,
    upgrader: loadUpgraderSource(env),
  };
}

/** DEFENSECLAW_UPGRADER_ROOT, _BUNDLE_URL and _REGISTRY, validated. */
export function loadUpgraderSource(env: NodeJS.ProcessEnv = process.env): UpgraderSource {
  const bundleUrl = env.DEFENSECLAW_UPGRADER_BUNDLE_URL
    ? httpUrl(env.DEFENSECLAW_UPGRADER_BUNDLE_URL, 'upgrader bundle URL')
    : undefined;
  const registry = httpUrl(env.DEFENSECLAW_UPGRADER_REGISTRY || DEFAULT_NPM_REGISTRY, 'upgrader registry URL');
  return {
    root: upgraderRootFrom(env),
    underLauncher: underLauncher(env),
    ...(bundleUrl ? { bundleUrl } : {}),
    registry,
    allowedHosts: [hostOf(bundleUrl ?? registry)],
  };
}

/** DEFENSECLAW_UPGRADE_CHECK: `["/usr/local/bin/check", "--quick"]`; absent or empty: no check. */
export function parseOperatorCheck(
  json: string | undefined,
  timeoutMs: string | undefined,
): HostConfig['operatorCheck'] {
  if (json === undefined || json.trim() === '') return undefined;
  let argv: unknown;
  try {
    argv = JSON.parse(json);
  } catch {
    throw new Error('DEFENSECLAW_UPGRADE_CHECK must be a JSON array of strings (program, then arguments)');
  }
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    argv.length > 64 ||
    !argv.every((a) => typeof a === 'string' && a.length <= 4096 && !a.includes('\0')) ||
    !(argv[0] as string).trim()
  ) {
    throw new Error('DEFENSECLAW_UPGRADE_CHECK must be a JSON array of strings (program, then arguments)');
  }
  const t = positiveInt(timeoutMs, 60_000);
  return { argv: argv as string[], timeoutMs: Math.min(t, 600_000) };
}

function positiveInt(v: string | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** The short host name, lower-cased, made safe for a task queue. */
export function defaultHostName(): string {
  const h = os
    .hostname()
    .split('.')[0]!
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  return h || 'localhost';
}

/** The non-secret part of a host config, for logs and `agent status`. */
export function describeHostConfig(c: HostConfig): Record<string, unknown> {
  return {
    host: c.host,
    taskQueue: c.taskQueue,
    dataDir: c.dataDir,
    binDir: c.binDir,
    releases: c.releases,
    githubToken: c.githubToken() ? 'set' : 'not set',
    allowMissingChecksums: c.allowMissingChecksums,
    allowUnsigned: c.allowUnsigned,
    allowNoCosign: c.allowNoCosign,
    operatorCheck: c.operatorCheck ? c.operatorCheck.argv[0] : 'none',
    upgrader: c.upgrader
      ? `${c.upgrader.bundleUrl ? 'bundle mirror' : 'registry'} on ${c.upgrader.allowedHosts[0]}, root ${c.upgrader.root}${c.upgrader.underLauncher ? ' (under the launcher)' : ''}`
      : 'none',
  };
}
