/**
 * The record codec: optional deflate compression, then AES-CBC encryption
 * with a fresh IV and an HMAC-SHA256 tag over the format version, flags, key
 * generation, IV, ciphertext and the record's storage key (encrypt-then-MAC,
 * verified before decrypting). WebCrypto and `CompressionStream` only.
 *
 * Envelope, byte by byte (FORMAT.md, "Record codec"):
 *
 * | bytes       | meaning                                               |
 * | ----------- | ----------------------------------------------------- |
 * | 0           | format version, 1                                     |
 * | 1           | flags: bit 0 compressed (deflate-raw), bit 1 encrypted |
 * | 2           | key generation (encrypted only)                       |
 * | 3..18       | IV, 16 bytes (encrypted only)                         |
 * | ...         | ciphertext (AES-CBC, PKCS#7) or the (compressed) data  |
 * | last 32     | HMAC-SHA256 tag (encrypted only)                      |
 *
 * @module
 */

/** Envelope format version. */
export const CODEC_VERSION = 1;
/** Flag: the payload is deflate-raw compressed. */
export const FLAG_COMPRESSED = 1;
/** Flag: the payload is encrypted and MAC'd. */
export const FLAG_ENCRYPTED = 2;
const IV_BYTES = 16;
const TAG_BYTES = 32;

/** The keys that encrypt and authenticate records: one generation. */
export interface RecordKeys {
  /** Generation number, stored in each envelope (0 to 255). */
  readonly generation: number;
  /** AES-CBC key (128 or 256 bits). */
  readonly enc: CryptoKey;
  /** HMAC-SHA256 key. */
  readonly mac: CryptoKey;
}

/** Settings of a codec. */
export interface CodecSettings {
  /** Compress values of at least this many bytes (when it makes them smaller). */
  readonly minBytes?: number | undefined;
  /** Encrypt with these keys (the current generation). */
  readonly keys?: RecordKeys | undefined;
}

/** Why an envelope could not be opened. */
export class EnvelopeError extends Error {}

/**
 * Imports raw key bytes as an AES-CBC key and an HMAC-SHA256 key.
 *
 * @param generation The generation number.
 * @param enc 16 or 32 bytes.
 * @param mac 32 bytes.
 * @returns The keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importKeys } from "./codec.ts";
 * const keys = await importKeys(0, new Uint8Array(32), new Uint8Array(32));
 * assert.equal(keys.enc.algorithm.name, "AES-CBC");
 * ```
 */
export async function importKeys(
  generation: number,
  enc: Uint8Array,
  mac: Uint8Array,
): Promise<RecordKeys> {
  const [e, m] = await Promise.all([
    crypto.subtle.importKey(
      "raw",
      enc as Uint8Array<ArrayBuffer>,
      "AES-CBC",
      false,
      [
        "encrypt",
        "decrypt",
      ],
    ),
    crypto.subtle.importKey(
      "raw",
      mac as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    ),
  ]);
  return { generation, enc: e, mac: m };
}

async function pipe(
  data: Uint8Array,
  stream: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const out = new Response(
    new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream),
  );
  return new Uint8Array(await out.arrayBuffer());
}

/**
 * Compresses with deflate-raw.
 *
 * @param data The bytes.
 * @returns The compressed bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deflate, inflate } from "./codec.ts";
 * const data = new TextEncoder().encode("a".repeat(1000));
 * assert.deepEqual(await inflate(await deflate(data)), data);
 * ```
 */
export function deflate(data: Uint8Array): Promise<Uint8Array> {
  return pipe(data, new CompressionStream("deflate-raw"));
}

/**
 * Decompresses deflate-raw.
 *
 * @param data Compressed bytes.
 * @returns The original bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deflate, inflate } from "./codec.ts";
 * assert.equal((await inflate(await deflate(new Uint8Array(5)))).length, 5);
 * ```
 */
export function inflate(data: Uint8Array): Promise<Uint8Array> {
  return pipe(data, new DecompressionStream("deflate-raw"));
}

/** The bytes the tag covers: header, IV, ciphertext, identity. */
function macInput(
  head: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  identity: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(
    head.length + iv.length + ciphertext.length + 4 + identity.length,
  );
  let at = 0;
  out.set(head, at);
  at += head.length;
  out.set(iv, at);
  at += iv.length;
  out.set(ciphertext, at);
  at += ciphertext.length;
  new DataView(out.buffer).setUint32(at, identity.length);
  out.set(identity, at + 4);
  return out;
}

/**
 * Seals a value: compresses it when that helps, then encrypts and MACs it
 * bound to `identity` (the storage key).
 *
 * @param data The plain bytes.
 * @param identity The bytes the record belongs to (its storage key).
 * @param settings Compression threshold and keys.
 * @returns The envelope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importKeys, open, seal } from "./codec.ts";
 * const keys = await importKeys(0, new Uint8Array(32), new Uint8Array(32).fill(1));
 * const id = new Uint8Array([1, 2]);
 * const sealed = await seal(new Uint8Array([42]), id, { keys });
 * assert.deepEqual(await open(sealed, id, () => keys), new Uint8Array([42]));
 * ```
 */
export async function seal(
  data: Uint8Array,
  identity: Uint8Array,
  settings: CodecSettings,
): Promise<Uint8Array> {
  let flags = 0;
  let payload = data;
  const { minBytes, keys } = settings;
  if (minBytes !== undefined && data.length >= minBytes) {
    const packed = await deflate(data);
    if (packed.length < data.length) {
      payload = packed;
      flags |= FLAG_COMPRESSED;
    }
  }
  if (keys === undefined) {
    const out = new Uint8Array(2 + payload.length);
    out[0] = CODEC_VERSION;
    out[1] = flags;
    out.set(payload, 2);
    return out;
  }
  flags |= FLAG_ENCRYPTED;
  const head = new Uint8Array([CODEC_VERSION, flags, keys.generation]);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-CBC", iv },
      keys.enc,
      payload as Uint8Array<ArrayBuffer>,
    ),
  );
  const tag = new Uint8Array(
    await crypto.subtle.sign(
      "HMAC",
      keys.mac,
      macInput(head, iv, ciphertext, identity),
    ),
  );
  const out = new Uint8Array(
    head.length + IV_BYTES + ciphertext.length + TAG_BYTES,
  );
  out.set(head, 0);
  out.set(iv, head.length);
  out.set(ciphertext, head.length + IV_BYTES);
  out.set(tag, out.length - TAG_BYTES);
  return out;
}

/**
 * Opens an envelope: checks the tag (in constant time, before decrypting),
 * decrypts, decompresses.
 *
 * @param envelope The stored bytes.
 * @param identity The storage key it was read from.
 * @param keysFor The keys of a generation, or `undefined` when unknown.
 * @param encrypted Whether the database is encrypted (a plain envelope in an
 *   encrypted database is refused).
 * @returns The plain bytes.
 * @throws {EnvelopeError} When the envelope is malformed or fails its tag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open, seal } from "./codec.ts";
 * const id = new Uint8Array([7]);
 * const sealed = await seal(new TextEncoder().encode("x".repeat(300)), id, { minBytes: 100 });
 * assert.equal((await open(sealed, id, () => undefined, false)).length, 300);
 * ```
 */
export async function open(
  envelope: Uint8Array,
  identity: Uint8Array,
  keysFor: (generation: number) => RecordKeys | undefined,
  encrypted = true,
): Promise<Uint8Array> {
  if (envelope.length < 2) throw new EnvelopeError("it is truncated");
  if (envelope[0] !== CODEC_VERSION) {
    throw new EnvelopeError(`its format version ${envelope[0]} is unknown`);
  }
  const flags = envelope[1]!;
  if ((flags & ~(FLAG_COMPRESSED | FLAG_ENCRYPTED)) !== 0) {
    throw new EnvelopeError(`its flags ${flags} are unknown`);
  }
  let payload: Uint8Array;
  if ((flags & FLAG_ENCRYPTED) === 0) {
    if (encrypted) {
      throw new EnvelopeError("it is not encrypted, in an encrypted database");
    }
    payload = envelope.subarray(2);
  } else {
    const min = 3 + IV_BYTES + 16 + TAG_BYTES;
    if (envelope.length < min || (envelope.length - min) % 16 !== 0) {
      throw new EnvelopeError("it is truncated");
    }
    const keys = keysFor(envelope[2]!);
    if (keys === undefined) {
      throw new EnvelopeError(`its key generation ${envelope[2]} is unknown`);
    }
    const head = envelope.subarray(0, 3);
    const iv = envelope.subarray(3, 3 + IV_BYTES);
    const ciphertext = envelope.subarray(
      3 + IV_BYTES,
      envelope.length - TAG_BYTES,
    );
    const tag = envelope.subarray(envelope.length - TAG_BYTES);
    const ok = await crypto.subtle.verify(
      "HMAC",
      keys.mac,
      tag as Uint8Array<ArrayBuffer>,
      macInput(head, iv, ciphertext, identity),
    );
    if (!ok) throw new EnvelopeError("it fails its MAC");
    try {
      payload = new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-CBC", iv: iv as Uint8Array<ArrayBuffer> },
          keys.enc,
          ciphertext as Uint8Array<ArrayBuffer>,
        ),
      );
    } catch (cause) {
      throw new EnvelopeError("it does not decrypt", { cause });
    }
  }
  if ((flags & FLAG_COMPRESSED) === 0) return payload;
  try {
    return await inflate(payload);
  } catch (cause) {
    throw new EnvelopeError("it does not decompress", { cause });
  }
}

/**
 * Derives 64 bytes from a passphrase with PBKDF2-SHA256.
 *
 * @param passphrase The passphrase.
 * @param salt The salt.
 * @param iterations The iteration count.
 * @returns 64 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pbkdf2 } from "./codec.ts";
 * assert.equal((await pbkdf2("pw", new Uint8Array(16), 1000)).length, 64);
 * ```
 */
export async function pbkdf2(
  passphrase: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  return await derive64(new TextEncoder().encode(passphrase), {
    name: "PBKDF2",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    iterations,
  });
}

/**
 * Derives 64 bytes from a raw key with HKDF-SHA256.
 *
 * @param key The raw key (16 or 32 bytes).
 * @param salt The salt.
 * @returns 64 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hkdf } from "./codec.ts";
 * assert.equal((await hkdf(new Uint8Array(32), new Uint8Array(16))).length, 64);
 * ```
 */
export async function hkdf(
  key: Uint8Array,
  salt: Uint8Array,
): Promise<Uint8Array> {
  return await derive64(key, {
    name: "HKDF",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    info: new TextEncoder().encode("tether-db key wrap"),
  });
}

/** 64 bytes derived from `secret` with a WebCrypto derivation. */
async function derive64(
  secret: Uint8Array,
  params: Pbkdf2Params | HkdfParams,
): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    params.name,
    false,
    ["deriveBits"],
  );
  return new Uint8Array(await crypto.subtle.deriveBits(params, base, 512));
}
