/**
 * The engine shared by every storage: key layout, the write queue, the TTL
 * schedule and sweeper, secondary and insertion-order index maintenance,
 * counters and scans. Decoded records travel with storage entries as their
 * `memo` where the storage keeps one.
 *
 * The engine knows nothing of the storage behind it beyond the
 * {@linkcode Storage} contract. Public classes (`Database`, `Collection`,
 * `Cursor`) validate input, then call it.
 *
 * @module
 */

import type { Log } from "../logger.ts";
import {
  ClosedError,
  ConflictError,
  DuplicateKeyError,
  IntegrityError,
  QuotaError,
  TooLargeError,
} from "../errors.ts";
import { binaryString, encodeUtf8, prefixEnd } from "../bytes.ts";
import {
  CollectionIndexes,
  entryId,
  entryKeyId,
  type IndexEntry,
  type StoredIndex,
} from "./indexes.ts";
import type { IndexSpec } from "./index_keys.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import {
  type KeyRange,
  type Plan,
  planQuery,
  rangeToBytes,
} from "../query/planner.ts";
import type { Filter } from "../query/compile.ts";
import type { SortSpec } from "../query/sort.ts";
import type {
  ScanOptions,
  Storage,
  StorageEntry,
} from "../storage/contract.ts";
import { TtlSchedule } from "./ttl_schedule.ts";
import type { Change, Clock, DatabaseStats } from "../types.ts";
import {
  type CheckedValue,
  decodeRecord,
  encodeRecord,
  recordMeta,
  type StoredRecord,
} from "../value_codec.ts";
import { KeyGenerator } from "../auto_key.ts";
import { hidesValues } from "../validate.ts";
import { Blinder } from "../crypto/blind_index.ts";
import { ChangeFeed } from "./change_feed.ts";
import { entryCost, heapCap, recordCost } from "./size_estimate.ts";

/** Key-space tag of documents: `["d", collection, id]`. */
const DOC = "d";
/** Key-space tag of metadata: `["m", collection, "index", name]`. */
const META = "m";
/**
 * Key-space tag of tombstones: `["t", collection, id]`, the time a document
 * was deleted, kept `tombstoneRetention` ms for incremental backups.
 */
const TOMB = "t";
/** Where the cut-off of the last tombstone purge is kept. */
const PURGED = encodeKey(["k", "tombstones"]);
/** Most items per collection remembered as written last (shared storage). */
const RECENT_ITEMS = 16_384;
/** Most record bytes per collection remembered so. */
const RECENT_TOTAL = 2 * 1024 * 1024;
/** Largest record remembered so. */
const RECENT_BYTES = 4096;
/** Most expired items one sweep commit removes. */
const SWEEP_BATCH = 1024;
/** A scan gives the event loop a turn after this many ms of work. */
const SLICE_MS = 8;

/** A put inside a write. */
export interface PutOp {
  /** Discriminant. */
  readonly kind: "put";
  /** The item's key. */
  readonly id: string;
  /** The validated value. */
  readonly value: CheckedValue;
  /** Tags, if any. */
  readonly tags: readonly string[] | undefined;
  /** TTL in ms, if any. */
  readonly ttl: number | undefined;
  /** Keep the current item's tags and expiry instead (updates). */
  readonly keepMeta?: boolean;
  /** Fail with a `DuplicateKeyError` when a visible item has this id. */
  readonly mustBeNew?: boolean;
  /** The id was just generated, so no item has it (a hint: still checked). */
  readonly fresh?: boolean;
  /**
   * Metadata to store as given instead of computing it (import, restore):
   * the item is written exactly as it was exported.
   */
  readonly meta?: {
    readonly createdAt: number;
    readonly updatedAt: number;
    readonly version: number;
    readonly expiresAt: number | undefined;
  };
  /**
   * The version the caller's `build` read (0: no visible item). If the item
   * has moved on since (another process wrote it), the attempt is a lost
   * race: `build` runs again.
   */
  readonly expectedVersion?: number;
}

/** A delete inside a write. */
export interface DeleteOp {
  /** Discriminant. */
  readonly kind: "delete";
  /** The item's key. */
  readonly id: string;
  /** As {@linkcode PutOp.expectedVersion}. */
  readonly expectedVersion?: number;
}

/** What the engine tracks for one collection. */
interface CollectionState {
  /** Documents in storage, expired or not. */
  stored: number;
  /** Document id -> expiry, for documents with a TTL. */
  readonly schedule: TtlSchedule<string>;
  /** Expired ids popped by a sweep that has not removed them yet. */
  readonly inflight: Map<string, number>;
  /** Secondary indexes and insertion order. */
  indexes: CollectionIndexes;
  /**
   * Versionstamp of the collection's schema key as last read (shared
   * storages: every commit checks it, so no write misses an index that
   * another process created).
   */
  schema: string | null;
  /** The highest insertion sequence number used. */
  seq: number;
  /**
   * How often a put of a caller-given key found an item (moving average), to
   * decide whether to skip reading first on a shared storage.
   */
  existRate: number;
  /**
   * Items this process wrote last (shared storage), oldest first: a write
   * over one of them assumes it is unchanged, which its version check
   * verifies, instead of reading it first.
   */
  readonly recent: Map<string, StorageEntry>;
  /** Value bytes in `recent`. */
  recentBytes: number;
}

/** One item's change inside a commit. */
interface ItemChange {
  readonly id: string;
  readonly key: Uint8Array;
  readonly entry: StorageEntry | null;
  readonly old: StoredRecord | undefined;
  readonly next: StoredRecord | undefined;
  /** The id was just generated: it has no tombstone to remove. */
  readonly fresh?: boolean;
}

/**
 * A page of documents read through an index: `sources[i]` is the index key
 * that led to document `i`, and `range` which of the plan's ranges it was in
 * (cursor positions resume from them).
 */
export type DocPage = readonly StorageEntry[] & {
  readonly sources?: readonly Uint8Array[];
  readonly range?: number;
};

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/** What `verify` found. */
export interface VerifyReport {
  /** Stored values checked. */
  readonly checked: number;
  /** One per bad value: where, and what is wrong. */
  readonly problems: readonly {
    readonly collection: string;
    readonly key: string;
    readonly problem: string;
  }[];
}

/** One step of an atomic write. */
export type WriteOp = PutOp | DeleteOp;

/** Resolved engine settings. */
export interface EngineSettings {
  /** Time source. */
  readonly clock: Clock;
  /** Sweep timer period, ms. */
  readonly ttlCheckInterval: number;
  /** Full cleanup timer period, ms. */
  readonly cleanupInterval: number;
  /** Largest record, bytes. */
  readonly maxValueBytes: number;
  /** Byte budget, or `Infinity`. */
  readonly memoryLimit: number;
  /** Retries after a lost race on a shared storage. */
  readonly maxRetries: number;
  /** Delay before a retry, ms. */
  readonly retryDelay: number;
  /** Record each commit's changes for other processes' `watch` (shared). */
  readonly feed?: boolean;
  /** How long tombstones of deleted documents are kept, ms. */
  readonly tombstoneRetention: number;
  /** Where quota pressure and background errors are reported. */
  readonly log?: Log;
}

/**
 * Gives the event loop a turn (a macrotask, so timers and I/O run).
 *
 * @returns A promise that settles on a later turn.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function isExpired(record: StoredRecord, now: number): boolean {
  return record.expiresAt !== undefined && now >= record.expiresAt;
}

function unref(id: number): void {
  const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
    .Deno;
  deno?.unrefTimer?.(id);
}

/**
 * The shared engine. Internal: reached through `Database` and `Collection`.
 *
 * @example
 * ```ts
 * import { Engine } from "./engine.ts";
 * import { MemoryStorage } from "../storage/memory.ts";
 * const engine = await Engine.open(new MemoryStorage(), {
 *   clock: Date, ttlCheckInterval: 10_000, cleanupInterval: 3_600_000,
 *   maxValueBytes: 65_536, memoryLimit: Infinity, maxRetries: 3, retryDelay: 100,
 *   tombstoneRetention: 604_800_000,
 * });
 * await engine.close();
 * ```
 */
export class Engine {
  readonly #storage: Storage;
  /** Digests of index values, when the storage keeps indexes blind. */
  readonly #blinder: Blinder | undefined;
  readonly #settings: EngineSettings;
  readonly #keys: KeyGenerator;
  /** Per collection bookkeeping. */
  readonly #collections = new Map<string, CollectionState>();
  readonly #prefixes = new Map<string, Uint8Array>();
  /** Estimated memory held (see size_estimate.ts). */
  #bytes = 0;
  /** Whether the estimate is past 90% of `memoryLimit` (warned once). */
  #pressed = false;
  /** `memoryLimit`, capped by what the V8 heap can hold. */
  #memoryLimit: number;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  #timers: number[] = [];
  #onClose: (() => void)[] = [];
  #sweeping = false;
  readonly #listeners = new Set<(change: Change) => void>();
  /** Holds each commit's changes back until the commit is durable. */
  readonly #changes = new ChangeFeed((change) => this.#emit(change));
  /** Tells this engine's own feed records from other processes'. */
  readonly #writer = crypto.randomUUID();
  #poked: Promise<unknown> | undefined;
  #reloading: Promise<void> | undefined;
  #ops = { puts: 0, gets: 0, deletes: 0, queries: 0 };
  #sweeps = 0;
  #expired = 0;
  #lastSweepAt: number | undefined;
  #sweepErrors = 0;
  #lastError: Error | undefined;

  private constructor(storage: Storage, settings: EngineSettings) {
    this.#storage = storage;
    this.#blinder = storage.blind === undefined
      ? undefined
      : new Blinder(storage.blind);
    this.#settings = settings;
    this.#memoryLimit = settings.memoryLimit;
    this.#keys = new KeyGenerator(settings.clock);
  }

  /**
   * Opens an engine on a storage: reads what it holds (counts, sizes, TTL
   * schedule) and starts the background timers.
   *
   * @param storage The storage adapter.
   * @param settings Resolved settings.
   * @returns The engine.
   */
  static async open(
    storage: Storage,
    settings: EngineSettings,
  ): Promise<Engine> {
    const engine = new Engine(storage, settings);
    try {
      await engine.#capMemoryLimit();
      await engine.#load();
    } catch (e) {
      await storage.close();
      throw e;
    }
    engine.#startTimers();
    return engine;
  }

  /**
   * A `memoryLimit` the V8 heap cannot hold would end in an out-of-memory
   * crash before any `QuotaError`: it is lowered to what the heap can hold.
   */
  async #capMemoryLimit(): Promise<void> {
    const limit = this.#settings.memoryLimit;
    if (!Number.isFinite(limit)) return;
    const cap = await heapCap();
    if (limit <= cap) return;
    this.#memoryLimit = cap;
    this.#settings.log?.warn(
      "memory-limit",
      `memoryLimit ${limit} is more than the V8 heap can hold; using ${cap} bytes (raise it with --v8-flags=--max-old-space-size=MiB)`,
      { memoryLimit: limit, used: cap },
    );
  }

  /** Applies one metadata entry (index definition, order, schema). */
  #loadMeta(entry: StorageEntry): void {
    const parts = decodeKey(entry.key);
    const collection = parts[1] as string;
    if (parts[2] === "order") {
      const { indexes } = this.#state(collection);
      indexes.ordered = true;
      indexes.orderBuilding = entry.value.length > 2; // `{"building":true}`
      return;
    }
    if (parts[2] === "schema") {
      this.#state(collection).schema = entry.versionstamp;
      return;
    }
    if (parts[2] !== "index") return;
    let spec: StoredIndex;
    try {
      spec = JSON.parse(new TextDecoder().decode(entry.value));
    } catch (cause) {
      throw new IntegrityError(
        `Cannot open: the definition of index '${
          String(parts[3])
        }' of '${collection}' is not valid JSON`,
        { cause },
      );
    }
    this.#state(collection).indexes.add(spec);
  }

  async #load(): Promise<void> {
    for await (
      const page of this.#storage.scan({ prefix: encodeKey([META]) })
    ) {
      for (const entry of page) this.#loadMeta(entry);
    }
    // A shared storage that expires items itself (Deno KV) is not read
    // whole: other processes change it anyway, so counts come from scans.
    const { shared, nativeExpiry } = this.#storage.capabilities;
    if (shared && nativeExpiry) return;
    for await (const page of this.#storage.scan({ prefix: encodeKey([DOC]) })) {
      for (const entry of page) {
        const parts = decodeKey(entry.key);
        const collection = parts[1] as string;
        const id = parts[2] as string;
        const record = recordMeta(entry.value) ??
          this.decode(entry, `Cannot open: reading '${id}'`);
        const state = this.#state(collection);
        state.stored++;
        if (record.seq > state.seq) state.seq = record.seq;
        this.#bytes += recordCost(entry.key, entry.value);
        if (record.expiresAt !== undefined) {
          state.schedule.set(id, record.expiresAt);
        }
      }
    }
    // Index and insertion-order entries count as the writes counted them.
    for (const space of ["i", "o"]) {
      for await (
        const page of this.#storage.scan({ prefix: encodeKey([space]) })
      ) {
        for (const entry of page) this.#bytes += entryCost(entry.key);
      }
    }
    this.#account(0);
  }

  /**
   * Adds `delta` to the memory estimate; tells the logger once when it
   * passes 90% of `memoryLimit` (again only after it fell below 80%).
   */
  #account(delta: number): void {
    const bytes = this.#bytes += delta;
    const memoryLimit = this.#memoryLimit;
    if (bytes > memoryLimit * 0.9) {
      if (this.#pressed) return;
      this.#pressed = true;
      this.#settings.log?.warn(
        "quota-pressure",
        `The database holds an estimated ${bytes} bytes, ${
          Math.round(bytes / memoryLimit * 100)
        }% of its ${memoryLimit}-byte memoryLimit; writes past it fail with a QuotaError`,
        { bytes, memoryLimit },
      );
    } else if (bytes < memoryLimit * 0.8) {
      this.#pressed = false;
    }
  }

  #state(collection: string): CollectionState {
    let state = this.#collections.get(collection);
    if (state === undefined) {
      state = {
        stored: 0,
        schedule: new TtlSchedule<string>(),
        inflight: new Map(),
        indexes: new CollectionIndexes(collection, this.#blinder),
        seq: 0,
        schema: null,
        existRate: 0,
        recent: new Map(),
        recentBytes: 0,
      };
      this.#collections.set(collection, state);
    }
    return state;
  }

  #visibleCount(state: CollectionState, now: number): number {
    return Math.max(
      0,
      state.stored - state.schedule.countExpired(now) - state.inflight.size,
    );
  }

  #earliestExpiry(): number {
    let min = Infinity;
    for (const { schedule } of this.#collections.values()) {
      const top = schedule.peek();
      if (top !== undefined && top.expiresAt < min) min = top.expiresAt;
    }
    return min;
  }

  #startTimers(): void {
    if (this.#storage.capabilities.readOnly === true) return;
    const { ttlCheckInterval, cleanupInterval } = this.#settings;
    if (Number.isFinite(ttlCheckInterval)) {
      const id = setInterval(
        () => this.#background(false),
        ttlCheckInterval,
      ) as unknown as number;
      unref(id);
      this.#timers.push(id);
    }
    if (Number.isFinite(cleanupInterval)) {
      const id = setInterval(
        () => this.#background(true),
        cleanupInterval,
      ) as unknown as number;
      unref(id);
      this.#timers.push(id);
    }
  }

  #background(full: boolean): void {
    if (this.#closed || this.#sweeping) return;
    this.#sweeping = true;
    (full ? this.compact() : this.#sweepAll())
      .catch((e) => this.#recordError(e))
      .finally(() => this.#sweeping = false);
  }

  #recordError(e: unknown): void {
    if (e instanceof ClosedError) return;
    this.#sweepErrors++;
    this.#lastError = e instanceof Error ? e : new Error(String(e));
  }

  /** The storage adapter. */
  get storage(): Storage {
    return this.#storage;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The current time from the clock.
   *
   * @returns Epoch milliseconds.
   */
  now(): number {
    return this.#settings.clock.now();
  }

  /**
   * A new auto key.
   *
   * @returns A unique, time-ordered key.
   */
  newKey(): string {
    return this.#keys.next();
  }

  /**
   * Throws a `ClosedError` when closed.
   *
   * @param action What is being attempted.
   */
  assertOpen(action: string): void {
    if (this.#closed) {
      throw new ClosedError(`${action}: the database is closed`);
    }
  }

  /**
   * The storage key of a document.
   *
   * @param collection Collection name.
   * @param id Document key.
   * @returns The encoded key.
   */
  docKey(collection: string, id: string): Uint8Array {
    return encodeKey([id], this.collectionPrefix(collection));
  }

  /**
   * The storage key prefix of a collection's documents.
   *
   * @param collection Collection name.
   * @returns The encoded prefix.
   */
  collectionPrefix(collection: string): Uint8Array {
    let prefix = this.#prefixes.get(collection);
    if (prefix === undefined) {
      prefix = encodeKey([DOC, collection]);
      this.#prefixes.set(collection, prefix);
    }
    return prefix;
  }

  /**
   * The document key (id) of a storage entry.
   *
   * @param entry A document entry.
   * @returns Its id.
   */
  idOf(entry: StorageEntry): string {
    return decodeKey(entry.key)[2] as string;
  }

  /**
   * Decodes an entry's record (the storage's memo when it kept one).
   *
   * @param entry The storage entry.
   * @param action For error messages.
   * @returns The record (shared: never hand it out).
   */
  decode(entry: StorageEntry, action: string): StoredRecord {
    const memo = entry.memo as StoredRecord | undefined;
    return memo !== undefined ? memo : decodeRecord(entry.value, action);
  }

  /**
   * Decodes an entry and returns its record unless it has expired.
   *
   * @param entry The storage entry.
   * @param now The current time.
   * @param action For error messages.
   * @returns The record, or `undefined` when expired.
   */
  visible(
    entry: StorageEntry,
    now: number,
    action: string,
  ): StoredRecord | undefined {
    const record = this.decode(entry, action);
    return isExpired(record, now) ? undefined : record;
  }

  /**
   * Reads one document.
   *
   * @param collection Collection name.
   * @param id Document key.
   * @param action For error messages.
   * @returns The record, or `null` when absent or expired.
   */
  async read(
    collection: string,
    id: string,
    action: string,
  ): Promise<StoredRecord | null> {
    this.assertOpen(action);
    this.#ops.gets++;
    const entry = await this.#storage.get(this.docKey(collection, id));
    if (entry === null) return null;
    const record = this.decode(entry, action);
    if (isExpired(record, this.now())) {
      this.poke();
      return null;
    }
    return record;
  }

  /**
   * A read that fails because `close()` ran meanwhile (Deno KV then throws
   * `BadResource`) is a `ClosedError`.
   */
  #closedDuring(e: unknown): unknown {
    return this.#closed && !(e instanceof ClosedError)
      ? new ClosedError(
        "Cannot read: the database was closed during the read",
        {
          cause: e,
        },
      )
      : e;
  }

  /** `storage.scan`, whose failure after `close()` is a `ClosedError`. */
  async *#scanOpen(
    options: ScanOptions,
  ): AsyncGenerator<readonly StorageEntry[]> {
    try {
      yield* this.#storage.scan(options);
    } catch (e) {
      throw this.#closedDuring(e);
    }
  }

  /** `storage.getMany`, whose failure after `close()` is a `ClosedError`. */
  async #getManyOpen(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    try {
      return await this.#storage.getMany(keys);
    } catch (e) {
      throw this.#closedDuring(e);
    }
  }

  /**
   * Visits a collection's entries page by page, giving the event loop a turn
   * regularly. Expiry is for the caller to check (see `visible`).
   *
   * @param collection Collection name.
   * @param options Direction and abort signal.
   * @returns Pages of raw entries.
   */
  async *pages(
    collection: string,
    options: {
      reverse?: boolean;
      signal?: AbortSignal | undefined;
      after?: Uint8Array | undefined;
    } = {},
  ): AsyncGenerator<readonly StorageEntry[]> {
    const { signal, after } = options;
    signal?.throwIfAborted();
    this.assertOpen("Cannot scan");
    let last = performance.now();
    const reverse = options.reverse === true;
    const prefix = this.collectionPrefix(collection);
    const scan = this.#scanOpen(
      after === undefined
        ? { prefix, reverse }
        : reverse
        ? { prefix, end: after, reverse }
        : { prefix, start: successor(after), reverse },
    );
    for await (const page of scan) {
      signal?.throwIfAborted();
      yield page;
      const t = performance.now();
      if (t - last > SLICE_MS) {
        await yieldToLoop();
        signal?.throwIfAborted();
        last = performance.now();
      }
    }
  }

  /** Counts a query. */
  countQuery(): void {
    this.#ops.queries++;
    this.poke();
  }

  /**
   * Number of visible items in a collection (every collection when omitted).
   *
   * @param collection Collection name.
   * @returns The count.
   */
  count(collection?: string): number {
    const now = this.now();
    if (collection !== undefined) {
      const state = this.#collections.get(collection);
      return state === undefined ? 0 : this.#visibleCount(state, now);
    }
    let total = 0;
    for (const state of this.#collections.values()) {
      total += this.#visibleCount(state, now);
    }
    return total;
  }

  #enqueue<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Applies puts and deletes to one collection in one atomic commit.
   *
   * @param collection Collection name.
   * @param ops The steps; each id at most once.
   * @param action For error messages.
   * @returns Per step, whether a visible item existed before.
   * @throws {TooLargeError} A record is over `maxValueBytes`.
   * @throws {QuotaError} The write would pass `memoryLimit`.
   * @throws {DuplicateKeyError} An id or unique index value is taken.
   * @throws {ConflictError} An expected version does not match, or another
   *   writer won every retry.
   */
  write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<boolean[]> {
    return this.transact(collection, action, () => Promise.resolve(ops));
  }

  /**
   * Runs `build` in the write queue (so nothing else writes meanwhile), then
   * applies the steps it returns in one atomic commit. On a shared storage a
   * lost race runs `build` again, up to `maxRetries` times.
   *
   * @param collection Collection name.
   * @param action For error messages.
   * @param build Reads what it needs and returns the steps; each id at most
   *   once.
   * @returns Per step, whether a visible item existed before.
   */
  transact(
    collection: string,
    action: string,
    build: () => Promise<readonly WriteOp[]>,
    regroup?: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
  ): Promise<boolean[]> {
    this.assertOpen(action);
    const result = this.#enqueue(async () => {
      for (let attempt = 0;; attempt++) {
        const ops = await build();
        if (
          regroup !== undefined && this.#storage.limits !== undefined &&
          ops.length > this.#groupSize(this.#state(collection))
        ) {
          return await this.#writeInGroups(collection, ops, action, regroup);
        }
        const done = await this.#write(collection, ops, action);
        if (done !== undefined) return done;
        await this.#lostRace(attempt, action);
      }
    });
    this.poke();
    // The queue moves on once the commit is applied; the caller also waits
    // until it is durable (so concurrent writers share one fsync).
    return result.then(async ({ existed, durable }) => {
      if (durable !== undefined) await this.#settle(durable, true);
      return existed;
    });
  }

  /**
   * After a write lost a race: a `ConflictError` once `maxRetries` retries
   * are spent, else a pause of about `retryDelay` (jittered, so that racing
   * writers do not meet again).
   */
  async #lostRace(attempt: number, action: string): Promise<void> {
    const { maxRetries, retryDelay } = this.#settings;
    if (attempt >= maxRetries) {
      throw new ConflictError(
        `${action}: another writer changed the same items ${
          attempt + 1
        } times in a row`,
      );
    }
    await new Promise((r) => setTimeout(r, retryDelay * (0.5 + Math.random())));
  }

  /**
   * Applies steps too many for one commit of the storage (an `update` or
   * `deleteMany` matching many documents on Deno KV) in groups that fit,
   * each atomic; a group that lost a race is rebuilt from its items'
   * current state by `regroup`.
   */
  async #writeInGroups(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
    regroup: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
  ): Promise<{ existed: boolean[]; durable: undefined }> {
    const existed: boolean[] = [];
    const size = this.#groupSize(this.#state(collection));
    try {
      await this.#inGroups(ops, size, async (group) => {
        let current = group;
        for (let attempt = 0;; attempt++) {
          const done = await this.#write(collection, current, action);
          if (done !== undefined) {
            if (done.durable !== undefined) await this.#settle(done.durable);
            existed.push(...done.existed);
            return;
          }
          await this.#lostRace(attempt, action);
          current = await regroup(current.map((op) => op.id));
          if (current.length === 0) return;
        }
      });
    } catch (e) {
      if (existed.length === 0 || !(e instanceof Error)) throw e;
      const Class = e.constructor as new (
        message: string,
        options: { cause: unknown },
      ) => Error;
      throw new Class(
        `${e.message} (${existed.length} of ${ops.length} changes were applied before: this storage takes a write this large in several commits)`,
        { cause: e },
      );
    }
    return { existed, durable: undefined };
  }

  /**
   * Pages of the given items' current documents (for `regroup`).
   *
   * @param collection Collection name.
   * @param ids Document keys.
   * @returns One page with the documents that exist.
   */
  async *idPages(
    collection: string,
    ids: readonly string[],
  ): AsyncGenerator<DocPage> {
    const keys = ids.map((id) => this.docKey(collection, id));
    const found = await this.#getManyOpen(keys);
    const docs = found.filter((e): e is StorageEntry => e !== null);
    if (docs.length > 0) {
      yield Object.assign(docs, { sources: docs.map((d) => d.key), range: 0 });
    }
  }

  /**
   * Waits for a commit to be durable. If the storage could not make it so, it
   * has taken the commit back (and later ones): rebuild the bookkeeping.
   */
  async #settle(
    durable: Promise<void>,
    outsideQueue = false,
  ): Promise<void> {
    try {
      await durable;
    } catch (e) {
      // Outside the write queue, wait for the rebuild so that the caller
      // sees consistent counts as soon as its write rejects.
      const reload = this.#reloadSoon();
      if (outsideQueue) await reload;
      throw e;
    }
  }

  /** Rebuilds counts, sizes, schedules and index definitions from storage. */
  #reloadSoon(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#reloading ??= this.#enqueue(async () => {
      this.#reloading = undefined;
      this.#collections.clear();
      this.#bytes = 0;
      await this.#load();
    }).catch((e) => this.#recordError(e));
    return this.#reloading;
  }

  /** Applies one attempt; `undefined` when a version check failed. */
  async #write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<
    { existed: boolean[]; durable: Promise<void> | undefined } | undefined
  > {
    if (ops.length === 0) return { existed: [], durable: undefined };
    const state = this.#state(collection);
    const keys = ops.map((op) => this.docKey(collection, op.id));
    if (this.shared) {
      // A read costs a round trip on a shared storage: write over what the
      // items probably are (as this process last wrote them, or absent),
      // with version checks that they are; read only if one was not.
      const guess = this.#guess(state, ops);
      if (guess !== undefined) {
        const done = await this.#writeOver(
          collection,
          ops,
          action,
          keys,
          guess.entries,
        );
        if (guess.absentGiven) this.#learn(state, done === undefined ? 1 : 0);
        if (done !== undefined) return done;
        for (const op of ops) {
          const was = state.recent.get(op.id);
          if (was === undefined) continue;
          state.recent.delete(op.id);
          state.recentBytes -= was.value.length;
        }
      }
    }
    const current = await this.#storage.getMany(keys);
    if (this.shared) {
      let given = 0;
      let found = 0;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.kind !== "put" || op.fresh === true) continue;
        given++;
        if (current[i] !== null) found++;
      }
      if (given > 0) this.#learn(state, found / given);
    }
    return await this.#writeOver(collection, ops, action, keys, current);
  }

  /**
   * What the items of a write probably are, without reading them: the
   * entries this process wrote last, or absent for new ids and for given
   * keys when puts of given keys have mostly found nothing (`existRate`).
   * `undefined` when some item must be read.
   */
  #guess(
    state: CollectionState,
    ops: readonly WriteOp[],
  ): { entries: (StorageEntry | null)[]; absentGiven: boolean } | undefined {
    const entries: (StorageEntry | null)[] = [];
    let absentGiven = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const known = state.recent.get(op.id);
      if (known !== undefined) {
        // An insert over it would fail unverified: read instead.
        if (op.kind === "put" && op.mustBeNew === true) return undefined;
        entries.push(known);
        continue;
      }
      if (op.kind !== "put" || op.expectedVersion !== undefined) {
        return undefined;
      }
      if (op.fresh !== true) {
        if (state.existRate >= 0.25) return undefined;
        absentGiven = true;
      }
      entries.push(null);
    }
    return { entries, absentGiven };
  }

  /** Updates the moving average of puts of given keys that found an item. */
  #learn(state: CollectionState, found: number): void {
    state.existRate = 0.8 * state.existRate + 0.2 * found;
  }

  /** Applies one attempt over the items' current entries. */
  async #writeOver(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
    keys: readonly Uint8Array[],
    current: readonly (StorageEntry | null)[],
  ): Promise<
    { existed: boolean[]; durable: Promise<void> | undefined } | undefined
  > {
    const state = this.#state(collection);
    const { maxValueBytes } = this.#settings;
    const now = this.now();
    const existed: boolean[] = [];
    const changes: ItemChange[] = [];
    const values: (Uint8Array | undefined)[] = [];
    let seq = state.seq;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const entry = current[i] ?? null;
      const old = entry === null ? undefined : this.decode(entry, action);
      const live = old !== undefined && !isExpired(old, now);
      existed.push(live);
      if (
        op.expectedVersion !== undefined &&
        (live ? old.version : 0) !== op.expectedVersion
      ) {
        return undefined; // changed since `build` read it: a lost race
      }
      let next: StoredRecord | undefined;
      if (op.kind === "put") {
        if (op.mustBeNew === true && live) {
          throw new DuplicateKeyError(
            `${action}: an item with id '${op.id}' already exists`,
          );
        }
        const keep = op.keepMeta === true && live;
        const { meta } = op;
        next = meta !== undefined
          ? {
            value: op.value.value,
            tags: op.tags,
            expiresAt: meta.expiresAt,
            createdAt: meta.createdAt,
            updatedAt: meta.updatedAt,
            version: meta.version,
            seq: live ? old.seq : ++seq,
            dates: op.value.dates,
          }
          : {
            value: op.value.value,
            tags: keep ? old.tags : op.tags,
            expiresAt: keep
              ? old.expiresAt
              : op.ttl === undefined
              ? undefined
              : now + op.ttl,
            createdAt: live ? old.createdAt : now,
            updatedAt: now,
            version: live ? old.version + 1 : 1,
            seq: live ? old.seq : ++seq,
            dates: op.value.dates,
          };
        const value = encodeRecord(next);
        if (value.length > maxValueBytes) {
          throw new TooLargeError(
            `${action}: the record for '${op.id}' is ${value.length} bytes, over maxValueBytes ${maxValueBytes}`,
          );
        }
        values.push(value);
      } else {
        values.push(undefined);
      }
      changes.push({
        id: op.id,
        key: keys[i]!,
        entry,
        old,
        next,
        fresh: op.kind === "put" && op.fresh === true,
      });
    }
    const committed = await this.#commitItems(
      collection,
      state,
      changes,
      values,
      action,
      (durable) => {
        state.seq = seq;
        const { schedule, inflight } = state;
        const told: Change[] | undefined = this.#listeners.size > 0
          ? []
          : undefined;
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          const next = changes[i]!.next;
          // This write supersedes a sweep that may be waiting for the key.
          if (inflight.size > 0) inflight.delete(op.id);
          if (next?.expiresAt !== undefined) {
            schedule.set(op.id, next.expiresAt);
          } else if (schedule.size > 0) {
            schedule.delete(op.id);
          }
          if (op.kind === "put") this.#ops.puts++;
          else if (existed[i]) this.#ops.deletes++;
          if (told !== undefined && (next !== undefined || existed[i])) {
            told.push(
              next === undefined
                ? { type: "delete", collection, key: op.id }
                : {
                  type: "put",
                  collection,
                  key: op.id,
                  version: next.version,
                },
            );
          }
        }
        // Told once the commit is durable, never if it is taken back.
        if (told !== undefined) this.#changes.publish(told, durable);
      },
    );
    if (committed === false) return undefined;
    if (this.shared) {
      const { recent } = state;
      for (let i = 0; i < ops.length; i++) {
        const next = changes[i]!.next;
        const value = values[i];
        const id = ops[i]!.id;
        const was = recent.get(id);
        if (was !== undefined) {
          recent.delete(id);
          state.recentBytes -= was.value.length;
        }
        if (next === undefined || value === undefined) continue;
        if (value.length > RECENT_BYTES) continue;
        recent.set(id, {
          key: keys[i]!,
          value,
          versionstamp: committed.versionstamp,
          memo: next,
        });
        state.recentBytes += value.length;
        while (
          recent.size > RECENT_ITEMS || state.recentBytes > RECENT_TOTAL
        ) {
          const [oldest, entry] = recent.entries().next().value!;
          recent.delete(oldest);
          state.recentBytes -= entry.value.length;
        }
      }
    }
    return { existed, durable: committed.durable };
  }

  /**
   * Writes item changes and their index entries in one commit, enforcing
   * unique indexes and the memory limit; updates `stored` and `bytes`.
   *
   * @returns `false` when a version check failed (nothing was written),
   *   else the storage's `durable` promise, if it gave one.
   */
  async #commitItems(
    collection: string,
    state: CollectionState,
    changes: readonly ItemChange[],
    values: readonly (Uint8Array | undefined)[],
    action: string,
    committed?: (durable: Promise<void> | undefined) => void,
  ): Promise<
    false | { durable: Promise<void> | undefined; versionstamp: string }
  > {
    // Both read together: `sync` may replace them while this awaits.
    const { indexes, schema } = state;
    const tombNow = this.now();
    if (indexes.blinder !== undefined) {
      const records: StoredRecord[] = [];
      for (const c of changes) {
        if (c.old !== undefined) records.push(c.old);
        if (c.next !== undefined) records.push(c.next);
      }
      await indexes.prepare(records);
    }
    const checks: { key: Uint8Array; versionstamp: string | null }[] = [];
    const sets: {
      key: Uint8Array;
      value: Uint8Array;
      memo?: unknown;
      expireAt?: number;
    }[] = [];
    const deletes: Uint8Array[] = [];
    let delta = 0;
    let stored = 0;
    // Unique entries to claim, and unique entries to release if still ours.
    const claims: { entry: IndexEntry; owner: string }[] = [];
    const releases: { entry: IndexEntry; owner: string }[] = [];
    const claimed = new Map<string, string>();
    const multikey = new Set<string>();
    const native = this.#storage.capabilities.nativeExpiry;
    for (let i = 0; i < changes.length; i++) {
      const { id, key, entry, old, next } = changes[i]!;
      // Index entries expire with their item where the storage expires
      // entries itself; a changed expiry rewrites them all.
      const expireAt = native ? next?.expiresAt : undefined;
      const ttlMoved = native && old !== undefined && next !== undefined &&
        old.expiresAt !== next.expiresAt;
      const entrySet = (k: Uint8Array, v: Uint8Array) =>
        expireAt === undefined
          ? { key: k, value: v }
          : { key: k, value: v, expireAt };
      checks.push({ key, versionstamp: entry?.versionstamp ?? null });
      if (entry !== null) {
        delta -= recordCost(entry.key, entry.value);
        stored--;
      }
      const value = values[i];
      const wasLive = old !== undefined && !isExpired(old, tombNow);
      if (next !== undefined && value !== undefined) {
        delta += recordCost(key, value);
        stored++;
        sets.push(
          next.expiresAt === undefined
            ? { key, value, memo: next }
            : { key, value, memo: next, expireAt: next.expiresAt },
        );
        // Back after a deletion: the tombstone goes.
        if (!wasLive && changes[i]!.fresh !== true) {
          deletes.push(this.#tombKey(collection, id));
        }
      } else if (entry !== null) {
        deletes.push(key);
        // A deletion (not an expiry) leaves a tombstone for backups.
        if (wasLive) {
          sets.push({
            key: this.#tombKey(collection, id),
            value: encodeUtf8(String(tombNow)),
          });
        }
      }
      if (indexes.size === 0) {
        if (!indexes.ordered) continue; // no entries at all
        // Only the insertion-order entry, unchanged when the item stays.
        const same = old !== undefined && next !== undefined &&
          old.createdAt === next.createdAt && old.seq === next.seq;
        if (!same || ttlMoved) {
          if (old !== undefined && !same) {
            const orderKey = indexes.orderKey(id, old);
            deletes.push(orderKey);
            delta -= entryCost(orderKey);
          }
          if (next !== undefined) {
            const orderKey = indexes.orderKey(id, next);
            sets.push(entrySet(orderKey, key));
            delta += entryCost(orderKey);
          }
        }
        continue;
      }
      const before = old === undefined ? [] : indexes.entries(id, old);
      const after = next === undefined
        ? []
        : this.#entriesOf(indexes, id, next, action, multikey);
      if (
        before.length === 1 && after.length === 1 && !ttlMoved &&
        entryKeyId(before[0]!) === entryKeyId(after[0]!)
      ) {
        continue; // One entry, unchanged.
      }
      const beforeIds = new Set(before.map(entryKeyId));
      const afterIds = before.length === 0
        ? beforeIds
        : new Set(after.map(entryKeyId));
      if (ttlMoved) beforeIds.clear(); // set every entry again
      for (const e of before) {
        if (afterIds.has(entryKeyId(e))) continue;
        if (e.unique) {
          releases.push({ entry: e, owner: id });
        } else {
          deletes.push(e.key);
          delta -= entryCost(e.key);
        }
      }
      for (const e of after) {
        if (beforeIds.size > 0 && beforeIds.has(entryKeyId(e))) continue;
        const entryBytes = key; // an index entry's value is the item's key
        if (e.unique) {
          const holder = claimed.get(entryKeyId(e));
          if (holder !== undefined && holder !== id) {
            throw this.#duplicate(action, collection, e, holder);
          }
          claimed.set(entryKeyId(e), id);
          claims.push({ entry: e, owner: id });
        }
        sets.push(entrySet(e.key, entryBytes));
        delta += entryCost(e.key);
      }
    }
    if (claims.length > 0 || releases.length > 0) {
      const probes = await this.#storage.getMany([
        ...claims.map((c) => c.entry.key),
        ...releases.map((r) => r.entry.key),
      ]);
      const rivals: { entry: IndexEntry; holder: string }[] = [];
      for (let j = 0; j < claims.length; j++) {
        const probe = probes[j] ?? null;
        const claim = claims[j]!;
        checks.push({
          key: claim.entry.key,
          versionstamp: probe?.versionstamp ?? null,
        });
        if (probe === null) continue;
        const holder = entryId(probe.value);
        if (holder === claim.owner) continue;
        // A holder rewritten by this same commit releases or keeps it there.
        if (changes.some((c) => c.id === holder)) continue;
        rivals.push({ entry: claim.entry, holder });
      }
      if (rivals.length > 0) {
        // A holder that has expired or is gone left a stale entry: take it.
        const held = await this.#storage.getMany(
          rivals.map((r) => this.docKey(collection, r.holder)),
        );
        const now = this.now();
        for (let j = 0; j < rivals.length; j++) {
          const doc = held[j] ?? null;
          if (doc !== null && !isExpired(this.decode(doc, action), now)) {
            throw this.#duplicate(
              action,
              collection,
              rivals[j]!.entry,
              rivals[j]!.holder,
            );
          }
        }
      }
      for (let j = 0; j < releases.length; j++) {
        const probe = probes[claims.length + j] ?? null;
        const release = releases[j]!;
        if (probe === null || entryId(probe.value) !== release.owner) continue;
        if (claimed.has(entryKeyId(release.entry))) continue; // taken over
        checks.push({
          key: release.entry.key,
          versionstamp: probe.versionstamp,
        });
        deletes.push(release.entry.key);
        delta -= entryCost(probe.key);
      }
    }
    for (const name of multikey) {
      sets.push({
        key: this.#indexMetaKey(collection, name),
        value: encodeUtf8(
          JSON.stringify({ ...indexes.get(name)!, multikey: true }),
        ),
      });
    }
    const shared = this.shared;
    if (shared) {
      checks.push({
        key: this.#schemaKey(collection),
        versionstamp: schema,
      });
      if (multikey.size > 0) sets.push(this.#schemaBump(collection));
    }
    if (shared && this.#settings.feed === true) {
      sets.push({
        key: encodeKey([META, collection, "feed"]),
        value: encodeUtf8(JSON.stringify({
          w: this.#writer,
          c: changes.map((c) => [c.id, c.next === undefined ? 0 : 1]),
        })),
      });
    }
    this.#fits(checks.length, sets.length + deletes.length, action);
    this.#fitsMemory(delta, action);
    const result = await this.#storage.commit({ checks, sets, deletes });
    if (!result.ok) {
      if (shared) await this.sync(collection);
      return false;
    }
    if (shared && multikey.size > 0) state.schema = result.versionstamp;
    this.#account(delta);
    state.stored += stored;
    for (const name of multikey) {
      indexes.add({ ...indexes.get(name)!, multikey: true });
    }
    // Bookkeeping that must change together with `stored` (no await between).
    committed?.(result.durable);
    return { durable: result.durable, versionstamp: result.versionstamp };
  }

  /** Refuses a write that would take the estimate past `memoryLimit`. */
  #fitsMemory(delta: number, action: string): void {
    const memoryLimit = this.#memoryLimit;
    if (delta > 0 && this.#bytes + delta > memoryLimit) {
      throw new QuotaError(
        `${action}: it needs an estimated ${delta} more bytes of memory and the database holds ${this.#bytes} of its ${memoryLimit}-byte memoryLimit`,
      );
    }
  }

  /** Refuses a caller's write that one commit of the storage cannot hold. */
  #fits(checks: number, mutations: number, action: string): void {
    const limits = this.#storage.limits;
    if (limits === undefined) return;
    if (checks > limits.maxChecks || mutations > limits.maxMutations) {
      throw new TooLargeError(
        `${action}: one atomic write would need ${checks} version checks and ${mutations} mutations; the storage allows ${limits.maxChecks} and ${limits.maxMutations} (write fewer items per call)`,
      );
    }
  }

  #entriesOf(
    indexes: CollectionIndexes,
    id: string,
    record: StoredRecord,
    action: string,
    multikey?: Set<string>,
  ): IndexEntry[] {
    try {
      return indexes.entries(id, record, multikey);
    } catch (e) {
      if (e instanceof TypeError) {
        throw new TypeError(`${action}: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  #duplicate(
    action: string,
    collection: string,
    entry: IndexEntry,
    holder: string,
  ): DuplicateKeyError {
    // An encrypted database's messages name keys and fields, never values.
    const shown = hidesValues(this.#storage)
      ? "that value"
      : entry.tuple.length === 1
      ? JSON.stringify(entry.tuple[0])
      : JSON.stringify(entry.tuple);
    return new DuplicateKeyError(
      `${action}: unique index '${entry.index}' of '${collection}' already has ${shown} (item '${holder}')`,
    );
  }

  #indexMetaKey(collection: string, name: string): Uint8Array {
    return encodeKey([META, collection, "index", name]);
  }

  #tombKey(collection: string, id: string): Uint8Array {
    return encodeKey([TOMB, collection, id]);
  }

  /**
   * The deletions recorded at or after `since` (tombstones), page by page.
   *
   * @param since Epoch ms.
   * @param collections Only these (default: all).
   * @returns Pages of `{ collection, id, at }`.
   */
  async *tombstones(
    since: number,
    collections?: readonly string[],
  ): AsyncGenerator<{ collection: string; id: string; at: number }[]> {
    const prefixes = collections === undefined
      ? [encodeKey([TOMB])]
      : [...new Set(collections)].sort().map((c) => encodeKey([TOMB, c]));
    const decoder = new TextDecoder();
    for (const prefix of prefixes) {
      for await (const page of this.#storage.scan({ prefix })) {
        const out: { collection: string; id: string; at: number }[] = [];
        for (const entry of page) {
          const at = Number(decoder.decode(entry.value));
          if (!(at >= since)) continue;
          const parts = decodeKey(entry.key);
          out.push({
            collection: parts[1] as string,
            id: parts[2] as string,
            at,
          });
        }
        if (out.length > 0) yield out;
      }
    }
  }

  /**
   * Removes tombstones older than the retention.
   *
   * @returns How many were removed.
   */
  async #purgeTombstones(): Promise<number> {
    const before = this.now() - this.#settings.tombstoneRetention;
    const old: Uint8Array[] = [];
    for await (
      const page of this.#storage.scan({ prefix: encodeKey([TOMB]) })
    ) {
      for (const entry of page) {
        const at = Number(new TextDecoder().decode(entry.value));
        if (!(at >= before)) old.push(entry.key);
      }
    }
    if (old.length === 0) return 0;
    // First the mark: deletions before it may be gone from now on, so an
    // incremental backup since earlier would miss some.
    if (before > await this.tombstonesFrom()) {
      const result = await this.#storage.commit({
        sets: [{ key: PURGED, value: encodeUtf8(String(before)) }],
      });
      if (result.ok && result.durable !== undefined) {
        await this.#settle(result.durable);
      }
    }
    const size = this.#storage.limits?.maxMutations ?? 1024;
    await this.#inGroups(old, size, async (deletes) => {
      const result = await this.#storage.commit({ deletes: [...deletes] });
      if (result.ok && result.durable !== undefined) {
        await this.#settle(result.durable);
      }
    });
    return old.length;
  }

  /**
   * The time from which every deletion still has its tombstone: 0 until
   * tombstones were first purged, then the purge's cut-off.
   *
   * @returns Epoch ms.
   */
  async tombstonesFrom(): Promise<number> {
    const found = await this.#storage.get(PURGED);
    if (found === null) return 0;
    const at = Number(new TextDecoder().decode(found.value));
    return Number.isFinite(at) ? at : Infinity;
  }

  #schemaKey(collection: string): Uint8Array {
    return encodeKey([META, collection, "schema"]);
  }

  /** Whether other processes may write the storage too. */
  get shared(): boolean {
    return this.#storage.capabilities.shared;
  }

  /**
   * The set that records a schema change (an index or the insertion order
   * created or dropped), which fails every other writer's next commit once so
   * that it reloads the definitions.
   */
  #schemaBump(collection: string): { key: Uint8Array; value: Uint8Array } {
    return {
      key: this.#schemaKey(collection),
      value: encodeUtf8(String(this.now())),
    };
  }

  /**
   * On a shared storage, reloads a collection's index definitions when
   * another process changed them (one read when nothing changed).
   *
   * @param collection Collection name.
   * @returns When the definitions are current.
   */
  async sync(collection: string): Promise<void> {
    if (!this.shared || this.#closed) return;
    const state = this.#state(collection);
    const found = await this.#storage.get(this.#schemaKey(collection));
    if ((found?.versionstamp ?? null) === state.schema) return;
    const fresh = new CollectionIndexes(collection, this.#blinder);
    const prefix = encodeKey([META, collection]);
    let schema: string | null = null;
    const specs: StorageEntry[] = [];
    for await (const page of this.#storage.scan({ prefix })) {
      for (const entry of page) {
        const parts = decodeKey(entry.key);
        if (parts[2] === "schema") schema = entry.versionstamp;
        else specs.push(entry);
      }
    }
    state.indexes = fresh;
    state.schema = schema;
    for (const entry of specs) this.#loadMeta(entry);
  }

  /**
   * Plans a query over a collection's indexes.
   *
   * @param collection Collection name.
   * @param filter The filter (without `$limit`).
   * @param sort The requested order, if any.
   * @returns The plan.
   */
  plan(
    collection: string,
    filter: Filter,
    sort: SortSpec | undefined,
  ): Plan {
    const state = this.#collections.get(collection);
    let indexes = state === undefined
      ? []
      : state.indexes.list.filter((i) => i.building !== true);
    if (this.#blinder !== undefined) {
      indexes = indexes.map((i) => ({ ...i, blind: true }));
    }
    return planQuery(filter, sort, indexes);
  }

  /**
   * Visits the documents an index plan selects, in index order, page by
   * page; each document once even when a multikey index lists it twice.
   * Expiry and the filter are for the caller to check.
   *
   * @param collection Collection name.
   * @param plan An index plan from {@linkcode Engine.plan}.
   * @param options Abort signal and a counter of index entries examined.
   * @returns Pages of document entries.
   */
  async *indexPages(
    collection: string,
    plan: Plan,
    options: {
      signal?: AbortSignal | undefined;
      examined?: { keys: number };
      after?: { range: number; key: Uint8Array } | undefined;
    },
  ): AsyncGenerator<DocPage> {
    const state = this.#state(collection);
    const prefix = state.indexes.prefix(plan.index!);
    const ranges = plan.reverse ? [...plan.ranges].reverse() : plan.ranges;
    const seen = new Set<string>();
    const dedupe = plan.ranges.length > 1 ||
      state.indexes.get(plan.index!)?.multikey === true;
    const { after } = options;
    for (let r = after?.range ?? 0; r < ranges.length; r++) {
      let { start, end } = await this.#rangeBytes(
        prefix,
        ranges[r]!,
        collection,
        plan.index!,
      );
      if (after !== undefined && r === after.range) {
        if (plan.reverse) end = after.key;
        else start = successor(after.key);
      }
      yield* this.#entryPages(
        { start, end, reverse: plan.reverse },
        options,
        dedupe ? seen : undefined,
        r,
      );
    }
  }

  /**
   * The scan bounds of an index range, with digests (bound to the collection
   * and the index's fields) for blind indexes.
   */
  async #rangeBytes(
    prefix: Uint8Array,
    range: KeyRange,
    collection: string,
    index: string,
  ): Promise<{ start: Uint8Array; end: Uint8Array }> {
    const blinder = this.#blinder;
    if (blinder === undefined) return rangeToBytes(prefix, range);
    const fields =
      this.#collections.get(collection)?.indexes.get(index)?.fields ?? [];
    await blinder.prepare(collection, [
      [fields, range.start],
      [fields, range.end],
    ]);
    return rangeToBytes(
      prefix,
      range,
      (t) => blinder.tuple(collection, fields, t),
    );
  }

  /**
   * Every stored document of the given collections (all when omitted), in
   * key order, page by page, as raw record bytes (expired ones included: the
   * caller checks `recordMeta`).
   *
   * @param collections Collection names, or `undefined` for all.
   * @returns Pages of `{ collection, id, bytes }`.
   */
  async *documents(
    collections?: readonly string[],
  ): AsyncGenerator<{ collection: string; id: string; bytes: Uint8Array }[]> {
    this.assertOpen("Cannot export");
    const prefixes = collections === undefined
      ? [encodeKey([DOC])]
      : [...new Set(collections)].sort().map((c) => this.collectionPrefix(c));
    let last = performance.now();
    for (const prefix of prefixes) {
      for await (const page of this.#storage.scan({ prefix })) {
        yield page.map((entry) => {
          const parts = decodeKey(entry.key);
          return {
            collection: parts[1] as string,
            id: parts[2] as string,
            bytes: entry.value,
          };
        });
        // A turn for the event loop after some work, not after every page.
        const t = performance.now();
        if (t - last > SLICE_MS) {
          await yieldToLoop();
          last = performance.now();
        }
      }
    }
  }

  /**
   * Reads every stored document and index entry and reports what fails:
   * values that fail their MAC or checksum (encrypted or compressed
   * databases), records that do not decode, and index entries that point at
   * no document.
   *
   * @returns How many stored values were checked, and the problems found.
   */
  async verify(): Promise<VerifyReport> {
    this.assertOpen("Cannot verify");
    const problems: { collection: string; key: string; problem: string }[] = [];
    let checked = 0;
    const name = (key: Uint8Array) => {
      try {
        const parts = decodeKey(key);
        return { collection: String(parts[1]), key: String(parts[2] ?? "") };
      } catch {
        return { collection: "", key: "" };
      }
    };
    const storage = this.#storage as Storage & {
      verify?: () => Promise<{
        checked: number;
        problems: { key: Uint8Array; message: string }[];
      }>;
    };
    if (typeof storage.verify === "function") {
      const sealed = await storage.verify();
      checked += sealed.checked;
      for (const p of sealed.problems) {
        problems.push({ ...name(p.key), problem: p.message });
      }
      if (problems.length > 0) return { checked, problems };
    }
    for await (const page of this.#storage.scan({ prefix: encodeKey([DOC]) })) {
      for (const entry of page) {
        if (storage.verify === undefined) checked++;
        try {
          decodeRecord(entry.value, "Cannot verify");
        } catch (e) {
          problems.push({ ...name(entry.key), problem: (e as Error).message });
        }
      }
    }
    const index = encodeKey(["i"]);
    for await (const page of this.#storage.scan({ prefix: index })) {
      const docs = await this.#storage.getMany(page.map((e) => e.value));
      for (let i = 0; i < page.length; i++) {
        if (storage.verify === undefined) checked++;
        if (docs[i] !== null) continue;
        const parts = decodeKey(page[i]!.key);
        problems.push({
          collection: String(parts[1]),
          key: entryId(page[i]!.value),
          problem: `an entry of index '${
            String(parts[2])
          }' points at no document`,
        });
      }
    }
    return { checked, problems };
  }

  /**
   * The index definitions stored for the given collections (all when
   * omitted), read from the storage (so other processes' count too); indexes
   * still being built are left out.
   *
   * @param collections Collection names, or `undefined` for all.
   * @returns `{ collection, spec }` per index.
   */
  async indexDefinitions(
    collections?: readonly string[],
  ): Promise<{ collection: string; spec: IndexSpec }[]> {
    const out: { collection: string; spec: IndexSpec }[] = [];
    const wanted = collections === undefined ? undefined : new Set(collections);
    for await (
      const page of this.#storage.scan({ prefix: encodeKey([META]) })
    ) {
      for (const entry of page) {
        const parts = decodeKey(entry.key);
        if (parts[2] !== "index") continue;
        const collection = parts[1] as string;
        if (wanted !== undefined && !wanted.has(collection)) continue;
        const stored = JSON.parse(
          new TextDecoder().decode(entry.value),
        ) as StoredIndex;
        if (stored.building === true) continue;
        out.push({
          collection,
          spec: {
            name: stored.name,
            fields: stored.fields,
            unique: stored.unique,
            sparse: stored.sparse,
          },
        });
      }
    }
    return out;
  }

  /**
   * Runs `fn` while this engine's writes wait (a backup's point in time).
   * `fn` must not write through the engine.
   *
   * @param fn The work.
   * @returns What `fn` returns.
   */
  exclusive<R>(fn: () => Promise<R>): Promise<R> {
    this.assertOpen("Cannot hold writes");
    return this.#enqueue(fn);
  }

  /**
   * The names of the collections that hold at least one stored document,
   * found by skipping from one collection to the next.
   *
   * @returns The names, in order.
   */
  async collectionNames(): Promise<string[]> {
    const names: string[] = [];
    const all = encodeKey([DOC]);
    const end = prefixEnd(all)!;
    let start: Uint8Array = all;
    for (;;) {
      let found: string | undefined;
      for await (const page of this.#storage.scan({ start, end, limit: 1 })) {
        found = decodeKey(page[0]!.key)[1] as string;
      }
      if (found === undefined) return names;
      names.push(found);
      const next = prefixEnd(this.collectionPrefix(found));
      if (next === undefined) return names;
      start = next;
    }
  }

  /**
   * How many items one write of a bulk load should carry: what one commit of
   * the storage holds for this collection, or 1,000 without limits.
   *
   * @param collection Collection name.
   * @returns Items per write.
   */
  batchSize(collection: string): number {
    if (this.#storage.limits === undefined) return 1000;
    return Math.max(1, Math.min(40, this.#groupSize(this.#state(collection))));
  }

  /**
   * Counts the documents an exact index plan selects from the index alone,
   * without reading a document; `undefined` when that would not be exact
   * (the plan is inexact, or some item may have expired).
   *
   * @param collection Collection name.
   * @param plan The plan.
   * @param examined Counts the index entries read.
   * @returns The count, or `undefined`.
   */
  async countByIndex(
    collection: string,
    plan: Plan,
    examined?: { keys: number },
  ): Promise<number | undefined> {
    const state = this.#collections.get(collection);
    if (
      // Items of other processes may have expired unseen.
      this.shared ||
      state === undefined || plan.kind !== "index" || !plan.exact ||
      state.inflight.size > 0 || state.schedule.countExpired(this.now()) > 0
    ) {
      return undefined;
    }
    const prefix = state.indexes.prefix(plan.index!);
    const dedupe = plan.ranges.length > 1 ||
      state.indexes.get(plan.index!)?.multikey === true;
    const seen = new Set<string>();
    let n = 0;
    let last = performance.now();
    for (const range of plan.ranges) {
      const { start, end } = await this.#rangeBytes(
        prefix,
        range,
        collection,
        plan.index!,
      );
      for await (const page of this.#storage.scan({ start, end })) {
        if (examined !== undefined) examined.keys += page.length;
        if (!dedupe) {
          n += page.length;
        } else {
          for (const entry of page) seen.add(binaryString(entry.value));
        }
        const t = performance.now();
        if (t - last > SLICE_MS) {
          await yieldToLoop();
          last = performance.now();
        }
      }
    }
    return dedupe ? seen.size : n;
  }

  /**
   * Visits documents in insertion order (or reversed), optionally within a
   * creation-time frame.
   *
   * @param collection Collection name.
   * @param options Direction, time frame (inclusive), abort signal.
   * @returns Pages of document entries.
   */
  async *orderPages(
    collection: string,
    options: {
      reverse?: boolean;
      from?: number;
      to?: number;
      signal?: AbortSignal | undefined;
    },
  ): AsyncGenerator<DocPage> {
    await this.#ensureOrder(collection);
    const prefix = this.#state(collection).indexes.orderPrefix;
    const start = options.from === undefined
      ? prefix
      : encodeKey([options.from], prefix);
    const end = options.to === undefined
      ? prefixEnd(prefix)
      : prefixEnd(encodeKey([options.to], prefix));
    yield* this.#entryPages(
      end === undefined
        ? { start, reverse: options.reverse === true }
        : { start, end, reverse: options.reverse === true },
      { signal: options.signal },
      undefined,
    );
  }

  /**
   * Removes every expired item of a collection, from inside the write queue
   * (so every stored item then has all its index entries).
   */
  async #dropExpired(
    collection: string,
    state: CollectionState,
  ): Promise<void> {
    const due = state.schedule.popExpired(this.now());
    if (due.length === 0) return;
    for (const d of due) state.inflight.set(d.key, d.expiresAt);
    await this.#removeExpired(collection, state, due);
  }

  /** Builds the insertion-order entries of a collection, once. */
  #ensureOrder(collection: string): Promise<void> {
    const state = this.#state(collection);
    if (state.indexes.ordered && !state.indexes.orderBuilding && !this.shared) {
      return Promise.resolve();
    }
    const action = `Cannot order '${collection}' by insertion`;
    this.assertOpen(action);
    return this.#enqueue(async () => {
      if (this.#bulk) return await this.#orderInSteps(collection, action);
      const { indexes } = state;
      if (indexes.ordered) return;
      await this.#dropExpired(collection, state);
      const sets: { key: Uint8Array; value: Uint8Array }[] = [];
      let bytes = 0;
      for await (
        const page of this.#storage.scan({
          prefix: this.collectionPrefix(collection),
        })
      ) {
        for (const entry of page) {
          const record = this.decode(entry, action);
          const key = indexes.orderKey(this.idOf(entry), record);
          sets.push({ key, value: entry.key });
          bytes += entryCost(key);
        }
      }
      const meta = encodeKey([META, collection, "order"]);
      const value = encodeUtf8("{}");
      sets.push({ key: meta, value });
      const result = await this.#storage.commit({ sets });
      if (!result.ok) {
        throw new ConflictError(`${action}: the storage refused the commit`);
      }
      if (result.durable !== undefined) await this.#settle(result.durable);
      this.#account(bytes);
      indexes.ordered = true;
    });
  }

  async *#entryPages(
    scan: { start: Uint8Array; end?: Uint8Array; reverse: boolean },
    options: { signal?: AbortSignal | undefined; examined?: { keys: number } },
    seen: Set<string> | undefined,
    range = 0,
  ): AsyncGenerator<DocPage> {
    const { signal } = options;
    signal?.throwIfAborted();
    this.assertOpen("Cannot scan");
    let last = performance.now();
    for await (const page of this.#scanOpen(scan)) {
      signal?.throwIfAborted();
      if (options.examined !== undefined) options.examined.keys += page.length;
      const keys: Uint8Array[] = [];
      const from: Uint8Array[] = [];
      for (const entry of page) {
        if (seen !== undefined) {
          const id = binaryString(entry.value);
          if (seen.has(id)) continue;
          seen.add(id);
        }
        keys.push(entry.value); // the item's key
        from.push(entry.key);
      }
      const docs = await this.#getManyOpen(keys);
      const found: StorageEntry[] = [];
      const sources: Uint8Array[] = [];
      for (let i = 0; i < docs.length; i++) {
        const doc = docs[i] ?? null;
        if (doc === null) continue;
        found.push(doc);
        sources.push(from[i]!);
      }
      if (found.length > 0) {
        yield Object.assign(found, { sources, range }) as DocPage;
      }
      const t = performance.now();
      if (t - last > SLICE_MS) {
        await yieldToLoop();
        signal?.throwIfAborted();
        last = performance.now();
      }
    }
  }

  /**
   * The secondary indexes of a collection.
   *
   * @param collection Collection name.
   * @returns Their definitions.
   */
  indexes(collection: string): StoredIndex[] {
    const list = this.#collections.get(collection)?.indexes.list ?? [];
    return list.filter((i) => i.building !== true);
  }

  /**
   * Creates a secondary index from the collection's current items, in one
   * commit with its definition. An identical existing index is kept.
   *
   * @param collection Collection name.
   * @param spec The index.
   * @param action For error messages.
   * @returns The index's name.
   * @throws {TypeError} When an index of that name exists with other options.
   * @throws {DuplicateKeyError} When a unique index meets a duplicate.
   */
  createIndex(
    collection: string,
    spec: IndexSpec,
    action: string,
  ): Promise<string> {
    this.assertOpen(action);
    return this.#enqueue(async () => {
      if (this.#bulk) {
        return await this.#createIndexInSteps(collection, spec, action);
      }
      const state = this.#state(collection);
      const existing = state.indexes.get(spec.name);
      if (existing !== undefined) {
        if (
          existing.unique === spec.unique && existing.sparse === spec.sparse &&
          existing.fields.join("\u0000") === spec.fields.join("\u0000")
        ) return spec.name;
        throw new TypeError(
          `${action}: index '${spec.name}' already exists with other options`,
        );
      }
      // Expired items go first, so that every stored item has its entries
      // (the invariant every later write and sweep relies on).
      await this.#dropExpired(collection, state);
      const building = new CollectionIndexes(collection, this.#blinder);
      let stored: StoredIndex = { ...spec, multikey: false };
      building.add(stored);
      const sets: { key: Uint8Array; value: Uint8Array }[] = [];
      const owners = new Map<string, string>();
      let bytes = 0;
      for await (
        const page of this.#storage.scan({
          prefix: this.collectionPrefix(collection),
        })
      ) {
        await building.prepare(page.map((e) => this.decode(e, action)));
        for (const entry of page) {
          const record = this.decode(entry, action);
          const id = this.idOf(entry);
          const found = new Set<string>();
          const entries = this.#entriesOf(building, id, record, action, found);
          if (found.size > 0) {
            stored = { ...stored, multikey: true };
            building.add(stored);
          }
          for (const e of entries) {
            if (e.unique) {
              const holder = owners.get(entryKeyId(e));
              if (holder !== undefined) {
                throw this.#duplicate(action, collection, e, holder);
              }
              owners.set(entryKeyId(e), id);
            }
            const value = entry.key; // the item's key
            sets.push({ key: e.key, value });
            bytes += entryCost(e.key);
          }
        }
      }
      sets.push({
        key: this.#indexMetaKey(collection, spec.name),
        value: encodeUtf8(JSON.stringify(stored)),
      });
      this.#fitsMemory(bytes, action);
      const result = await this.#storage.commit({ sets });
      if (!result.ok) {
        throw new ConflictError(`${action}: the storage refused the commit`);
      }
      if (result.durable !== undefined) await this.#settle(result.durable);
      this.#account(bytes);
      state.indexes.add(stored);
      return spec.name;
    });
  }

  /**
   * Drops a secondary index and its entries in one commit.
   *
   * @param collection Collection name.
   * @param name The index's name.
   * @param action For error messages.
   * @returns Whether it existed.
   */
  dropIndex(
    collection: string,
    name: string,
    action: string,
  ): Promise<boolean> {
    this.assertOpen(action);
    return this.#enqueue(async () => {
      if (this.#bulk) {
        await this.sync(collection);
        const state = this.#state(collection);
        if (state.indexes.get(name) === undefined) return false;
        await this.#dropIndexInSteps(collection, state, name, action);
        return true;
      }
      const state = this.#collections.get(collection);
      if (state?.indexes.get(name) === undefined) return false;
      const deletes = [this.#indexMetaKey(collection, name)];
      const bytes = await this.#keysUnder(state.indexes.prefix(name), deletes);
      const result = await this.#storage.commit({ deletes });
      if (!result.ok) {
        throw new ConflictError(`${action}: the storage refused the commit`);
      }
      if (result.durable !== undefined) await this.#settle(result.durable);
      this.#account(-bytes);
      state.indexes.remove(name);
      return true;
    });
  }

  /**
   * Appends every index or order entry key under `prefix` to `keys`;
   * returns their estimated memory.
   */
  async #keysUnder(prefix: Uint8Array, keys: Uint8Array[]): Promise<number> {
    let bytes = 0;
    for await (const page of this.#storage.scan({ prefix })) {
      for (const entry of page) {
        keys.push(entry.key);
        bytes += entryCost(entry.key);
      }
    }
    return bytes;
  }

  /**
   * Deletes every stored document of a collection in one commit.
   *
   * @param collection Collection name.
   * @param action For error messages.
   * @returns How many visible items were removed.
   */
  clear(collection: string, action: string): Promise<number> {
    this.assertOpen(action);
    return this.#enqueue(async () => {
      if (this.#bulk) return await this.#clearInSteps(collection, action);
      const now = this.now();
      const deletes: Uint8Array[] = [];
      const tombs: { key: Uint8Array; value: Uint8Array }[] = [];
      const ids: string[] = [];
      let visible = 0;
      let bytes = 0;
      for await (
        const page of this.#storage.scan({
          prefix: this.collectionPrefix(collection),
        })
      ) {
        for (const entry of page) {
          deletes.push(entry.key);
          const id = this.idOf(entry);
          ids.push(id);
          bytes += recordCost(entry.key, entry.value);
          if (!isExpired(this.decode(entry, action), now)) {
            visible++;
            tombs.push({
              key: this.#tombKey(collection, id),
              value: encodeUtf8(String(now)),
            });
          }
        }
      }
      if (deletes.length === 0) return 0;
      const docs = deletes.length;
      const state = this.#state(collection);
      bytes += await this.#keysUnder(state.indexes.orderPrefix, deletes);
      bytes += await this.#keysUnder(state.indexes.indexesPrefix, deletes);
      const result = await this.#storage.commit({ sets: tombs, deletes });
      if (!result.ok) {
        throw new ConflictError(`${action}: the storage refused the commit`);
      }
      if (result.durable !== undefined) await this.#settle(result.durable);
      this.#account(-bytes);
      state.stored -= docs;
      this.#changes.publish([{ type: "clear", collection }]);
      state.inflight.clear();
      for (const id of ids) state.schedule.delete(id);
      this.#ops.deletes += visible;
      return visible;
    });
  }

  /**
   * Whether bulk work goes in steps: the storage is shared with other
   * processes or limits what one commit holds (Deno KV).
   */
  get #bulk(): boolean {
    return this.shared || this.#storage.limits !== undefined;
  }

  /** How many items one commit of bulk work takes at first. */
  #groupSize(state: CollectionState): number {
    const limits = this.#storage.limits;
    if (limits === undefined) return 1024;
    const list = state.indexes.list;
    const uniques = list.filter((i) => i.unique).length;
    const checks = 1 + 2 * uniques;
    // The item, its tombstone, and each entry removed and added.
    const mutations = 2 + 2 * (list.length + (state.indexes.ordered ? 1 : 0));
    return Math.max(
      1,
      Math.min(
        Math.floor((limits.maxChecks - 2) / checks),
        Math.floor((limits.maxMutations - 2) / mutations),
      ),
    );
  }

  /**
   * Runs `fn` on consecutive groups of `items`, halving the group when the
   * storage finds it too large for one commit.
   */
  async #inGroups<I>(
    items: readonly I[],
    size: number,
    fn: (group: readonly I[]) => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < items.length;) {
      const n = Math.min(size, items.length - i);
      try {
        await fn(items.slice(i, i + n));
        i += n;
      } catch (e) {
        if (!(e instanceof TooLargeError) || n === 1) throw e;
        size = Math.max(1, n >> 1);
      }
    }
  }

  /**
   * Commits a schema change (index definition or order marker) with a
   * version check on the schema key; after a lost race, reloads the
   * definitions and asks `still` whether the change is still wanted.
   */
  async #commitSchema(
    collection: string,
    state: CollectionState,
    change: {
      sets?: { key: Uint8Array; value: Uint8Array }[];
      deletes?: Uint8Array[];
    },
    action: string,
    still: () => boolean = () => true,
  ): Promise<boolean> {
    for (let attempt = 0;; attempt++) {
      const result = await this.#storage.commit({
        checks: [{
          key: this.#schemaKey(collection),
          versionstamp: state.schema,
        }],
        sets: [...change.sets ?? [], this.#schemaBump(collection)],
        deletes: change.deletes ?? [],
      });
      if (result.ok) {
        if (result.durable !== undefined) await this.#settle(result.durable);
        state.schema = result.versionstamp;
        return true;
      }
      await this.sync(collection);
      if (!still()) return false;
      if (attempt >= this.#settings.maxRetries) {
        throw new ConflictError(
          `${action}: another process changed the indexes of '${collection}' ${
            attempt + 1
          } times in a row`,
        );
      }
    }
  }

  /**
   * Writes the entries that `entriesOf` gives for existing documents, a
   * group per commit, each checked against the documents' versions (a
   * document rewritten meanwhile is read again). Unique entries held by
   * another live document are a `DuplicateKeyError`.
   */
  async #backfill(
    collection: string,
    state: CollectionState,
    action: string,
    entriesOf: (id: string, record: StoredRecord) => IndexEntry[],
    prepare?: (records: StoredRecord[]) => Promise<void>,
  ): Promise<void> {
    const native = this.#storage.capabilities.nativeExpiry;
    const group = async (docs: readonly StorageEntry[]): Promise<void> => {
      let current: readonly StorageEntry[] = docs;
      for (let attempt = 0;; attempt++) {
        await prepare?.(current.map((d) => this.decode(d, action)));
        const now = this.now();
        const checks: { key: Uint8Array; versionstamp: string | null }[] = [
          { key: this.#schemaKey(collection), versionstamp: state.schema },
        ];
        const sets: {
          key: Uint8Array;
          value: Uint8Array;
          expireAt?: number;
        }[] = [];
        const uniques: { entry: IndexEntry; id: string }[] = [];
        const owners = new Map<string, string>();
        for (const doc of current) {
          const record = this.decode(doc, action);
          if (isExpired(record, now)) continue;
          const id = this.idOf(doc);
          checks.push({ key: doc.key, versionstamp: doc.versionstamp });
          for (const e of entriesOf(id, record)) {
            if (e.unique) {
              const holder = owners.get(entryKeyId(e));
              if (holder !== undefined && holder !== id) {
                throw this.#duplicate(action, collection, e, holder);
              }
              owners.set(entryKeyId(e), id);
              uniques.push({ entry: e, id });
            }
            const expireAt = native ? record.expiresAt : undefined;
            sets.push(
              expireAt === undefined
                ? { key: e.key, value: doc.key }
                : { key: e.key, value: doc.key, expireAt },
            );
          }
        }
        if (uniques.length > 0) {
          const probes = await this.#storage.getMany(
            uniques.map((u) => u.entry.key),
          );
          for (let j = 0; j < uniques.length; j++) {
            const probe = probes[j] ?? null;
            const { entry, id } = uniques[j]!;
            checks.push({
              key: entry.key,
              versionstamp: probe?.versionstamp ?? null,
            });
            if (probe === null) continue;
            const holder = entryId(probe.value);
            if (holder === id) continue;
            const held = await this.#storage.get(
              this.docKey(collection, holder),
            );
            if (held !== null && !isExpired(this.decode(held, action), now)) {
              throw this.#duplicate(action, collection, entry, holder);
            }
          }
        }
        this.#fits(checks.length, sets.length, action);
        const result = await this.#storage.commit({ checks, sets });
        if (result.ok) {
          if (result.durable !== undefined) await this.#settle(result.durable);
          let bytes = 0;
          for (const set of sets) bytes += entryCost(set.key);
          this.#account(bytes);
          return;
        }
        if (attempt >= this.#settings.maxRetries + 8) {
          throw new ConflictError(
            `${action}: other writers kept changing the same documents`,
          );
        }
        await this.sync(collection);
        const fresh = await this.#storage.getMany(current.map((d) => d.key));
        current = fresh.filter((d): d is StorageEntry => d !== null);
      }
    };
    const size = this.#groupSize(state);
    for await (
      const page of this.#storage.scan({
        prefix: this.collectionPrefix(collection),
      })
    ) {
      await this.#inGroups(page, size, group);
    }
  }

  /** Deletes every key under `prefix`, a commit per group (no checks). */
  async #deleteUnder(prefix: Uint8Array): Promise<void> {
    const limit = this.#storage.limits?.maxMutations ?? 1024;
    for (;;) {
      const keys: Uint8Array[] = [];
      for await (const page of this.#storage.scan({ prefix, limit })) {
        for (const e of page) {
          keys.push(e.key);
          this.#account(-entryCost(e.key));
        }
      }
      if (keys.length === 0) return;
      await this.#inGroups(keys, limit, async (deletes) => {
        const result = await this.#storage.commit({ deletes: [...deletes] });
        if (result.ok && result.durable !== undefined) {
          await this.#settle(result.durable);
        }
      });
    }
  }

  /**
   * Creates an index where other processes may write meanwhile: the
   * definition first (marked as building, so every writer keeps its entries
   * from then on), then the entries of existing documents in groups, then the
   * definition without the mark. A duplicate under a unique index removes
   * the index again.
   */
  async #createIndexInSteps(
    collection: string,
    spec: IndexSpec,
    action: string,
  ): Promise<string> {
    await this.sync(collection);
    const state = this.#state(collection);
    await this.#dropExpired(collection, state);
    const same = (i: StoredIndex | undefined): boolean =>
      i !== undefined && i.unique === spec.unique && i.sparse === spec.sparse &&
      i.fields.join("\u0000") === spec.fields.join("\u0000");
    const metaKey = this.#indexMetaKey(collection, spec.name);
    for (;;) {
      const existing = state.indexes.get(spec.name) as StoredIndex | undefined;
      if (existing !== undefined && !same(existing)) {
        throw new TypeError(
          `${action}: index '${spec.name}' already exists with other options`,
        );
      }
      if (existing !== undefined && existing.building !== true) {
        return spec.name;
      }
      if (existing !== undefined) break; // resume a build left unfinished
      const building: StoredIndex = {
        ...spec,
        multikey: false,
        building: true,
      };
      const done = await this.#commitSchema(
        collection,
        state,
        {
          sets: [{ key: metaKey, value: encodeUtf8(JSON.stringify(building)) }],
        },
        action,
        () => state.indexes.get(spec.name) === undefined,
      );
      if (done) {
        state.indexes.add(building);
        break;
      }
    }
    const one = new CollectionIndexes(collection, this.#blinder);
    one.add({ ...spec, multikey: false });
    const found = new Set<string>();
    try {
      await this.#backfill(
        collection,
        state,
        action,
        (id, record) => this.#entriesOf(one, id, record, action, found),
        (records) => one.prepare(records),
      );
    } catch (e) {
      if (e instanceof DuplicateKeyError) {
        await this.#dropIndexInSteps(collection, state, spec.name, action);
      }
      throw e;
    }
    const current = state.indexes.get(spec.name) as StoredIndex | undefined;
    const ready: StoredIndex = {
      ...spec,
      multikey: found.size > 0 || current?.multikey === true,
    };
    await this.#commitSchema(
      collection,
      state,
      { sets: [{ key: metaKey, value: encodeUtf8(JSON.stringify(ready)) }] },
      action,
      () => same(state.indexes.get(spec.name)),
    );
    state.indexes.add(ready);
    return spec.name;
  }

  /** Drops an index: the definition first, then its entries in groups. */
  async #dropIndexInSteps(
    collection: string,
    state: CollectionState,
    name: string,
    action: string,
  ): Promise<void> {
    const prefix = state.indexes.prefix(name);
    await this.#commitSchema(
      collection,
      state,
      { deletes: [this.#indexMetaKey(collection, name)] },
      action,
      () => state.indexes.get(name) !== undefined,
    );
    state.indexes.remove(name);
    await this.#deleteUnder(prefix);
  }

  /** Builds the insertion-order entries in steps, as an index. */
  async #orderInSteps(collection: string, action: string): Promise<void> {
    await this.sync(collection);
    const state = this.#state(collection);
    const meta = encodeKey([META, collection, "order"]);
    if (state.indexes.ordered && !state.indexes.orderBuilding) return;
    if (!state.indexes.ordered) {
      const started = await this.#commitSchema(
        collection,
        state,
        { sets: [{ key: meta, value: encodeUtf8('{"building":true}') }] },
        action,
        () => !state.indexes.ordered,
      );
      if (started) state.indexes.ordered = true;
      state.indexes.orderBuilding = true;
    }
    if (!state.indexes.orderBuilding) return;
    await this.#dropExpired(collection, state);
    const order = state.indexes;
    await this.#backfill(collection, state, action, (id, record) => [{
      key: order.orderKey(id, record),
      index: "",
      unique: false,
      tuple: [],
    }]);
    await this.#commitSchema(
      collection,
      state,
      { sets: [{ key: meta, value: encodeUtf8("{}") }] },
      action,
      () => state.indexes.ordered,
    );
    state.indexes.orderBuilding = false;
  }

  /**
   * Deletes items with their index entries, a group per commit; a group that
   * lost a race is read again (items already gone or rewritten alive are
   * left alone when `onlyExpired`).
   *
   * @returns How many visible items were deleted.
   */
  async #deleteInGroups(
    collection: string,
    state: CollectionState,
    changes: readonly ItemChange[],
    action: string,
    onlyExpired: boolean,
  ): Promise<number> {
    let visible = 0;
    await this.#inGroups(changes, this.#groupSize(state), async (group) => {
      let current = group;
      for (let attempt = 0;; attempt++) {
        const now = this.now();
        const live = current.filter((c) =>
          c.old !== undefined && !isExpired(c.old, now)
        ).length;
        const committed = await this.#commitItems(
          collection,
          state,
          current,
          current.map(() => undefined),
          action,
        );
        if (committed !== false) {
          if (committed.durable !== undefined) {
            await this.#settle(committed.durable);
          }
          visible += live;
          for (const c of current) state.schedule.delete(c.id);
          return;
        }
        if (attempt >= this.#settings.maxRetries + 8) {
          throw new ConflictError(
            `${action}: other writers kept changing the same items`,
          );
        }
        const fresh = await this.#storage.getMany(current.map((c) => c.key));
        const next: ItemChange[] = [];
        for (let i = 0; i < current.length; i++) {
          const entry = fresh[i] ?? null;
          if (entry === null) continue;
          const old = this.decode(entry, action);
          if (onlyExpired && !isExpired(old, this.now())) continue;
          next.push({ ...current[i]!, entry, old });
        }
        if (next.length === 0) return;
        current = next;
      }
    });
    return visible;
  }

  /** Deletes every document of a collection, a group per commit. */
  async #clearInSteps(collection: string, action: string): Promise<number> {
    await this.sync(collection);
    const state = this.#state(collection);
    let removed = 0;
    for (;;) {
      const changes: ItemChange[] = [];
      for await (
        const page of this.#storage.scan({
          prefix: this.collectionPrefix(collection),
          limit: 1024,
        })
      ) {
        for (const entry of page) {
          changes.push({
            id: this.idOf(entry),
            key: entry.key,
            entry,
            old: this.decode(entry, action),
            next: undefined,
          });
        }
      }
      if (changes.length === 0) break;
      removed += await this.#deleteInGroups(
        collection,
        state,
        changes,
        action,
        false,
      );
    }
    state.inflight.clear();
    state.recent.clear();
    state.recentBytes = 0;
    this.#ops.deletes += removed;
    this.#changes.publish([{ type: "clear", collection }]);
    return removed;
  }

  /**
   * Starts a bounded background sweep when the earliest expiry has passed.
   * Never awaited by the caller; errors land in `stats().lastError`.
   */
  poke(): void {
    if (this.#sweeping || this.#closed) return;
    if (this.#storage.capabilities.readOnly === true) return;
    if (this.#earliestExpiry() > this.now()) return;
    this.#sweeping = true;
    this.#poked = this.sweep(SWEEP_BATCH)
      .catch((e) => this.#recordError(e))
      .finally(() => {
        this.#sweeping = false;
        this.#poked = undefined;
      });
  }

  /**
   * Removes up to `limit` expired items, earliest first.
   *
   * @param limit Most items to remove.
   * @returns How many were removed.
   */
  async sweep(limit: number = SWEEP_BATCH): Promise<number> {
    if (this.#closed) return 0;
    const now = this.now();
    this.#sweeps++;
    this.#lastSweepAt = now;
    let removed = 0;
    for (const [collection, state] of this.#collections) {
      if (limit <= 0) break;
      // Popped entries wait in `inflight` (still counted as expired) until
      // their items are gone or a write supersedes them.
      const due = state.schedule.popExpired(now, limit);
      if (due.length === 0) continue;
      limit -= due.length;
      for (const d of due) state.inflight.set(d.key, d.expiresAt);
      removed += await this.#enqueue(() =>
        this.#removeExpired(collection, state, due)
      );
    }
    return removed;
  }

  async #removeExpired(
    collection: string,
    state: CollectionState,
    due: readonly { key: string; expiresAt: number }[],
  ): Promise<number> {
    const action = `Cannot sweep expired items of '${collection}'`;
    const { inflight } = state;
    const live = due.filter((d) => inflight.get(d.key) === d.expiresAt);
    try {
      const keys = live.map((d) => this.docKey(collection, d.key));
      const current = await this.#storage.getMany(keys);
      const now = this.now();
      const changes: ItemChange[] = [];
      let gone = 0;
      for (let i = 0; i < keys.length; i++) {
        const entry = current[i] ?? null;
        if (entry === null) {
          gone++; // the storage expired it first (or another process)
          continue;
        }
        const old = this.decode(entry, action);
        if (!isExpired(old, now)) continue; // re-put since it was scheduled
        changes.push({
          id: live[i]!.key,
          key: keys[i]!,
          entry,
          old,
          next: undefined,
        });
      }
      const told = (): Change[] =>
        changes.map((c) => ({ type: "expire", collection, key: c.id }));
      if (changes.length > 0 && this.#bulk) {
        await this.#deleteInGroups(collection, state, changes, action, true);
        this.#expired += changes.length;
        if (this.#listeners.size > 0) this.#changes.publish(told());
      } else if (changes.length > 0) {
        const committed = await this.#commitItems(
          collection,
          state,
          changes,
          changes.map(() => undefined),
          action,
          (durable) => {
            this.#expired += changes.length;
            for (const d of live) inflight.delete(d.key);
            if (this.#listeners.size > 0) {
              this.#changes.publish(told(), durable);
            }
          },
        );
        if (committed === false) {
          throw new ConflictError(`${action}: lost a race`);
        }
        if (committed.durable !== undefined) {
          await this.#settle(committed.durable);
        }
      }
      if (gone > 0) {
        state.stored = Math.max(0, state.stored - gone);
        this.#expired += gone;
      }
      for (const d of live) inflight.delete(d.key);
      return changes.length + gone;
    } catch (e) {
      // Schedule them again so a later sweep retries; reads hide them.
      for (const d of live) {
        if (inflight.delete(d.key)) state.schedule.set(d.key, d.expiresAt);
      }
      throw e;
    }
  }

  async #sweepAll(): Promise<number> {
    // A sweep started by an operation may hold items this one would skip.
    if (this.#poked !== undefined) await this.#poked;
    let total = 0;
    for (;;) {
      total += await this.sweep(SWEEP_BATCH);
      if (this.#closed || this.#earliestExpiry() > this.now()) return total;
      await yieldToLoop();
    }
  }

  /**
   * Removes every expired item now.
   *
   * @returns How many were removed.
   */
  cleanup(): Promise<number> {
    this.assertOpen("Cannot clean up");
    return this.#sweepAll();
  }

  /**
   * Has the storage load other processes' changes (a read-only file
   * database), then rebuilds counts, schedules and index definitions.
   *
   * @returns Whether anything changed.
   */
  refresh(): Promise<boolean> {
    this.assertOpen("Cannot refresh");
    const storage = this.#storage;
    if (storage.refresh === undefined) return Promise.resolve(false);
    return this.#enqueue(async () => {
      const changed = await storage.refresh!();
      if (changed) {
        this.#collections.clear();
        this.#bytes = 0;
        await this.#load();
      }
      return changed;
    });
  }

  /** The resolved settings (a restore stages its writes with the same). */
  get settings(): EngineSettings {
    return this.#settings;
  }

  /**
   * Rebuilds counts, sizes, schedules and index definitions from storage
   * after changes written to it directly (a restore applies its staged
   * commit so), then tells watchers of those changes. Call it inside
   * {@linkcode Engine.exclusive}.
   *
   * @param changes The document changes to report (asked only when
   *   someone watches).
   * @returns When the bookkeeping is rebuilt.
   */
  async reloaded(changes: () => readonly Change[]): Promise<void> {
    this.#collections.clear();
    this.#bytes = 0;
    await this.#load();
    if (this.#listeners.size === 0) return;
    for (const change of changes()) this.#emit(change);
  }

  /**
   * Removes every expired item, then lets the storage drop dead data (the
   * file storage rewrites its log).
   *
   * @returns Whether the storage rewrote anything.
   */
  async compact(): Promise<boolean> {
    this.assertOpen("Cannot compact");
    await this.#sweepAll();
    await this.#purgeTombstones();
    if (this.#storage.compact === undefined) return false;
    return await this.#storage.compact();
  }

  /**
   * Counters and sizes.
   *
   * @returns A snapshot.
   */
  stats(): DatabaseStats {
    const now = this.now();
    let ttlItems = 0;
    for (const { schedule } of this.#collections.values()) {
      ttlItems += schedule.size - schedule.countExpired(now);
    }
    return {
      storage: this.#storage.constructor.name,
      items: this.count(),
      ttlItems,
      bytes: this.#bytes,
      memoryLimit: Number.isFinite(this.#memoryLimit)
        ? this.#memoryLimit
        : undefined,
      ops: { ...this.#ops },
      sweeps: this.#sweeps,
      expired: this.#expired,
      lastSweepAt: this.#lastSweepAt,
      sweepErrors: this.#sweepErrors,
      lastError: this.#lastError,
      storageStats: this.#storage.stats?.(),
    };
  }

  #emit(change: Change): void {
    for (const listener of this.#listeners) listener(change);
  }

  /**
   * Follows the changes of one collection: this engine's own writes, and on
   * a shared storage with `watch` the feed records of other processes.
   *
   * @param collection Collection name.
   * @param signal Ends the iteration.
   * @returns The changes, in the order this process saw them.
   */
  async *changes(
    collection: string,
    signal?: AbortSignal,
  ): AsyncGenerator<Change> {
    this.assertOpen(`Cannot watch '${collection}'`);
    signal?.throwIfAborted();
    const queue: Change[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const stop = new AbortController();
    const finish = () => {
      done = true;
      stop.abort();
      wake?.();
    };
    const listener = (change: Change) => {
      if (change.collection !== collection) return;
      queue.push(change);
      wake?.();
    };
    this.#listeners.add(listener);
    signal?.addEventListener("abort", finish, { once: true });
    this.#onClose.push(finish);
    const storage = this.#storage;
    let remote: Promise<void> | undefined;
    if (this.shared && storage.watch !== undefined) {
      const key = encodeKey([META, collection, "feed"]);
      remote = (async () => {
        let first = true;
        for await (const [entry] of storage.watch!([key], stop.signal)) {
          if (first) { // the current record, not a change
            first = false;
            continue;
          }
          if (entry === null || entry === undefined) continue;
          let record: { w: string; c: [string, number][] };
          try {
            record = JSON.parse(new TextDecoder().decode(entry.value));
          } catch {
            continue;
          }
          if (record.w === this.#writer) continue;
          for (const [key, put] of record.c) {
            queue.push({
              type: put === 1 ? "put" : "delete",
              collection,
              key,
              remote: true,
            });
          }
          wake?.();
        }
      })().catch((e) => {
        if (!done) this.#recordError(e);
      });
    }
    try {
      while (!done) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      this.#listeners.delete(listener);
      this.#onClose = this.#onClose.filter((fn) => fn !== finish);
      signal?.removeEventListener("abort", finish);
      stop.abort();
      await remote;
    }
  }

  /**
   * Registers a function to run when `close()` is called.
   *
   * @param fn The function.
   */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  /**
   * Stops the timers, waits for queued writes and closes the storage.
   * Idempotent.
   *
   * @returns When everything is released.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const id of this.#timers) clearInterval(id);
    this.#timers = [];
    for (const fn of this.#onClose.splice(0)) fn();
    this.#closing = this.#queue.then(() => this.#storage.close());
    return this.#closing;
  }
}
