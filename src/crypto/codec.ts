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

/**
 * At most this many (de)compression streams run at once. Each holds native
 * zlib state (a few hundred KiB) that the garbage collector does not see, so
 * a commit of thousands of values started all at once used to hold about a
 * gigabyte; past the limit, callers queue.
 */
const MAX_STREAMS = 16;
let streams = 0;
const waiting: (() => void)[] = [];

async function pipe(
  data: Uint8Array,
  make: () => CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  while (streams >= MAX_STREAMS) {
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  streams++;
  try {
    const out = new Response(
      new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(make()),
    );
    return new Uint8Array(await out.arrayBuffer());
  } finally {
    streams--;
    waiting.shift()?.();
  }
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
  return pipe(data, () => new CompressionStream("deflate-raw"));
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
  return pipe(data, () => new DecompressionStream("deflate-raw"));
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

/** Fewest PBKDF2 iterations a database or backup header may name. */
export const MIN_ITERATIONS = 1_000;
/**
 * Most PBKDF2 iterations a database or backup header may name: what caps the
 * work a hostile header can ask of `open` (a header's MAC can only be checked
 * after PBKDF2 ran with the header's own count).
 */
export const MAX_ITERATIONS = 5_000_000;
/** Fewest salt bytes a header may name (this code writes 16). */
export const MIN_SALT_BYTES = 16;
/** Most salt bytes a header may name. */
export const MAX_SALT_BYTES = 64;

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Why a value is not a PBKDF2 iteration count a header may hold (a whole
 * number from {@linkcode MIN_ITERATIONS} to {@linkcode MAX_ITERATIONS}), or
 * `undefined` when it is one. Checked before any derivation runs.
 *
 * @param value The value read from a header.
 * @returns The problem, to follow the field's name in a message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { iterationsProblem } from "./codec.ts";
 * assert.equal(iterationsProblem(600_000), undefined);
 * assert.match(iterationsProblem(2e9)!, /5,000,000/);
 * ```
 */
export function iterationsProblem(value: unknown): string | undefined {
  if (
    typeof value === "number" && Number.isSafeInteger(value) &&
    value >= MIN_ITERATIONS && value <= MAX_ITERATIONS
  ) {
    return undefined;
  }
  return `must be a whole number from 1,000 to 5,000,000, got ${
    describeValue(value)
  }`;
}

/**
 * Why a value is not a salt a header may hold (base64 of 16 to 64 bytes), or
 * `undefined` when it is one.
 *
 * @param value The value read from a header.
 * @returns The problem, to follow the field's name in a message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saltProblem } from "./codec.ts";
 * assert.equal(saltProblem("AAAAAAAAAAAAAAAAAAAAAA=="), undefined);
 * assert.match(saltProblem("not base64!")!, /base64/);
 * ```
 */
export function saltProblem(value: unknown): string | undefined {
  const problem = base64Problem(value, MIN_SALT_BYTES, MAX_SALT_BYTES);
  return problem === undefined ? undefined : `must be ${problem}`;
}

/**
 * Why a value is not base64 of `min` to `max` bytes, or `undefined`.
 *
 * @param value The value.
 * @param min Fewest bytes.
 * @param max Most bytes.
 * @returns What it should be and what it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { base64Problem } from "./codec.ts";
 * assert.equal(base64Problem("AAAA", 3, 3), undefined);
 * assert.ok(base64Problem(null, 3, 3));
 * ```
 */
export function base64Problem(
  value: unknown,
  min: number,
  max: number,
): string | undefined {
  const what = min === max ? `${min}` : `${min} to ${max}`;
  if (typeof value !== "string" || !BASE64.test(value)) {
    return `base64 of ${what} bytes, got ${describeValue(value)}`;
  }
  const bytes = value.length / 4 * 3 -
    (value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0);
  if (bytes < min || bytes > max) {
    return `base64 of ${what} bytes, got ${bytes} bytes`;
  }
  return undefined;
}

/**
 * A short description of a value read from a header, for an error message:
 * numbers and short strings as they are, anything else by its kind (never a
 * long string, which could be key material).
 *
 * @param value The value.
 * @returns The description.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeValue } from "./codec.ts";
 * assert.equal(describeValue(null), "null");
 * assert.equal(describeValue("x".repeat(100)), "a string of 100 characters");
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") {
    return value.length > 24
      ? `a string of ${value.length} characters`
      : JSON.stringify(value);
  }
  if (typeof value === "number") return String(value);
  return typeof value;
}

/**
 * Derives a 256-bit master key from a passphrase with PBKDF2-HMAC-SHA256
 * (one block: no output an attacker could skip), for
 * {@linkcode hkdfExpand}.
 *
 * @param passphrase The passphrase (its UTF-8 bytes).
 * @param salt The salt.
 * @param iterations The iteration count (checked by the caller).
 * @returns 32 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pbkdf2Master } from "./codec.ts";
 * assert.equal((await pbkdf2Master("pw", new Uint8Array(16), 1000)).length, 32);
 * ```
 */
export async function pbkdf2Master(
  passphrase: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  return await pbkdf2Bits(passphrase, salt, iterations, 256);
}

/**
 * HKDF-SHA256 (extract and expand, RFC 5869) of a key into `bytes` bytes for
 * one purpose, named by `info`.
 *
 * @param ikm The input key (a master key or a raw key).
 * @param salt The salt (may be empty).
 * @param info The purpose (ASCII), distinct for every derived key.
 * @param bytes How many bytes (32 unless told).
 * @returns The derived bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hkdfExpand } from "./codec.ts";
 * const ikm = new Uint8Array(32);
 * const a = await hkdfExpand(ikm, new Uint8Array(0), "a");
 * assert.notDeepEqual(a, await hkdfExpand(ikm, new Uint8Array(0), "b"));
 * ```
 */
export async function hkdfExpand(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  bytes = 32,
): Promise<Uint8Array> {
  return await derive(ikm, {
    name: "HKDF",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    info: new TextEncoder().encode(info),
  }, bytes * 8);
}

/**
 * Legacy (codec header version 1, and wraps without `"v": 2`): 64 bytes of
 * PBKDF2-SHA256 split into two keys. Kept to read what older versions wrote.
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
  return await pbkdf2Bits(passphrase, salt, iterations, 512);
}

/** PBKDF2-SHA256 of a passphrase, `bits` long. */
async function pbkdf2Bits(
  passphrase: string,
  salt: Uint8Array,
  iterations: number,
  bits: number,
): Promise<Uint8Array> {
  return await derive(new TextEncoder().encode(passphrase), {
    name: "PBKDF2",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    iterations,
  }, bits);
}

/**
 * Legacy (codec header version 1, and wraps without `"v": 2`): 64 bytes of
 * HKDF-SHA256 from a raw key. Kept to read what older versions wrote.
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
  return await derive(key, {
    name: "HKDF",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    info: new TextEncoder().encode("tether-db key wrap"),
  }, 512);
}

/** `bits` bits derived from `secret` with a WebCrypto derivation. */
async function derive(
  secret: Uint8Array,
  params: Pbkdf2Params | HkdfParams,
  bits: number,
): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    params.name,
    false,
    ["deriveBits"],
  );
  return new Uint8Array(await crypto.subtle.deriveBits(params, base, bits));
}
