/**
 * HTTP for untrusted release servers: redirects followed by hand (a few hops, never https→http,
 * only to hosts this host allows), a timeout on every request (headers, and a body that stops
 * arriving), and credentials only where they belong (API calls, never asset downloads or
 * redirect targets).
 *
 * Node's own http/https client, not undici: undici 7 (the newest line that runs on Node 20)
 * kills the process with `assert(!this.paused)` in its HTTP/1 parser when a server closes the
 * connection after a response (Connection: close) while the parser is paused because the body's
 * reader is slower than the network (nodejs/undici#5360, fixed only in undici 8, Node ≥ 22.19).
 * Node's client applies backpressure by stopping the socket's reads instead of pausing its
 * parser, so a peer's FIN is only seen after every byte was handed over.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { HostConfig } from '../worker/host-config.js';
import { FailureType, refuse } from './support.js';

/** A response body: a Readable (async-iterable) with undici's helpers, so callers read it as before. */
export interface HttpBody extends Readable {
  text(): Promise<string>;
  json(): Promise<unknown>;
  /** Reads and discards what is left (up to 128 KiB; beyond, the connection is dropped). */
  dump(): Promise<void>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: HttpBody;
  /** The URL that finally answered, after redirects. */
  url: string;
}

export interface HttpRequest {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Allowed hosts for this request and its redirects (host or host:port). */
  allowedHosts: string[];
}

const USER_AGENT = 'defenseclaw-upgrade';
const DUMP_LIMIT = 128 * 1024;

/** The timeout codes callers, logs and tests know (the ones undici used). */
export const HEADERS_TIMEOUT = 'UND_ERR_HEADERS_TIMEOUT';
export const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function flatten(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function hostAllowed(url: URL, allowed: string[]): boolean {
  return allowed.some((a) => (a.includes(':') ? url.host === a : url.hostname === a));
}

/**
 * Fails the body with BODY_TIMEOUT when the server sends nothing for `ms` while the reader is
 * waiting for more; a slow reader (its buffer full, the socket's reads stopped) is never timed out.
 */
function bodyTimeout(res: http.IncomingMessage, ms: number): void {
  const socket = res.socket;
  let seen = socket.bytesRead;
  let idleSince = Date.now();
  const tick = Math.max(10, Math.min(1000, Math.floor(ms / 4)));
  const timer = setInterval(() => {
    const now = Date.now();
    if (socket.bytesRead !== seen || res.readableLength >= res.readableHighWaterMark) {
      seen = socket.bytesRead;
      idleSince = now;
    } else if (now - idleSince >= ms) {
      res.destroy(codedError(BODY_TIMEOUT, `no body data for ${ms} ms`));
    }
  }, tick);
  timer.unref();
  res.once('close', () => clearInterval(timer));
}

function asBody(res: http.IncomingMessage): HttpBody {
  const text = async () => {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const dump = async () => {
    if (res.readableEnded || res.destroyed) return;
    let n = 0;
    try {
      for await (const c of res) {
        n += (c as Buffer).length;
        if (n > DUMP_LIMIT) {
          res.destroy();
          return;
        }
      }
    } catch {
      // a body we were discarding anyway
    }
  };
  return Object.assign(res, { text, dump, json: async () => JSON.parse(await text()) as unknown });
}

/** One request, no redirects: resolves with the response once its headers arrived. */
function send(
  url: URL,
  opts: { method: string; headers: Record<string, string>; signal?: AbortSignal; timeoutMs: number },
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, { method: opts.method, headers: opts.headers, signal: opts.signal });
    const timer = setTimeout(
      () => req.destroy(codedError(HEADERS_TIMEOUT, `no response headers within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      // An error after the headers belongs to the body's reader.
      req.removeAllListeners('error');
      req.on('error', (err) => res.destroy(err));
      bodyTimeout(res, opts.timeoutMs);
      resolve(res);
    });
    req.end();
  });
}

/** Sends one request, following at most `maxRedirects` redirects under the host's policy. */
export async function httpRequest(config: HostConfig, start: string, req: HttpRequest): Promise<HttpResponse> {
  let url = new URL(start);
  let headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
  for (let hop = 0; ; hop++) {
    if (!hostAllowed(url, req.allowedHosts)) {
      throw refuse(FailureType.UnsafeRedirect, `refusing to contact ${url.host}: not an allowed release host`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw refuse(FailureType.UnsafeRedirect, `refusing ${url.protocol} URL`);
    }
    const message = await send(url, {
      method: req.method ?? 'GET',
      headers,
      signal: req.signal,
      timeoutMs: config.http.requestTimeoutMs,
    });
    const res = asBody(message);
    const status = message.statusCode ?? 0;
    const h = flatten(message.headers);
    if (status >= 300 && status < 400 && h.location) {
      await res.dump();
      if (hop >= config.http.maxRedirects) {
        throw refuse(
          FailureType.UnsafeRedirect,
          `too many redirects from ${start} (limit ${config.http.maxRedirects})`,
        );
      }
      const next = new URL(h.location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') {
        throw refuse(FailureType.UnsafeRedirect, `refusing redirect from https to ${next.protocol} (${next.host})`);
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw refuse(FailureType.UnsafeRedirect, `refusing redirect to ${next.protocol} URL`);
      }
      // A redirect target gets no credentials: keep only what describes the content.
      headers = Object.fromEntries(
        Object.entries(headers).filter(([k]) => ['user-agent', 'range', 'accept'].includes(k.toLowerCase())),
      );
      url = next;
      continue;
    }
    return { status, headers: h, body: res, url: url.toString() };
  }
}

/** A request error safe to show: no headers, no credentials, only what failed and where. */
export function describeHttpError(err: unknown, url: string): string {
  const e = err as { code?: string; name?: string; message?: string };
  const what = e.code ?? e.name ?? 'error';
  return `${what} contacting ${new URL(url).host}${e.code === HEADERS_TIMEOUT || e.code === BODY_TIMEOUT ? ' (timed out)' : ''}`;
}
