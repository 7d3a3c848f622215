/**
 * Public option and result types.
 *
 * @module
 */

import type { Projection } from "./query/projection.ts";
import type { SortSpec } from "./query/sort.ts";
import type { Storage } from "./storage/contract.ts";
import type { FileStorageOptions } from "./storage/file.ts";
import type { KvKey, KvLike } from "./storage/kv.ts";
import type {
  CompressionOptions,
  EncryptionOptions,
} from "./crypto/codec_storage.ts";

import type { Clock } from "./clock.ts";
import type { ProgressCallback } from "./progress.ts";
export type { Clock } from "./clock.ts";

/**
 * Options of {@linkcode open}. Every duration is in milliseconds. The file
 * storage's options (`durability`, `lockTimeout`, `readOnly`, `repair`,
 * `flushInterval`, `compactRatio`, `compactMinBytes`) apply with `path`.
 */
export interface OpenOptions extends FileStorageOptions {
  /**
   * Keep the database in this file (created with its directory if missing):
   * an append-only log, replayed into memory on open. Without `path` and
   * `storage` the database lives in memory.
   */
  readonly path?: string;
  /**
   * A storage adapter (instead of `path`). Defaults to a new in-memory
   * storage.
   */
  readonly storage?: Storage;
  /**
   * Keep the database in Deno KV (needs `--unstable-kv`): a `Deno.Kv` you
   * opened (`await Deno.openKv()` on Deno Deploy), or a string that `open`
   * passes to `Deno.openKv` (a file path, `":memory:"`, or a KV Connect URL
   * with `DENO_KV_ACCESS_TOKEN` set) and closes with the database. Other
   * processes and isolates may share it.
   */
  readonly kv?: KvLike | string;
  /**
   * With `kv`: the KV key prefix under which the database lives, so several
   * databases share one KV. Default `["tether"]`.
   */
  readonly prefix?: KvKey;
  /**
   * How often the TTL sweeper removes expired items. Default `10_000`;
   * at most 2^31 - 1; `Infinity` turns the timer off (operations still sweep).
   * Expired items are invisible to reads at once either way.
   */
  readonly ttlCheckInterval?: number;
  /**
   * How often a full cleanup pass runs: every expired item is removed, not
   * just a batch. (On Deno KV, which removes expired entries by itself, it
   * removes those this process knows of sooner.) Default `3_600_000` (one hour); `Infinity` turns it off.
   */
  readonly cleanupInterval?: number;
  /** The largest stored record, in bytes. Default `65_536` (64 KiB). */
  readonly maxValueBytes?: number;
  /**
   * The most memory the database's data may take: a number of bytes, or a
   * percentage of the system's available memory such as `"25%"`
   * (MicroTetherDB's `ram_percentage`; needs `--allow-sys`). It is enforced
   * on an estimate of what each stored document, index entry and TTL entry
   * really costs in the heap (its key, its encoded record, the decoded record
   * kept with it and the in-memory tables; see `stats().bytes`), so filling
   * a database to its limit grows the process by about the limit. A write
   * past it fails with a `QuotaError`; the logger is warned
   * (`"quota-pressure"`) once the estimate passes 90%. Default: no limit.
   */
  readonly memoryLimit?: number | `${number}%`;
  /** Aborting this signal closes the database. */
  readonly signal?: AbortSignal;
  /** The time source. Default `Date`. */
  readonly clock?: Clock;
  /**
   * How many times a write that lost a race against another writer of a
   * shared storage is retried before a `ConflictError`. Default `3`. A
   * commit refused only because another writer of other items took the
   * next change-feed positions is not counted: it is retried apart (up to
   * 64 times in a row).
   */
  readonly maxRetries?: number;
  /** Delay before such a retry. Default `100`. */
  readonly retryDelay?: number;
  /**
   * How long a deleted document's tombstone (its key and the time of the
   * deletion) is kept, so that an incremental backup (`backup(target, {
   * since })`) carries the deletion. Default `604_800_000` (7 days): take
   * incremental backups more often than this. Expired items leave none.
   */
  readonly tombstoneRetention?: number;
  /**
   * Encrypt every stored value (AES-CBC + HMAC-SHA256, WebCrypto):
   * `{ passphrase }` (keys from PBKDF2-SHA256, `iterations` default 600,000)
   * or `{ key }` (16 or 32 random bytes: AES-128 or AES-256). Chosen when the
   * database is created; needed to open it after. See the README's Security
   * section for what is protected.
   */
  readonly encryption?: EncryptionOptions;
  /**
   * Compress stored values with deflate when it makes them smaller: `true`
   * (values from 256 bytes) or `{ minBytes }`. Chosen when the database is
   * created (later opens may change `minBytes` or turn it off).
   */
  readonly compression?: CompressionOptions;
  /**
   * On Deno KV: every commit also records which documents it changed under
   * one key per collection, so that `watch()` in other processes and
   * isolates sees them (through `kv.watch`). Costs one more KV write per
   * commit, to a key every writer shares. Default `false`.
   */
  readonly feed?: boolean;
  /**
   * Reads return frozen, shared objects instead of copies (`get`, `find`
   * and what is built on them): faster for read-heavy code that does not
   * mutate results; mutating one throws in strict mode and never changes
   * the stored item. Values holding a `Date` are still copied (a `Date`
   * cannot be frozen). Each read may override it with its own `readonly`.
   * Default `false` (copies). Not to be confused with `readOnly`, which
   * opens a file database without writing to it.
   */
  readonly readonly?: boolean;
}

/**
 * One change seen by {@linkcode Collection.watch}.
 *
 * - `put`, `delete`: a document written or deleted through this database,
 *   or (with `remote: true`) by another process sharing the Deno KV storage.
 * - `expire`: a document the TTL sweeper of this process removed.
 * - `clear`: every document of the collection was deleted here.
 */
export interface Change {
  /** What happened. */
  readonly type: "put" | "delete" | "expire" | "clear";
  /** The collection. */
  readonly collection: string;
  /** The document's key (absent for `clear`). */
  readonly key?: string;
  /** The version written (`put` from this process). */
  readonly version?: number;
  /** Another process made the change (Deno KV with `feed: true`). */
  readonly remote?: boolean;
}

/** Options of {@linkcode Collection.watch}. */
export interface WatchOptions {
  /** Ends the iteration quietly (at once when already aborted). */
  readonly signal?: AbortSignal;
}

/**
 * One entry of the durable change feed ({@linkcode Collection.changes}).
 *
 * @typeParam T The document type.
 */
export interface FeedChange<T = unknown> {
  /**
   * The change's position: opaque, strictly growing along the feed. Save it
   * and pass it back as `since` to resume after this change.
   */
  readonly seq: string;
  /** What happened (`expire` only with `expiries: true`). */
  readonly type: "put" | "delete" | "expire";
  /** The collection. */
  readonly collection: string;
  /** The document's key. */
  readonly key: string;
  /**
   * The version: a put's version; for a delete the deleted document's
   * version + 1; for an expiry the expired document's version.
   */
  readonly version: number;
  /** The document as written (`put` only): a copy. */
  readonly doc?: T;
}

/** Options of {@linkcode Collection.changes}. */
export interface ChangesOptions {
  /**
   * Resume after this position (a {@linkcode FeedChange.seq}, exclusive).
   * Omitted: from the start (every item's latest change).
   */
  readonly since?: string | undefined;
  /** Most changes yielded; then the iteration ends. A whole number >= 1. */
  readonly limit?: number | undefined;
  /** Ends the iteration. */
  readonly signal?: AbortSignal | undefined;
  /**
   * `true` (the default): after catching up, wait for new changes until
   * `signal` aborts or the database closes. `false`: end when caught up.
   */
  readonly live?: boolean | undefined;
  /** Also yield expiries (`type: "expire"`). Default `false`. */
  readonly expiries?: boolean | undefined;
}

/** Options of `Database.changes`: also which collections. */
export interface DatabaseChangesOptions extends ChangesOptions {
  /** Only these collections (default: every collection). */
  readonly collections?: readonly string[] | undefined;
}

/** Options of `put` and `putBatch`. */
export interface PutOptions {
  /**
   * Time to live in milliseconds: an item put at time T is visible while
   * `now < T + ttl`. Above 0 and at most 100 years (`3_155_760_000_000`);
   * NaN, negative or larger values are a `RangeError`. Omit for no expiry.
   */
  readonly ttl?: number;
  /** Tags attached to the item (metadata; the value is never changed). */
  readonly tags?: readonly string[];
}

/** Options of `putBatch`: one TTL for all, or one per item. */
export interface PutBatchOptions {
  /** One TTL for every item, or one per item (`undefined` for none). */
  readonly ttl?: number | readonly (number | undefined)[];
  /** Tags for every item. */
  readonly tags?: readonly string[];
  /**
   * `false`: a batch larger than one atomic write of the storage (Deno KV:
   * 100 version checks, 1,000 mutations, 800 KiB) is written in several
   * atomic writes, in order; not atomic as a whole (a failure leaves the
   * groups before it written, and says how many items were). Default
   * `true`: all or nothing, and a `TooLargeError` when it does not fit.
   */
  readonly atomic?: boolean;
  /**
   * `true` (with `atomic: false`): take every key as new, for bulk loads
   * and replicas (what `receive()` with `assumeNew` uses). On Deno KV, for
   * a collection without indexes, each item is written with one KV mutation
   * and no read or version check, in atomic commits of up to about 975
   * items (not 90). A put over an item that exists replaces it as a new
   * one: version 1 and a new `createdAt` (not the old version + 1), and
   * `stats()`'s item count and the memory estimate count it twice; the change
   * feed lists it once, at its new position. With indexes, or on other
   * storages (which know every item without reading), it is written as
   * with `atomic: false` alone. Default `false`.
   */
  readonly assumeNew?: boolean;
  /**
   * `true`: every key must be absent (an insert by key, where
   * `insertMany` takes ids from `_id` fields). A key that holds a live item
   * fails the batch with a `DuplicateKeyError` whose `key` and `holder` are
   * that key, and nothing is written (with `atomic: false`, the atomic
   * steps before the one holding it stay written). An expired item is
   * absent. Not with `assumeNew`. Default `false`: a put replaces.
   */
  readonly onlyNew?: boolean;
  /**
   * Keys to delete in the same write as the puts: all of it commits, or
   * none (with `atomic: false`, in the same steps, after the puts). A key
   * may not be both put and deleted; not with `assumeNew`. Keys of absent
   * items are ignored, as by `deleteBatch`.
   */
  readonly deletes?: Iterable<string>;
}

/** Options of `get` and `getEntry`. */
export interface ReadOptions {
  /**
   * Return a frozen, shared object instead of a copy (see
   * {@linkcode OpenOptions.readonly}, whose setting is the default).
   */
  readonly readonly?: boolean;
}

/** Options of `find`. */
export interface FindOptions {
  /** Order: `{ field: 1 }` ascending, `-1` descending, several in turn. */
  readonly sort?: SortSpec;
  /** Projection: `{ a: 1, "b.c": 1 }` keeps, `{ secret: 0 }` drops. */
  readonly fields?: Projection;
  /** Return at most this many items. */
  readonly limit?: number;
  /** Skip this many matching items first. */
  readonly skip?: number;
  /** Aborting it stops the scan; iteration rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Resume after this position, from `cursor.page()` of the same query
   * (`skip` then counts from there: it is not applied again).
   */
  readonly after?: string | undefined;
  /**
   * Return frozen, shared objects instead of copies (see
   * {@linkcode OpenOptions.readonly}, whose setting is the default).
   */
  readonly readonly?: boolean;
}

/** An item with its key and metadata, as returned by `getEntry`. */
export interface Entry<T> {
  /** The item's key. */
  readonly key: string;
  /** A copy of the value. */
  readonly value: T;
  /** The item's tags (empty when it has none). */
  readonly tags: readonly string[];
  /** Epoch ms from which the item is invisible, or `undefined`. */
  readonly expiresAt: number | undefined;
  /** Epoch ms of the first write of this key (since it last expired or was deleted). */
  readonly createdAt: number;
  /** Epoch ms of the latest write. */
  readonly updatedAt: number;
  /** 1 on the first write, incremented by every later one. */
  readonly version: number;
}

/** Counters returned by `stats()`. */
export interface DatabaseStats {
  /** The storage adapter's class name. */
  readonly storage: string;
  /** Visible items (expired ones are excluded at once). */
  readonly items: number;
  /** Visible items that have a TTL. */
  readonly ttlItems: number;
  /**
   * Estimated memory held by the stored data, in bytes: documents (key,
   * encoded and decoded record), index and insertion-order entries and TTL
   * entries, expired-but-unswept included; what `memoryLimit` is enforced on.
   * Deletion tombstones are not counted.
   */
  readonly bytes: number;
  /** The memory limit in bytes, or `undefined`. */
  readonly memoryLimit: number | undefined;
  /** Operation counts since open. */
  readonly ops: {
    /** Items written. */
    readonly puts: number;
    /** Key lookups. */
    readonly gets: number;
    /** Items deleted by the caller. */
    readonly deletes: number;
    /** Queries run. */
    readonly queries: number;
  };
  /** Sweeps run (timer, opportunistic and `cleanup()`). */
  readonly sweeps: number;
  /** Expired items removed by sweeps. */
  readonly expired: number;
  /** When the last sweep ran, epoch ms. */
  readonly lastSweepAt: number | undefined;
  /** Errors raised by background sweeps (the last one is `lastError`). */
  readonly sweepErrors: number;
  /** The last background error, if any. */
  readonly lastError: Error | undefined;
  /**
   * The storage's own counters, if it keeps any: for the file storage, a
   * `FileStorageStats` (file and live bytes, fsyncs, compactions, and what
   * was recovered or repaired at open).
   */
  readonly storageStats: Readonly<Record<string, unknown>> | undefined;
}

/** Options of `createIndex`. */
export interface IndexOptions {
  /** Reject a second document with the same values. */
  readonly unique?: boolean;
  /** Leave out documents that have none of the fields. */
  readonly sparse?: boolean;
}

/** Options of `update` and `replace`. */
export interface UpdateOptions {
  /**
   * Optimistic concurrency: the document(s) must be at this version, else a
   * `ConflictError` and nothing changes. A whole number from 1 (versions
   * start at 1); anything else is a `RangeError` (`TypeError` when not a
   * number). `upsert` and other MongoDB options are refused: an options
   * object with a name not listed here is a `TypeError`.
   */
  readonly expectedVersion?: number;
}

/** An index declared with `db.collection(name, { indexes })`. */
export interface IndexDeclaration extends IndexOptions {
  /** A (dotted) field or a list of them. */
  readonly fields: string | readonly string[];
}

/** Options of `db.collection()`. */
export interface CollectionOptions {
  /**
   * Indexes to create (if missing) before the collection's first operation
   * runs: `[{ fields: ["city", "age"] }, { fields: "email", unique: true }]`.
   */
  readonly indexes?: readonly IndexDeclaration[];
}

/**
 * Options of `Database.rekey`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open, type RekeyOptions } from "@tether/db";
 * await using db = await open({
 *   encryption: { passphrase: "old secret", iterations: 1000 },
 * });
 * await db.put("k", 1);
 * const seen: [number, number][] = [];
 * const options: RekeyOptions = { onProgress: (done, total) => seen.push([done, total]) };
 * await db.rekey({ passphrase: "new secret", iterations: 1000 }, options);
 * assert.deepEqual(seen.at(-1), [1, 1]);
 * ```
 */
export interface RekeyOptions {
  /**
   * Called as values are re-encrypted (after each group of them), with how
   * many are done of how many were stored when the re-encryption began
   * (values written meanwhile are already under the new key): the total is
   * known from the first call on, `done` never decreases nor passes it, and
   * the last call, once the old secret is revoked, has `done === total`. If
   * it throws, the rekey stops with that error; calling `rekey` again
   * finishes the job.
   */
  readonly onProgress?: ProgressCallback | undefined;
}
