/**
 * The read side of the engine's façade: point reads, scans, index lookups,
 * counts, exports, verification, statistics and watching. `Engine`
 * (engine.ts) extends it with writes and the engine's life cycle.
 *
 * @module
 */

import type { IndexSpec } from "./index_keys.ts";
import type { StoredIndex } from "./indexes.ts";
import type { Plan } from "../query/planner.ts";
import type { Filter } from "../query/compile.ts";
import type { SortSpec } from "../query/sort.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { Change, DatabaseStats, FeedChange } from "../types.ts";
import type { FeedRequest } from "./feed.ts";
import { durableChanges } from "./feed_hooks.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { DocPage, EngineCore } from "./state.ts";
import {
  collectionNames,
  countByIndex,
  documents,
  idPages,
  indexPages,
  type IndexWalk,
  indexWalk,
  orderPages,
  pages,
  peek,
  peekSlot,
  plan,
  read,
} from "./read.ts";
import type { DocSlot } from "./record_table.ts";
import { indexDefinitions } from "./index_build.ts";
import { countLocal } from "./local_read.ts";
import { tombstones, tombstonesFrom } from "./tombstones.ts";
import { verify, type VerifyReport } from "./verify.ts";
import type { ProgressCallback } from "../progress.ts";
import { count, countQuery, stats } from "./stats.ts";
import { changes } from "./watch.ts";

/** The engine's reads (internal: see `Engine`). */
export class EngineReads {
  readonly #s: EngineCore;

  /**
   * @param core The engine's shared state.
   */
  constructor(core: EngineCore) {
    this.#s = core;
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
   * Reads one document at once when the object tier holds it.
   *
   * @param collection Collection name.
   * @param id Document key.
   * @param action For error messages.
   * @returns The record (shared: never hand it out), `null` when absent or
   *   expired, `undefined` when {@linkcode Engine.read} must read it.
   * @throws {ClosedError} After `close()`.
   */
  peek(
    collection: string,
    id: string,
    action: string,
  ): StoredRecord | null | undefined {
    return peek(this.#s, collection, id, action);
  }

  /**
   * {@linkcode EngineReads.peek} giving the document's slot: its value is
   * `doc` (shared: never hand it out).
   *
   * @param collection Collection name.
   * @param id Document key.
   * @param action For error messages.
   * @returns The slot, `null` when absent or expired, `undefined` when
   *   {@linkcode Engine.read} must read it.
   * @throws {ClosedError} After `close()`.
   */
  peekSlot(
    collection: string,
    id: string,
    action: string,
  ): DocSlot | null | undefined {
    return peekSlot(this.#s, collection, id, action);
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

  /**
   * Counts the unexpired documents passing `predicate`, from the object
   * tier in no particular order; `undefined` when it does not hold every
   * record (see {@linkcode countLocal}).
   *
   * @param collection Collection name.
   * @param predicate The compiled filter.
   * @param stopAt Stop at this many matches.
   * @param signal Stops the count.
   * @param examined Counts the documents read.
   * @returns The matches, or `undefined`.
   */
  countLocal(
    collection: string,
    predicate: (value: unknown, tags: readonly string[] | undefined) => boolean,
    stopAt: number,
    signal: AbortSignal | undefined,
    examined: { docs: number } = { docs: 0 },
  ): Promise<number | undefined> {
    return countLocal(
      this.#s,
      collection,
      predicate,
      stopAt,
      signal,
      examined,
    );
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
   * @param options Abort signal, a counter of index entries examined, where
   *   to resume, and whether pages must give each document's index entry.
   * @returns Pages of document entries.
   */
  indexPages(
    collection: string,
    plan: Plan,
    options: {
      signal?: AbortSignal | undefined;
      examined?: { keys: number };
      after?: { range: number; key: Uint8Array } | undefined;
      positions?: boolean | undefined;
    },
  ): AsyncGenerator<DocPage> {
    return indexPages(this.#s, collection, plan, options);
  }

  /**
   * The object tier's walk of an index plan, for one synchronous loop;
   * `undefined` when the plan needs {@linkcode EngineReads.indexPages}
   * (see `IndexWalk` in read.ts).
   *
   * @param collection Collection name.
   * @param plan An index plan.
   * @returns The walk, or `undefined`.
   */
  indexWalk(collection: string, plan: Plan): Promise<IndexWalk | undefined> {
    return indexWalk(this.#s, collection, plan);
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
   * @param onProgress Told how many values are checked, of how many.
   * @returns How many stored values were checked, and the problems found.
   */
  verify(onProgress?: ProgressCallback): Promise<VerifyReport> {
    return verify(this.#s, onProgress);
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

  /**
   * Reads the durable change feed (see feed.ts and docs/changes.md).
   *
   * @param request The checked options.
   * @returns The changes, in position order.
   */
  durableChanges<T>(request: FeedRequest): AsyncIterable<FeedChange<T>> {
    return durableChanges<T>(this.#s, request);
  }
}
