/**
 * The byte layer of unosql's files (`../shared/formats/unosql.md` in the
 * project): the 32-byte SHA-256 prefix, zlib streams, the encryption
 * envelopes of the current (AES-256-ECB, keyless "MAC") and legacy
 * (AES-128-CBC, secret-prefix MAC) versions, and their key stretching.
 * WebCrypto and `DecompressionStream` only.
 *
 * Every failed check throws {@linkcode Damage}, which says which check
 * failed and at which byte.
 *
 * @module
 */

/** The checks a unosql file can fail. */
export type UnosqlCheck =
  | "checksum"
  | "zlib"
  | "envelope"
  | "mac"
  | "padding"
  | "utf8"
  | "json"
  | "shape"
  | "record";

/**
 * A failed check in one file: thrown by the readers, turned into an
 * `IntegrityError` or a report entry by the importer.
 */
export class Damage extends Error {
  /** Which check failed. */
  readonly check: UnosqlCheck;
  /** Byte offset in the file where the failing part starts, if known. */
  readonly offset: number | undefined;
  /** Byte offset in the decoded JSON text, if the failure is inside it. */
  readonly textOffset: number | undefined;
  /** Position of the record in its array (0-based), for record damage. */
  readonly record: number | undefined;

  /**
   * @param check Which check failed.
   * @param message What is wrong, without the file name.
   * @param where Offsets and record position.
   */
  constructor(
    check: UnosqlCheck,
    message: string,
    where: { offset?: number; textOffset?: number; record?: number } = {},
  ) {
    super(message);
    this.name = "Damage";
    this.check = check;
    this.offset = where.offset;
    this.textOffset = where.textOffset;
    this.record = where.record;
  }
}

/** The key is missing or does not open the data (a `WrongKeyError`). */
export class KeyProblem extends Error {
  /** @param message What is wrong, without the file name. */
  constructor(message: string) {
    super(message);
    this.name = "KeyProblem";
  }
}

/** The two on-disk versions (the format note, section 1). */
export type UnosqlFormat = "current" | "legacy";

/** SHA-256 of some bytes. */
export async function sha256(
  ...parts: readonly Uint8Array[]
): Promise<Uint8Array> {
  const data = parts.length === 1 ? parts[0]! : concat(parts);
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
}

/** The parts joined into one array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether two byte arrays are equal. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Whether `SHA-256(bytes 32..end) == bytes 0..31`. */
export async function hasChecksum(file: Uint8Array): Promise<boolean> {
  return file.length >= 32 &&
    equalBytes(await sha256(file.subarray(32)), file.subarray(0, 32));
}

/**
 * Checks the 32-byte SHA-256 prefix and returns the payload after it.
 *
 * @throws {Damage} `checksum` when the file is short or the hash differs.
 */
export async function stripChecksum(file: Uint8Array): Promise<Uint8Array> {
  if (file.length < 32) {
    throw new Damage(
      "checksum",
      `is ${file.length} bytes, shorter than its 32-byte SHA-256 checksum (truncated)`,
      { offset: 0 },
    );
  }
  if (!(await hasChecksum(file))) {
    throw new Damage(
      "checksum",
      `the SHA-256 of bytes 32..${file.length} does not match the checksum in bytes 0..31 (the file is damaged or truncated)`,
      { offset: 0 },
    );
  }
  return file.subarray(32);
}

/** Whether the two bytes form a zlib (RFC 1950) header without a dictionary. */
export function isZlibHeader(p: Uint8Array): boolean {
  if (p.length < 2) return false;
  const cmf = p[0]!, flg = p[1]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && (cmf * 256 + flg) % 31 === 0 &&
    (flg & 0x20) === 0;
}

function adler32(data: Uint8Array): number {
  let a = 1, b = 0;
  for (let i = 0; i < data.length;) {
    const end = Math.min(i + 3800, data.length);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Inflates a zlib stream and checks its Adler-32 trailer (Deno's
 * `DecompressionStream` returns a truncated stream's partial output without
 * an error, so the trailer is checked here).
 *
 * @param p The stream (the whole payload).
 * @param base Its offset in the file, for the error.
 * @throws {Damage} `zlib` when it does not inflate or the trailer differs.
 */
export async function inflate(
  p: Uint8Array,
  base: number,
): Promise<Uint8Array> {
  let out: Uint8Array;
  try {
    const stream = new Blob([p as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("deflate"));
    out = new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (cause) {
    throw new Damage(
      "zlib",
      `the zlib stream at bytes ${base}..${base + p.length} does not inflate (${
        (cause as Error).message
      })`,
      { offset: base },
    );
  }
  const trailer = p.length >= 6
    ? new DataView(p.buffer, p.byteOffset + p.length - 4).getUint32(0)
    : -1;
  if (trailer !== adler32(out)) {
    throw new Damage(
      "zlib",
      `the zlib stream at bytes ${base}..${
        base + p.length
      } ends early or its Adler-32 (bytes ${base + p.length - 4}..${
        base + p.length
      }) does not match the inflated data (truncated or damaged)`,
      { offset: Math.max(base, base + p.length - 4) },
    );
  }
  return out;
}

/** Derived keys, imported for WebCrypto. */
export interface UnosqlKeys {
  /** AES-CBC key (used raw for ECB in the current format). */
  readonly aes: CryptoKey;
  /** Legacy only: the 16-byte MAC key. */
  readonly mac: Uint8Array | undefined;
}

/** `iterations` rounds of SHA-256 from `seed` (unosql's key stretching). */
async function stretch(
  seed: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  let k = seed;
  for (let i = 0; i < iterations; i++) k = await sha256(k);
  return k;
}

/**
 * Derives the keys as unosql does (format note, sections 5 and 10).
 *
 * @param format Which version.
 * @param key The caller's key bytes (32 current, 16 legacy).
 * @param salt The 16 bytes of `D_salt.db`.
 * @param iterations The iteration count the database was opened with.
 */
export async function deriveKeys(
  format: UnosqlFormat,
  key: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<UnosqlKeys> {
  if (format === "current") {
    const k = await stretch(concat([key, salt]), iterations);
    return { aes: await importAes(k), mac: undefined };
  }
  const hmac = new TextEncoder().encode("hmac");
  const [a, m] = await Promise.all([
    stretch(concat([key, salt]), iterations),
    stretch(concat([key, hmac, salt]), iterations),
  ]);
  return { aes: await importAes(a.subarray(0, 16)), mac: m.subarray(0, 16) };
}

async function importAes(raw: Uint8Array): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    raw.slice() as Uint8Array<ArrayBuffer>,
    "AES-CBC",
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Raw AES-CBC decryption (no padding removed): WebCrypto checks PKCS#7, so
 * one block is appended that decrypts to a full padding block.
 */
async function cbcRaw(
  key: CryptoKey,
  iv: Uint8Array,
  ct: Uint8Array,
): Promise<Uint8Array> {
  const last = ct.subarray(ct.length - 16);
  const pad = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-CBC", iv: last.slice() },
      key,
      new Uint8Array(0),
    ),
  );
  const out = await crypto.subtle.decrypt(
    { name: "AES-CBC", iv: iv.slice() as Uint8Array<ArrayBuffer> },
    key,
    concat([ct, pad]) as Uint8Array<ArrayBuffer>,
  );
  return new Uint8Array(out);
}

/** AES-ECB decryption of whole blocks, through CBC with a zero IV. */
async function ecbRaw(key: CryptoKey, ct: Uint8Array): Promise<Uint8Array> {
  const out = await cbcRaw(key, new Uint8Array(16), ct);
  for (let i = 16; i < out.length; i++) out[i]! ^= ct[i - 16]!;
  return out;
}

/**
 * Whether the payload is a current envelope: `IV(16) ‖ SHA-256(IV ‖ ct)(32)
 * ‖ ct`, which needs no key to recognise.
 */
export async function isCurrentEnvelope(p: Uint8Array): Promise<boolean> {
  return p.length >= 64 && (p.length - 48) % 16 === 0 &&
    equalBytes(
      await sha256(p.subarray(0, 16), p.subarray(48)),
      p.subarray(16, 48),
    );
}

/** Whether the payload has the shape of an envelope (either version). */
export function looksLikeEnvelope(p: Uint8Array): boolean {
  return p.length >= 64 && (p.length - 48) % 16 === 0;
}

/** Whether the payload is a legacy envelope under this MAC key. */
export async function isLegacyEnvelope(
  p: Uint8Array,
  mac: Uint8Array,
): Promise<boolean> {
  return looksLikeEnvelope(p) &&
    equalBytes(await sha256(mac, p.subarray(48)), p.subarray(16, 48));
}

/**
 * Opens an envelope whose MAC was checked: decrypts and removes the PKCS#7
 * padding.
 *
 * @param format Which version (ECB or CBC).
 * @param keys The derived keys.
 * @param p The envelope.
 * @returns The plaintext bytes.
 * @throws {KeyProblem} When the padding is wrong (with a checked MAC, a wrong
 *   key, salt or iteration count).
 */
export async function openEnvelope(
  format: UnosqlFormat,
  keys: UnosqlKeys,
  p: Uint8Array,
): Promise<Uint8Array> {
  const ct = p.subarray(48);
  const plain = format === "current"
    ? await ecbRaw(keys.aes, ct)
    : await cbcRaw(keys.aes, p.subarray(0, 16), ct);
  const n = plain[plain.length - 1]!;
  let ok = n >= 1 && n <= 16;
  // The legacy code checks only the count; the current one every pad byte.
  if (ok && format === "current") {
    for (let i = plain.length - n; i < plain.length; i++) {
      if (plain[i] !== n) ok = false;
    }
  }
  if (!ok) {
    throw new KeyProblem(
      "its PKCS#7 padding is invalid after decryption: the key, salt or iteration count is wrong",
    );
  }
  return plain.subarray(0, plain.length - n);
}
