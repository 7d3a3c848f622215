/**
 * Compression and encryption at rest, for every storage: a
 * {@linkcode Storage} that seals each value on its way down and opens it on
 * its way up (src/codec.ts), so the engine and the adapter below stay as they
 * are.
 *
 * Records are encrypted with a random data key; the data key is stored in the
 * database's header wrapped (sealed) under a key derived from the passphrase
 * (PBKDF2-SHA256) or from a raw key (HKDF-SHA256). A wrong secret fails to
 * open the wrap, which is how it is detected at open.
 *
 * @module
 */

import type { Logger, LogLevel } from "./logger.ts";
import {
  EnvelopeError,
  hkdf,
  importKeys,
  open as openEnvelope,
  pbkdf2,
  type RecordKeys,
  seal,
} from "./codec.ts";
import { base64ToBytes, bytesToBase64, compareBytes } from "./bytes.ts";
import { IntegrityError, WrongKeyError } from "./errors.ts";
import { decodeKey, encodeKey } from "./key_codec.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageLimits,
  WatchedEntries,
} from "./storage.ts";

/**
 * PBKDF2-HMAC-SHA256 iterations by default: OWASP's Password Storage Cheat
 * Sheet recommendation (600,000, as of 2023).
 */
export const DEFAULT_ITERATIONS = 600_000;

/** Compress values from this many bytes by default. */
export const DEFAULT_MIN_BYTES = 256;

/** How the database is encrypted: a passphrase, or a raw key. */
export type EncryptionOptions =
  | {
    /** The passphrase (keys come from PBKDF2-SHA256 with a random salt). */
    readonly passphrase: string;
    /** PBKDF2 iterations for a new database or a rekey. Default 600,000. */
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

/** Compression: on, or on from a size. */
export type CompressionOptions = boolean | {
  /** Compress values of at least this many bytes. Default 256. */
  readonly minBytes?: number;
};

/** Options of {@linkcode CodecStorage.open}. */
export interface CodecOptions {
  /** Encrypt every value (needed to open an encrypted database). */
  readonly encryption?: EncryptionOptions | undefined;
  /** Compress values with deflate when it makes them smaller. */
  readonly compression?: CompressionOptions | undefined;
  /** Where key-rotation progress is reported. Default: silent. */
  readonly logger?: Logger | undefined;
  /** The least level passed to `logger`. Default `"info"`. */
  readonly logLevel?: LogLevel | undefined;
}

/** The header key: outside every engine key space. */
const HEADER = encodeKey(["k", "header"]);
/** The name of the blind-index key in the wrapped key set. */
const BLIND = "b";
/** What a key wrap is bound to. */
const WRAP_IDENTITY = new TextEncoder().encode("tether-db keys");

interface Wrap {
  readonly kdf: "PBKDF2-SHA256" | "HKDF-SHA256";
  readonly salt: string;
  readonly iterations?: number;
  /** The sealed JSON `{ "<generation>": base64(enc ‖ mac) }`. */
  readonly keys: string;
}

/** The data keys, and the wrap (and its key) they were opened with. */
interface Unlocked {
  readonly material: Record<string, string>;
  readonly wrap: Pick<Wrap, "kdf" | "salt" | "iterations">;
  readonly kek: RecordKeys;
}

interface Header {
  readonly v: 1;
  readonly compression: { readonly minBytes: number } | null;
  readonly encryption: {
    readonly bits: 128 | 256;
    readonly generation: number;
    readonly wraps: readonly Wrap[];
  } | null;
}

function isHeader(key: Uint8Array): boolean {
  return key.length === HEADER.length && compareBytes(key, HEADER) === 0;
}

/** Names what a storage key holds, for error messages. */
function describeKey(key: Uint8Array): string {
  try {
    const parts = decodeKey(key);
    const [space, collection] = parts;
    if (space === "d") return `'${String(parts[2])}' in '${collection}'`;
    if (space === "i") {
      return `an entry of index '${String(parts[2])}' of '${collection}'`;
    }
    if (space === "o") return `an insertion-order entry of '${collection}'`;
    if (space === "m") return `the metadata of '${collection}'`;
  } catch {
    // fall through
  }
  return "a record";
}

function checkEncryption(
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
    if (
      iterations !== undefined &&
      !(Number.isSafeInteger(iterations) && iterations >= 1)
    ) {
      throw new RangeError(
        `${action}: iterations must be a whole number of at least 1, got ${iterations}`,
      );
    }
  } else if (
    !(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 32)
  ) {
    throw new TypeError(
      `${action}: the key must be a Uint8Array of 16 or 32 bytes`,
    );
  }
}

function minBytesOf(
  compression: CompressionOptions | undefined,
  action: string,
): number | null | undefined {
  if (compression === undefined) return undefined;
  if (compression === false) return null;
  if (compression === true) return DEFAULT_MIN_BYTES;
  if (typeof compression !== "object" || compression === null) {
    throw new TypeError(
      `${action}: compression must be true, false or { minBytes }`,
    );
  }
  const min = compression.minBytes ?? DEFAULT_MIN_BYTES;
  if (!(Number.isSafeInteger(min) && min >= 0)) {
    throw new RangeError(
      `${action}: compression.minBytes must be a whole number from 0, got ${min}`,
    );
  }
  return min;
}

/** Derives the key that seals a wrap. */
async function wrapKey(
  secret: EncryptionOptions,
  wrap: Pick<Wrap, "kdf" | "salt" | "iterations">,
): Promise<RecordKeys | undefined> {
  const salt = base64ToBytes(wrap.salt);
  let bits: Uint8Array;
  if (wrap.kdf === "PBKDF2-SHA256") {
    if (secret.passphrase === undefined) return undefined;
    bits = await pbkdf2(secret.passphrase, salt, wrap.iterations ?? 0);
  } else {
    if (secret.key === undefined) return undefined;
    bits = await hkdf(secret.key, salt);
  }
  return await importKeys(0, bits.subarray(0, 32), bits.subarray(32));
}

/** Seals the data keys under a secret. */
async function makeWrap(
  secret: EncryptionOptions,
  keys: Record<string, string>,
): Promise<{ wrap: Wrap; kek: RecordKeys }> {
  const { shape, kek } = await freshKek(secret);
  return { wrap: await sealWrap(shape, kek, keys), kek };
}

/** A new salt and the key it derives from a secret. */
async function freshKek(
  secret: EncryptionOptions,
): Promise<
  { shape: Pick<Wrap, "kdf" | "salt" | "iterations">; kek: RecordKeys }
> {
  const salt = bytesToBase64(crypto.getRandomValues(new Uint8Array(16)));
  const shape: Pick<Wrap, "kdf" | "salt" | "iterations"> =
    secret.passphrase !== undefined
      ? {
        kdf: "PBKDF2-SHA256",
        salt,
        iterations: secret.iterations ?? DEFAULT_ITERATIONS,
      }
      : { kdf: "HKDF-SHA256", salt };
  return { shape, kek: (await wrapKey(secret, shape))! };
}

/** Seals bytes under a wrap's key. */
async function sealWrapBytes(
  shape: Pick<Wrap, "kdf" | "salt" | "iterations">,
  kek: RecordKeys,
  data: Uint8Array,
): Promise<SecretWrap> {
  const sealed = await seal(data, WRAP_IDENTITY, { keys: kek });
  return {
    kdf: shape.kdf,
    salt: shape.salt,
    ...(shape.iterations === undefined ? {} : { iterations: shape.iterations }),
    keys: bytesToBase64(sealed),
  };
}

/** Seals the data keys under a wrap's key. */
async function sealWrap(
  shape: Pick<Wrap, "kdf" | "salt" | "iterations">,
  kek: RecordKeys,
  keys: Record<string, string>,
): Promise<Wrap> {
  const sealed = await seal(
    new TextEncoder().encode(JSON.stringify(keys)),
    WRAP_IDENTITY,
    { keys: kek },
  );
  return { ...shape, keys: bytesToBase64(sealed) };
}

/** Bytes sealed under a key derived from a secret (a backup's key). */
export interface SecretWrap {
  /** The derivation. */
  readonly kdf: "PBKDF2-SHA256" | "HKDF-SHA256";
  /** Base64 of the 16-byte salt. */
  readonly salt: string;
  /** PBKDF2 iterations. */
  readonly iterations?: number;
  /** Base64 of the sealed bytes. */
  readonly keys: string;
}

/**
 * Seals bytes under a key derived from a secret, with a fresh salt.
 *
 * @param secret A passphrase or raw key.
 * @param data The bytes.
 * @returns The wrap (derivation, salt, sealed bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openWithSecret, sealWithSecret } from "./codec_storage.ts";
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
  return await sealWrapBytes(shape, kek, data);
}

/**
 * Opens bytes sealed by {@linkcode sealWithSecret} (or by a database's key
 * wrap).
 *
 * @param secret The passphrase or raw key.
 * @param wrap The wrap.
 * @returns The bytes, or `undefined` when the secret is not the right one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openWithSecret, sealWithSecret } from "./codec_storage.ts";
 * const wrap = await sealWithSecret({ passphrase: "a", iterations: 1000 }, new Uint8Array([1]));
 * assert.equal(await openWithSecret({ passphrase: "b", iterations: 1000 }, wrap), undefined);
 * ```
 */
export async function openWithSecret(
  secret: EncryptionOptions,
  wrap: SecretWrap,
): Promise<Uint8Array | undefined> {
  const kek = await wrapKey(secret, wrap);
  if (kek === undefined) return undefined;
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

/** Opens a wrap with a secret; `undefined` when the secret is not its own. */
async function openWrap(
  secret: EncryptionOptions,
  wrap: Wrap,
): Promise<Unlocked | undefined> {
  const kek = await wrapKey(secret, wrap);
  if (kek === undefined) return undefined;
  try {
    const plain = await openEnvelope(
      base64ToBytes(wrap.keys),
      WRAP_IDENTITY,
      () => kek,
    );
    return {
      material: JSON.parse(new TextDecoder().decode(plain)),
      wrap,
      kek,
    };
  } catch (e) {
    if (e instanceof EnvelopeError) return undefined;
    throw e;
  }
}

async function importAll(
  keys: Record<string, string>,
): Promise<Map<number, RecordKeys>> {
  const out = new Map<number, RecordKeys>();
  for (const [generation, material] of Object.entries(keys)) {
    if (generation === BLIND) continue;
    const bytes = base64ToBytes(material);
    const split = bytes.length - 32;
    out.set(
      Number(generation),
      await importKeys(
        Number(generation),
        bytes.subarray(0, split),
        bytes.subarray(split),
      ),
    );
  }
  return out;
}

function newKeyMaterial(bits: 128 | 256): string {
  return bytesToBase64(crypto.getRandomValues(new Uint8Array(bits / 8 + 32)));
}

/**
 * A storage that compresses and encrypts every value of another. Made by
 * {@linkcode CodecStorage.open}; `open()` uses it when given `encryption` or
 * `compression`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CodecStorage } from "./codec_storage.ts";
 * import { MemoryStorage } from "./memory_storage.ts";
 * const storage = await CodecStorage.open(new MemoryStorage(), {
 *   encryption: { passphrase: "correct horse", iterations: 1000 },
 * });
 * const key = new Uint8Array([1]);
 * await storage.commit({ sets: [{ key, value: new Uint8Array([42]) }] });
 * assert.deepEqual((await storage.get(key))?.value, new Uint8Array([42]));
 * await storage.close();
 * ```
 */
export class CodecStorage implements Storage {
  readonly #inner: Storage;
  #header: Header;
  #headerStamp: string;
  #keys: Map<number, RecordKeys>;
  #current: RecordKeys | undefined;
  #unlocked: Unlocked | undefined;
  /**
   * Keyed digests for blind indexes (HMAC-SHA256 under a key of their own),
   * when encrypted.
   */
  readonly blind:
    | ((data: readonly Uint8Array[]) => Promise<Uint8Array[]>)
    | undefined;

  private constructor(
    inner: Storage,
    header: Header,
    headerStamp: string,
    keys: Map<number, RecordKeys>,
    unlocked: Unlocked | undefined,
  ) {
    this.#inner = inner;
    this.#header = header;
    this.#headerStamp = headerStamp;
    this.#keys = keys;
    this.#unlocked = unlocked;
    const blindKey = unlocked?.material[BLIND];
    if (blindKey !== undefined) {
      const key = crypto.subtle.importKey(
        "raw",
        base64ToBytes(blindKey) as Uint8Array<ArrayBuffer>,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      this.blind = async (data) => {
        const k = await key;
        return await Promise.all(
          data.map(async (d) =>
            new Uint8Array(
              await crypto.subtle.sign("HMAC", k, d as Uint8Array<ArrayBuffer>),
            )
          ),
        );
      };
    }
    this.#current = header.encryption === null
      ? undefined
      : keys.get(header.encryption.generation);
  }

  /**
   * Opens the codec over a storage: reads its header (or writes one into an
   * empty storage) and, when encrypted, unlocks the data keys.
   *
   * @param inner The storage holding the sealed values.
   * @param options Encryption secret and compression.
   * @returns The storage, or `inner` itself when it has no header and no
   *   option asks for one.
   * @throws {WrongKeyError} When the secret is wrong, missing for an
   *   encrypted database, or given for a plain one.
   * @throws {TypeError} When an option is malformed, or compression is asked
   *   of a database that holds plain values.
   */
  static async open(
    inner: Storage,
    options: CodecOptions,
  ): Promise<Storage> {
    const action = "Cannot open the database";
    const { encryption } = options;
    if (encryption !== undefined) checkEncryption(encryption, action);
    const minBytes = minBytesOf(options.compression, action);
    const found = await inner.get(HEADER);
    if (found === null) {
      if (encryption === undefined && !minBytes && minBytes !== 0) {
        return inner;
      }
      let any = false;
      for await (const _ of inner.scan({ limit: 1 })) any = true;
      if (any) {
        if (encryption !== undefined) {
          throw new WrongKeyError(
            `${action}: it is not encrypted (it holds data written without encryption), but encryption was given`,
          );
        }
        throw new TypeError(
          `${action}: it holds data written without compression; compression can only be chosen for a new database`,
        );
      }
      return await CodecStorage.#create(inner, encryption, minBytes ?? null);
    }
    let header: Header;
    try {
      header = JSON.parse(new TextDecoder().decode(found.value));
    } catch (cause) {
      throw new IntegrityError(
        `${action}: its codec header is not valid JSON`,
        { cause },
      );
    }
    if (header.v !== 1) {
      throw new IntegrityError(
        `${action}: its codec header has unknown version ${header.v}`,
      );
    }
    let keys = new Map<number, RecordKeys>();
    let opened: Unlocked | undefined;
    if (header.encryption !== null) {
      if (encryption === undefined) {
        throw new WrongKeyError(
          `${action}: it is encrypted; pass encryption: { passphrase } or { key }`,
        );
      }
      for (const wrap of header.encryption.wraps) {
        opened = await openWrap(encryption, wrap);
        if (opened !== undefined) break;
      }
      if (opened === undefined) {
        throw new WrongKeyError(
          `${action}: the ${
            encryption.passphrase !== undefined ? "passphrase" : "key"
          } is wrong`,
        );
      }
      keys = await importAll(opened.material);
    } else if (encryption !== undefined) {
      throw new WrongKeyError(
        `${action}: it is not encrypted, but encryption was given`,
      );
    }
    const storage = new CodecStorage(
      inner,
      header,
      found.versionstamp,
      keys,
      opened,
    );
    if (minBytes !== undefined) {
      const compression = minBytes === null ? null : { minBytes };
      if (
        JSON.stringify(compression) !== JSON.stringify(header.compression) &&
        inner.capabilities.readOnly !== true
      ) {
        await storage.#writeHeader({ ...header, compression }, action);
      }
    }
    return storage;
  }

  static async #create(
    inner: Storage,
    encryption: EncryptionOptions | undefined,
    minBytes: number | null,
  ): Promise<CodecStorage> {
    let header: Header = {
      v: 1,
      compression: minBytes === null ? null : { minBytes },
      encryption: null,
    };
    let keys = new Map<number, RecordKeys>();
    let unlocked: Unlocked | undefined;
    if (encryption !== undefined) {
      const bits = encryption.key?.length === 16 ? 128 : 256;
      const material = {
        "0": newKeyMaterial(bits),
        [BLIND]: bytesToBase64(crypto.getRandomValues(new Uint8Array(32))),
      };
      const { wrap, kek } = await makeWrap(encryption, material);
      header = {
        ...header,
        encryption: { bits, generation: 0, wraps: [wrap] },
      };
      keys = await importAll(material);
      unlocked = { material, wrap, kek };
    }
    const value = new TextEncoder().encode(JSON.stringify(header));
    const result = await inner.commit({
      checks: [{ key: HEADER, versionstamp: null }],
      sets: [{ key: HEADER, value }],
    });
    if (!result.ok) {
      // Another process created it first: open what it made.
      return await CodecStorage.open(inner, {
        encryption,
        compression: minBytes === null ? false : { minBytes },
      }) as CodecStorage;
    }
    await result.durable;
    return new CodecStorage(inner, header, result.versionstamp, keys, unlocked);
  }

  async #writeHeader(header: Header, action: string): Promise<void> {
    const result = await this.#inner.commit({
      checks: [{ key: HEADER, versionstamp: this.#headerStamp }],
      sets: [{
        key: HEADER,
        value: new TextEncoder().encode(JSON.stringify(header)),
      }],
    });
    if (!result.ok) {
      throw new WrongKeyError(
        `${action}: another process changed the database's keys meanwhile`,
      );
    }
    await result.durable;
    this.#header = header;
    this.#headerStamp = result.versionstamp;
    this.#current = header.encryption === null
      ? undefined
      : this.#keys.get(header.encryption.generation);
  }

  /**
   * Seals bytes under this database's secret (the key derived from it when
   * it was opened), so that whoever has the secret can open them: how a
   * backup of an encrypted database carries its key.
   *
   * @param data The bytes.
   * @returns The wrap, or `undefined` when the database is not encrypted.
   */
  async sealForSecret(data: Uint8Array): Promise<SecretWrap | undefined> {
    const unlocked = this.#unlocked;
    if (unlocked === undefined) return undefined;
    return await sealWrapBytes(unlocked.wrap, unlocked.kek, data);
  }

  /**
   * Opens bytes sealed by `sealForSecret` of a database opened with the same
   * secret and salt (a backup restored into the database it came from),
   * without asking for the secret again.
   *
   * @param wrap The wrap.
   * @returns The bytes, or `undefined` when this database cannot open it.
   */
  async openSealed(wrap: SecretWrap): Promise<Uint8Array | undefined> {
    const unlocked = this.#unlocked;
    if (unlocked === undefined || unlocked.wrap.salt !== wrap.salt) {
      return undefined;
    }
    try {
      return await openEnvelope(
        base64ToBytes(wrap.keys),
        WRAP_IDENTITY,
        () => unlocked.kek,
      );
    } catch (e) {
      if (e instanceof EnvelopeError) return undefined;
      throw e;
    }
  }

  /** Whether values are encrypted. */
  get encrypted(): boolean {
    return this.#header.encryption !== null;
  }

  /** The inner storage's capabilities. */
  get capabilities(): StorageCapabilities {
    return this.#inner.capabilities;
  }

  /**
   * The inner storage's limits. Values grow by up to 67 bytes in the
   * envelope; `open()` leaves that room on Deno KV.
   */
  get limits(): StorageLimits | undefined {
    return this.#inner.limits;
  }

  async #open(entry: StorageEntry): Promise<StorageEntry> {
    try {
      const value = await openEnvelope(
        entry.value,
        entry.key,
        (generation) => this.#keys.get(generation),
        this.encrypted,
      );
      return entry.memo === undefined
        ? { key: entry.key, value, versionstamp: entry.versionstamp }
        : {
          key: entry.key,
          value,
          versionstamp: entry.versionstamp,
          memo: entry.memo,
        };
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      throw new IntegrityError(
        `Cannot read ${
          describeKey(entry.key)
        }: ${e.message} (tampered with, damaged, or moved from another key)`,
        { cause: e },
      );
    }
  }

  /**
   * Checks every stored value (tag, decryption, decompression) without
   * stopping at the first bad one.
   *
   * @returns Per bad value, its key and what is wrong; and how many were
   *   checked.
   */
  async verify(): Promise<{
    checked: number;
    problems: { key: Uint8Array; message: string }[];
  }> {
    let checked = 0;
    const problems: { key: Uint8Array; message: string }[] = [];
    for await (const page of this.#inner.scan({})) {
      for (const entry of page) {
        if (isHeader(entry.key)) continue;
        checked++;
        try {
          await this.#open(entry);
        } catch (e) {
          if (!(e instanceof IntegrityError)) throw e;
          problems.push({ key: entry.key, message: e.message });
        }
      }
    }
    return { checked, problems };
  }

  /**
   * Reads and opens one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {IntegrityError} When the value fails verification.
   */
  async get(key: Uint8Array): Promise<StorageEntry | null> {
    if (isHeader(key)) return null;
    const entry = await this.#inner.get(key);
    return entry === null ? null : await this.#open(entry);
  }

  /**
   * Reads and opens several keys.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   */
  async getMany(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    const found = await this.#inner.getMany(keys);
    return await Promise.all(
      found.map((e, i) =>
        e === null || isHeader(keys[i]!) ? null : this.#open(e)
      ),
    );
  }

  /**
   * Visits entries in key order, opening each page's values together.
   *
   * @param options Which keys to visit.
   * @returns The entries, in pages.
   */
  async *scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    for await (const page of this.#inner.scan(options)) {
      const opened = await Promise.all(
        page.filter((e) => !isHeader(e.key)).map((e) => this.#open(e)),
      );
      if (opened.length > 0) yield opened;
    }
  }

  /**
   * Seals the values of a commit, then applies it.
   *
   * @param commit Checks, sets and deletes.
   * @returns The inner storage's result.
   * @throws {TypeError} When the commit touches the header key.
   */
  async commit(commit: StorageCommit): Promise<StorageCommitResult> {
    const settings = {
      minBytes: this.#header.compression?.minBytes,
      keys: this.#current,
    };
    const sets = await Promise.all(
      (commit.sets ?? []).map(async (set) => {
        if (isHeader(set.key)) {
          throw new TypeError("Cannot write the codec header through commit");
        }
        return { ...set, value: await seal(set.value, set.key, settings) };
      }),
    );
    return await this.#inner.commit({ ...commit, sets });
  }

  /**
   * Re-encrypts every value under a new secret and new data keys. Each step
   * is atomic and leaves a database that opens with the old secret or the
   * new one: first the header holds the new keys wrapped under both secrets,
   * then values are re-encrypted in groups (checked against concurrent
   * writes), then the old secret's wrap and keys are dropped.
   *
   * @param secret The new passphrase or key.
   * @returns How many values were re-encrypted.
   * @throws {TypeError} When the database is not encrypted or the secret is
   *   malformed.
   */
  async rekey(secret: EncryptionOptions): Promise<number> {
    const action = "Cannot rekey the database";
    checkEncryption(secret, action);
    const old = this.#header.encryption;
    const unlocked = this.#unlocked;
    if (old === null || unlocked === undefined) {
      throw new TypeError(`${action}: it is not encrypted`);
    }
    const bits = secret.key !== undefined
      ? (secret.key.length === 16 ? 128 : 256)
      : old.bits;
    let generation = (old.generation + 1) % 256;
    while (unlocked.material[generation] !== undefined) {
      generation = (generation + 1) % 256;
    }
    // Step 1: the new data keys, next to the old ones, wrapped under the new
    // secret and under the old one (so either opens the database).
    const both: Record<string, string> = {
      ...unlocked.material,
      [generation]: newKeyMaterial(bits),
    };
    this.#keys = await importAll(both);
    const fresh = await makeWrap(secret, both);
    const kept = await sealWrap(unlocked.wrap, unlocked.kek, both);
    this.#unlocked = { material: both, wrap: unlocked.wrap, kek: unlocked.kek };
    await this.#writeHeader({
      ...this.#header,
      encryption: { bits, generation, wraps: [fresh.wrap, kept] },
    }, action);
    // Step 2: every value under the new generation, a checked group at a
    // time (a value changed meanwhile is already under it, or read again).
    let changed = 0;
    const step = Math.max(1, (this.#inner.limits?.maxChecks ?? 512) >> 1);
    for (;;) {
      let pending = 0;
      for await (const page of this.#inner.scan({})) {
        const stale = page.filter((e) =>
          !isHeader(e.key) && e.value[2] !== generation
        );
        for (let i = 0; i < stale.length; i += step) {
          const group = stale.slice(i, i + step);
          const opened = await Promise.all(group.map((e) => this.#open(e)));
          const result = await this.commit({
            checks: group.map((e) => ({
              key: e.key,
              versionstamp: e.versionstamp,
            })),
            sets: opened.map((e) => ({ key: e.key, value: e.value })),
          });
          if (!result.ok) {
            pending += group.length;
            continue;
          }
          await result.durable;
          changed += group.length;
        }
      }
      if (pending === 0) break;
    }
    // Step 3: only the new keys, under the new secret.
    // The blind-index key stays: index keys are made with it.
    const material: Record<string, string> = {
      [generation]: both[generation]!,
      [BLIND]: both[BLIND]!,
    };
    this.#keys = await importAll(material);
    const final = await makeWrap(secret, material);
    this.#unlocked = { material, wrap: final.wrap, kek: final.kek };
    await this.#writeHeader({
      ...this.#header,
      encryption: { bits, generation, wraps: [final.wrap] },
    }, action);
    return changed;
  }

  /**
   * Follows keys of the inner storage, opening their values.
   *
   * @param keys The keys.
   * @param signal Ends the iteration.
   * @returns The entries per change.
   */
  async *watch(
    keys: readonly Uint8Array[],
    signal?: AbortSignal,
  ): AsyncIterable<WatchedEntries> {
    if (this.#inner.watch === undefined) return;
    for await (const entries of this.#inner.watch(keys, signal)) {
      yield await Promise.all(
        entries.map((e) => e === null ? null : this.#open(e)),
      );
    }
  }

  /**
   * Lets the inner storage compact.
   *
   * @returns Whether it rewrote anything.
   */
  compact(): Promise<boolean> {
    return this.#inner.compact?.() ?? Promise.resolve(false);
  }

  /**
   * Lets the inner storage load other processes' changes.
   *
   * @returns Whether anything changed.
   */
  refresh(): Promise<boolean> {
    return this.#inner.refresh?.() ?? Promise.resolve(false);
  }

  /**
   * The inner storage's counters, plus the codec's settings.
   *
   * @returns Plain data.
   */
  stats(): Readonly<Record<string, unknown>> {
    return {
      ...this.#inner.stats?.(),
      encrypted: this.encrypted,
      compression: this.#header.compression?.minBytes ?? false,
    };
  }

  /** Closes the inner storage. */
  close(): Promise<void> {
    return this.#inner.close();
  }
}
