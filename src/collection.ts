/**
 * Collections: named sets of keyed items with TTL, tags and queries.
 *
 * `Collection` is a façade: its documented methods hand the collection's
 * state (`CollectionCore`, src/collection/core.ts) to plain functions, one
 * side per file of src/collection/: point reads (reads.ts), writes by key
 * (writes.ts), queries and reads in insertion order (query.ts), documents
 * (documents.ts), MongoDB's single-document writes (mongo_writes.ts),
 * changes (watch.ts) and indexes (indexes.ts).
 *
 * @module
 */

import type {
  AggregateOptions,
  AggregationCursor,
  Pipeline,
} from "./query/aggregate.ts";
import type { Cursor } from "./query/cursor.ts";
import type { Engine } from "./engine/engine.ts";
import type { StoredIndex } from "./engine/indexes.ts";
import type { Update } from "./query/update.ts";
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
  UpdateOptions,
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
  aggregate,
  between,
  count,
  distinct,
  find,
  findOne,
  ordered,
  type QueryFilter,
} from "./collection/query.ts";
import {
  deleteMany,
  insertMany,
  replace,
  update,
} from "./collection/documents.ts";
import {
  deleteFirst,
  type DeleteResult,
  findAndUpdate,
  type FindOneAndUpdateOptions,
  replaceDocument,
  type ReplaceOneOptions,
  updateDocuments,
  type UpdateOneOptions,
  type UpdateResult,
} from "./collection/mongo_writes.ts";
import { changes, watch } from "./collection/watch.ts";
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
export class Collection<T = unknown> {
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
    this.#c = createCore(engine, name);
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
   * ends when `signal` aborts, the loop breaks, or the database closes.
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
  // --- Documents (unosql's surface) ---------------------------------------

  /**
   * Inserts a document. Its `_id` (a string) is kept when given, else a new
   * time-ordered id is generated; the stored document carries it as `_id`.
   *
   * @param doc A plain object.
   * @param options `ttl` (ms; the document expires like a `put` item) and
   *   `tags`.
   * @returns The document's id.
   * @throws {TypeError} When `doc` is not a plain object, `_id` is not a
   *   non-empty string, or a value is not JSON-compatible.
   * @throws {RangeError} When the TTL is not above 0 and at most 100 years.
   * @throws {DuplicateKeyError} When the id or a unique index value is taken.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const users = db.collection("users");
   * const id = await users.insert({ name: "Arman", age: 29 });
   * assert.deepEqual(await users.findOne({ name: "Arman" }), { _id: id, name: "Arman", age: 29 });
   * const session = await db.collection("sessions").insert({ user: id }, { ttl: 60_000 });
   * assert.equal((await db.collection("sessions").getEntry(session))?.expiresAt !== undefined, true);
   * ```
   */
  async insert(doc: T, options: PutOptions = {}): Promise<string> {
    const [id] = await this.insertMany([doc], options);
    return id!;
  }

  /**
   * Inserts several documents atomically: all or none.
   *
   * @param docs Plain objects.
   * @param options `ttl` (ms) and `tags` for every document.
   * @returns Their ids, in order.
   * @throws {TypeError} When a document is invalid (nothing is inserted).
   * @throws {DuplicateKeyError} When an id or unique index value is taken,
   *   also between the documents given (nothing is inserted).
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const ids = await db.collection("c").insertMany([{ a: 1 }, { _id: "x", a: 2 }]);
   * assert.equal(ids[1], "x");
   * ```
   */
  async insertMany(
    docs: readonly T[],
    options: PutOptions = {},
  ): Promise<string[]> {
    return await insertMany(this.#c, docs, options);
  }

  /**
   * Finds the first matching document.
   *
   * @param filter Mongo-style conditions.
   * @param options `sort`, `skip`, `fields` and `signal`.
   * @returns A copy, or `null`.
   * @throws {TypeError} When the filter is malformed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insertMany([{ n: 1 }, { n: 2 }]);
   * assert.equal((await c.findOne({}, { sort: { n: -1 } }) as { n: number }).n, 2);
   * ```
   */
  async findOne(
    filter: QueryFilter = {},
    options: Omit<FindOptions, "limit"> = {},
  ): Promise<T | null> {
    return await findOne<T>(this.#c, filter, options);
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
   * Updates every matching document: a plain object (no operators)
   * replaces its content (its `_id` kept), as in MongoDB; update operators
   * (`$set`, `$unset`, `$inc`, `$push`, ...: docs/updates.md) change only
   * the fields they name. A
   * document whose content does not change keeps its version and timestamp;
   * a changed one gets version + 1 and a new `updatedAt`. Tags and TTL are
   * kept. All changes are one atomic commit, except on a storage that limits
   * the size of one (Deno KV): there, more documents than one commit holds
   * are changed in several, each document atomically with its index
   * entries, and an error part-way says how many were applied.
   *
   * @param filter Which documents.
   * @param changes A replacement document or update operators.
   * @param options `expectedVersion`: every matching document must be at
   *   this version, else a `ConflictError` and nothing changes.
   * @returns How many documents changed.
   * @throws {TypeError} When the filter or the changes are malformed, or
   *   touch `_id`.
   * @throws {ConflictError} When `expectedVersion` does not match.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const users = db.collection("users");
   * const id = await users.insert({ name: "Arman", age: 29 });
   * assert.equal(await users.update({ name: "Arman" }, { $set: { age: 30 } }), 1);
   * assert.equal(await users.update({ _id: id }, { $inc: { age: 1 } }, { expectedVersion: 2 }), 1);
   * assert.equal((await users.getEntry(id))?.version, 3);
   * ```
   */
  async update(
    filter: QueryFilter,
    changes: Update,
    options: UpdateOptions = {},
  ): Promise<number> {
    return await update(this.#c, filter, changes, options);
  }

  /**
   * Replaces a document by id (its `_id`, tags and TTL are kept).
   *
   * @param id The document's id.
   * @param doc The new content (a plain object; `_id`, if present, must be
   *   `id`).
   * @param options `expectedVersion`: the document must be at this version.
   * @returns `true` if it existed and was replaced, `false` if absent.
   * @throws {TypeError} When the document is invalid.
   * @throws {ConflictError} When `expectedVersion` does not match.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * const id = await c.insert({ a: 1 });
   * assert(await c.replace(id, { b: 2 }, { expectedVersion: 1 }));
   * assert.deepEqual(await c.get(id), { _id: id, b: 2 });
   * ```
   */
  async replace(
    id: string,
    doc: T,
    options: UpdateOptions = {},
  ): Promise<boolean> {
    return await replace(this.#c, id, doc, options);
  }

  /**
   * Deletes every matching document in one atomic commit (on Deno KV,
   * more than one commit holds go in several, as with `update`).
   *
   * @param filter Which documents (`{}` for all).
   * @returns How many were deleted.
   * @throws {TypeError} When the filter is malformed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
   * assert.equal(await c.deleteMany({ n: { $gte: 2 } }), 2);
   * ```
   */
  async deleteMany(filter: QueryFilter): Promise<number> {
    return await deleteMany(this.#c, filter);
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
   * The collection's secondary indexes.
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

  /**
   * Updates the first matching document (in key order) with update
   * operators, MongoDB style; see docs/updates.md. One atomic commit.
   *
   * @param filter Which document.
   * @param update Update operators (`$set`, `$inc`, `$push`, ...); a
   *   document without operators is a `TypeError` (use `replaceOne`).
   * @param options `upsert`: insert a document built from the filter's
   *   equalities, `$setOnInsert` and the update when none matches;
   *   `arrayFilters` for `$[<id>]`; `expectedVersion`.
   * @returns `{ acknowledged, matchedCount, modifiedCount, upsertedCount, upsertedId }`.
   * @throws {TypeError} When the filter, update or options are malformed,
   *   the update changes `_id`, or it cannot apply (nothing changes).
   * @throws {ConflictError} When `expectedVersion` does not match.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insert({ _id: "a", n: 1 });
   * const r = await c.updateOne({ _id: "a" }, { $inc: { n: 1 } });
   * assert.deepEqual(r, { acknowledged: true, matchedCount: 1, modifiedCount: 1, upsertedCount: 0, upsertedId: null });
   * const u = await c.updateOne({ _id: "b" }, { $set: { n: 5 } }, { upsert: true });
   * assert.equal(u.upsertedId, "b");
   * assert.deepEqual(await c.get("b"), { _id: "b", n: 5 });
   * ```
   */
  updateOne(
    filter: QueryFilter,
    update: Update,
    options: UpdateOneOptions = {},
  ): Promise<UpdateResult> {
    return updateDocuments<T>(this.#c, true, filter, update, options);
  }

  /**
   * Updates every matching document with update operators, in one atomic
   * commit (on Deno KV, more than one commit holds go in several, as with
   * `update`).
   *
   * @param filter Which documents.
   * @param update Update operators.
   * @param options `upsert`, `arrayFilters`, `expectedVersion`.
   * @returns `{ acknowledged, matchedCount, modifiedCount, upsertedCount, upsertedId }`.
   * @throws {TypeError} When the filter, update or options are malformed,
   *   or the update cannot apply to one of the documents (none changes).
   * @throws {ConflictError} When `expectedVersion` does not match.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insertMany([{ g: [1, 5] }, { g: [7] }]);
   * const r = await c.updateMany({}, { $push: { g: { $each: [3], $sort: 1 } } });
   * assert.equal(r.modifiedCount, 2);
   * ```
   */
  updateMany(
    filter: QueryFilter,
    update: Update,
    options: UpdateOneOptions = {},
  ): Promise<UpdateResult> {
    return updateDocuments<T>(this.#c, false, filter, update, options);
  }

  /**
   * Replaces the first matching document (its `_id` kept), MongoDB style.
   *
   * @param filter Which document.
   * @param replacement The new content, without update operators.
   * @param options `upsert` (insert the replacement, with the filter's
   *   `_id` if it names one), `expectedVersion`.
   * @returns `{ acknowledged, matchedCount, modifiedCount, upsertedCount, upsertedId }`.
   * @throws {TypeError} When the replacement has operators or changes `_id`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insert({ _id: "a", x: 1, y: 2 });
   * await c.replaceOne({ x: 1 }, { z: 3 });
   * assert.deepEqual(await c.get("a"), { _id: "a", z: 3 });
   * ```
   */
  replaceOne(
    filter: QueryFilter,
    replacement: T,
    options: ReplaceOneOptions = {},
  ): Promise<UpdateResult> {
    return replaceDocument<T>(this.#c, filter, replacement, options);
  }

  /**
   * Deletes the first matching document (in key order).
   *
   * @param filter Which document.
   * @returns `{ acknowledged, deletedCount }` (0 or 1).
   * @throws {TypeError} When the filter is malformed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("c");
   * await c.insertMany([{ n: 1 }, { n: 1 }]);
   * assert.equal((await c.deleteOne({ n: 1 })).deletedCount, 1);
   * assert.equal(await c.count(), 1);
   * ```
   */
  async deleteOne(filter: QueryFilter): Promise<DeleteResult> {
    const found = await deleteFirst<T>(this.#c, filter);
    return { acknowledged: true, deletedCount: found === null ? 0 : 1 };
  }

  /**
   * Updates the first matching document (in key order) and returns it as
   * it was (`returnDocument: "before"`, the default) or became.
   *
   * @param filter Which document.
   * @param update Update operators.
   * @param options `upsert`, `arrayFilters`, `returnDocument`.
   * @returns The document, or `null` if none matched (and, with
   *   `"before"`, when an upsert inserted one).
   * @throws {TypeError} When the filter, update or options are malformed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("counters");
   * const next = await c.findOneAndUpdate(
   *   { _id: "seq" },
   *   { $inc: { n: 1 } },
   *   { upsert: true, returnDocument: "after" },
   * );
   * assert.deepEqual(next, { _id: "seq", n: 1 });
   * ```
   */
  findOneAndUpdate(
    filter: QueryFilter,
    update: Update,
    options: FindOneAndUpdateOptions = {},
  ): Promise<T | null> {
    return findAndUpdate<T>(this.#c, filter, update, options);
  }

  /**
   * Deletes the first matching document (in key order) and returns it.
   *
   * @param filter Which document.
   * @returns The deleted document, or `null`.
   * @throws {TypeError} When the filter is malformed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const c = db.collection("jobs");
   * await c.insert({ _id: "j1", task: "send" });
   * assert.deepEqual(await c.findOneAndDelete({ task: "send" }), { _id: "j1", task: "send" });
   * assert.equal(await c.findOneAndDelete({}), null);
   * ```
   */
  findOneAndDelete(filter: QueryFilter): Promise<T | null> {
    return deleteFirst<T>(this.#c, filter);
  }

  // --- Aggregation (src/query/aggregate.ts) ---------------------------------

  /**
   * Runs an aggregation pipeline over the collection (see
   * docs/aggregation.md). A leading `$match` (and a `$sort`, `$skip`,
   * `$limit` after it) runs as `find`, using the indexes.
   *
   * @param pipeline The stages.
   * @param options `maxGroups` (default 1,000,000).
   * @returns An async iterable of the output documents, with `toArray()`.
   * @throws {TypeError} On an unknown stage or operator (before reading).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ d: "a", t: 20 }, { d: "a", t: 22 }]);
   * const [row] = await db.aggregate([
   *   { $group: { _id: "$d", avg: { $avg: "$t" } } },
   * ]).toArray();
   * assert.deepEqual(row, { _id: "a", avg: 21 });
   * ```
   */
  aggregate<R = Record<string, unknown>>(
    pipeline: Pipeline,
    options?: AggregateOptions,
  ): AggregationCursor<R> {
    return aggregate<R>(this.#c, pipeline, options);
  }

  /**
   * The distinct values of a field among the documents matching a filter
   * (an array field counts each element), sorted.
   *
   * @param field The field path.
   * @param filter Optional conditions.
   * @returns The values.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ d: "b" }, { d: "a" }, { d: "b" }]);
   * assert.deepEqual(await db.distinct("d"), ["a", "b"]);
   * ```
   */
  async distinct(field: string, filter: QueryFilter = {}): Promise<unknown[]> {
    return await distinct(this.#c, field, filter);
  }
}
