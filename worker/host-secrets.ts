/**
 * The secrets this host knows, so that the log scrubber can replace them wherever they turn up:
 * the credentials in the worker's environment, DefenseClaw's gateway token, the other keys in
 * DefenseClaw's `.env`, and device.key.
 *
 * Where the real gateway keeps its token (internal/config/config.go, ResolvedToken, 0.4.0+):
 *   1. the variable `gateway.token_env` in config.yaml names, when it is set;
 *   2. DEFENSECLAW_GATEWAY_TOKEN, which the first start writes into `$DEFENSECLAW_HOME/.env`
 *      (internal/gateway/firstboot.go, EnsureGatewayToken);
 *   3. OPENCLAW_GATEWAY_TOKEN, the name before 0.4.0;
 *   4. `gateway.token` in config.yaml, the last resort.
 * Each is read from the environment and from `.env`, as the gateway reads them. Every other
 * variable config.yaml names for a secret (`*_env`: LLM and scanner API keys, Splunk tokens) and
 * every secret-named entry of `.env` is a secret too.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Yaml from 'yaml';

/** Metadata keys (and `.env` names) whose string values are secrets. */
export const SECRET_KEY = /token|secret|password|passwd|api[-_]?key|authorization|private[-_]?key|credential/i;

/**
 * `.env` names whose values are secrets: SECRET_KEY's, and any `…KEY` (0.8.10's `init` points
 * `llm.api_key_env` at DEFENSECLAW_LLM_KEY and `cisco_ai_defense.api_key_env` at
 * CISCO_AI_DEFENSE_API_KEY, kept in `.env`).
 */
const DOTENV_SECRET = new RegExp(`${SECRET_KEY.source}|key$`, 'i');

/** The gateway's own token variables, newest first. */
export const GATEWAY_TOKEN_ENV = ['DEFENSECLAW_GATEWAY_TOKEN', 'OPENCLAW_GATEWAY_TOKEN'] as const;

const MAX_SECRET_FILE_BYTES = 64 * 1024;

function readSmallFile(file: string): Buffer | undefined {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_SECRET_FILE_BYTES) return undefined;
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * `<dataDir>/.env` as the real gateway reads it (internal/gateway/dotenv.go, loadDotEnv): one
 * KEY=VALUE a line, blank lines and `#` lines skipped, the value trimmed and unquoted once. An
 * `export ` before the name (a shell's form) is dropped too.
 */
export function readDotEnv(dataDir: string): Map<string, string> {
  const out = new Map<string, string>();
  const raw = readSmallFile(path.join(dataDir, '.env'))?.toString('utf8');
  if (!raw) return out;
  for (const line of raw.split('\n')) {
    const t = line.trim();
    const eq = t.indexOf('=');
    if (!t || t.startsWith('#') || eq < 0) continue;
    const key = t
      .slice(0, eq)
      .trim()
      .replace(/^export\s+/, '');
    let value = t.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1);
    }
    if (key) out.set(key, value);
  }
  return out;
}

/** `<anything>_env: NAME` in config.yaml: a variable that holds one of its secrets (gateway.token_env, llm.api_key_env, hec_token_env …). */
const SECRET_VARIABLE = /^[ \t]*(?:- )?([\w-]*_env)[ \t]*:[ \t]*["']?([A-Za-z_][A-Za-z0-9_]*)["']?[ \t]*(?:#.*)?$/gm;
/**
 * A `token` key, in any YAML form (block, flow `{token: …}`, quoted `"token":`): the gateway's last
 * resort, read exactly with yaml. Not `token_env:` nor `hec_token:`, which name no literal token here.
 */
const TOKEN_KEY = /\btoken["']?[ \t]*:/;

export interface ConfigSecrets {
  /** The variables `token_env` keys name. */
  tokenEnv: string[];
  /** The variables every `*_env` key names (tokenEnv among them). */
  variables: string[];
  /** `gateway.token`, when written out. */
  token?: string;
}

/**
 * What config.yaml says about secrets: the variables its `*_env` keys name (every one, in any
 * section: a superset of `gateway.token_env`, found without parsing), and `gateway.token` when it is
 * written out. Only a `token` key loads the YAML parser; 0.8.10's `init` writes none.
 */
export function configSecrets(dataDir: string): ConfigSecrets {
  const raw = readSmallFile(path.join(dataDir, 'config.yaml'))?.toString('utf8') ?? '';
  const named = [...raw.matchAll(SECRET_VARIABLE)];
  const tokenEnv = named.filter((m) => m[1] === 'token_env').map((m) => m[2]!);
  const variables = [...new Set(named.map((m) => m[2]!))];
  if (!TOKEN_KEY.test(raw)) return { tokenEnv, variables };
  try {
    const YAML = createRequire(import.meta.url)('yaml') as typeof Yaml;
    const doc = YAML.parse(raw, { maxAliasCount: 100, logLevel: 'silent' }) as { gateway?: { token?: unknown } } | null;
    const t = doc?.gateway?.token;
    return { tokenEnv, variables, ...(typeof t === 'string' || typeof t === 'number' ? { token: String(t) } : {}) };
  } catch {
    // A config the gateway cannot parse may still hold the token: a plain match.
    const m = /^[ \t]+token:[ \t]*["']?([^"'\s#]+)/m.exec(raw);
    return { tokenEnv, variables, ...(m?.[1] ? { token: m[1] } : {}) };
  }
}

/** The gateway's token ladder (above) over what was read: the first value is the one the gateway uses. */
function gatewayTokens(env: NodeJS.ProcessEnv, dotenv: Map<string, string>, config: ConfigSecrets): string[] {
  const found = [...config.tokenEnv, ...GATEWAY_TOKEN_ENV].flatMap((n) => [env[n], dotenv.get(n)]);
  return [...new Set([...found, config.token].map((v) => v?.trim()).filter((v): v is string => Boolean(v)))];
}

/**
 * Every value the gateway could take as its token on this host (see the ladder above), from the
 * environment, `.env` and config.yaml; the first is the one the gateway uses.
 */
export function gatewayTokensFrom(dataDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return gatewayTokens(env, readDotEnv(dataDir), configSecrets(dataDir));
}

/**
 * The secrets this host knows, read once: credentials in the environment, the gateway token
 * wherever the gateway would find it, the variables config.yaml names for its secrets, every
 * secret-named value in `.env` (LLM and scanner API keys), and device.key (as text, hex and
 * base64, the ways it could end up in a message).
 */
export function collectSecrets(opts: { env?: NodeJS.ProcessEnv; dataDir?: string }): string[] {
  const env = opts.env ?? process.env;
  const out: string[] = [];
  for (const k of ['GITHUB_TOKEN', 'GH_TOKEN', 'TEMPORAL_API_KEY', ...GATEWAY_TOKEN_ENV]) {
    const v = env[k]?.trim();
    if (v) out.push(v);
  }
  if (opts.dataDir) {
    const dotenv = readDotEnv(opts.dataDir);
    const config = configSecrets(opts.dataDir);
    out.push(...gatewayTokens(env, dotenv, config));
    for (const [k, v] of dotenv) if (DOTENV_SECRET.test(k) && v) out.push(v);
    // The variables config.yaml names for its secrets, wherever they are set.
    for (const name of config.variables) {
      for (const v of [env[name], dotenv.get(name)]) if (v?.trim()) out.push(v.trim());
    }
    const key = readSmallFile(path.join(opts.dataDir, 'device.key'));
    if (key?.length) {
      out.push(key.toString('hex'), key.toString('base64'));
      const text = key.toString('utf8').trim();
      if (/^[\x20-\x7e\r\n\t]+$/.test(text)) {
        out.push(text);
        // A PEM-like key: its body lines could appear one by one.
        for (const line of text.split(/\r?\n/)) if (!line.startsWith('-----') && line.length >= 16) out.push(line);
      }
    }
  }
  return out;
}
