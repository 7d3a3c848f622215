/**
 * Deno KV storage: the engine's byte keys as KV keys under a prefix, one KV
 * atomic operation per commit, native expiry, document records as KV's own
 * structured values (kv_values.ts), values larger than a KV value split
 * across keys.
 *
 * The adapter talks to KV through {@linkcode KvLike}, the part of `Deno.Kv`
 * it uses, so type-checking never needs `--unstable-kv`; running does.
 *
 * @module
 */

import { binaryString, compareBytes, prefixEnd } from "../bytes.ts";
import { ClosedError, IntegrityError, TooLargeError } from "../errors.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageLimits,
  WatchedEntries,
} from "./contract.ts";
import type { Clock } from "../clock.ts";
import type { StoredRecord } from "../value_codec.ts";
import {
  fitsOneValue,
  ForeignEntry,
  fromNative,
  KV_VALUE,
  NativeEntry,
  toNative,
} from "./kv_values.ts";

/** A Deno KV key part (what `Deno.KvKeyPart` allows). */
export type KvKeyPart =
  | Uint8Array
  | string
  | number
  | bigint
  | boolean
  | symbol;

/** A Deno KV key. */
export type KvKey = readonly KvKeyPart[];

/** One entry read from KV (the shape of `Deno.KvEntryMaybe`). */
export interface KvEntryLike {
  /** The key. */
  readonly key: KvKey;
  /** The value, `null` when absent. */
  readonly value: unknown;
  /** The versionstamp, `null` when absent. */
  readonly versionstamp: string | null;
}

/** The part of `Deno.AtomicOperation` the storage uses. */
export interface KvAtomicLike {
  /** Adds version checks. */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): this;
  /** Adds a set. */
  set(key: KvKey, value: unknown, options?: { expireIn?: number }): this;
  /** Adds a delete. */
  delete(key: KvKey): this;
  /** Commits. */
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/** The part of `Deno.Kv` the storage uses. `Deno.Kv` satisfies it. */
export interface KvLike {
  /** Reads a key. */
  get(key: KvKey): Promise<KvEntryLike>;
  /** Reads up to 10 keys. */
  getMany(keys: readonly KvKey[]): Promise<KvEntryLike[]>;
  /** Lists a range. */
  list(
    selector: { start: KvKey; end: KvKey },
    options?: { limit?: number; reverse?: boolean; batchSize?: number },
  ): AsyncIterable<KvEntryLike>;
  /** Starts an atomic operation. */
  atomic(): KvAtomicLike;
  /** Follows up to 10 keys. */
  watch(keys: readonly KvKey[]): ReadableStream<KvEntryLike[]>;
  /** Closes the connection. */
  close(): void;
}

/** Options of {@linkcode KvStorage}. */
export interface KvStorageOptions {
  /**
   * Key prefix under which everything is stored, so that several databases
   * (or other data) share one KV. Default `["tether"]`.
   */
  readonly prefix?: KvKey;
  /** Close the `Deno.Kv` when the storage closes. Default `false`. */
  readonly closeKv?: boolean;
  /**
   * Time source that `expireAt` values refer to (the database's clock).
   * Default `Date`. KV expires entries by real time, so with any other clock
   * (a test's fake one) entries get no `expireIn`: KV could otherwise delete
   * an item that the clock still calls live. The engine's sweeps remove them.
   */
  readonly clock?: Clock;
  /**
   * Largest value, in bytes, including values split across several KV
   * entries. Default 65 536 (one KV value); at most 786 432, since a value
   * and its entries must fit one atomic operation.
   */
  readonly maxValueBytes?: number;
}

/** Deno KV's limits (Deno 2). */
const KV_MUTATIONS = 1000;
const KV_CHECKS = 100;
const KV_KEY = 2048;
const KV_GET_MANY = 10;
/** Room left in an atomic operation for a large value's index entries. */
const MAX_VALUE = 786_432;
const PAGE = 256;

/** What a split value's main entry holds instead of the bytes. */
interface ChunkMarker {
  /** How many chunk entries. */
  readonly chunks: number;
  /** Total length. */
  readonly bytes: number;
  /** Names this write's chunks, so a reader never mixes two versions. */
  readonly id: string;
}

function isMarker(value: unknown): value is ChunkMarker {
  return typeof value === "object" && value !== null &&
    !(value instanceof Uint8Array) &&
    typeof (value as ChunkMarker).chunks === "number" &&
    typeof (value as ChunkMarker).id === "string";
}

function closed(action: string): ClosedError {
  return new ClosedError(`Cannot ${action}: the Deno KV storage is closed`);
}

function checkPrefix(prefix: KvKey): void {
  if (!Array.isArray(prefix)) {
    throw new TypeError(
      "Cannot open the Deno KV storage: prefix must be an array of key parts",
    );
  }
  for (const part of prefix) {
    const t = typeof part;
    if (
      !(part instanceof Uint8Array) && t !== "string" && t !== "number" &&
      t !== "bigint" && t !== "boolean"
    ) {
      throw new TypeError(
        `Cannot open the Deno KV storage: a prefix part must be a string, number, bigint, boolean or Uint8Array, got ${t}`,
      );
    }
  }
}

/** Encoded size of a byte string in KV's key encoding (tag, 0x00 escaped, end). */
function bytesPartSize(bytes: Uint8Array): number {
  let n = bytes.length + 2;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) n++;
  return n;
}

/**
 * Checks the options of a {@linkcode KvStorage} (also before a KV file is
 * opened for it, so that a refused open creates nothing).
 *
 * @param options The options.
 * @returns The prefix, its encoded size and `maxValueBytes`.
 * @throws {TypeError} When the prefix is not a KV key.
 * @throws {RangeError} When the prefix is too long or `maxValueBytes` is
 *   out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKvOptions } from "./kv.ts";
 * assert.deepEqual(checkKvOptions({ prefix: ["app"] }).prefix, ["app"]);
 * assert.throws(() => checkKvOptions({ prefix: ["x".repeat(600)] }), RangeError);
 * ```
 */
export function checkKvOptions(
  options: KvStorageOptions,
): { prefix: KvKey; prefixSize: number; maxValueBytes: number } {
  const prefix = options.prefix ?? ["tether"];
  checkPrefix(prefix);
  const maxValueBytes = options.maxValueBytes ?? KV_VALUE;
  if (
    !Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1 ||
    maxValueBytes > MAX_VALUE
  ) {
    throw new RangeError(
      `Cannot open the Deno KV storage: maxValueBytes must be a whole number from 1 to ${MAX_VALUE}, got ${maxValueBytes}`,
    );
  }
  const prefixSize = prefixBytes(prefix);
  if (prefixSize > MAX_PREFIX_BYTES) {
    throw new RangeError(
      `Cannot open the Deno KV storage: the prefix is ${prefixSize} bytes once encoded, over ${MAX_PREFIX_BYTES} (Deno KV's keys hold 2048, and the items' keys go under it)`,
    );
  }
  return { prefix, prefixSize, maxValueBytes };
}

/** The longest prefix taken: keys of up to 1024 bytes and more go under it. */
const MAX_PREFIX_BYTES = 512;

/** Encoded size of the prefix (an upper bound for numbers and bigints). */
function prefixBytes(prefix: KvKey): number {
  let n = 0;
  for (const part of prefix) {
    if (part instanceof Uint8Array) n += bytesPartSize(part);
    else if (typeof part === "string") {
      n += bytesPartSize(new TextEncoder().encode(part));
    } else if (typeof part === "boolean") n += 1;
    else n += 24;
  }
  return n;
}

/**
 * A {@linkcode Storage} on Deno KV. Each engine key `k` is stored at
 * `[...prefix, k]`; each commit is one KV atomic operation (checks, sets,
 * deletes) so other processes and isolates sharing the KV never see half of
 * it. A document's record (a set the engine marks `structured`) is stored
 * as a structured value (`[2, value, ...]`, see kv_values.ts) that KV
 * serialises itself, so dates and byte arrays stay what they are; values
 * that stay bytes (index entries, metadata, records too large for one KV
 * value) larger than one KV value (64 KiB) are split into entries under
 * `[...prefix, "c", k, id, i]` written in the same operation, up to
 * `maxValueBytes`. Byte values written by KV layout 1 (every record as
 * JSON bytes) read as before. `expireAt` becomes KV's `expireIn`.
 *
 * Commits that pass Deno KV's limits (1000 mutations, 100 checks, 800 KiB)
 * are refused with a `TooLargeError`; {@linkcode KvStorage.limits} states
 * them so that the engine can split its own bulk work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KvStorage } from "@tether/db/storage";
 * const kv = await Deno.openKv(":memory:");
 * const storage = new KvStorage(kv, { closeKv: true });
 * const key = new Uint8Array([1]);
 * await storage.commit({ sets: [{ key, value: new Uint8Array([42]) }] });
 * assert.equal((await storage.get(key))?.value[0], 42);
 * await storage.close();
 * ```
 */
export class KvStorage implements Storage {
  readonly #kv: KvLike;
  readonly #prefix: KvKey;
  readonly #chunkPrefix: KvKey;
  readonly #closeKv: boolean;
  readonly #clock: Clock;
  readonly #maxValueBytes: number;
  /** Split values seen or written: binary key -> marker and versionstamp. */
  readonly #split = new Map<
    string,
    { marker: ChunkMarker; versionstamp: string }
  >();
  readonly #watches = new Set<AbortController>();
  readonly #prefixSize: number;
  #closed = false;
  #counters = {
    commits: 0,
    conflicts: 0,
    busy: 0,
    splitValues: 0,
    records: 0,
  };

  /**
   * Document records are kept as KV's structured values (see
   * kv_values.ts); a codec (encryption, compression) in front of the
   * storage hides this, and its sealed bytes are stored as they are.
   */
  readonly structured: boolean = true;
  /**
   * Takes commits that follow one in flight (`StorageCommit.after`): a bulk
   * write builds its next commit while KV writes the one before.
   */
  readonly chains: boolean = true;

  /**
   * Deno KV is shared (other processes and isolates write to it) and expires
   * entries itself (with the real clock).
   */
  readonly capabilities: StorageCapabilities;

  /** Deno KV's per-operation limits, as they apply to engine keys. */
  readonly limits: StorageLimits;

  /**
   * Wraps an open `Deno.Kv`.
   *
   * @param kv An open `Deno.Kv` (or anything shaped like it).
   * @param options Prefix, clock, `closeKv`, `maxValueBytes`.
   * @throws {TypeError} When the prefix is not a KV key.
   * @throws {RangeError} When `maxValueBytes` is out of range.
   */
  constructor(kv: KvLike, options: KvStorageOptions = {}) {
    if (typeof kv?.atomic !== "function" || typeof kv.list !== "function") {
      throw new TypeError(
        "Cannot open the Deno KV storage: kv must be a Deno.Kv (from Deno.openKv())",
      );
    }
    const { prefix, maxValueBytes, prefixSize } = checkKvOptions(options);
    this.#kv = kv;
    this.#prefix = [...prefix];
    this.#chunkPrefix = [...prefix, "c"];
    this.#closeKv = options.closeKv === true;
    this.#clock = options.clock ?? Date;
    this.capabilities = { nativeExpiry: this.#clock === Date, shared: true };
    this.#maxValueBytes = maxValueBytes;
    this.#prefixSize = prefixSize;
    this.limits = { maxMutations: KV_MUTATIONS, maxChecks: KV_CHECKS };
  }

  #key(key: Uint8Array): KvKey {
    return [...this.#prefix, key];
  }

  /** Whether KV can hold `key` at all (2048 bytes once encoded). */
  #storable(key: Uint8Array): boolean {
    return key.length * 2 + 2 + this.#prefixSize <= KV_KEY ||
      bytesPartSize(key) + this.#prefixSize <= KV_KEY;
  }

  #chunkKey(key: Uint8Array, id: string, i: number): KvKey {
    return [...this.#chunkPrefix, key, id, i];
  }

  /** Turns a KV entry into a storage entry, joining split values. */
  async #entry(
    key: Uint8Array,
    found: KvEntryLike,
  ): Promise<StorageEntry | null> {
    if (found.versionstamp === null) return null;
    const { value, versionstamp } = found;
    if (value instanceof Uint8Array) return { key, value, versionstamp };
    if (!isMarker(value)) {
      const record = fromNative(value);
      if (record !== undefined) {
        return new NativeEntry(key, versionstamp, record);
      }
      // Reported where its bytes are read (a read of that item fails,
      // `verify` lists it), not by every scan that passes it.
      return new ForeignEntry(key, versionstamp, typeof value);
    }
    const keys: KvKey[] = [];
    for (let i = 0; i < value.chunks; i++) {
      keys.push(this.#chunkKey(key, value.id, i));
    }
    const parts: KvEntryLike[] = [];
    for (let i = 0; i < keys.length; i += KV_GET_MANY) {
      parts.push(...await this.#kv.getMany(keys.slice(i, i + KV_GET_MANY)));
    }
    const out = new Uint8Array(value.bytes);
    let at = 0;
    for (const part of parts) {
      if (!(part.value instanceof Uint8Array)) {
        // Rewritten since the main entry was read: read it again.
        const again = await this.#kv.get(this.#key(key));
        if (again.versionstamp === versionstamp) {
          throw new IntegrityError(
            `Cannot read a key from Deno KV: a part of its split value is missing`,
          );
        }
        return await this.#entry(key, again);
      }
      out.set(part.value, at);
      at += part.value.length;
    }
    if (at !== value.bytes) {
      throw new IntegrityError(
        `Cannot read a key from Deno KV: its split value has ${at} of ${value.bytes} bytes`,
      );
    }
    this.#split.set(binaryString(key), { marker: value, versionstamp });
    return { key, value: out, versionstamp };
  }

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {ClosedError} After `close()`.
   */
  async get(key: Uint8Array): Promise<StorageEntry | null> {
    if (this.#closed) throw closed("get");
    if (!this.#storable(key)) return null; // never stored
    return await this.#entry(key, await this.#kv.get(this.#key(key)));
  }

  /**
   * Reads several keys, ten per KV read.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   * @throws {ClosedError} After `close()`.
   */
  async getMany(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    if (this.#closed) throw closed("get");
    if (keys.length === 0) return [];
    if (keys.length === 1) return [await this.get(keys[0]!)];
    if (!keys.every((k) => this.#storable(k))) {
      return await Promise.all(keys.map((k) => this.get(k)));
    }
    const groups: Promise<KvEntryLike[]>[] = [];
    for (let i = 0; i < keys.length; i += KV_GET_MANY) {
      groups.push(
        this.#kv.getMany(
          keys.slice(i, i + KV_GET_MANY).map((k) => this.#key(k)),
        ),
      );
    }
    const found = (await Promise.all(groups)).flat();
    const out: (StorageEntry | null)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const e = found[i]!;
      out[i] = e.versionstamp !== null && e.value instanceof Uint8Array
        ? { key: keys[i]!, value: e.value, versionstamp: e.versionstamp }
        : await this.#entry(keys[i]!, e);
    }
    return out;
  }

  /**
   * Visits entries in key order through `kv.list`, in pages.
   *
   * @param options Which keys to visit.
   * @returns The entries, in pages.
   * @throws {ClosedError} After `close()`.
   */
  async *scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    if (this.#closed) throw closed("scan");
    const { prefix, reverse } = options;
    let start = options.start;
    let end = options.end;
    if (prefix !== undefined && prefix.length > 0) {
      if (start === undefined || compareBytes(start, prefix) < 0) {
        start = prefix;
      }
      const after = prefixEnd(prefix);
      if (
        after !== undefined &&
        (end === undefined || compareBytes(after, end) < 0)
      ) {
        end = after;
      }
    }
    const limit = options.limit;
    if (limit !== undefined && limit <= 0) return;
    if (
      start !== undefined && end !== undefined && compareBytes(start, end) >= 0
    ) {
      return;
    }
    const selector = {
      start: this.#key(start ?? new Uint8Array(0)),
      // The empty string sorts after every byte part, before chunk entries.
      end: end === undefined ? [...this.#prefix, ""] : this.#key(end),
    };
    const listOptions: {
      limit?: number;
      reverse?: boolean;
      batchSize: number;
    } = { batchSize: PAGE };
    if (limit !== undefined) listOptions.limit = limit;
    if (reverse === true) listOptions.reverse = true;
    let page: StorageEntry[] = [];
    const depth = this.#prefix.length;
    for await (const found of this.#kv.list(selector, listOptions)) {
      if (this.#closed) throw closed("scan");
      const key = found.key[depth];
      if (!(key instanceof Uint8Array) || found.key.length !== depth + 1) {
        continue;
      }
      const entry = found.value instanceof Uint8Array
        ? { key, value: found.value, versionstamp: found.versionstamp! }
        : await this.#entry(key, found);
      if (entry === null) continue;
      page.push(entry);
      if (page.length >= PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  /**
   * Applies a commit as one KV atomic operation.
   *
   * @param commit Checks, sets and deletes.
   * @returns `{ ok: false }` when a check fails, else the new versionstamp.
   * @throws {ClosedError} After `close()`.
   * @throws {TooLargeError} When the commit passes one of Deno KV's limits.
   */
  async commit(commit: StorageCommit): Promise<StorageCommitResult> {
    if (this.#closed) throw closed("commit");
    for (const c of commit.checks ?? []) {
      // Such a key is never stored: absent passes, anything else fails.
      if (!this.#storable(c.key) && c.versionstamp !== null) {
        return { ok: false };
      }
    }
    for (
      const key of [
        ...(commit.sets ?? []).map((s) => s.key),
        ...commit.deletes ?? [],
      ]
    ) {
      if (this.#storable(key)) continue;
      throw new TooLargeError(
        `Cannot commit to Deno KV: a key is ${
          bytesPartSize(key) + this.#prefixSize
        } bytes once encoded under the prefix, over Deno KV's ${KV_KEY} (an id or an indexed value is too long)`,
      );
    }
    let built = this.#build(commit, true);
    let after: string | undefined;
    if (commit.after !== undefined) {
      // Built meanwhile; sent once the commit it follows is in.
      const before = await commit.after.commit.catch(() => undefined);
      if (before?.ok !== true) return { ok: false };
      if (this.#closed) throw closed("commit");
      after = before.versionstamp;
      this.#chain(built.op, commit, after);
    }
    let result: { ok: boolean; versionstamp?: string };
    try {
      result = await this.#send(built.op);
    } catch (e) {
      if (this.#closed) throw closed("commit");
      if (
        built.native === 0 || !(e instanceof TypeError) ||
        !/value too large/i.test(e.message)
      ) {
        throw this.#tooLarge(e, commit);
      }
      // A record's structured form was larger than its bound said: write
      // the records of this commit as bytes (split where needed) instead.
      built = this.#build(commit, false);
      if (after !== undefined) this.#chain(built.op, commit, after);
      try {
        result = await this.#send(built.op);
      } catch (e) {
        if (this.#closed) throw closed("commit");
        throw this.#tooLarge(e, commit);
      }
    }
    this.#counters.commits++;
    if (!result.ok) {
      this.#counters.conflicts++;
      return { ok: false };
    }
    const versionstamp = result.versionstamp!;
    for (const bin of built.touched) this.#split.delete(bin);
    for (const { bin, marker } of built.written) {
      this.#split.set(bin, { marker, versionstamp });
      this.#counters.splitValues++;
    }
    this.#counters.records += built.native;
    return { ok: true, versionstamp };
  }

  /** The check of a commit that follows another (`after`). */
  #chain(op: KvAtomicLike, commit: StorageCommit, versionstamp: string): void {
    const key = commit.after?.check;
    if (key === undefined || !this.#storable(key)) return;
    op.check({ key: this.#key(key), versionstamp });
  }

  /** A KV refusal of a commit's size as a `TooLargeError`. */
  #tooLarge(e: unknown, commit: StorageCommit): unknown {
    if (!(e instanceof TypeError) || !/too (large|many)/i.test(e.message)) {
      return e;
    }
    const sets = commit.sets?.length ?? 0;
    const deletes = commit.deletes?.length ?? 0;
    const checks = commit.checks?.length ?? 0;
    return new TooLargeError(
      `Cannot commit to Deno KV: ${e.message} (this write has ${sets} sets, ${deletes} deletes and ${checks} checks in one atomic operation)`,
      { cause: e },
    );
  }

  /**
   * Builds the atomic operation of a commit whose keys are all storable.
   * With `native`, a document's record (a set marked `structured`) goes
   * in as a structured value when it surely fits one KV value; everything
   * else goes in as bytes, split across entries past 64 KiB.
   */
  #build(commit: StorageCommit, native: boolean): {
    op: KvAtomicLike;
    touched: string[];
    written: { bin: string; marker: ChunkMarker }[];
    native: number;
  } {
    const op = this.#kv.atomic();
    for (const c of commit.checks ?? []) {
      if (!this.#storable(c.key)) continue; // absent: passes
      op.check({ key: this.#key(c.key), versionstamp: c.versionstamp });
    }
    const stale = this.#staleChunks(commit);
    const touched: string[] = [];
    const written: { bin: string; marker: ChunkMarker }[] = [];
    // Split values this commit may supersede (none known: nothing to track).
    const track = this.#split.size > 0;
    let records = 0;
    const now = this.#clock.now();
    const expires = this.capabilities.nativeExpiry;
    for (const set of commit.sets ?? []) {
      const options = set.expireAt === undefined || !expires
        ? undefined
        : { expireIn: Math.max(0, Math.ceil(set.expireAt - now)) };
      if (track) touched.push(binaryString(set.key));
      if (native && set.structured === true && set.memo !== undefined) {
        const record = toNative(set.memo as StoredRecord);
        if (fitsOneValue(record, set.value.length)) {
          op.set(this.#key(set.key), record, options);
          records++;
          continue;
        }
      }
      if (set.value.length <= KV_VALUE) {
        op.set(this.#key(set.key), set.value, options);
        continue;
      }
      if (set.value.length > this.#maxValueBytes) {
        throw new TooLargeError(
          `Cannot commit to Deno KV: a value is ${set.value.length} bytes, over maxValueBytes ${this.#maxValueBytes}`,
        );
      }
      const id = crypto.randomUUID();
      const chunks = Math.ceil(set.value.length / KV_VALUE);
      const marker: ChunkMarker = { chunks, bytes: set.value.length, id };
      for (let i = 0; i < chunks; i++) {
        op.set(
          this.#chunkKey(set.key, id, i),
          set.value.subarray(i * KV_VALUE, (i + 1) * KV_VALUE),
          options,
        );
      }
      op.set(this.#key(set.key), marker, options);
      written.push({ bin: binaryString(set.key), marker });
    }
    for (const key of commit.deletes ?? []) {
      op.delete(this.#key(key));
      if (track) touched.push(binaryString(key));
    }
    for (const key of stale) op.delete(key);
    return { op, touched, written, native: records };
  }

  /**
   * Commits, waiting out a local KV file that another process holds locked
   * (SQLite's "database is locked": nothing was written). After a few tries
   * the commit counts as a lost race, which the engine retries.
   */
  async #send(
    op: KvAtomicLike,
  ): Promise<{ ok: boolean; versionstamp?: string }> {
    for (let attempt = 0;; attempt++) {
      try {
        return await op.commit();
      } catch (e) {
        if (!(e instanceof Error) || !/database is locked/i.test(e.message)) {
          throw e;
        }
        this.#counters.busy++;
        if (attempt >= 4) return { ok: false };
        await new Promise((r) => setTimeout(r, 1 + Math.random() * 4));
      }
    }
  }

  /** Chunk entries of split values that this commit overwrites or deletes. */
  #staleChunks(commit: StorageCommit): KvKey[] {
    if (this.#split.size === 0) return [];
    const out: KvKey[] = [];
    const add = (key: Uint8Array): void => {
      const known = this.#split.get(binaryString(key));
      if (known === undefined) return;
      for (let i = 0; i < known.marker.chunks; i++) {
        out.push(this.#chunkKey(key, known.marker.id, i));
      }
    };
    for (const set of commit.sets ?? []) add(set.key);
    for (const key of commit.deletes ?? []) add(key);
    return out;
  }

  /**
   * Follows up to 10 keys with `kv.watch`.
   *
   * @param keys The keys.
   * @param signal Ends the iteration.
   * @returns The entries, once at first and after every change.
   * @throws {RangeError} With more than 10 keys.
   */
  async *watch(
    keys: readonly Uint8Array[],
    signal?: AbortSignal,
  ): AsyncIterable<WatchedEntries> {
    if (this.#closed) throw closed("watch");
    if (keys.length > KV_GET_MANY) {
      throw new RangeError(
        `Cannot watch Deno KV: at most ${KV_GET_MANY} keys at once, got ${keys.length}`,
      );
    }
    const stop = new AbortController();
    this.#watches.add(stop);
    const onAbort = () => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const reader = this.#kv.watch(keys.map((k) => this.#key(k))).getReader();
    const onStop = () => void reader.cancel().catch(() => {});
    stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      while (!stop.signal.aborted) {
        const next = await reader.read();
        if (next.done || stop.signal.aborted) return;
        const out: (StorageEntry | null)[] = [];
        for (let i = 0; i < keys.length; i++) {
          out.push(await this.#entry(keys[i]!, next.value[i]!));
        }
        yield out;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#watches.delete(stop);
      onStop();
    }
  }

  /**
   * Counters: commits, commits refused by a check, commits that met a
   * locked KV file, split values written, records written as structured
   * values.
   *
   * @returns The counters.
   */
  stats(): Readonly<Record<string, unknown>> {
    return { ...this.#counters, prefix: this.#prefix.map(String).join("/") };
  }

  /** Stops watches; closes the `Deno.Kv` too when `closeKv` was set. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const w of this.#watches) w.abort();
    this.#watches.clear();
    this.#split.clear();
    if (this.#closeKv) this.#kv.close();
    return Promise.resolve();
  }
}
