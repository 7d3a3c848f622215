/**
 * The engine shared by every storage: key layout, the write queue, the TTL
 * schedule and sweeper, the decoded-record cache, counters and scans.
 *
 * The engine knows nothing of the storage behind it beyond the
 * {@linkcode Storage} contract. Public classes (`Database`, `Collection`,
 * `Cursor`) validate input, then call it.
 *
 * @module
 */

import {
  ClosedError,
  ConflictError,
  QuotaError,
  TooLargeError,
} from "./errors.ts";
import { decodeKey, encodeKey } from "./key_codec.ts";
import type { Storage, StorageEntry } from "./storage.ts";
import { TtlSchedule } from "./ttl_schedule.ts";
import type { Clock, DatabaseStats } from "./types.ts";
import {
  type CheckedValue,
  decodeRecord,
  encodeRecord,
  type StoredRecord,
} from "./value_codec.ts";
import { KeyGenerator } from "./auto_key.ts";

/** Key-space tag of documents: `["d", collection, id]`. */
const DOC = "d";
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
}

/** A delete inside a write. */
export interface DeleteOp {
  /** Discriminant. */
  readonly kind: "delete";
  /** The item's key. */
  readonly id: string;
}

/** What the engine tracks for one collection. */
interface CollectionState {
  /** Documents in storage, expired or not. */
  stored: number;
  /** Document id -> expiry, for documents with a TTL. */
  readonly schedule: TtlSchedule<string>;
  /** Expired ids popped by a sweep that has not removed them yet. */
  readonly inflight: Map<string, number>;
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
 * import { MemoryStorage } from "./memory_storage.ts";
 * const engine = await Engine.open(new MemoryStorage(), {
 *   clock: Date, ttlCheckInterval: 10_000, cleanupInterval: 3_600_000,
 *   maxValueBytes: 65_536, memoryLimit: Infinity, maxRetries: 3, retryDelay: 100,
 * });
 * await engine.close();
 * ```
 */
export class Engine {
  readonly #storage: Storage;
  readonly #settings: EngineSettings;
  readonly #keys: KeyGenerator;
  /** Per collection bookkeeping. */
  readonly #collections = new Map<string, CollectionState>();
  readonly #prefixes = new Map<string, Uint8Array>();
  #bytes = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  #timers: number[] = [];
  #onClose: (() => void)[] = [];
  #sweeping = false;
  #ops = { puts: 0, gets: 0, deletes: 0, queries: 0 };
  #sweeps = 0;
  #expired = 0;
  #lastSweepAt: number | undefined;
  #sweepErrors = 0;
  #lastError: Error | undefined;

  private constructor(storage: Storage, settings: EngineSettings) {
    this.#storage = storage;
    this.#settings = settings;
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
      await engine.#load();
    } catch (e) {
      await storage.close();
      throw e;
    }
    engine.#startTimers();
    return engine;
  }

  async #load(): Promise<void> {
    for await (const page of this.#storage.scan({ prefix: encodeKey([DOC]) })) {
      for (const entry of page) {
        const parts = decodeKey(entry.key);
        const collection = parts[1] as string;
        const id = parts[2] as string;
        const record = this.decode(entry, `Cannot open: reading '${id}'`);
        const state = this.#state(collection);
        state.stored++;
        this.#bytes += entry.key.length + entry.value.length;
        if (record.expiresAt !== undefined) {
          state.schedule.set(id, record.expiresAt);
        }
      }
    }
  }

  #state(collection: string): CollectionState {
    let state = this.#collections.get(collection);
    if (state === undefined) {
      state = {
        stored: 0,
        schedule: new TtlSchedule<string>(),
        inflight: new Map(),
      };
      this.#collections.set(collection, state);
    }
    return state;
  }

  #visibleCount(state: CollectionState, now: number): number {
    return state.stored - state.schedule.countExpired(now) -
      state.inflight.size;
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
    (full ? this.cleanup() : this.#sweepAll())
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
   * Visits a collection's entries page by page, giving the event loop a turn
   * regularly. Expiry is for the caller to check (see `visible`).
   *
   * @param collection Collection name.
   * @param options Direction and abort signal.
   * @returns Pages of raw entries.
   */
  async *pages(
    collection: string,
    options: { reverse?: boolean; signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<readonly StorageEntry[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    this.assertOpen("Cannot scan");
    let last = performance.now();
    const scan = this.#storage.scan({
      prefix: this.collectionPrefix(collection),
      reverse: options.reverse === true,
    });
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
   * @throws {ConflictError} Another writer won every retry.
   */
  write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<boolean[]> {
    this.assertOpen(action);
    const result = this.#enqueue(() => this.#write(collection, ops, action));
    this.poke();
    return result;
  }

  async #write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<boolean[]> {
    const keys = ops.map((op) => this.docKey(collection, op.id));
    const { maxRetries, retryDelay, maxValueBytes, memoryLimit } =
      this.#settings;
    for (let attempt = 0;; attempt++) {
      const current = await this.#storage.getMany(keys);
      const now = this.now();
      const existed: boolean[] = [];
      const checks = [];
      const sets = [];
      const deletes = [];
      const records: (StoredRecord | undefined)[] = [];
      let delta = 0;
      let stored = 0;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        const key = keys[i]!;
        const entry = current[i] ?? null;
        const old = entry === null ? undefined : this.decode(entry, action);
        const live = old !== undefined && !isExpired(old, now);
        existed.push(live);
        checks.push({ key, versionstamp: entry?.versionstamp ?? null });
        if (entry !== null) {
          delta -= entry.key.length + entry.value.length;
          stored--;
        }
        if (op.kind === "put") {
          const record: StoredRecord = {
            value: op.value.value,
            tags: op.tags,
            expiresAt: op.ttl === undefined ? undefined : now + op.ttl,
            createdAt: live ? old.createdAt : now,
            updatedAt: now,
            version: live ? old.version + 1 : 1,
            dates: op.value.dates,
          };
          const value = encodeRecord(record);
          if (value.length > maxValueBytes) {
            throw new TooLargeError(
              `${action}: the record for '${op.id}' is ${value.length} bytes, over maxValueBytes ${maxValueBytes}`,
            );
          }
          records.push(record);
          delta += key.length + value.length;
          stored++;
          sets.push(
            record.expiresAt === undefined
              ? { key, value, memo: record }
              : { key, value, memo: record, expireAt: record.expiresAt },
          );
        } else {
          records.push(undefined);
          if (entry !== null) deletes.push(key);
        }
      }
      if (delta > 0 && this.#bytes + delta > memoryLimit) {
        throw new QuotaError(
          `${action}: it needs ${delta} more bytes and the database holds ${this.#bytes} of its ${memoryLimit}-byte memory limit`,
        );
      }
      const result = await this.#storage.commit({ checks, sets, deletes });
      if (!result.ok) {
        if (attempt >= maxRetries) {
          throw new ConflictError(
            `${action}: another writer changed the same items ${
              attempt + 1
            } times in a row`,
          );
        }
        await new Promise((r) => setTimeout(r, retryDelay));
        continue;
      }
      this.#bytes += delta;
      const state = this.#state(collection);
      state.stored += stored;
      const { schedule, inflight } = state;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        const record = records[i];
        // This write supersedes a sweep that may be waiting for the key.
        if (inflight.size > 0) inflight.delete(op.id);
        if (record?.expiresAt !== undefined) {
          schedule.set(op.id, record.expiresAt);
        } else if (schedule.size > 0) {
          schedule.delete(op.id);
        }
        if (op.kind === "put") this.#ops.puts++;
        else if (existed[i]) this.#ops.deletes++;
      }
      return existed;
    }
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
      const now = this.now();
      const deletes: Uint8Array[] = [];
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
          ids.push(this.idOf(entry));
          bytes += entry.key.length + entry.value.length;
          if (!isExpired(this.decode(entry, action), now)) visible++;
        }
      }
      if (deletes.length === 0) return 0;
      const result = await this.#storage.commit({ deletes });
      if (!result.ok) {
        throw new ConflictError(`${action}: the storage refused the commit`);
      }
      this.#bytes -= bytes;
      const state = this.#state(collection);
      state.stored -= deletes.length;
      state.inflight.clear();
      for (const id of ids) state.schedule.delete(id);
      this.#ops.deletes += visible;
      return visible;
    });
  }

  /**
   * Starts a bounded background sweep when the earliest expiry has passed.
   * Never awaited by the caller; errors land in `stats().lastError`.
   */
  poke(): void {
    if (this.#sweeping || this.#closed) return;
    if (this.#earliestExpiry() > this.now()) return;
    this.#sweeping = true;
    this.sweep(SWEEP_BATCH)
      .catch((e) => this.#recordError(e))
      .finally(() => this.#sweeping = false);
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
      const checks = [];
      const deletes = [];
      let bytes = 0;
      for (let i = 0; i < keys.length; i++) {
        const entry = current[i] ?? null;
        if (entry === null) continue;
        if (!isExpired(this.decode(entry, action), now)) continue;
        checks.push({ key: keys[i]!, versionstamp: entry.versionstamp });
        deletes.push(keys[i]!);
        bytes += entry.key.length + entry.value.length;
      }
      if (deletes.length > 0) {
        const result = await this.#storage.commit({ checks, deletes });
        if (!result.ok) throw new ConflictError(`${action}: lost a race`);
        this.#bytes -= bytes;
        state.stored -= deletes.length;
        this.#expired += deletes.length;
      }
      for (const d of live) inflight.delete(d.key);
      return deletes.length;
    } catch (e) {
      // Schedule them again so a later sweep retries; reads hide them.
      for (const d of live) {
        if (inflight.delete(d.key)) state.schedule.set(d.key, d.expiresAt);
      }
      throw e;
    }
  }

  async #sweepAll(): Promise<number> {
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
      memoryLimit: Number.isFinite(this.#settings.memoryLimit)
        ? this.#settings.memoryLimit
        : undefined,
      ops: { ...this.#ops },
      sweeps: this.#sweeps,
      expired: this.#expired,
      lastSweepAt: this.#lastSweepAt,
      sweepErrors: this.#sweepErrors,
      lastError: this.#lastError,
    };
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
