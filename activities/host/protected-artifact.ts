/**
 * Decoding a protected payload, the I/O half of an era's payload encoding (the facts: the era's
 * `encoding`, workflows/eras/; today the protected era's, 0.8.4+, `scripts/release_candidate.py`):
 * a `.dcgateway` or `.dcwheel` file is the line `DEFENSECLAW-PROTECTED-ARTIFACT-V1\n` followed by
 * the whole archive (GoReleaser tarball, or wheel) with every byte XOR 0xA5. No length, no digest, no
 * trailer: the integrity is the protected file's own SHA-256 in checksums.txt, which decoding
 * re-checks while it streams (so the bytes decoded are the bytes verified), as the real upgrader does.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { PayloadEncoding } from '../../workflows/eras/era.js';
import { PROTECTED_ENCODING } from '../../workflows/eras/protected.js';
import { FailureType, refuse } from '../support.js';

type XorEncoding = Extract<PayloadEncoding, { kind: 'xor' }>;

/** XOR with the key in place: the protection layer is its own inverse. */
export function xorProtected(chunk: Buffer, key: number): Buffer {
  for (let i = 0; i < chunk.length; i++) chunk[i] = chunk[i]! ^ key;
  return chunk;
}

/**
 * Decodes `source` (a protected file) into `dest` (created exclusively, 0600). When `sha256` is
 * given, the protected file's digest (magic included) must equal it. `encoding`: the payload's
 * era's (default: the protected era's).
 */
export async function decodeProtected(
  source: string,
  dest: string,
  sha256?: string,
  encoding: XorEncoding = PROTECTED_ENCODING,
): Promise<void> {
  const magic = Buffer.from(encoding.magic, 'ascii');
  const st = await fs.lstat(source);
  if (!st.isFile()) throw refuse(FailureType.UnsafePath, `${source} is not a regular file`);
  if (st.size <= magic.length || st.size > encoding.maxBytes) {
    throw refuse(FailureType.UnsafeArchive, 'the protected payload is empty or too large');
  }
  const hash = createHash('sha256');
  const out = await fs.open(dest, 'wx', 0o600);
  let seen = 0;
  let header = Buffer.alloc(0);
  try {
    for await (const raw of createReadStream(source, { highWaterMark: 1024 * 1024 })) {
      let chunk = raw as Buffer;
      hash.update(chunk);
      if (header.length < magic.length) {
        const need = magic.length - header.length;
        header = Buffer.concat([header, chunk.subarray(0, need)]);
        chunk = chunk.subarray(need);
        if (header.length === magic.length && !header.equals(magic)) {
          throw refuse(FailureType.UnsafeArchive, 'not a DefenseClaw protected artifact (wrong header)');
        }
      }
      if (chunk.length) await out.write(xorProtected(Buffer.from(chunk), encoding.xor));
      seen += (raw as Buffer).length;
    }
    await out.sync();
  } catch (err) {
    await out.close();
    await fs.rm(dest, { force: true });
    throw err;
  }
  await out.close();
  const got = hash.digest('hex');
  if (seen !== st.size || (sha256 !== undefined && got !== sha256)) {
    await fs.rm(dest, { force: true });
    throw refuse(
      FailureType.ChecksumMismatch,
      'the protected payload changed between its verification and its decoding; nothing was installed',
    );
  }
}
