/**
 * HTTP for untrusted release servers: undici with redirects followed by hand (a few hops, never
 * https→http, only to hosts this host allows), a timeout on every request, and credentials only
 * where they belong (API calls, never asset downloads or redirect targets).
 */
import { request, type Dispatcher } from 'undici';
import type { HostConfig } from '../worker/host-config.js';
import { FailureType, refuse } from './support.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Dispatcher.ResponseData['body'];
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

function flatten(h: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function hostAllowed(url: URL, allowed: string[]): boolean {
  return allowed.some((a) => (a.includes(':') ? url.host === a : url.hostname === a));
}

/** Sends one request, following at most `maxRedirects` redirects under the host's policy. */
export async function httpRequest(config: HostConfig, start: string, req: HttpRequest): Promise<HttpResponse> {
  let url = new URL(start);
  let headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
  for (let hop = 0; ; hop++) {
    if (!hostAllowed(url, req.allowedHosts)) {
      throw refuse(FailureType.UnsafeRedirect, `refusing to contact ${url.host}: not an allowed release host`);
    }
    const res = await request(url, {
      method: req.method ?? 'GET',
      headers,
      signal: req.signal,
      headersTimeout: config.http.requestTimeoutMs,
      bodyTimeout: config.http.requestTimeoutMs,
    });
    const h = flatten(res.headers);
    if (res.statusCode >= 300 && res.statusCode < 400 && h.location) {
      await res.body.dump();
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
    return { status: res.statusCode, headers: h, body: res.body, url: url.toString() };
  }
}

/** A request error safe to show: no headers, no credentials, only what failed and where. */
export function describeHttpError(err: unknown, url: string): string {
  const e = err as { code?: string; name?: string; message?: string };
  const what = e.code ?? e.name ?? 'error';
  return `${what} contacting ${new URL(url).host}${e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' ? ' (timed out)' : ''}`;
}
