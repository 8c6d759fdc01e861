/**
 * The worker's environment file (0600): what it reads from its environment at start that a unit
 * or plist must not hold (credentials) or that differs per host (cluster, host name, release source).
 *
 * Format: `KEY=value` lines, a value bare when it is plain, else in single quotes; read the same by
 * systemd's EnvironmentFile= and by Node's own `--env-file` (the launchd plist's way).
 */
import path from 'node:path';
import { parseHostName } from '../../workflows/types.js';

/** Credentials: written only to the 0600 file, shown everywhere else as `<set, N chars>`. */
export const SECRET_KEYS = ['TEMPORAL_API_KEY', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

/**
 * What `worker install` carries over from its own environment. Paths (DEFENSECLAW_HOME,
 * DEFENSECLAW_BIN_DIR, OPENCLAW_HOME) go into the unit itself, next to the sandbox that names them;
 * the *_DATA variants of the TLS settings (multi-line PEM) do not fit an env file: use the paths.
 */
export const ENV_ALLOW_LIST = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'DEFENSECLAW_HOST',
  'DEFENSECLAW_TASK_QUEUE',
  'DEFENSECLAW_RELEASES_URL',
  'DEFENSECLAW_DOWNLOAD_URL',
  'DEFENSECLAW_REPO',
  'DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS',
  'DEFENSECLAW_RELEASE_MIRROR',
  'DEFENSECLAW_CHANNEL_URL',
  'DEFENSECLAW_ALLOW_MISSING_CHECKSUMS',
  'DEFENSECLAW_ALLOW_NO_COSIGN',
  'DEFENSECLAW_ALLOW_UNSIGNED',
  'DEFENSECLAW_UPGRADE_CHECK',
  'DEFENSECLAW_UPGRADE_CHECK_TIMEOUT_MS',
  'DEFENSECLAW_UPGRADER_BUNDLE_URL',
  'DEFENSECLAW_UPGRADER_REGISTRY',
  'DEFENSECLAW_LOG_LEVEL',
  'GITHUB_TOKEN',
  'GH_TOKEN',
] as const;

export interface EnvFlags {
  address?: string;
  namespace?: string;
  host?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** The name of a variable of this process's environment that holds the API key (never the key itself). */
  apiKeyEnv?: string;
}

const isSecret = (k: string) => (SECRET_KEYS as readonly string[]).includes(k);

/** The variables to write: the allow-listed ones of `env`, then the flags over them. */
export function collectEnv(env: NodeJS.ProcessEnv, flags: EnvFlags): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of ENV_ALLOW_LIST) {
    const v = env[k];
    if (v !== undefined && v !== '') out.set(k, v);
  }
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) out.set(k, v);
  };
  set('TEMPORAL_ADDRESS', flags.address);
  set('TEMPORAL_NAMESPACE', flags.namespace);
  set('DEFENSECLAW_HOST', flags.host === undefined ? undefined : parseHostName(flags.host));
  if (
    flags.address !== undefined &&
    !/^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$|^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$/.test(flags.address)
  ) {
    throw new Error(`--address must be host:port, got ${JSON.stringify(flags.address)}`);
  }
  set('TEMPORAL_TLS_CLIENT_CERT_PATH', flags.tlsCert && path.resolve(flags.tlsCert));
  set('TEMPORAL_TLS_CLIENT_KEY_PATH', flags.tlsKey && path.resolve(flags.tlsKey));
  set('TEMPORAL_TLS_SERVER_CA_CERT_PATH', flags.tlsCa && path.resolve(flags.tlsCa));
  if (flags.apiKeyEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,100}$/.test(flags.apiKeyEnv)) {
      throw new Error(`--api-key-env takes the NAME of an environment variable, got an invalid name`);
    }
    const key = env[flags.apiKeyEnv];
    if (!key) throw new Error(`--api-key-env ${flags.apiKeyEnv}: that variable is not set in this environment`);
    out.set('TEMPORAL_API_KEY', key);
  }
  for (const [k, v] of out) {
    if (/[\n\r\0']/.test(v))
      throw new Error(`${k} holds a newline, NUL or single quote, which an environment file cannot carry`);
  }
  return out;
}

function quote(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]*$/.test(v) ? v : `'${v}'`;
}

const HEADER =
  '# defenseclaw-upgrade worker environment (written by `defenseclaw-upgrade worker install`; 0600).\n' +
  '# Credentials live here only, never in the unit or plist.\n';

/** The file as written (with the secrets). */
export function renderEnvFile(vars: Map<string, string>): string {
  return HEADER + [...vars].map(([k, v]) => `${k}=${quote(v)}\n`).join('');
}

/** The file as shown: every secret replaced by `<set, N chars>`. */
export function maskEnvText(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (!m || !isSecret(m[1]!)) return line;
      const raw = m[2]!.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
      return `${m[1]}=<set, ${raw.length} chars>`;
    })
    .join('\n');
}

/**
 * Two env files masked for a diff: a secret whose value changed reads `<set, N chars, changed>` on
 * the new side, so a changed key shows in the diff without either value.
 */
export function maskPair(oldText: string, newText: string): [string, string] {
  const secrets = (t: string) => {
    const m = new Map<string, string>();
    for (const line of t.split('\n')) {
      const r = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (r && isSecret(r[1]!)) m.set(r[1]!, r[2]!);
    }
    return m;
  };
  const before = secrets(oldText);
  const after = secrets(newText);
  const masked = maskEnvText(newText)
    .split('\n')
    .map((line) => {
      const k = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line)?.[1];
      return k && after.has(k) && before.has(k) && before.get(k) !== after.get(k)
        ? line.replace(/>$/, ', changed>')
        : line;
    })
    .join('\n');
  return [maskEnvText(oldText), masked];
}
