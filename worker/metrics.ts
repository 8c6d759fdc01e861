/**
 * The controller's Prometheus endpoint (issue 22), on DEFENSECLAW_METRICS_ADDRESS (off when unset):
 * GET /metrics answers the controller's own metrics (metrics-refresh.ts, prom-client, plus the
 * process's default metrics) followed by the Temporal SDK's worker metrics, which the SDK's own
 * Prometheus exporter (Runtime telemetry, installed by installRuntime) serves on a free loopback
 * port that nothing else is told about. Merged, so that Prometheus scrapes one target; the SDK's
 * names all start with `temporal_`, ours with `defenseclaw_`, so they never collide.
 */
import http from 'node:http';
import { Client, type ConnectionLike } from '@temporalio/client';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { request } from 'undici';
import { formatAddress, freeLoopbackPort, metricsAddressFrom, type MetricsAddress } from './metrics-address.js';
import { ControllerMetrics } from './metrics-refresh.js';

export interface ControllerTelemetry {
  address: MetricsAddress;
  /** Where the SDK's exporter listens (loopback, a free port). */
  sdkAddress: string;
}

let decided: ControllerTelemetry | undefined;

/**
 * For the fleet worker's installRuntime: decides the addresses (remembered for serveControllerMetrics)
 * and answers the Runtime's SDK metrics option ({} when DEFENSECLAW_METRICS_ADDRESS is unset).
 */
export async function controllerRuntimeOptions(
  env: NodeJS.ProcessEnv,
): Promise<{ metrics?: { prometheus: { bindAddress: string } } }> {
  decided = await controllerTelemetry(env);
  return sdkMetricsOptions(decided);
}

/** The fleet worker's metrics endpoint, when controllerRuntimeOptions turned it on. */
export async function serveControllerMetrics(
  connection: ConnectionLike,
  namespace: string,
  env: NodeJS.ProcessEnv,
): Promise<MetricsServer | undefined> {
  if (!decided) return undefined;
  const refreshSeconds = Number(env.DEFENSECLAW_METRICS_REFRESH_SECONDS) || 15;
  const server = await startControllerMetrics({ telemetry: decided, connection, namespace, refreshSeconds });
  process.stderr.write(`metrics on ${server.url} (the SDK's worker metrics merged in)\n`);
  return server;
}

/** Decides the addresses before the Runtime is installed (undefined: metrics off). */
export async function controllerTelemetry(env: NodeJS.ProcessEnv): Promise<ControllerTelemetry | undefined> {
  const address = metricsAddressFrom(env);
  if (!address) return undefined;
  return { address, sdkAddress: `127.0.0.1:${await freeLoopbackPort()}` };
}

/** The Runtime's telemetry options for the SDK's own metrics. */
export function sdkMetricsOptions(t: ControllerTelemetry | undefined) {
  return t ? { metrics: { prometheus: { bindAddress: t.sdkAddress } } } : {};
}

async function sdkText(sdkAddress: string): Promise<string> {
  try {
    const res = await request(`http://${sdkAddress}/metrics`, { headersTimeout: 2000, bodyTimeout: 2000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return '';
    }
    return await res.body.text();
  } catch {
    return '';
  }
}

export interface MetricsServer {
  url: string;
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function startControllerMetrics(o: {
  telemetry: ControllerTelemetry;
  connection: ConnectionLike;
  namespace: string;
  refreshSeconds?: number;
  onError?: (message: string) => void;
}): Promise<MetricsServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const client = new Client({ connection: o.connection, namespace: o.namespace });
  const metrics = new ControllerMetrics(client, registry);
  let refreshing: Promise<void> | undefined;
  const refresh = () => (refreshing ??= metrics.refresh().finally(() => (refreshing = undefined)));
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    void Promise.all([registry.metrics(), sdkText(o.telemetry.sdkAddress)]).then(
      ([own, sdk]) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(sdk ? `${own}\n${sdk}` : own);
      },
      () => res.writeHead(500).end('metrics failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.telemetry.address.port, o.telemetry.address.host, () => resolve());
  });
  await refresh().catch(() => undefined);
  const every = Math.max(1, o.refreshSeconds ?? 15) * 1000;
  const timer = setInterval(() => {
    refresh().catch((err: unknown) => o.onError?.(`metrics refresh failed: ${(err as Error).message}`));
  }, every);
  timer.unref();
  return {
    url: `http://${formatAddress(o.telemetry.address)}/metrics`,
    refresh,
    async close() {
      clearInterval(timer);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
