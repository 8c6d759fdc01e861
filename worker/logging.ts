/**
 * The worker's logs: one JSON object per line in `$DEFENSECLAW_HOME/logs/worker.jsonl` (the audit
 * trail beside Temporal's history: directory 0700, files 0600, rotated at a size cap), plus one
 * human line per entry on the terminal. Both go through the Temporal Runtime's logger, so the
 * SDK's own entries, workflow `log` calls (workflowId, runId, workflowType) and activity
 * `Context.current().log` calls (activityId, activityType, attempt, workflowId) all land here with
 * their metadata.
 *
 * Every entry is scrubbed before it is written: the secrets this host knows (worker/host-secrets.ts:
 * the GitHub token, the gateway token, the keys in DefenseClaw's .env, device.key), anything shaped
 * like a bearer header or a GitHub token, and the values of metadata keys that name a secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { SECRET_KEY } from './host-secrets.js';

export const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
export const LOG_FILE_NAME = 'worker.jsonl';
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 5;
export const REDACTED = '[redacted]';

/** `$DEFENSECLAW_HOME/logs`. */
export function logDirFor(dataDir: string): string {
  return path.join(dataDir, 'logs');
}

export function parseLogLevel(v: string | undefined, dflt: LogLevel): LogLevel {
  const up = (v ?? '').trim().toUpperCase();
  return (LOG_LEVELS as string[]).includes(up) ? (up as LogLevel) : dflt;
}

function atLeast(level: LogLevel, min: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(min);
}

// -------------------------------------------------------------------------------------------------
// Secrets

/** Shorter strings are not treated as secrets: replacing them would mangle ordinary words. */
const MIN_SECRET_LENGTH = 8;

/** Patterns that are secret whatever their value: bearer headers and GitHub token formats. */
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // An Authorization header or field, whatever its scheme.
  [
    /\b(authorization["']?\s*[:=]\s*["']?(?:(?:bearer|token|basic)\s+)?)(?!\[redacted\])[^\s"',;}]{4,}/gi,
    `$1${REDACTED}`,
  ],
  // A bearer credential anywhere (the header's scheme is capitalised; prose "bearer token" is left alone).
  [/\b(Bearer\s+)(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}/g, `$1${REDACTED}`],
  [/\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g, REDACTED],
];

// Metadata keys whose string values are secrets (SECRET_KEY), unless they only say whether one is set.
const HARMLESS_VALUE = /^(|set|not set|none|unset|redacted|\[redacted\])$/i;

/** Replaces known secret values and secret-shaped text. */
export class Scrubber {
  private secrets: string[] = [];

  constructor(secrets: Iterable<string | undefined> = []) {
    for (const s of secrets) this.add(s);
  }

  /** Adds a secret value (ignored when empty or too short to be a credential). */
  add(secret: string | undefined): void {
    const s = secret?.trim();
    if (!s || s.length < MIN_SECRET_LENGTH || this.secrets.includes(s)) return;
    this.secrets.push(s);
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  get size(): number {
    return this.secrets.length;
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    for (const [re, by] of SECRET_PATTERNS) out = out.replace(re, by);
    return out;
  }

  /** A JSON-safe, scrubbed copy of a metadata value (errors as objects, cycles and depth bounded). */
  value(v: unknown, key = '', depth = 0, seen = new WeakSet<object>()): unknown {
    if (typeof v === 'string') {
      if (key && SECRET_KEY.test(key) && !HARMLESS_VALUE.test(v.trim())) return REDACTED;
      return this.text(v.length > 8192 ? `${v.slice(0, 8192)}…` : v);
    }
    if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
    if (typeof v === 'bigint') return v.toString();
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return undefined;
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
    if (v instanceof Uint8Array) return `<${v.length} bytes>`;
    if (depth >= 6) return '…';
    if (seen.has(v)) return '<cycle>';
    seen.add(v);
    if (v instanceof Error) return this.error(v, depth, seen);
    if (Array.isArray(v)) {
      const out = v.slice(0, 100).map((x) => this.value(x, key, depth + 1, seen) ?? null);
      if (v.length > 100) out.push(`… ${v.length - 100} more`);
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const s = this.value(x, k, depth + 1, seen);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }

  private error(e: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
    const out: Record<string, unknown> = { name: e.name, message: this.text(e.message) };
    const extra = e as Error & { type?: unknown; nonRetryable?: unknown; code?: unknown; cause?: unknown };
    if (typeof extra.type === 'string') out.type = extra.type;
    if (typeof extra.nonRetryable === 'boolean') out.nonRetryable = extra.nonRetryable;
    if (typeof extra.code === 'string' || typeof extra.code === 'number') out.code = extra.code;
    if (e.stack) out.stack = this.text(e.stack.split('\n').slice(0, 12).join('\n'));
    if (extra.cause !== undefined) out.cause = this.value(extra.cause, 'cause', depth + 1, seen);
    return out;
  }
}

// -------------------------------------------------------------------------------------------------
// The JSON lines file

/** An append-only file with size-capped rotation: worker.jsonl → worker.jsonl.1 → … → .<keep>. */
export class RotatingFile {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly file: string,
    readonly maxBytes = DEFAULT_LOG_MAX_BYTES,
    readonly keep = DEFAULT_LOG_KEEP,
  ) {
    if (!(maxBytes >= 1024)) throw new Error('log file cap must be at least 1 KiB');
    if (!Number.isInteger(keep) || keep < 1) throw new Error('keep at least one rotated log file');
  }

  /** Creates the directory (0700) and opens the file (0600, appending, never through a symlink). */
  open(): void {
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
    const c = fs.constants;
    this.fd = fs.openSync(this.file, c.O_WRONLY | c.O_APPEND | c.O_CREAT | (c.O_NOFOLLOW ?? 0), 0o600);
    fs.fchmodSync(this.fd, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(line: string): void {
    if (this.fd === undefined) this.open();
    const buf = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
    if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    fs.writeSync(this.fd!, buf);
    this.size += buf.length;
  }

  /** Shifts the rotated files by one and starts a fresh file. */
  rotate(): void {
    this.close();
    for (let i = this.keep - 1; i >= 1; i--) renameIfThere(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    renameIfThere(this.file, `${this.file}.1`);
    this.open();
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

// -------------------------------------------------------------------------------------------------
// Entries

/** Metadata the file does not need: the task token is a capability, not an audit fact. */
const DROPPED_META = new Set(['taskToken']);
const RESERVED = new Set(['ts', 'level', 'msg', 'component']);

function isoTime(entry: LogEntry): string {
  return new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
}

/** One JSON object for the file: ts, level, msg, component, then the entry's metadata, scrubbed. */
export function jsonRecord(
  entry: LogEntry,
  scrubber: Scrubber,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  const rec: Record<string, unknown> = {
    ts: isoTime(entry),
    level: entry.level,
    msg: scrubber.text(entry.message),
  };
  const meta = (entry.meta ?? {}) as LogMetadata;
  rec.component = typeof meta.sdkComponent === 'string' ? meta.sdkComponent : 'app';
  for (const [k, v] of Object.entries(fields)) rec[k] = scrubber.value(v, k);
  for (const [k, v] of Object.entries(meta)) {
    if (k === 'sdkComponent' || DROPPED_META.has(k)) continue;
    const s = scrubber.value(v, k);
    if (s !== undefined) rec[RESERVED.has(k) ? `meta.${k}` : k] = s;
  }
  return rec;
}

/** What the terminal shows first, then the rest of the metadata as compact JSON. */
const HEADLINE = ['workflowId', 'activityType', 'attempt'];

/** One human line: `time LEVEL message {metadata}` (no task token, no SDK noise keys). */
export function humanLine(entry: LogEntry, scrubber: Scrubber): string {
  const shown: Record<string, unknown> = {};
  const meta = (entry.meta ?? {}) as LogMetadata;
  const keys = [...HEADLINE.filter((k) => k in meta), ...Object.keys(meta).filter((k) => !HEADLINE.includes(k))];
  for (const k of keys) {
    if (k === 'sdkComponent' || DROPPED_META.has(k) || k === 'namespace' || k === 'taskQueue') continue;
    const raw = meta[k];
    // An error reads as one phrase on the terminal; its stack is in the JSON file.
    const v =
      raw instanceof Error
        ? scrubber.text(`${(raw as Error & { type?: string }).type ?? raw.name}: ${raw.message}`)
        : scrubber.value(raw, k);
    if (v !== undefined) shown[k] = v;
  }
  const tail = Object.keys(shown).length ? ` ${JSON.stringify(shown)}` : '';
  return `${isoTime(entry)} ${entry.level.padEnd(5)} ${scrubber.text(entry.message)}${tail}`;
}

export interface WorkerLoggerOptions {
  /** Terminal lines at this level and above (default INFO). */
  level?: LogLevel;
  /** Where terminal lines go (default: stderr). */
  write?: (line: string) => void;
  /** JSON lines file; omitted: terminal only. */
  file?: {
    dir: string;
    name?: string;
    /** Entries at this level and above (default DEBUG: every activity's start and end is kept). */
    level?: LogLevel;
    maxBytes?: number;
    keep?: number;
  };
  scrubber?: Scrubber;
  /** Added to every JSON record (e.g. host, pid). */
  fields?: Record<string, unknown>;
}

export interface WorkerLogger extends Logger {
  /** The JSON lines file, when one is written. */
  readonly logFile?: string;
  readonly scrubber: Scrubber;
  /** Closes the file (later entries reopen it). */
  close(): void;
}

/**
 * A Logger for Runtime.install that fans every entry out to the terminal (human line) and the
 * JSON lines file, each with its own level, both scrubbed. A file that cannot be written is
 * reported once on the terminal and then left alone: the Temporal history stays the record.
 */
export function createWorkerLogger(opts: WorkerLoggerOptions = {}): WorkerLogger {
  const termLevel = opts.level ?? 'INFO';
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const scrubber = opts.scrubber ?? new Scrubber();
  const fileLevel = opts.file?.level ?? 'DEBUG';
  let file: RotatingFile | undefined;
  if (opts.file) {
    file = new RotatingFile(
      path.join(opts.file.dir, opts.file.name ?? LOG_FILE_NAME),
      opts.file.maxBytes,
      opts.file.keep,
    );
    try {
      file.open();
    } catch (err) {
      write(`${new Date().toISOString()} WARN  cannot write the log file ${file.file}: ${(err as Error).message}`);
      file = undefined;
    }
  }
  const fields = opts.fields ?? {};
  const minLevel = file && atLeast(termLevel, fileLevel) ? fileLevel : termLevel;
  const inner = new DefaultLogger(minLevel, (entry) => {
    if (atLeast(entry.level, termLevel)) write(humanLine(entry, scrubber));
    if (file && atLeast(entry.level, fileLevel)) {
      try {
        file.write(JSON.stringify(jsonRecord(entry, scrubber, fields)));
      } catch (err) {
        write(`${new Date().toISOString()} WARN  log file ${file.file} disabled: ${(err as Error).message}`);
        file.close();
        file = undefined;
      }
    }
  });
  const logFile = file?.file;
  return {
    logFile,
    scrubber,
    log: (level, message, meta) => inner.log(level, message, meta),
    trace: (message, meta) => inner.trace(message, meta),
    debug: (message, meta) => inner.debug(message, meta),
    info: (message, meta) => inner.info(message, meta),
    warn: (message, meta) => inner.warn(message, meta),
    error: (message, meta) => inner.error(message, meta),
    close: () => file?.close(),
  };
}
