/**
 * The Sigstore signature of checksums.txt (`checksums.txt.sig` + `.pem`, keyless `cosign sign-blob`
 * in the release workflow). Checked in this order, all before anything live changes:
 *
 * 1. the certificate's identity is this repository's release workflow (`release.yaml@refs/tags/<v>`
 *    or `@refs/heads/main`; from 0.8.4 only `@refs/heads/main`, as the real upgrader requires) and its
 *    OIDC issuer is GitHub Actions; any other identity is refused, cosign or not (which identities,
 *    and whether the signature is mandatory: the era the release is tagged in, workflows/eras/);
 * 2. the signature verifies against the certificate's key;
 * 3. `cosign verify-blob` checks the same identity and issuer plus the Sigstore chain and transparency
 *    log, when cosign is installed. Without cosign, a release before 0.8.4 goes on with a plain
 *    "checked locally, not with cosign"; a 0.8.4+ release (signature mandatory) is refused unless the
 *    host's operator set DEFENSECLAW_ALLOW_NO_COSIGN=1.
 */
import { X509Certificate, verify as verifySig } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { OIDC_ISSUER, escapeRegExp } from '../../workflows/eras/era.js';
import { eraOfTag } from '../../workflows/eras/index.js';
import { VersionSchema, type SignatureStatus } from '../../workflows/types.js';
import { STAGING_ID, stagingDir } from './artifacts.js';
import { run, which } from '../exec.js';
import { FailureType, activityContext, refuse, validated } from '../support.js';

const VerifySignatureInput = z.object({ version: VersionSchema, stagingId: STAGING_ID, signed: z.boolean() }).strict();
export type VerifySignatureInput = z.input<typeof VerifySignatureInput>;

/** A certificate as cosign writes it: PEM, or (older cosign) the PEM base64-encoded once more. */
export function readCertificate(text: string, label = 'checksums.txt.pem'): X509Certificate {
  let pem = text;
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    pem = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  try {
    return new X509Certificate(pem);
  } catch {
    throw refuse(FailureType.SignatureInvalid, `${label} is not a certificate`);
  }
}

/** The URIs of the certificate's subjectAltName (Fulcio puts the workflow identity there). */
export function certificateIdentities(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/**
 * Fulcio's OIDC-issuer extension: 1.3.6.1.4.1.57264.1.8 (a DER UTF8String) or the older .1.1 (raw
 * bytes). Found by its OID in the DER; undefined when absent.
 */
export function certificateIssuer(cert: X509Certificate): string | undefined {
  const der = cert.raw;
  for (const last of [0x08, 0x01]) {
    const oid = Buffer.from([0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, last]);
    let i = der.indexOf(oid);
    if (i < 0) continue;
    i += oid.length;
    if (der[i] === 0x01) i += 3; // BOOLEAN critical
    if (der[i] !== 0x04) continue; // OCTET STRING
    const [len, at] = derLength(der, i + 1);
    let value = der.subarray(at, at + len);
    if (last === 0x08 && value[0] === 0x0c) {
      const [l2, a2] = derLength(value, 1);
      value = value.subarray(a2, a2 + l2);
    }
    return value.toString('utf8');
  }
  return undefined;
}

function derLength(b: Buffer, i: number): [number, number] {
  const first = b[i]!;
  if (first < 0x80) return [first, i + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let k = 0; k < n; k++) len = len * 256 + b[i + 1 + k]!;
  return [len, i + 1 + n];
}

/** Refuses a certificate that is not this repository's release workflow, or not from GitHub Actions. */
export function checkIdentity(cert: X509Certificate, accepted: string[], signed = 'checksums.txt'): string {
  const ids = certificateIdentities(cert);
  const match = ids.find((id) => accepted.includes(id));
  if (!match) {
    throw refuse(
      FailureType.SignatureIdentity,
      `${signed} is signed by ${ids[0] ? JSON.stringify(ids[0].slice(0, 160)) : 'an unnamed identity'}, not by this repository's release workflow (${accepted[0]}); refusing ${signed === 'checksums.txt' ? 'the release' : 'it'}`,
    );
  }
  const issuer = certificateIssuer(cert);
  if (issuer !== OIDC_ISSUER) {
    throw refuse(
      FailureType.SignatureIdentity,
      `the signing certificate's OIDC issuer is ${issuer ? JSON.stringify(issuer.slice(0, 120)) : 'missing'}, not GitHub Actions`,
    );
  }
  return match;
}

/** Whether a base64 signature (cosign's `.sig`, a bundle's `base64Signature`) of `data` verifies against the certificate's key. */
export function signatureVerifies(data: Buffer, signatureB64: string, cert: X509Certificate): boolean {
  try {
    return verifySig('sha256', data, cert.publicKey, Buffer.from(signatureB64.replace(/\s+/g, ''), 'base64'));
  } catch {
    return false;
  }
}

/**
 * Activity: verifies checksums.txt's signature before anything live changes, and answers how far
 * it went: `verified` (cosign), `checked-locally` (identity and signature, no cosign), `unsigned`.
 */
export async function verifySignature(config: HostConfig, rawInput: unknown): Promise<{ signature: SignatureStatus }> {
  const input = validated(VerifySignatureInput, rawInput, 'verifySignature');
  // The rules of the era the release is tagged in (workflows/eras/): mandatory or not, whose identity.
  const era = eraOfTag(input.version);
  const strict = era.signature.required;
  if (!input.signed) {
    if (strict && !config.allowUnsigned) {
      throw refuse(
        FailureType.SignatureMissing,
        `DefenseClaw ${input.version} must be signed (from ${era.since} the signature is mandatory) but the release has no checksums.txt.sig/.pem; refusing`,
      );
    }
    return { signature: 'unsigned' };
  }
  const dir = await stagingDir(config, input.stagingId);
  const files = {
    sums: path.join(dir, 'checksums.txt'),
    sig: path.join(dir, 'checksums.txt.sig'),
    pem: path.join(dir, 'checksums.txt.pem'),
  };
  const accepted = era.signature.identities(config.releases.repo, input.version);
  const cert = readCertificate(await fs.readFile(files.pem, 'utf8'));
  const identity = checkIdentity(cert, accepted);
  const ok = signatureVerifies(await fs.readFile(files.sums), await fs.readFile(files.sig, 'utf8'), cert);
  if (!ok) {
    throw refuse(FailureType.SignatureInvalid, "checksums.txt's signature does not verify against its certificate");
  }

  const cosign = await which('cosign', config.commandEnv);
  if (!cosign) {
    if (strict && !config.allowNoCosign) {
      throw refuse(
        FailureType.SignatureMissing,
        `DefenseClaw ${input.version} requires a Sigstore verification with cosign, which is not installed (as the real upgrader requires from ${era.since}); install cosign, or set DEFENSECLAW_ALLOW_NO_COSIGN=1 on this host to accept the local check`,
      );
    }
    activityContext()?.log.warn(
      `checksums.txt signed by ${identity}: identity and signature checked locally; cosign is not installed, so the Sigstore chain and transparency log were NOT verified`,
    );
    return { signature: 'checked-locally' };
  }
  const r = await run(
    cosign,
    [
      'verify-blob',
      '--certificate',
      files.pem,
      '--signature',
      files.sig,
      ...(strict
        ? ['--certificate-identity', accepted[0]!]
        : ['--certificate-identity-regexp', `^(${accepted.map(escapeRegExp).join('|')})$`]),
      '--certificate-oidc-issuer',
      OIDC_ISSUER,
      files.sums,
    ],
    { env: config.commandEnv, timeoutMs: 60_000 },
  );
  if (r.exitCode !== 0) {
    throw refuse(FailureType.SignatureInvalid, `cosign did not verify checksums.txt: ${r.output.slice(-300)}`);
  }
  return { signature: 'verified' };
}
