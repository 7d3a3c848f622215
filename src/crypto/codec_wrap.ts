/**
 * Key wraps: bytes (a database's data keys, a backup's key) sealed under a
 * key-encryption key derived from a passphrase or a raw key.
 *
 * Derivation 2 (written since codec header version 2; `"v": 2` in the wrap):
 * one 256-bit master (PBKDF2-HMAC-SHA256 of the passphrase, or the raw key
 * itself), expanded with HKDF-SHA256 into an AES-256 key and an HMAC-SHA256
 * key under distinct info strings. Derivation 1 (wraps without `v`, read
 * only): 512 bits of PBKDF2 (or HKDF) split in two, which let an attacker
 * test a passphrase with half the work (the first 256 bits alone check a
 * guess against the AES key).
 *
 * @module
 */

import { base64ToBytes, bytesToBase64 } from "../bytes.ts";
import {
  base64Problem,
  describeValue,
  EnvelopeError,
  hkdf,
  hkdfExpand,
  importKeys,
  iterationsProblem,
  open as openEnvelope,
  pbkdf2,
  pbkdf2Master,
  type RecordKeys,
  saltProblem,
  seal,
} from "./codec.ts";
import { IntegrityError } from "../errors.ts";

/** How the database is encrypted: a passphrase, or a raw key. */
export type EncryptionOptions =
  | {
    /** The passphrase (keys come from PBKDF2-SHA256 with a random salt). */
    readonly passphrase: string;
    /**
     * PBKDF2 iterations for a new database or a rekey, from 1,000 to
     * 5,000,000. Default 600,000.
     */
    readonly iterations?: number;
    /** Not with a passphrase. */
    readonly key?: undefined;
  }
  | {
    /** A raw 16- or 32-byte key: AES-128 or AES-256. */
    readonly key: Uint8Array;
    /** Not with a key. */
    readonly passphrase?: undefined;
    /** Not with a key. */
    readonly iterations?: undefined;
  };

/**
 * PBKDF2-HMAC-SHA256 iterations by default: OWASP's Password Storage Cheat
 * Sheet recommendation (600,000, as of 2023).
 */
export const DEFAULT_ITERATIONS = 600_000;

/** The derivations a wrap may name. */
export const WRAP_KDFS: readonly string[] = ["PBKDF2-SHA256", "HKDF-SHA256"];

/** HKDF info of the wrap's AES key (derivation 2). */
export const WRAP_ENC_INFO = "tether-db wrap enc";
/** HKDF info of the wrap's HMAC key (derivation 2). */
export const WRAP_MAC_INFO = "tether-db wrap mac";

/** What a wrap's sealed bytes are bound to (the envelope's identity). */
const WRAP_IDENTITY = new TextEncoder().encode("tether-db keys");
/** Most base64 characters of a wrap's sealed bytes (a few KiB of keys). */
const MAX_SEALED_BYTES = 16_384;

/** Bytes sealed under a key derived from a secret (a backup's key). */
export interface SecretWrap {
  /** The derivation. */
  readonly kdf: "PBKDF2-SHA256" | "HKDF-SHA256";
  /** 2: one master expanded with HKDF. Absent: the legacy 512-bit split. */
  readonly v?: 2;
  /** Base64 of the 16-byte salt. */
  readonly salt: string;
  /** PBKDF2 iterations (passphrase only). */
  readonly iterations?: number;
  /** Base64 of the sealed bytes (a codec envelope). */
  readonly keys: string;
}

/** How a wrap's key is derived: everything but the sealed bytes. */
export type WrapShape = Omit<SecretWrap, "keys">;

/**
 * Checks the fields of a wrap read from a header, before anything is derived
 * from it: names the first field that is wrong.
 *
 * @param value The wrap as parsed from JSON.
 * @param where Its name in messages (`"encryption.wraps[0]"`).
 * @returns The problem (`"<where>.iterations must be ..."`), or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wrapProblem } from "./codec_wrap.ts";
 * const wrap = { kdf: "PBKDF2-SHA256", salt: "AAAAAAAAAAAAAAAAAAAAAA==", iterations: 2e9, keys: "AAAA" };
 * assert.match(wrapProblem(wrap, "w")!, /^w\.iterations must be/);
 * ```
 */
export function wrapProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `${where} must be an object, got ${describeValue(value)}`;
  }
  const w = value as Record<string, unknown>;
  for (const field of Object.keys(w)) {
    if (!["kdf", "v", "salt", "iterations", "keys"].includes(field)) {
      return `${where} has an unknown field ${describeValue(field)}`;
    }
  }
  if (!WRAP_KDFS.includes(w.kdf as string)) {
    return `${where}.kdf must be "PBKDF2-SHA256" or "HKDF-SHA256", got ${
      describeValue(w.kdf)
    }`;
  }
  if (w.v !== undefined && w.v !== 2) {
    return `${where}.v must be 2 or absent, got ${describeValue(w.v)}`;
  }
  const salt = saltProblem(w.salt);
  if (salt !== undefined) return `${where}.salt ${salt}`;
  if (w.kdf === "PBKDF2-SHA256") {
    const iterations = iterationsProblem(w.iterations);
    if (iterations !== undefined) return `${where}.iterations ${iterations}`;
  } else if (w.iterations !== undefined) {
    return `${where}.iterations must be absent for HKDF-SHA256, got ${
      describeValue(w.iterations)
    }`;
  }
  const keys = base64Problem(w.keys, 67, MAX_SEALED_BYTES);
  if (keys !== undefined) return `${where}.keys must be ${keys}`;
  return undefined;
}

/**
 * Throws an `IntegrityError` when a wrap read from a file is malformed.
 *
 * @param wrap The wrap.
 * @param action What was being done, for the message.
 * @param where The wrap's name in messages.
 */
export function assertWrap(
  wrap: unknown,
  action: string,
  where: string,
): asserts wrap is SecretWrap {
  const problem = wrapProblem(wrap, where);
  if (problem !== undefined) throw new IntegrityError(`${action}: ${problem}`);
}

/**
 * Derives the key that seals a wrap, when the secret is of the wrap's kind.
 * The wrap's fields must have been checked ({@linkcode wrapProblem}).
 *
 * @param secret The passphrase or raw key.
 * @param shape The wrap's derivation, salt and iterations.
 * @returns The key-encryption keys, or `undefined` for a secret of the other
 *   kind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveKek } from "./codec_wrap.ts";
 * const shape = { kdf: "HKDF-SHA256", v: 2, salt: "AAAAAAAAAAAAAAAAAAAAAA==" } as const;
 * assert.ok(await deriveKek({ key: new Uint8Array(32) }, shape));
 * assert.equal(await deriveKek({ passphrase: "x" }, shape), undefined);
 * ```
 */
export async function deriveKek(
  secret: EncryptionOptions,
  shape: WrapShape,
): Promise<RecordKeys | undefined> {
  const salt = base64ToBytes(shape.salt);
  let ikm: Uint8Array;
  if (shape.kdf === "PBKDF2-SHA256") {
    if (secret.passphrase === undefined) return undefined;
    if (shape.v !== 2) {
      const bits = await pbkdf2(secret.passphrase, salt, shape.iterations!);
      return await importKeys(0, bits.subarray(0, 32), bits.subarray(32));
    }
    ikm = await pbkdf2Master(secret.passphrase, salt, shape.iterations!);
  } else {
    if (secret.key === undefined) return undefined;
    if (shape.v !== 2) {
      const bits = await hkdf(secret.key, salt);
      return await importKeys(0, bits.subarray(0, 32), bits.subarray(32));
    }
    ikm = secret.key;
  }
  const [enc, mac] = await Promise.all([
    hkdfExpand(ikm, salt, WRAP_ENC_INFO),
    hkdfExpand(ikm, salt, WRAP_MAC_INFO),
  ]);
  return await importKeys(0, enc, mac);
}

/**
 * A fresh salt (derivation 2) and the key it derives from a secret.
 *
 * @param secret The passphrase or raw key (checked).
 * @returns The shape to store and the key.
 */
export async function freshKek(
  secret: EncryptionOptions,
): Promise<{ shape: WrapShape; kek: RecordKeys }> {
  const salt = bytesToBase64(crypto.getRandomValues(new Uint8Array(16)));
  const shape: WrapShape = secret.passphrase !== undefined
    ? {
      kdf: "PBKDF2-SHA256",
      v: 2,
      salt,
      iterations: secret.iterations ?? DEFAULT_ITERATIONS,
    }
    : { kdf: "HKDF-SHA256", v: 2, salt };
  return { shape, kek: (await deriveKek(secret, shape))! };
}

/**
 * Seals bytes under a wrap's key.
 *
 * @param shape The wrap's derivation.
 * @param kek The key it derives.
 * @param data The bytes.
 * @returns The wrap.
 */
export async function sealUnder(
  shape: WrapShape,
  kek: RecordKeys,
  data: Uint8Array,
): Promise<SecretWrap> {
  const sealed = await seal(data, WRAP_IDENTITY, { keys: kek });
  return {
    kdf: shape.kdf,
    ...(shape.v === undefined ? {} : { v: shape.v }),
    salt: shape.salt,
    ...(shape.iterations === undefined ? {} : { iterations: shape.iterations }),
    keys: bytesToBase64(sealed),
  };
}

/**
 * Opens a wrap's sealed bytes with its key.
 *
 * @param kek The key.
 * @param wrap The wrap.
 * @returns The bytes, or `undefined` when the key is not the wrap's.
 */
export async function openUnder(
  kek: RecordKeys,
  wrap: SecretWrap,
): Promise<Uint8Array | undefined> {
  try {
    return await openEnvelope(
      base64ToBytes(wrap.keys),
      WRAP_IDENTITY,
      () => kek,
    );
  } catch (e) {
    if (e instanceof EnvelopeError) return undefined;
    throw e;
  }
}

/**
 * Checks a secret given to `open`, `rekey` or a backup.
 *
 * @param options The secret.
 * @param action What was being done, for the message.
 * @throws {TypeError} When it is not `{ passphrase }` or `{ key }`.
 * @throws {RangeError} When `iterations` is out of range.
 */
export function checkEncryption(
  options: EncryptionOptions,
  action: string,
): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${action}: encryption must be { passphrase } or { key }`,
    );
  }
  const { passphrase, key, iterations } = options;
  if ((passphrase === undefined) === (key === undefined)) {
    throw new TypeError(
      `${action}: encryption needs exactly one of passphrase and key`,
    );
  }
  if (passphrase !== undefined) {
    if (typeof passphrase !== "string" || passphrase.length === 0) {
      throw new TypeError(
        `${action}: the passphrase must be a non-empty string`,
      );
    }
    if (iterations !== undefined) {
      const problem = iterationsProblem(iterations);
      if (problem !== undefined) {
        throw new RangeError(`${action}: iterations ${problem}`);
      }
    }
  } else if (
    !(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 32)
  ) {
    throw new TypeError(
      `${action}: the key must be a Uint8Array of 16 or 32 bytes`,
    );
  }
}

/**
 * Seals bytes under a key derived from a secret, with a fresh salt
 * (derivation 2).
 *
 * @param secret A passphrase or raw key.
 * @param data The bytes.
 * @returns The wrap (derivation, salt, sealed bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openWithSecret, sealWithSecret } from "./codec_wrap.ts";
 * const secret = { passphrase: "pw", iterations: 1000 };
 * const wrap = await sealWithSecret(secret, new Uint8Array([1, 2]));
 * assert.deepEqual(await openWithSecret(secret, wrap), new Uint8Array([1, 2]));
 * ```
 */
export async function sealWithSecret(
  secret: EncryptionOptions,
  data: Uint8Array,
): Promise<SecretWrap> {
  checkEncryption(secret, "Cannot seal");
  const { shape, kek } = await freshKek(secret);
  return await sealUnder(shape, kek, data);
}

/**
 * Opens bytes sealed by {@linkcode sealWithSecret} (or by a database's key
 * wrap). The wrap's fields are checked first, so that a hostile wrap costs
 * at most 5,000,000 PBKDF2 iterations.
 *
 * @param secret The passphrase or raw key.
 * @param wrap The wrap.
 * @returns The bytes, or `undefined` when the secret is not the right one.
 * @throws {IntegrityError} When a field of the wrap is malformed (named).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openWithSecret, sealWithSecret } from "./codec_wrap.ts";
 * const wrap = await sealWithSecret({ passphrase: "a", iterations: 1000 }, new Uint8Array([1]));
 * assert.equal(await openWithSecret({ passphrase: "b", iterations: 1000 }, wrap), undefined);
 * ```
 */
export async function openWithSecret(
  secret: EncryptionOptions,
  wrap: SecretWrap,
): Promise<Uint8Array | undefined> {
  assertWrap(wrap, "Cannot open the key wrap", "wrap");
  const kek = await deriveKek(secret, wrap);
  if (kek === undefined) return undefined;
  return await openUnder(kek, wrap);
}
