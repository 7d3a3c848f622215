/**
 * The parts of a backup file read before its blocks: the magic, the header
 * (checked field by field before any key derivation runs) and the hash chain
 * that covers every byte (FORMAT.md, "Backup").
 *
 * @module
 */

import { base64ToBytes, concatBytes, encodeUtf8 } from "../bytes.ts";
import { importKeys, type RecordKeys } from "../crypto/codec.ts";
import type { SecretWrap } from "../crypto/codec_storage.ts";
import { IntegrityError } from "../errors.ts";

/** The backup format this version writes; 1 still restores. */
export const BACKUP_FORMAT = 2;

/**
 * PBKDF2 iterations a backup header may ask for. The count is read from the
 * header before anything can be authenticated, so the bound is what caps
 * the work a hostile header can cause.
 */
export const MIN_BACKUP_ITERATIONS = 1_000;
/** See {@linkcode MIN_BACKUP_ITERATIONS}. */
export const MAX_BACKUP_ITERATIONS = 5_000_000;

/** The backup's header. */
export interface Header {
  readonly format: 1 | 2;
  readonly createdAt: number;
  readonly source: string;
  readonly collections: readonly string[] | null;
  /** Incremental: changes at or after this time; `null` for a full backup. */
  readonly since: number | null;
  readonly encryption: SecretWrap | null;
}

const HEADER_FIELDS = new Set([
  "format",
  "createdAt",
  "source",
  "collections",
  "since",
  "encryption",
]);
const WRAP_FIELDS = new Set(["kdf", "v", "salt", "iterations", "keys"]);
const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const COLLECTION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Bytes of base64 text, or `undefined` when it is not base64. */
function base64(text: unknown, maxChars: number): Uint8Array | undefined {
  if (typeof text !== "string" || text.length > maxChars) return undefined;
  if (!BASE64.test(text)) return undefined;
  return base64ToBytes(text);
}

/**
 * Checks every field of a parsed header (type, range, shape) before any of
 * it is used: an `IntegrityError` naming the field otherwise.
 */
export function checkHeader(parsed: unknown, action: string): Header {
  const bad = (field: string, why: string) =>
    new IntegrityError(
      `${action}: the header's ${field} ${why} (the backup is damaged or not one)`,
    );
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new IntegrityError(`${action}: the header is not a JSON object`);
  }
  const h = parsed as Record<string, unknown>;
  if (h.format !== 1 && h.format !== 2) {
    throw new IntegrityError(
      typeof h.format === "number"
        ? `${action}: backup format ${h.format} is unknown (this version reads 1 and 2)`
        : `${action}: the header's "format" is not a format number`,
    );
  }
  for (const field of Object.keys(h)) {
    if (!HEADER_FIELDS.has(field)) throw bad(`"${field}"`, "is not a field");
  }
  if (typeof h.createdAt !== "number" || !Number.isFinite(h.createdAt)) {
    throw bad('"createdAt"', "is not epoch milliseconds");
  }
  if (typeof h.source !== "string" || h.source.length > 256) {
    throw bad('"source"', "is not a storage name");
  }
  if (
    h.collections !== null &&
    !(Array.isArray(h.collections) &&
      h.collections.every((c) => typeof c === "string" && COLLECTION.test(c)))
  ) {
    throw bad('"collections"', "is not null or a list of collection names");
  }
  if (
    h.since !== null &&
    !(typeof h.since === "number" && Number.isFinite(h.since))
  ) {
    throw bad('"since"', "is not null or epoch milliseconds");
  }
  const e = h.encryption;
  if (e !== null) {
    if (typeof e !== "object" || Array.isArray(e) || e === undefined) {
      throw bad('"encryption"', "is not null or an object");
    }
    const wrap = e as Record<string, unknown>;
    for (const field of Object.keys(wrap)) {
      if (!WRAP_FIELDS.has(field)) {
        throw bad(`"encryption.${field}"`, "is not a field");
      }
    }
    if (wrap.kdf !== "PBKDF2-SHA256" && wrap.kdf !== "HKDF-SHA256") {
      throw bad(
        '"encryption.kdf"',
        'is not "PBKDF2-SHA256" or "HKDF-SHA256"',
      );
    }
    if (wrap.v !== undefined && wrap.v !== 2) {
      throw bad('"encryption.v"', "is not 2 (the derivation version)");
    }
    if (base64(wrap.salt, 64)?.length !== 16) {
      throw bad('"encryption.salt"', "is not base64 of 16 bytes");
    }
    if (wrap.kdf === "PBKDF2-SHA256") {
      const n = wrap.iterations;
      if (
        typeof n !== "number" || !Number.isSafeInteger(n) ||
        n < MIN_BACKUP_ITERATIONS || n > MAX_BACKUP_ITERATIONS
      ) {
        throw bad(
          '"encryption.iterations"',
          `is not a whole number from ${MIN_BACKUP_ITERATIONS} to ${MAX_BACKUP_ITERATIONS}`,
        );
      }
    } else if (wrap.iterations !== undefined) {
      throw bad('"encryption.iterations"', "is set for a raw key (HKDF)");
    }
    const sealed = base64(wrap.keys, 4096);
    if (sealed === undefined || sealed.length < 32) {
      throw bad('"encryption.keys"', "is not base64 of a sealed key");
    }
  }
  return h as unknown as Header;
}

/**
 * Refuses to write a backup whose key derivation a restore would refuse.
 */
export function checkBackupIterations(
  wrap: SecretWrap,
  whose: string,
  action: string,
): void {
  const n = wrap.iterations;
  if (
    wrap.kdf === "PBKDF2-SHA256" &&
    !(n !== undefined && n >= MIN_BACKUP_ITERATIONS &&
      n <= MAX_BACKUP_ITERATIONS)
  ) {
    throw new RangeError(
      `${action}: ${whose} PBKDF2 iterations (${n}) are outside ${MIN_BACKUP_ITERATIONS}..${MAX_BACKUP_ITERATIONS}, which a restore accepts${
        whose === "the database's"
          ? "; give the backup a secret of its own (encryption)"
          : ""
      }`,
    );
  }
}

/** The first eight bytes of every backup. */
export const MAGIC = encodeUtf8("TETHERBK");
/** Bytes of NDJSON per block, before compression. */
export const BLOCK_BYTES = 256 * 1024;
const CHAIN_INFO = encodeUtf8("tether-db backup chain v2");

/** `n` as four big-endian bytes. */
export function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** SHA-256 of the parts, concatenated. */
export async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      concatBytes(parts) as Uint8Array<ArrayBuffer>,
    ),
  );
}

/** The record keys (AES, HMAC) of a 64-byte backup data key. */
export async function splitKey(bytes: Uint8Array): Promise<RecordKeys> {
  return await importKeys(0, bytes.subarray(0, 32), bytes.subarray(32, 64));
}

/**
 * The running checksum over a backup's bytes: each step hashes the previous
 * value with the next bytes. Format 2 with a secret: HMAC-SHA256 under a key
 * derived (HKDF) from the backup's data key, so that without the secret the
 * backup cannot be cut, reordered or spliced and given a matching
 * checksum. Otherwise (plain backups, format 1): SHA-256, which finds
 * accidents only.
 */
export class Chain {
  readonly #key: CryptoKey | undefined;
  #value: Uint8Array = new Uint8Array(0);

  private constructor(key: CryptoKey | undefined) {
    this.#key = key;
  }

  static async of(keyBytes: Uint8Array | undefined): Promise<Chain> {
    if (keyBytes === undefined) return new Chain(undefined);
    const base = await crypto.subtle.importKey(
      "raw",
      keyBytes as Uint8Array<ArrayBuffer>,
      "HKDF",
      false,
      ["deriveKey"],
    );
    const key = await crypto.subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new Uint8Array(32),
        info: CHAIN_INFO as Uint8Array<ArrayBuffer>,
      },
      base,
      { name: "HMAC", hash: "SHA-256", length: 256 },
      false,
      ["sign"],
    );
    return new Chain(key);
  }

  get keyed(): boolean {
    return this.#key !== undefined;
  }

  async step(...parts: Uint8Array[]): Promise<void> {
    const data = concatBytes([this.#value, ...parts]);
    this.#value = this.#key === undefined ? await sha256(data) : new Uint8Array(
      await crypto.subtle.sign(
        "HMAC",
        this.#key,
        data as Uint8Array<ArrayBuffer>,
      ),
    );
  }

  get value(): Uint8Array {
    return this.#value;
  }

  /** Compares with the stored checksum (constant time). */
  matches(stored: Uint8Array): boolean {
    const mine = this.#value;
    if (mine.length !== stored.length) return false;
    let diff = 0;
    for (let i = 0; i < mine.length; i++) diff |= mine[i]! ^ stored[i]!;
    return diff === 0;
  }
}
