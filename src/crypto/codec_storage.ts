/**
 * Compression and encryption at rest, for every storage: a
 * {@linkcode Storage} that seals each value on its way down and opens it on
 * its way up (src/crypto/codec.ts), so the engine and the adapter below stay as they
 * are.
 *
 * Records are encrypted with random data keys; the data keys are stored in
 * the database's header wrapped (sealed) under a key derived from the
 * passphrase (PBKDF2-SHA256 to one 256-bit master, expanded with HKDF) or
 * from a raw key (HKDF-SHA256): src/codec_wrap.ts. A wrong secret fails to
 * open the wrap, which is how it is detected at open. The header itself is
 * checked field by field before anything is derived from it, and carries a
 * MAC (src/codec_header.ts).
 *
 * @module
 */

import { Log } from "../logger.ts";
import {
  describeKey,
  encodeMaterial,
  HEADER,
  importAll,
  isHeader,
  newKeyMaterial,
  randomKey,
  unlock,
  type Unlocked,
} from "./codec_keys.ts";
import { type CodecOptions, minBytesOf } from "./codec_options.ts";
import {
  EnvelopeError,
  open as openEnvelope,
  type RecordKeys,
  seal,
} from "./codec.ts";
import {
  assertWrap,
  checkEncryption,
  type EncryptionOptions,
  freshKek,
  openUnder,
  sealUnder,
  type SecretWrap,
} from "./codec_wrap.ts";
import {
  BLIND_BOUND,
  BLIND_KEY,
  BLIND_LEGACY,
  type Header,
  HEADER_MAC_KEY,
  HEADER_VERSION,
  type KeyMaterial,
  parseHeader,
  signHeader,
  verifyHeader,
} from "./codec_header.ts";
import { blindValue } from "./blind_index.ts";
import { base64ToBytes } from "../bytes.ts";
import { IntegrityError, WrongKeyError } from "../errors.ts";
import { type ProgressCallback, ProgressReport } from "../progress.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageLimits,
  WatchedEntries,
} from "../storage/contract.ts";

export {
  type CodecOptions,
  type CompressionOptions,
  DEFAULT_MIN_BYTES,
} from "./codec_options.ts";
export {
  DEFAULT_ITERATIONS,
  type EncryptionOptions,
  openWithSecret,
  sealWithSecret,
  type SecretWrap,
} from "./codec_wrap.ts";

/**
 * A storage that compresses and encrypts every value of another. Made by
 * {@linkcode CodecStorage.open}; `open()` uses it when given `encryption` or
 * `compression`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CodecStorage } from "@tether/db/storage";
 * import { MemoryStorage } from "@tether/db/storage";
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
  readonly #log: Log;
  #header: Header;
  #headerStamp: string;
  #keys: Map<number, RecordKeys>;
  #current: RecordKeys | undefined;
  #unlocked: Unlocked | undefined;
  /** Commits between their call and their landing in the inner storage. */
  readonly #pending = new Set<Promise<unknown>>();
  /** The last rekey (rekeys run one at a time). */
  #rekeying: Promise<unknown> = Promise.resolve();
  /**
   * Keyed digests for blind indexes (HMAC-SHA256 under a key of their own),
   * when encrypted: of the whole {@linkcode blindInput} (collection, field,
   * value), or of the value alone in a database whose header says blind
   * scheme 1.
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
    log: Log,
  ) {
    this.#inner = inner;
    this.#log = log;
    this.#header = header;
    this.#headerStamp = headerStamp;
    this.#keys = keys;
    this.#unlocked = unlocked;
    const blindKey = unlocked?.material[BLIND_KEY];
    if (blindKey !== undefined) {
      const key = crypto.subtle.importKey(
        "raw",
        base64ToBytes(blindKey) as Uint8Array<ArrayBuffer>,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const bound = (header.encryption?.blind ?? BLIND_LEGACY) === BLIND_BOUND;
      this.blind = async (data) => {
        const k = await key;
        return await Promise.all(
          data.map(async (d) =>
            new Uint8Array(
              await crypto.subtle.sign(
                "HMAC",
                k,
                (bound ? d : blindValue(d)) as Uint8Array<ArrayBuffer>,
              ),
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
   * empty storage) and, when encrypted, unlocks the data keys and checks the
   * header's MAC.
   *
   * @param inner The storage holding the sealed values.
   * @param options Encryption secret and compression.
   * @returns The storage, or `inner` itself when it has no header and no
   *   option asks for one.
   * @throws {WrongKeyError} When the secret is wrong, missing for an
   *   encrypted database, or given for a plain one.
   * @throws {IntegrityError} When the header is malformed (naming the field:
   *   checked before any key derivation) or fails its MAC.
   * @throws {TypeError} When an option is malformed, or compression is asked
   *   of a database that holds plain values.
   * @throws {RangeError} When `iterations` is not from 1,000 to 5,000,000.
   */
  static async open(
    inner: Storage,
    options: CodecOptions,
  ): Promise<Storage> {
    const action = "Cannot open the database";
    const { encryption } = options;
    if (encryption !== undefined) checkEncryption(encryption, action);
    const minBytes = minBytesOf(options.compression, action);
    const log = new Log(options.logger, options.logLevel);
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
      return await CodecStorage.#create(
        inner,
        encryption,
        minBytes ?? null,
        log,
      );
    }
    // Every field checked before anything is derived from it.
    const header = parseHeader(found.value, action);
    let keys = new Map<number, RecordKeys>();
    let opened: Unlocked | undefined;
    if (header.encryption !== null) {
      if (encryption === undefined) {
        throw new WrongKeyError(
          `${action}: it is encrypted; pass encryption: { passphrase } or { key }`,
        );
      }
      opened = await unlock(encryption, header.encryption.wraps, action);
      if (opened === undefined) {
        throw new WrongKeyError(
          `${action}: the ${
            encryption.passphrase !== undefined ? "passphrase" : "key"
          } is wrong`,
        );
      }
      await verifyHeader(header, opened.material, action);
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
      log,
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
    log: Log,
  ): Promise<CodecStorage> {
    let header: Header = {
      v: HEADER_VERSION,
      compression: minBytes === null ? null : { minBytes },
      encryption: null,
    };
    let keys = new Map<number, RecordKeys>();
    let unlocked: Unlocked | undefined;
    if (encryption !== undefined) {
      const bits = encryption.key?.length === 16 ? 128 : 256;
      const material: KeyMaterial = {
        "0": newKeyMaterial(bits),
        [BLIND_KEY]: randomKey(),
        [HEADER_MAC_KEY]: randomKey(),
      };
      const { shape, kek } = await freshKek(encryption);
      const wrap = await sealUnder(shape, kek, encodeMaterial(material));
      header = await signHeader({
        ...header,
        encryption: { bits, generation: 0, blind: BLIND_BOUND, wraps: [wrap] },
      }, material);
      keys = await importAll(material);
      unlocked = { material, wrap: shape, kek };
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
    return new CodecStorage(
      inner,
      header,
      result.versionstamp,
      keys,
      unlocked,
      log,
    );
  }

  /**
   * Writes a header (signed with the key set's `h` when it has one), checked
   * against the one this storage read, and switches to its generation.
   */
  async #writeHeader(
    header: Header,
    action: string,
    material: KeyMaterial | undefined = this.#unlocked?.material,
  ): Promise<void> {
    const signed = header.encryption !== null &&
        material?.[HEADER_MAC_KEY] !== undefined
      ? await signHeader(header, material)
      : header;
    const result = await this.#inner.commit({
      checks: [{ key: HEADER, versionstamp: this.#headerStamp }],
      sets: [{
        key: HEADER,
        value: new TextEncoder().encode(JSON.stringify(signed)),
      }],
    });
    if (!result.ok) {
      throw new WrongKeyError(
        `${action}: another process changed the database's keys meanwhile`,
      );
    }
    await result.durable;
    this.#header = signed;
    this.#headerStamp = result.versionstamp;
    this.#current = signed.encryption === null
      ? undefined
      : this.#keys.get(signed.encryption.generation);
  }

  /**
   * Seals bytes under this database's secret (the key derived from it when
   * it was opened), so that whoever has the secret can open them: how a
   * backup of an encrypted database carries its key. A later `rekey` does
   * not change what a backup made before it needs: its own secret.
   *
   * @param data The bytes.
   * @returns The wrap, or `undefined` when the database is not encrypted.
   */
  async sealForSecret(data: Uint8Array): Promise<SecretWrap | undefined> {
    const unlocked = this.#unlocked;
    if (unlocked === undefined) return undefined;
    return await sealUnder(unlocked.wrap, unlocked.kek, data);
  }

  /**
   * Opens bytes sealed by `sealForSecret` of a database opened with the same
   * secret and salt (a backup restored into the database it came from),
   * without asking for the secret again.
   *
   * @param wrap The wrap.
   * @returns The bytes, or `undefined` when this database cannot open it.
   * @throws {IntegrityError} When a field of the wrap is malformed.
   */
  async openSealed(wrap: SecretWrap): Promise<Uint8Array | undefined> {
    assertWrap(wrap, "Cannot open the key wrap", "wrap");
    const unlocked = this.#unlocked;
    if (
      unlocked === undefined || unlocked.wrap.salt !== wrap.salt ||
      unlocked.wrap.v !== wrap.v || unlocked.wrap.kdf !== wrap.kdf
    ) {
      return undefined;
    }
    return await openUnder(unlocked.kek, wrap);
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
   * @param onProgress Told how many values are checked so far, after each
   *   page of them.
   * @returns Per bad value, its key and what is wrong; and how many were
   *   checked.
   */
  async verify(onProgress?: (checked: number) => void): Promise<{
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
      onProgress?.(checked);
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
   * @throws {IntegrityError} When the database is encrypted but has no
   *   current key (nothing is ever written in plaintext there).
   */
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    const keys = this.#current;
    if (this.encrypted && keys === undefined) {
      return Promise.reject(
        new IntegrityError(
          "Cannot write: the database is encrypted but its current key generation has no key",
        ),
      );
    }
    const applied = this.#commit(commit, keys);
    // Tracked until it lands, so that a rekey can wait for the writes
    // sealed under the generation it retires.
    const landed = applied.then(() => {}, () => {});
    this.#pending.add(landed);
    landed.then(() => this.#pending.delete(landed));
    return applied;
  }

  async #commit(
    commit: StorageCommit,
    keys: RecordKeys | undefined,
  ): Promise<StorageCommitResult> {
    const settings = { minBytes: this.#header.compression?.minBytes, keys };
    const sets = await Promise.all(
      (commit.sets ?? []).map(async (set) => {
        if (isHeader(set.key)) {
          throw new TypeError("Cannot write the codec header through commit");
        }
        // Sealed bytes are not the record's encoding: never `lazy` (the
        // file storage would write `memo` instead).
        return {
          ...set,
          value: await seal(set.value, set.key, settings),
          lazy: false,
        };
      }),
    );
    return await this.#inner.commit({ ...commit, sets });
  }

  /**
   * Re-encrypts every value under a new secret and new data keys, and
   * revokes the old secret. Each step is atomic and leaves a database that
   * opens with the old secret or the new one: first the header holds the new
   * keys wrapped under both secrets (writes from then on use the new keys,
   * and the writes already sealed under the old ones are waited for); then
   * every value is re-encrypted in groups (checked against concurrent
   * writes); then the old secret's wrap and keys are dropped; last the inner
   * storage compacts (a file loses the old header and values). Rekeys run
   * one at a time. A database written by an older version moves to the
   * current derivation and header (with a MAC); its blind indexes keep their
   * scheme.
   *
   * @param secret The new passphrase or key.
   * @param onProgress Told how many values are re-encrypted, of how many
   *   were stored when it began (counted then; the last call, after the
   *   compaction, has `done === total`).
   * @returns How many values were re-encrypted.
   * @throws {TypeError} When the database is not encrypted or the secret is
   *   malformed.
   */
  rekey(
    secret: EncryptionOptions,
    onProgress?: ProgressCallback,
  ): Promise<number> {
    const run = this.#rekeying.then(() => this.#rekey(secret, onProgress));
    this.#rekeying = run.catch(() => {});
    return run;
  }

  /** The values stored (the header left out): the inner key count, or a scan. */
  async #values(): Promise<number> {
    const keys = this.#inner.stats?.().keys;
    if (typeof keys === "number") return Math.max(0, keys - 1);
    let n = 0;
    for await (const page of this.#inner.scan({})) {
      for (const e of page) if (!isHeader(e.key)) n++;
    }
    return n;
  }

  async #rekey(
    secret: EncryptionOptions,
    onProgress: ProgressCallback | undefined,
  ): Promise<number> {
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
    const blind = old.blind ?? BLIND_LEGACY;
    this.#log.info(
      "rekey-start",
      `Rekey: new key generation ${generation}`,
      { generation },
    );
    // Step 1: the new data keys (and a new header-MAC key), next to the old
    // ones, wrapped under the new secret and under the old one (so either
    // opens the database).
    const both: KeyMaterial = {
      ...unlocked.material,
      [generation]: newKeyMaterial(bits),
      [HEADER_MAC_KEY]: randomKey(),
    };
    const fresh = await freshKek(secret);
    const wraps = [
      await sealUnder(fresh.shape, fresh.kek, encodeMaterial(both)),
      await sealUnder(unlocked.wrap, unlocked.kek, encodeMaterial(both)),
    ];
    this.#keys = await importAll(both);
    this.#unlocked = { ...unlocked, material: both };
    await this.#writeHeader({
      v: HEADER_VERSION,
      compression: this.#header.compression,
      encryption: { bits, generation, blind, wraps },
    }, action);
    // Writes sealed under an older generation (every one called before the
    // switch) may still be on their way down: let them land, so that the
    // scan below sees them. Later ones use the new generation.
    await Promise.all([...this.#pending]);
    const progress = new ProgressReport(
      onProgress,
      onProgress === undefined ? 0 : await this.#values(),
    );
    progress.report(0);
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
          progress.report(changed);
        }
      }
      this.#log.debug(
        "rekey-progress",
        `Rekey: ${changed} values re-encrypted, ${pending} to read again`,
        { generation, changed, pending },
      );
      if (pending === 0) break;
    }
    // Step 3: only the new keys, under the new secret alone (the key it
    // derives is reused: same secret, same salt). The blind-index key stays:
    // index keys are made with it.
    const material: KeyMaterial = {
      [generation]: both[generation]!,
      ...(both[BLIND_KEY] === undefined
        ? {}
        : { [BLIND_KEY]: both[BLIND_KEY] }),
      [HEADER_MAC_KEY]: randomKey(),
    };
    const final = await sealUnder(
      fresh.shape,
      fresh.kek,
      encodeMaterial(material),
    );
    await this.#writeHeader(
      {
        v: HEADER_VERSION,
        compression: this.#header.compression,
        encryption: { bits, generation, blind, wraps: [final] },
      },
      action,
      material,
    );
    this.#keys = await importAll(material);
    this.#current = this.#keys.get(generation);
    this.#unlocked = { material, wrap: fresh.shape, kek: fresh.kek };
    // Last: the old header and the old values leave the file. A compaction
    // already running may have started before step 3, so a second one
    // follows it (it does nothing when nothing was written since).
    if (this.#inner.compact !== undefined) {
      try {
        await this.#inner.compact();
        await this.#inner.compact();
      } catch (e) {
        this.#log.error(
          "rekey-compact-failed",
          "Rekey: the new secret is in place, but compacting the old values away failed; run compact()",
          { generation, error: String(e) },
        );
        throw e;
      }
    }
    progress.finish();
    this.#log.info(
      "rekey-done",
      `Rekey: ${changed} values re-encrypted under key generation ${generation}; the old secret is revoked`,
      { generation, changed },
    );
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
   * @param onProgress Passed on to the inner storage.
   * @returns Whether it rewrote anything.
   */
  compact(
    onProgress?: (done: number, total: number) => void,
  ): Promise<boolean> {
    return this.#inner.compact?.(onProgress) ?? Promise.resolve(false);
  }

  /** Lets the inner storage load other processes' changes (`refresh`). */
  refresh(): Promise<boolean> {
    return this.#inner.refresh?.() ?? Promise.resolve(false);
  }

  /** Lets the inner storage check its checksums (`Storage.checkLog`). */
  checkLog(): Promise<string | undefined> {
    return this.#inner.checkLog?.() ?? Promise.resolve(undefined);
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
