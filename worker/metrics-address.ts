/**
 * Where the controller's Prometheus metrics listen (DEFENSECLAW_METRICS_ADDRESS; off when unset):
 * `PORT` (loopback), `HOST:PORT` or `[IPv6]:PORT`. A host other than loopback is the operator's
 * explicit choice. The Temporal SDK's own exporter binds a free loopback port of its own, and the
 * controller's /metrics merges its output (one scrape target; see metrics.ts).
 */
import net from 'node:net';

export interface MetricsAddress {
  host: string;
  port: number;
}

export function parseMetricsAddress(value: string): MetricsAddress {
  const v = value.trim();
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(v) ?? /^()()([0-9]{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535))
    throw new Error(
      `DEFENSECLAW_METRICS_ADDRESS must be PORT, HOST:PORT or [IPv6]:PORT, got ${JSON.stringify(v.slice(0, 80))}`,
    );
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export function metricsAddressFrom(env: NodeJS.ProcessEnv): MetricsAddress | undefined {
  const v = env.DEFENSECLAW_METRICS_ADDRESS;
  return v ? parseMetricsAddress(v) : undefined;
}

/** A free loopback port for the SDK's exporter (bound right after; nothing else on a controller races for it). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function formatAddress(a: MetricsAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
