/**
 * The engine's shared state: settings, per-collection bookkeeping, the write
 * queue, counters, and the small helpers every engine file uses. Each
 * mechanism (write path, reads, index builds, expiry, ...) is a set of plain
 * functions over one {@linkcode EngineCore}; `Engine` (engine.ts) is the
 * façade that `Database` and `Collection` call.
 *
 * @module
 */

import type { Log } from "../logger.ts";
import {
  ClosedError,
  DuplicateKeyError,
  QuotaError,
  TooLargeError,
} from "../errors.ts";
import { CollectionIndexes, type IndexEntry } from "./indexes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type {
  ScanOptions,
  Storage,
  StorageCheck,
  StorageEntry,
} from "../storage/contract.ts";
import { TtlSchedule } from "./ttl_schedule.ts";
import type { Change, Clock } from "../types.ts";
import {
  type CheckedValue,
  decodeRecord,
  type StoredRecord,
} from "../value_codec.ts";
import { KeyGenerator } from "../auto_key.ts";
import { hidesValues } from "../validate.ts";
import { Blinder } from "../crypto/blind_index.ts";
import { ChangeFeed } from "./change_feed.ts";
import { FeedIndex } from "./feed_index.ts";
import { DOC, isExpired } from "./layout.ts";
import { DocSlot, RecordTable } from "./record_table.ts";
import { RamIndexes } from "./ram_index.ts";

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
export interface CollectionState {
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
  /** The object tier's documents (local storages only). */
  readonly table: RecordTable | undefined;
  /** The object tier's index trees (local storages only). */
  readonly ram: RamIndexes | undefined;
  /**
   * Ids that may have a tombstone (local storages only): a put of one of
   * them removes it; others need no delete.
   */
  readonly tombs: Set<string> | undefined;
}

/** One item's change inside a commit. */
export interface ItemChange {
  readonly id: string;
  readonly key: Uint8Array;
  readonly entry: StorageEntry | null;
  readonly old: StoredRecord | undefined;
  readonly next: StoredRecord | undefined;
  /** The id was just generated: it has no tombstone to remove. */
  readonly fresh?: boolean;
}

/**
 * A page of documents read through an index: `sources[i]` (or, made on
 * demand, `sourceOf(i)`) is the index entry that led to document `i`, and
 * `range` which of the plan's ranges it was in (cursor positions resume
 * from them).
 */
export type DocPage = readonly StorageEntry[] & {
  readonly sources?: readonly { readonly key: Uint8Array }[];
  readonly sourceOf?: (i: number) => { readonly key: Uint8Array };
  readonly range?: number;
};

/** One step of an atomic write. */
export type WriteOp = PutOp | DeleteOp;

/** What a write's group commit promises it: applied, maybe not durable. */
export interface GroupOutcome {
  /** Whether a visible item existed before. */
  readonly existed: boolean;
  /** Settles once the commit is durable (`undefined`: already). */
  readonly durable: Promise<void> | undefined;
}

/** A group of single writes waiting in the queue (put_group.ts). */
export interface QueuedGroup {
  /**
   * Whether a write may join.
   *
   * @param collection The write's collection.
   * @param op The write.
   */
  takes(collection: string, op: WriteOp): boolean;
  /**
   * Adds a write.
   *
   * @param op The write.
   * @param action For its error messages.
   * @returns Its outcome, once the group ran.
   */
  add(op: WriteOp, action: string): Promise<GroupOutcome>;
}

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
  /** Reads return frozen shared values by default (`readonly: true`). */
  readonly readonly?: boolean;
}

/**
 * The state one engine shares between its mechanisms. Internal: fields are
 * public to the engine's files, never to callers of `Engine`.
 */
export class EngineCore {
  /** The storage adapter. */
  readonly storage: Storage;
  /** Digests of index values, when the storage keeps indexes blind. */
  readonly blinder: Blinder | undefined;
  /** Resolved settings. */
  readonly settings: EngineSettings;
  /**
   * Only this process writes the storage and it offers the object tier
   * (memory; a file storage once it does): the engine keeps the records,
   * ordered keys and index trees, and writes take the fast path, without
   * pre-reads or version checks. The one place that decides.
   */
  readonly local: boolean;
  /**
   * The storage persists nothing (memory): documents go to it as objects,
   * and index entries live only in the engine's trees.
   */
  readonly volatile: boolean;
  /** The storage keeps only keys in RAM (see `StorageCapabilities`). */
  readonly valuesOnDisk: boolean;
  /** Auto keys. */
  readonly keys: KeyGenerator;
  /** Per collection bookkeeping. */
  readonly collections: Map<string, CollectionState> = new Map();
  /** Encoded document-key prefixes, per collection. */
  readonly prefixes: Map<string, Uint8Array> = new Map();
  /** Estimated memory held (see size_estimate.ts). */
  bytes = 0;
  /** Whether the estimate is past 90% of `memoryLimit` (warned once). */
  pressed = false;
  /** `memoryLimit`, capped by what the V8 heap can hold. */
  memoryLimit: number;
  /** The write queue: one write (or exclusive task) at a time. */
  queue: Promise<unknown> = Promise.resolve();
  /** Tasks in the write queue, running or waiting (0: a write may run now). */
  queued = 0;
  /**
   * The group of single writes waiting last in the queue, which later
   * single writes may join (put_group.ts); any other task queued closes it.
   */
  openGroup: QueuedGroup | undefined = undefined;
  /**
   * Shared storages: the checks of the last commit the storage refused, to
   * tell a race lost on the change feed's counter alone from one lost on
   * what the write read (`feedOnlyRace` in write.ts).
   */
  refused: readonly StorageCheck[] | undefined = undefined;
  /** Whether `close()` was called. */
  closed = false;
  /** What `close()` returned. */
  closing: Promise<void> | undefined;
  /** Background timers. */
  timers: number[] = [];
  /** Run on `close()`. */
  onClose: (() => void)[] = [];
  /** A sweep is running. */
  sweeping = false;
  /** In-process change listeners (`watch`). */
  readonly listeners: Set<(change: Change) => void> = new Set();
  /** Holds each commit's changes back until the commit is durable. */
  readonly feed: ChangeFeed;
  /** Durable change feed: positions, and the in-RAM index (local). */
  readonly feedIndex: FeedIndex;
  /** Records written before the feed were loaded (they have no position). */
  feedLegacy = false;
  /** Bumped by every load, so an indexing that a reload overtook stops. */
  feedLoads = 0;
  /** The deferred indexing running, if any. */
  feedIndexing: Promise<void> | undefined = undefined;
  /** The load running (or the last one, settled): feed readers wait for it. */
  feedLoading: Promise<void> = Promise.resolve();
  /** Tells this engine's own feed records from other processes'. */
  readonly writer: string = crypto.randomUUID();
  /** The sweep an operation started, if running. */
  poked: Promise<unknown> | undefined;
  /** A pending rebuild of the bookkeeping. */
  reloading: Promise<void> | undefined;
  /** Operation counters for `stats()`. */
  ops = { puts: 0, gets: 0, deletes: 0, queries: 0 };
  /** Sweeps run. */
  sweeps = 0;
  /** Items removed because they expired. */
  expired = 0;
  /** When the last sweep ran. */
  lastSweepAt: number | undefined;
  /** Background errors. */
  sweepErrors = 0;
  /** The last background error. */
  lastError: Error | undefined;

  /**
   * @param storage The storage adapter.
   * @param settings Resolved settings.
   */
  constructor(storage: Storage, settings: EngineSettings) {
    this.storage = storage;
    this.blinder = storage.blind === undefined
      ? undefined
      : new Blinder(storage.blind);
    this.settings = settings;
    // Storages that wrap values in bytes (encryption, compression) do not
    // pass the object tier on: they keep the full pipeline.
    this.local = !storage.capabilities.shared && storage.objects !== undefined;
    this.volatile = this.local && storage.objects?.volatile === true;
    this.valuesOnDisk = storage.capabilities.valuesOnDisk === true;
    this.memoryLimit = settings.memoryLimit;
    this.keys = new KeyGenerator(settings.clock);
    this.feed = new ChangeFeed((change) => this.emit(change));
    this.feedIndex = new FeedIndex(storage.capabilities.shared);
    this.feedIndex.liveBound = () => {
      let n = 0;
      for (const state of this.collections.values()) {
        n += state.stored + (state.tombs?.size ?? 0);
      }
      return n;
    };
  }

  /**
   * Adds `delta` to the memory estimate; tells the logger once when it
   * passes 90% of `memoryLimit` (again only after it fell below 80%).
   */
  account(delta: number): void {
    const bytes = this.bytes += delta;
    const memoryLimit = this.memoryLimit;
    if (bytes > memoryLimit * 0.9) {
      if (this.pressed) return;
      this.pressed = true;
      this.settings.log?.warn(
        "quota-pressure",
        `The database holds an estimated ${bytes} bytes, ${
          Math.round(bytes / memoryLimit * 100)
        }% of its ${memoryLimit}-byte memoryLimit; writes past it fail with a QuotaError`,
        { bytes, memoryLimit },
      );
    } else if (bytes < memoryLimit * 0.8) {
      this.pressed = false;
    }
  }

  state(collection: string): CollectionState {
    let state = this.collections.get(collection);
    if (state === undefined) {
      state = {
        stored: 0,
        schedule: new TtlSchedule<string>(),
        inflight: new Map(),
        indexes: new CollectionIndexes(collection, this.blinder),
        seq: 0,
        schema: null,
        existRate: 0,
        recent: new Map(),
        recentBytes: 0,
        table: this.local ? new RecordTable() : undefined,
        ram: this.local ? new RamIndexes(collection, this.volatile) : undefined,
        tombs: this.local ? new Set() : undefined,
      };
      this.collections.set(collection, state);
    }
    return state;
  }

  recordError(e: unknown): void {
    if (e instanceof ClosedError) return;
    this.sweepErrors++;
    this.lastError = e instanceof Error ? e : new Error(String(e));
  }

  /**
   * The current time from the clock.
   *
   * @returns Epoch milliseconds.
   */
  now(): number {
    return this.settings.clock.now();
  }

  /**
   * Throws a `ClosedError` when closed.
   *
   * @param action What is being attempted.
   */
  assertOpen(action: string): void {
    if (this.closed) {
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
    let prefix = this.prefixes.get(collection);
    if (prefix === undefined) {
      prefix = encodeKey([DOC, collection]);
      this.prefixes.set(collection, prefix);
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
    if (entry instanceof DocSlot) return entry.id;
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
   * A read that fails because `close()` ran meanwhile (Deno KV then throws
   * `BadResource`) is a `ClosedError`.
   */
  closedDuring(e: unknown): unknown {
    return this.closed && !(e instanceof ClosedError)
      ? new ClosedError(
        "Cannot read: the database was closed during the read",
        {
          cause: e,
        },
      )
      : e;
  }

  /** `storage.scan`, whose failure after `close()` is a `ClosedError`. */
  async *scanOpen(
    options: ScanOptions,
  ): AsyncGenerator<readonly StorageEntry[]> {
    try {
      yield* this.storage.scan(options);
    } catch (e) {
      throw this.closedDuring(e);
    }
  }

  /** `storage.getMany`, whose failure after `close()` is a `ClosedError`. */
  async getManyOpen(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    try {
      return await this.storage.getMany(keys);
    } catch (e) {
      throw this.closedDuring(e);
    }
  }

  enqueue<R>(fn: () => Promise<R>): Promise<R> {
    this.queued++;
    this.openGroup = undefined;
    const run = this.queue.then(fn);
    const done = (): void => {
      this.queued--;
    };
    this.queue = run.then(done, done);
    return run;
  }

  /** Refuses a write that would take the estimate past `memoryLimit`. */
  fitsMemory(delta: number, action: string): void {
    const memoryLimit = this.memoryLimit;
    if (delta > 0 && this.bytes + delta > memoryLimit) {
      throw new QuotaError(
        `${action}: it needs an estimated ${delta} more bytes of memory and the database holds ${this.bytes} of its ${memoryLimit}-byte memoryLimit`,
      );
    }
  }

  /** Refuses a caller's write that one commit of the storage cannot hold. */
  fits(checks: number, mutations: number, action: string): void {
    const limits = this.storage.limits;
    if (limits === undefined) return;
    if (checks > limits.maxChecks || mutations > limits.maxMutations) {
      throw new TooLargeError(
        `${action}: one atomic write would need ${checks} version checks and ${mutations} mutations; the storage allows ${limits.maxChecks} and ${limits.maxMutations} (write fewer items per call, or putBatch(items, { atomic: false }) to write them in several atomic steps)`,
      );
    }
  }

  entriesOf(
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

  duplicate(
    action: string,
    collection: string,
    entry: IndexEntry,
    holder: string,
    key?: string,
  ): DuplicateKeyError {
    // An encrypted database's messages name keys and fields, never values.
    const shown = hidesValues(this.storage)
      ? "that value"
      : entry.tuple.length === 1
      ? JSON.stringify(entry.tuple[0])
      : JSON.stringify(entry.tuple);
    const claim = key === undefined || key === holder
      ? ""
      : `; item '${key}' cannot have it too`;
    return new DuplicateKeyError(
      `${action}: unique index '${entry.index}' of '${collection}' already has ${shown} (item '${holder}')${claim}`,
      key === undefined
        ? { holder, index: entry.index }
        : { key, holder, index: entry.index },
    );
  }

  /** Whether other processes may write the storage too. */
  get shared(): boolean {
    return this.storage.capabilities.shared;
  }

  /**
   * Whether bulk work goes in steps: the storage is shared with other
   * processes or limits what one commit holds (Deno KV).
   */
  get bulk(): boolean {
    return this.shared || this.storage.limits !== undefined;
  }

  /** How many items one commit of bulk work takes at first. */
  groupSize(state: CollectionState): number {
    const limits = this.storage.limits;
    if (limits === undefined) return 1024;
    const list = state.indexes.list;
    const uniques = list.filter((i) => i.unique).length;
    const checks = 1 + 2 * uniques;
    // The item, its tombstone, its by-position key and the one it replaces
    // (change feed), and each entry removed and added.
    const mutations = 4 + 2 * (list.length + (state.indexes.ordered ? 1 : 0));
    return Math.max(
      1,
      Math.min(
        Math.floor((limits.maxChecks - 3) / checks),
        Math.floor((limits.maxMutations - 3) / mutations),
      ),
    );
  }

  /**
   * Runs `fn` on consecutive groups of `items`, halving the group when the
   * storage finds it too large for one commit.
   */
  async inGroups<I>(
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

  emit(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }
}
