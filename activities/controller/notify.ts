/**
 * Webhook notifications of ring rollouts, run by the controller (the fleet queue's worker): each
 * event is POSTed as JSON to the URL in the controller's own configuration
 * (DEFENSECLAW_UPGRADE_WEBHOOK_URL, read here at each call, never carried by a workflow). No URL:
 * nothing is sent. A non-2xx answer or a network error throws, and Temporal retries with backoff
 * (the workflow's retry policy); the event's `eventId` stays the same across retries so that a
 * receiver drops duplicates. The URL (it may carry a token) never appears in an error or a log.
 */
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { ROLLOUT_EVENT_KINDS, ROLLOUT_VERDICTS, type RolloutEvent } from '../../workflows/fleet/ring-types.js';
import { validated } from '../support.js';

export const WEBHOOK_ENV = 'DEFENSECLAW_UPGRADE_WEBHOOK_URL';
const TIMEOUT_MS = 10_000;

const Short = (n: number) => z.string().max(n);
const EventSchema = z
  .object({
    schema: z.literal(1),
    eventId: Short(300),
    kind: z.enum(ROLLOUT_EVENT_KINDS),
    rolloutId: Short(128),
    version: Short(64).optional(),
    ring: Short(40).optional(),
    host: Short(253).optional(),
    verdict: z.enum(ROLLOUT_VERDICTS).optional(),
    message: Short(2000),
    at: Short(40),
    opensAt: Short(40).optional(),
  })
  .strict();
/** A rollout event as notifyRollout accepts it (the workflows' RolloutEvent). */
export type NotifyInput = z.input<typeof EventSchema>;

export interface NotifyResult {
  sent: boolean;
  status?: number;
}

/** The webhook URL of this controller, or undefined; a malformed one is an error that names the variable only. */
export function webhookUrl(env: NodeJS.ProcessEnv): URL | undefined {
  const raw = env[WEBHOOK_ENV]?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${WEBHOOK_ENV} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${WEBHOOK_ENV} must be http(s)`);
  return url;
}

function post(url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'defenseclaw-upgrade',
    };
    // user:password@ in the URL becomes Basic auth (never logged).
    if (url.username || url.password) {
      const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      headers.authorization = `Basic ${Buffer.from(cred).toString('base64')}`;
    }
    const req = lib.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers,
        timeout: TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    // Only the error's code: a message could quote the address.
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`the webhook is unreachable (${err.code ?? 'error'})`)),
    );
    req.end(body);
  });
}

/** Activity: POSTs one event; throws (to be retried) unless the receiver answers 2xx. */
export async function notifyRollout(env: NodeJS.ProcessEnv, raw: unknown): Promise<NotifyResult> {
  const event: RolloutEvent = validated(EventSchema, raw, 'notifyRollout');
  const url = webhookUrl(env);
  if (!url) return { sent: false };
  const status = await post(url, JSON.stringify(event));
  if (status < 200 || status > 299) throw new Error(`the webhook answered HTTP ${status} to ${event.eventId}`);
  return { sent: true, status };
}

/** The activities of a controller (the fleet queue's worker): only notifications. */
export function createNotifyActivities(env: NodeJS.ProcessEnv = process.env) {
  return {
    notifyRollout: (event: NotifyInput) => notifyRollout(env, event),
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
