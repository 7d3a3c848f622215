/**
 * Collections: named sets of keyed items with TTL, tags and queries.
 *
 * `Collection` is a façade: its documented methods hand the collection's
 * state (`CollectionCore`, src/collection/core.ts) to plain functions, one
 * side per file of src/collection/; the document methods live in its base
 * class (`CollectionBase`, src/collection/base.ts). The files: point reads (reads.ts), writes by key
 * (writes.ts), queries and reads in insertion order (query.ts), documents
 * (documents.ts), MongoDB's single-document writes (mongo_writes.ts),
 * changes (watch.ts) and indexes (indexes.ts).
 *
 * @module
 */

import type { Cursor } from "./query/cursor.ts";
import type { Engine } from "./engine/engine.ts";
import type { StoredIndex } from "./engine/indexes.ts";
import type {
  Change,
  ChangesOptions,
  Entry,
  FeedChange,
  FindOptions,
  IndexDeclaration,
  IndexOptions,
  PutBatchOptions,
  PutOptions,
  ReadOptions,
  WatchOptions,
} from "./types.ts";
import { type CollectionCore, createCore, ready } from "./collection/core.ts";
import { get, getEntry, has } from "./collection/reads.ts";
import {
  clear,
  deleteBatch,
  deleteKey,
  put,
  putBatch,
} from "./collection/writes.ts";
import {
  between,
  count,
  find,
  ordered,
  type QueryFilter,
} from "./collection/query.ts";
import { changes, watch } from "./collection/watch.ts";
import { CollectionBase } from "./collection/base.ts";
import {
  createIndex,
  declareIndexes,
  dropIndex,
  listIndexes,
} from "./collection/indexes.ts";

export type { IndexDeclaration } from "./types.ts";
export type { QueryFilter } from "./collection/query.ts";

/**
 * A named set of keyed items. `Database` is the default collection, so every
 * method here also exists on the database.
 *
 * @typeParam T The values' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const users = db.collection<{ name: string }>("users");
 * await users.put("u1", { name: "Ada" });
 * assert((await users.get("u1"))?.name === "Ada");
 * assert(await db.get("u1") === null); // other collection
 * ```
 */
export class Collection<T = unknown> extends CollectionBase<T> {
  readonly #c: CollectionCore;

  /**
   * Internal: collections come from `open()` and `db.collection()`.
   *
   * @ignore
   */
  constructor(
    engine: Engine,
    name: string,
    indexes: readonly IndexDeclaration[] = [],
  ) {
    const core = createCore(engine, name);
    super(core);
    this.#c = core;
    if (indexes.length > 0) declareIndexes(this.#c, indexes);
  }

  /** The collection's name. */
  get name(): string {
    return this.#c.name;
  }

  /**
   * Stores a value under a new, time-ordered key.
   *
   * @param value The value (JSON-compatible; `Date`s round-trip); not an
   *   object with an `_id` (use `insert` for documents carrying their id).
   * @param options `ttl` in milliseconds and `tags`.
   * @returns The generated key.
   * @throws {TypeError} When the value is not JSON-compatible or has an
   *   `_id`, or an option name is unknown.
   * @throws {RangeError} When the TTL is not above 0 and at most 100 years.
   * @throws {TooLargeError} When the record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const key = await db.put({ temp: 21.5 }, { ttl: 60_000, tags: ["sensor"] });
   * assert(key.length === 26);
   * ```
   */
  put(value: T, options?: PutOptions): Promise<string>;
  /**
   * Stores a value under a key, replacing what was there.
   *
   * @param key The key: a non-empty string of at most 1024 UTF-8 bytes
   *   (`put(5, { a: 1 })` is a `TypeError`, not a value under a new key).
   * @param value The value (JSON-compatible; `Date`s round-trip). An object
   *   with an `_id` must have the key as its `_id`.
   * @param options `ttl` in milliseconds and `tags`.
   * @returns The key.
   * @throws {TypeError} When the key or value is invalid, the value's `_id`
   *   differs from the key, or an option name is unknown.
   * @throws {RangeError} When the TTL is not above 0 and at most 100 years.
   * @throws {TooLargeError} When the record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("user1", { name: "John", age: 30 }, { tags: ["user"] });
   * ```
   */
  put(key: string, value: T, options?: PutOptions): Promise<string>;
  put(...args: unknown[]): Promise<string> {
    return put(this.#c, args); // never throws: errors reject the promise
  }

  /**
   * Reads a value.
   *
   * @param key The key.
   * @param options `readonly: true` returns the stored value frozen and
   *   shared instead of a copy (default: the database's `readonly`).
   * @returns A copy of the value, or `null` when absent or expired.
   * @throws {TypeError} When the key or an option is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", { a: 1 });
   * assert((await db.get("k") as { a: number }).a === 1);
   * assert(await db.get("missing") === null);
   * ```
   */
  get(key: string, options?: ReadOptions): Promise<T | null> {
    return get<T>(this.#c, key, options);
  }

  /**
   * Reads an item with its metadata (tags, expiry, timestamps, version).
   *
   * @param key The key.
   * @param options `readonly: true` gives the stored value frozen and
   *   shared instead of a copy (default: the database's `readonly`).
   * @returns The entry, or `null` when absent or expired.
   * @throws {TypeError} When the key or an option is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", { a: 1 }, { tags: ["t"], ttl: 1000 });
   * const entry = await db.getEntry("k");
   * assert(entry?.tags[0] === "t" && entry.expiresAt !== undefined);
   * ```
   */
  async getEntry(
    key: string,
    options?: ReadOptions,
  ): Promise<Entry<T> | null> {
    return await getEntry<T>(this.#c, key, options);
  }

  /**
   * Whether a key holds a visible item.
   *
   * @param key The key.
   * @returns `true` when present and not expired.
   * @throws {TypeError} When the key is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", 1);
   * assert(await db.has("k"));
   * ```
   */
  async has(key: string): Promise<boolean> {
    return await has(this.#c, key);
  }

  /**
   * Deletes an item.
   *
   * @param key The key.
   * @returns `true` when a visible item was deleted.
   * @throws {TypeError} When the key is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", 1);
   * assert(await db.delete("k"));
   * assert(!(await db.delete("k")));
   * ```
   */
  async delete(key: string): Promise<boolean> {
    return await deleteKey(this.#c, key);
  }

  /**
   * Deletes every item (MicroTetherDB's `delete(purge=True)`), atomically.
   *
   * @returns How many visible items were deleted.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([1, 2, 3]);
   * assert(await db.clear() === 3);
   * ```
   */
  async clear(): Promise<number> {
    return await clear(this.#c);
  }

  /**
   * Follows the collection's changes as they happen: every put, delete,
   * expiry and clear made through this database, in order, none missed
   * (they wait in memory until read). On Deno KV opened with `feed: true`
   * it also reports the puts and deletes of other processes and isolates,
   * through `kv.watch`; those can be coalesced (when several commits land
   * between two notifications, only the latest is seen) and carry no
   * version. It sees changes from when the iteration starts (its first
   * `next()`); earlier ones are not replayed. The iteration
   * ends, quietly, when `signal` aborts (at once if it already has), the
   * loop breaks, or the database closes.
   *
   * @param options `signal` to stop.
   * @returns The changes.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const seen: string[] = [];
   * const done = (async () => {
   *   for await (const change of db.watch()) {
   *     seen.push(`${change.type} ${change.key}`);
   *     if (change.type === "delete") break;
   *   }
   * })();
   * await new Promise((r) => setTimeout(r, 0)); // the loop has started
   * await db.put("k", 1);
   * await db.delete("k");
   * await done;
   * assert.deepEqual(seen, ["put k", "delete k"]);
   * ```
   */
  watch(options: WatchOptions = {}): AsyncIterable<Change> {
    return watch(this.#c, options);
  }

  /**
   * The collection's durable change feed: each item's latest change (put,
   * delete; expiry with `expiries: true`) after `since`, in the order of
   * their positions, then (unless `live: false`) the new ones as they are
   * committed. Each change carries `seq`, its position: save it and pass it
   * back as `since` to resume, in this process or after a restart (memory
   * storage: while it is open; file and Deno KV: always). A change is in
   * the feed once its commit is durable. A key changed several times since
   * `since` appears once, with its latest change (as CouchDB's `_changes`).
   * See docs/changes.md for the guarantees.
   *
   * @param options `since` (exclusive; omitted: from the start), `limit`,
   *   `signal`, `live` (default `true`), `expiries` (default `false`).
   * @returns The changes; the iteration ends after `limit`, when `signal`
   *   aborts, when the database closes, or (with `live: false`) when caught
   *   up.
   * @throws {TypeError} When an option has the wrong type or is unknown.
   * @throws {RangeError} When `limit` is not a whole number >= 1 or `since`
   *   is not a position of this feed.
   * @throws {FeedGapError} (from the first `next()`) When changes after
   *   `since` may be gone: deletion markers older than `tombstoneRetention`
   *   were purged, or the database never reached `since`. Resync: read from
   *   the start.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const readings = db.collection<{ t: number }>("readings");
   * await readings.put("r1", { t: 20 });
   * const [first] = await Array.fromAsync(readings.changes({ live: false }));
   * await readings.put("r2", { t: 21 });
   * await readings.delete("r1");
   * const after = await Array.fromAsync(
   *   readings.changes({ since: first!.seq, live: false }),
   * );
   * assert.deepEqual(after.map((c) => `${c.type} ${c.key}`), ["put r2", "delete r1"]);
   * ```
   */
  changes(options: ChangesOptions = {}): AsyncIterable<FeedChange<T>> {
    return changes<T>(this.#c, options);
  }

  /**
   * Stores several values in one atomic write: all are stored or none is
   * (unless `atomic: false`).
   *
   * @param items Values (stored under new keys, in order) or a `Map` of keys
   *   to values.
   * @param options `ttl` (one for all, or one per item), `tags` (for all),
   *   `atomic: false` (a batch larger than one atomic write of the storage
   *   goes in several, in order: not atomic as a whole).
   * @returns The keys, in the order of `items`.
   * @throws {TypeError} When any key or value is invalid, the array has a
   *   hole (`[1, , 3]`), or an option name is unknown (nothing is stored).
   * @throws {RangeError} When a TTL is invalid or the TTL array's length
   *   differs from the number of items.
   * @throws {TooLargeError} When any record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const keys = await db.putBatch([{ a: 1 }, { b: 2 }], { ttl: [1000, 2000] });
   * assert(keys.length === 2 && keys[0]! < keys[1]!);
   * await db.putBatch(new Map([["k1", { a: 1 }], ["k2", { b: 2 }]]));
   * ```
   */
  async putBatch(
    items: readonly T[] | ReadonlyMap<string, T>,
    options?: PutBatchOptions,
  ): Promise<string[]> {
    return await putBatch(this.#c, items, options);
  }

  /**
   * Deletes several keys in one atomic write.
   *
   * @param keys The keys (duplicates are ignored).
   * @returns How many visible items were deleted.
   * @throws {TypeError} When any key is invalid (nothing is deleted).
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const keys = await db.putBatch([1, 2]);
   * assert(await db.deleteBatch([...keys, "nope"]) === 2);
   * ```
   */
  async deleteBatch(keys: Iterable<string>): Promise<number> {
    return await deleteBatch(this.#c, keys);
  }

  /**
   * Finds matching values lazily. The filter is compiled once; an unknown
   * operator or malformed filter throws here, before anything runs.
   *
   * @param filter Mongo-style conditions (see the README); `{}` or omitted
   *   matches everything. `$limit` caps the results like `options.limit`.
   * @param options `sort`, `fields`, `limit`, `skip`, `after` and an abort
   *   `signal` (an unknown name, or MongoDB's `projection`, is a
   *   `TypeError`).
   * @returns A cursor over value copies, in key order.
   * @throws {TypeError} When the filter is malformed or an option unknown.
   * @throws {RangeError} When `limit` or `skip` is not a whole number, or
   *   the filter nests deeper than 100 levels.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("a", { address: { city: "NY" } });
   * const found = await db.find({ "address.city": "NY" }, { limit: 5 }).toArray();
   * assert(found.length === 1);
   * ```
   */
  find(filter: QueryFilter = {}, options: FindOptions = {}): Cursor<T> {
    return find<T>(this.#c, filter, options);
  }

  /**
   * Runs a query and returns the matching values (MicroTetherDB's `query`).
   *
   * @param filter Mongo-style conditions with an optional `$limit`.
   * @returns Value copies, in key order.
   * @throws {TypeError} When the filter is malformed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("u", { age: 30 }, { tags: ["active"] });
   * const rows = await db.query({ age: { $gt: 25 }, tags: "active", $limit: 10 });
   * assert(rows.length === 1);
   * ```
   */
  async query(filter: QueryFilter = {}): Promise<T[]> {
    return await this.find(filter).toArray();
  }

  /**
   * Counts visible items, all of them or those matching a filter.
   *
   * @param filter Optional conditions.
   * @returns The count.
   * @throws {TypeError} When the filter is malformed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }]);
   * assert(await db.count() === 2);
   * assert(await db.count({ n: 1 }) === 1);
   * ```
   */
  async count(filter?: QueryFilter): Promise<number> {
    return await count(this.#c, filter);
  }
  /**
   * Every visible document, in key order.
   *
   * @returns Copies.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.collection("c").insert({ a: 1 });
   * assert.equal((await db.collection("c").all()).length, 1);
   * ```
   */
  async all(): Promise<T[]> {
    await ready(this.#c);
    return await find<T>(this.#c, {}, {}).toArray();
  }

  /**
   * The `n` most recently inserted items, oldest of them first (unosql's
   * `get_last_n_records`), read from the insertion-order index. `n = 0`
   * returns nothing.
   *
   * @param n How many.
   * @returns Copies.
   * @throws {RangeError} When `n` is not a whole number of at least 0.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
   * assert.deepEqual((await c.last(2)).map((d) => (d as { n: number }).n), [2, 3]);
   * assert.deepEqual(await c.last(0), []);
   * ```
   */
  async last(n: number): Promise<T[]> {
    await ready(this.#c);
    return (await ordered<T>(this.#c, n, true, "last").toArray()).reverse();
  }

  /**
   * The `n` earliest inserted items, in insertion order. `n = 0` returns
   * nothing.
   *
   * @param n How many.
   * @returns Copies.
   * @throws {RangeError} When `n` is not a whole number of at least 0.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection<{ _id?: string; n: number }>("c");
   * const [id] = await c.insertMany([{ n: 1 }, { n: 2 }]);
   * assert.deepEqual(await c.first(1), [{ _id: id, n: 1 }]);
   * ```
   */
  async first(n: number): Promise<T[]> {
    await ready(this.#c);
    return await ordered<T>(this.#c, n, false, "first").toArray();
  }

  /**
   * Documents whose `field` is between `start` and `end`, both inclusive,
   * in the field's order (unosql's `get_records_in_timeframe`). The field
   * `"_createdAt"` means the creation time, served by the insertion-order
   * index; any other field uses an index on it when there is one.
   *
   * @param field A (dotted) field, or `"_createdAt"`.
   * @param start The lowest value.
   * @param end The highest value.
   * @returns Copies.
   * @throws {TypeError} When the bounds are not numbers, strings or Dates.
   * @throws {RangeError} When a bound is `NaN` or an invalid `Date`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("readings");
   * await c.insertMany([{ t: 1 }, { t: 5 }, { t: 9 }]);
   * assert.equal((await c.between("t", 1, 5)).length, 2);
   * assert.equal((await c.between("_createdAt", 0, Date.now())).length, 3);
   * ```
   */
  async between(
    field: string,
    start: number | string | Date,
    end: number | string | Date,
  ): Promise<T[]> {
    return await between<T>(this.#c, field, start, end);
  }

  /**
   * Releases what the storage can reload (unosql's `optimize_memory`). On
   * the memory storage there is nothing to release and this does nothing;
   * it never loses data.
   *
   * @returns When done.
   *
   * @example
   * ```ts
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.unload();
   * ```
   */
  async unload(): Promise<void> {
    this.#c.engine.assertOpen(`Cannot unload '${this.#c.name}'`);
    await ready(this.#c);
  }

  /**
   * Creates a secondary index on one field or several (a compound index),
   * from the documents already stored, and keeps it up to date in the same
   * atomic commit as every later write. Idempotent for the same fields and
   * options.
   *
   * @param fields A (dotted) field or a list of them.
   * @param options `unique` rejects a second document with the same values
   *   (`DuplicateKeyError`); `sparse` skips documents missing every field.
   * @returns The index's name, MongoDB style: `"city_1_age_1"`.
   * @throws {TypeError} When a field name is invalid, or an index of that
   *   name exists with other options.
   * @throws {DuplicateKeyError} When `unique` and stored documents collide.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const users = db.collection("users");
   * assert.equal(await users.createIndex(["city", "age"]), "city_1_age_1");
   * ```
   */
  async createIndex(
    fields: string | readonly string[],
    options: IndexOptions = {},
  ): Promise<string> {
    return await createIndex(this.#c, fields, options);
  }

  /**
   * Drops an index and its entries.
   *
   * @param index The index's name, or its fields.
   * @returns Whether it existed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const users = db.collection("users");
   * await users.createIndex("email", { unique: true });
   * assert(await users.dropIndex("email"));
   * ```
   */
  async dropIndex(index: string | readonly string[]): Promise<boolean> {
    return await dropIndex(this.#c, index);
  }

  /**
   * The collection's secondary indexes, in name order.
   *
   * @returns Name, fields, options and whether each is multikey.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.createIndex("a");
   * assert.equal((await c.indexes())[0]?.name, "a_1");
   * ```
   */
  async indexes(): Promise<StoredIndex[]> {
    return await listIndexes(this.#c);
  }
}
