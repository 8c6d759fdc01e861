/**
 * Why a secured connection to Temporal failed, in one line with the fix. gRPC (the SDK's client
 * and the worker's Rust core alike) only says "Failed to connect before the deadline" or
 * "transport error" when the TLS handshake is refused; a direct TLS handshake with the same
 * settings tells the cases apart.
 */
import tls from 'node:tls';

export interface TlsSettings {
  /** TLS on (true or an object) or off (false/undefined), as the SDK's connection options hold it. */
  tls?:
    | boolean
    | null
    | {
        serverNameOverride?: string;
        serverRootCACertificate?: Uint8Array;
        clientCertPair?: { crt: Uint8Array; key: Uint8Array };
      };
  apiKey?: unknown;
}

export interface TlsProblem {
  reason: string;
  fix: string;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const buf = (b: Uint8Array | undefined) => (b ? Buffer.from(b) : undefined);

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(i + 1)) };
}

/** One TLS handshake (plus a moment for the server's verdict on our certificate): the error code, or 'ok'. */
function handshake(address: string, options: tls.ConnectionOptions, timeoutMs: number): Promise<string> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const socket = tls.connect({ host, port, ALPNProtocols: ['h2'], ...options });
    const done = (code: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(code);
    };
    timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.once('secureConnect', () => {
      // TLS 1.3: a server that refuses our certificate says so after the handshake completes.
      clearTimeout(timer);
      timer = setTimeout(() => done('ok'), 500);
      socket.resume();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('close', () => done('closed'));
  });
}

/**
 * The TLS problem behind a failed connection, or undefined when TLS is not the reason (the caller
 * then reports what gRPC said).
 */
export async function diagnoseTls(
  address: string,
  settings: TlsSettings,
  timeoutMs = 3000,
): Promise<TlsProblem | undefined> {
  const conf = settings.tls;
  const on = Boolean(conf) || Boolean(settings.apiKey);
  if (!on) {
    const code = await handshake(address, { rejectUnauthorized: false }, timeoutMs);
    if (code === 'ok' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
      return {
        reason: 'the server only accepts TLS connections',
        fix: 'set TEMPORAL_TLS=true (with TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA and TEMPORAL_TLS_CLIENT_CERT_PATH/TEMPORAL_TLS_CLIENT_KEY_PATH for mTLS)',
      };
    }
    return undefined;
  }
  const o = typeof conf === 'object' && conf ? conf : {};
  const { host } = splitHostPort(address);
  const servername = o.serverNameOverride ?? (/^[\d.:]+$/.test(host) ? undefined : host);
  const options: tls.ConnectionOptions = {};
  if (servername) options.servername = servername;
  if (o.serverRootCACertificate) options.ca = buf(o.serverRootCACertificate);
  if (o.clientCertPair) Object.assign(options, { cert: buf(o.clientCertPair.crt), key: buf(o.clientCertPair.key) });
  if (o.serverNameOverride) options.checkServerIdentity = (_h, cert) => tls.checkServerIdentity(servername!, cert);
  const code = await handshake(address, options, timeoutMs);
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (code === 'closed' && !o.clientCertPair)) {
    return {
      reason: 'TLS refused: the server requires a client certificate',
      fix: 'set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH',
    };
  }
  if (/BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|DECRYPT_ERROR/.test(code)) {
    return {
      reason: 'TLS refused: the server does not accept this client certificate',
      fix: 'check TEMPORAL_TLS_CLIENT_CERT_PATH (it must be signed by a CA the server trusts)',
    };
  }
  if (UNTRUSTED.has(code)) {
    return {
      reason: `the server's TLS certificate is not trusted (${code})`,
      fix: 'set TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA, and TEMPORAL_TLS_SERVER_NAME to a name in its certificate',
    };
  }
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|EPROTO/.test(code)) {
    return {
      reason: 'the server does not speak TLS',
      fix: 'unset TEMPORAL_TLS and TEMPORAL_TLS_* (or use the TLS port)',
    };
  }
  return undefined;
}
