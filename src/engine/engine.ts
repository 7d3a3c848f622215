/**
 * The engine shared by every storage: `Engine` is the façade that
 * `Database`, `Collection` and `Cursor` call, over one
 * {@linkcode EngineCore} (state.ts) that the mechanisms share, one file
 * each:
 *
 * - layout.ts: the key layout (documents, metadata, tombstones);
 * - write.ts, commit.ts: the write queue and the atomic commit of items
 *   with their index entries;
 * - read.ts: point reads, scans, index and insertion-order scans;
 * - index_build.ts: creating and dropping indexes;
 * - bulk.ts: `clear()` and group deletes;
 * - expiry.ts: the TTL sweeper; tombstones.ts: deletion records;
 * - load.ts: rebuilding bookkeeping from storage;
 * - verify.ts, stats.ts, watch.ts.
 *
 * The engine knows nothing of the storage behind it beyond the
 * {@linkcode Storage} contract. Public classes validate input, then call it.
 *
 * @module
 */

import type { IndexSpec } from "./index_keys.ts";
import type { StoredIndex } from "./indexes.ts";
import type { Plan } from "../query/planner.ts";
import type { Filter } from "../query/compile.ts";
import type { SortSpec } from "../query/sort.ts";
import type { Storage, StorageEntry } from "../storage/contract.ts";
import type { Change, DatabaseStats } from "../types.ts";
import type { StoredRecord } from "../value_codec.ts";
import {
  type DocPage,
  EngineCore,
  type EngineSettings,
  type WriteOp,
} from "./state.ts";
import { capMemoryLimit, load, refresh, reloaded, sync } from "./load.ts";
import { transact } from "./write.ts";
import {
  collectionNames,
  countByIndex,
  documents,
  idPages,
  indexPages,
  orderPages,
  pages,
  plan,
  read,
} from "./read.ts";
import { createIndex, dropIndex, indexDefinitions } from "./index_build.ts";
import { clear } from "./bulk.ts";
import {
  cleanup,
  compact,
  poke,
  startTimers,
  sweep,
  SWEEP_BATCH,
} from "./expiry.ts";
import { tombstones, tombstonesFrom } from "./tombstones.ts";
import { verify, type VerifyReport } from "./verify.ts";
import { count, countQuery, stats } from "./stats.ts";
import { changes } from "./watch.ts";

export type {
  DeleteOp,
  DocPage,
  EngineSettings,
  PutOp,
  WriteOp,
} from "./state.ts";
export type { VerifyReport } from "./verify.ts";
export { yieldToLoop } from "./yield.ts";

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
  readonly #s: EngineCore;

  private constructor(core: EngineCore) {
    this.#s = core;
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
    const core = new EngineCore(storage, settings);
    try {
      await capMemoryLimit(core);
      await load(core);
    } catch (e) {
      await storage.close();
      throw e;
    }
    startTimers(core);
    return new Engine(core);
  }

  /** The storage adapter. */
  get storage(): Storage {
    return this.#s.storage;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#s.closed;
  }

  /** Whether other processes may write the storage too. */
  get shared(): boolean {
    return this.#s.shared;
  }

  /** The resolved settings (a restore stages its writes with the same). */
  get settings(): EngineSettings {
    return this.#s.settings;
  }

  /**
   * A new auto key.
   *
   * @returns A unique, time-ordered key.
   */
  newKey(): string {
    return this.#s.keys.next();
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
    return transact(this.#s, collection, action, () => Promise.resolve(ops));
  }

  /**
   * Runs `fn` while this engine's writes wait (a backup's point in time).
   * `fn` must not write through the engine.
   *
   * @param fn The work.
   * @returns What `fn` returns.
   */
  exclusive<R>(fn: () => Promise<R>): Promise<R> {
    this.#s.assertOpen("Cannot hold writes");
    return this.#s.enqueue(fn);
  }

  /**
   * How many items one write of a bulk load should carry: what one commit of
   * the storage holds for this collection, or 1,000 without limits.
   *
   * @param collection Collection name.
   * @returns Items per write.
   */
  batchSize(collection: string): number {
    const s = this.#s;
    if (s.storage.limits === undefined) return 1000;
    return Math.max(1, Math.min(40, s.groupSize(s.state(collection))));
  }

  /**
   * The secondary indexes of a collection.
   *
   * @param collection Collection name.
   * @returns Their definitions.
   */
  indexes(collection: string): StoredIndex[] {
    const list = this.#s.collections.get(collection)?.indexes.list ?? [];
    return list.filter((i) => i.building !== true);
  }

  /**
   * Registers a function to run when `close()` is called.
   *
   * @param fn The function.
   */
  onClose(fn: () => void): void {
    this.#s.onClose.push(fn);
  }

  /**
   * Stops the timers, waits for queued writes and closes the storage.
   * Idempotent.
   *
   * @returns When everything is released.
   */
  close(): Promise<void> {
    const s = this.#s;
    if (s.closing !== undefined) return s.closing;
    s.closed = true;
    for (const id of s.timers) clearInterval(id);
    s.timers = [];
    for (const fn of s.onClose.splice(0)) fn();
    s.closing = s.queue.then(() => s.storage.close());
    return s.closing;
  }

  /**
   * The current time from the clock.
   *
   * @returns Epoch milliseconds.
   */
  now(): number {
    return this.#s.now();
  }

  /**
   * Throws a `ClosedError` when closed.
   *
   * @param action What is being attempted.
   */
  assertOpen(action: string): void {
    return this.#s.assertOpen(action);
  }

  /**
   * The storage key of a document.
   *
   * @param collection Collection name.
   * @param id Document key.
   * @returns The encoded key.
   */
  docKey(collection: string, id: string): Uint8Array {
    return this.#s.docKey(collection, id);
  }

  /**
   * The storage key prefix of a collection's documents.
   *
   * @param collection Collection name.
   * @returns The encoded prefix.
   */
  collectionPrefix(collection: string): Uint8Array {
    return this.#s.collectionPrefix(collection);
  }

  /**
   * The document key (id) of a storage entry.
   *
   * @param entry A document entry.
   * @returns Its id.
   */
  idOf(entry: StorageEntry): string {
    return this.#s.idOf(entry);
  }

  /**
   * Decodes an entry's record (the storage's memo when it kept one).
   *
   * @param entry The storage entry.
   * @param action For error messages.
   * @returns The record (shared: never hand it out).
   */
  decode(entry: StorageEntry, action: string): StoredRecord {
    return this.#s.decode(entry, action);
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
    return this.#s.visible(entry, now, action);
  }

  /**
   * Reads one document.
   *
   * @param collection Collection name.
   * @param id Document key.
   * @param action For error messages.
   * @returns The record, or `null` when absent or expired.
   */
  read(
    collection: string,
    id: string,
    action: string,
  ): Promise<StoredRecord | null> {
    return read(this.#s, collection, id, action);
  }

  /**
   * Visits a collection's entries page by page, giving the event loop a turn
   * regularly. Expiry is for the caller to check (see `visible`).
   *
   * @param collection Collection name.
   * @param options Direction and abort signal.
   * @returns Pages of raw entries.
   */
  pages(
    collection: string,
    options: {
      reverse?: boolean;
      signal?: AbortSignal | undefined;
      after?: Uint8Array | undefined;
    } = {},
  ): AsyncGenerator<readonly StorageEntry[]> {
    return pages(this.#s, collection, options);
  }

  /** Counts a query. */
  countQuery(): void {
    return countQuery(this.#s);
  }

  /**
   * Number of visible items in a collection (every collection when omitted).
   *
   * @param collection Collection name.
   * @returns The count.
   */
  count(collection?: string): number {
    return count(this.#s, collection);
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
    return transact(this.#s, collection, action, build, regroup);
  }

  /**
   * Pages of the given items' current documents (for `regroup`).
   *
   * @param collection Collection name.
   * @param ids Document keys.
   * @returns One page with the documents that exist.
   */
  idPages(
    collection: string,
    ids: readonly string[],
  ): AsyncGenerator<DocPage> {
    return idPages(this.#s, collection, ids);
  }

  /**
   * The deletions recorded at or after `since` (tombstones), page by page.
   *
   * @param since Epoch ms.
   * @param collections Only these (default: all).
   * @returns Pages of `{ collection, id, at }`.
   */
  tombstones(
    since: number,
    collections?: readonly string[],
  ): AsyncGenerator<{ collection: string; id: string; at: number }[]> {
    return tombstones(this.#s, since, collections);
  }

  /**
   * The time from which every deletion still has its tombstone: 0 until
   * tombstones were first purged, then the purge's cut-off.
   *
   * @returns Epoch ms.
   */
  tombstonesFrom(): Promise<number> {
    return tombstonesFrom(this.#s);
  }

  /**
   * On a shared storage, reloads a collection's index definitions when
   * another process changed them (one read when nothing changed).
   *
   * @param collection Collection name.
   * @returns When the definitions are current.
   */
  sync(collection: string): Promise<void> {
    return sync(this.#s, collection);
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
    return plan(this.#s, collection, filter, sort);
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
  indexPages(
    collection: string,
    plan: Plan,
    options: {
      signal?: AbortSignal | undefined;
      examined?: { keys: number };
      after?: { range: number; key: Uint8Array } | undefined;
    },
  ): AsyncGenerator<DocPage> {
    return indexPages(this.#s, collection, plan, options);
  }

  /**
   * Every stored document of the given collections (all when omitted), in
   * key order, page by page, as raw record bytes (expired ones included: the
   * caller checks `recordMeta`).
   *
   * @param collections Collection names, or `undefined` for all.
   * @returns Pages of `{ collection, id, bytes }`.
   */
  documents(
    collections?: readonly string[],
  ): AsyncGenerator<{ collection: string; id: string; bytes: Uint8Array }[]> {
    return documents(this.#s, collections);
  }

  /**
   * Reads every stored document and index entry and reports what fails:
   * values that fail their MAC or checksum (encrypted or compressed
   * databases), records that do not decode, and index entries that point at
   * no document.
   *
   * @returns How many stored values were checked, and the problems found.
   */
  verify(): Promise<VerifyReport> {
    return verify(this.#s);
  }

  /**
   * The index definitions stored for the given collections (all when
   * omitted), read from the storage (so other processes' count too); indexes
   * still being built are left out.
   *
   * @param collections Collection names, or `undefined` for all.
   * @returns `{ collection, spec }` per index.
   */
  indexDefinitions(
    collections?: readonly string[],
  ): Promise<{ collection: string; spec: IndexSpec }[]> {
    return indexDefinitions(this.#s, collections);
  }

  /**
   * The names of the collections that hold at least one stored document,
   * found by skipping from one collection to the next.
   *
   * @returns The names, in order.
   */
  collectionNames(): Promise<string[]> {
    return collectionNames(this.#s);
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
  countByIndex(
    collection: string,
    plan: Plan,
    examined?: { keys: number },
  ): Promise<number | undefined> {
    return countByIndex(this.#s, collection, plan, examined);
  }

  /**
   * Visits documents in insertion order (or reversed), optionally within a
   * creation-time frame.
   *
   * @param collection Collection name.
   * @param options Direction, time frame (inclusive), abort signal.
   * @returns Pages of document entries.
   */
  orderPages(
    collection: string,
    options: {
      reverse?: boolean;
      from?: number;
      to?: number;
      signal?: AbortSignal | undefined;
    },
  ): AsyncGenerator<DocPage> {
    return orderPages(this.#s, collection, options);
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
    return createIndex(this.#s, collection, spec, action);
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
    return dropIndex(this.#s, collection, name, action);
  }

  /**
   * Deletes every stored document of a collection in one commit.
   *
   * @param collection Collection name.
   * @param action For error messages.
   * @returns How many visible items were removed.
   */
  clear(collection: string, action: string): Promise<number> {
    return clear(this.#s, collection, action);
  }

  /**
   * Starts a bounded background sweep when the earliest expiry has passed.
   * Never awaited by the caller; errors land in `stats().lastError`.
   */
  poke(): void {
    return poke(this.#s);
  }

  /**
   * Removes up to `limit` expired items, earliest first.
   *
   * @param limit Most items to remove.
   * @returns How many were removed.
   */
  sweep(limit: number = SWEEP_BATCH): Promise<number> {
    return sweep(this.#s, limit);
  }

  /**
   * Removes every expired item now.
   *
   * @returns How many were removed.
   */
  cleanup(): Promise<number> {
    return cleanup(this.#s);
  }

  /**
   * Has the storage load other processes' changes (a read-only file
   * database), then rebuilds counts, schedules and index definitions.
   *
   * @returns Whether anything changed.
   */
  refresh(): Promise<boolean> {
    return refresh(this.#s);
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
  reloaded(changes: () => readonly Change[]): Promise<void> {
    return reloaded(this.#s, changes);
  }

  /**
   * Removes every expired item, then lets the storage drop dead data (the
   * file storage rewrites its log).
   *
   * @returns Whether the storage rewrote anything.
   */
  compact(): Promise<boolean> {
    return compact(this.#s);
  }

  /**
   * Counters and sizes.
   *
   * @returns A snapshot.
   */
  stats(): DatabaseStats {
    return stats(this.#s);
  }

  /**
   * Follows the changes of one collection: this engine's own writes, and on
   * a shared storage with `watch` the feed records of other processes.
   *
   * @param collection Collection name.
   * @param signal Ends the iteration.
   * @returns The changes, in the order this process saw them.
   */
  changes(
    collection: string,
    signal?: AbortSignal,
  ): AsyncGenerator<Change> {
    return changes(this.#s, collection, signal);
  }
}
