/**
 * Collections: named sets of keyed items with TTL, tags and queries.
 *
 * @module
 */

import {
  type AggregateOptions,
  AggregationCursor,
  compilePipeline,
  distinctValues,
  type Pipeline,
} from "./query/aggregate.ts";
import {
  createCursor,
  type Cursor,
  type CursorPlan,
  toEntry,
} from "./query/cursor.ts";
import type { Engine, WriteOp } from "./engine/engine.ts";
import { ConflictError, DuplicateKeyError } from "./errors.ts";
import { indexName } from "./engine/index_keys.ts";
import { writeSplit } from "./batch_split.ts";
import type { StoredIndex } from "./engine/indexes.ts";
import { compileFilter, type Filter } from "./query/compile.ts";
import { compileProjection } from "./query/projection.ts";
import { compileSort } from "./query/sort.ts";
import { compileUpdate, type Update } from "./query/update.ts";
import type {
  Change,
  ChangesOptions,
  Entry,
  FeedChange,
  FindOptions,
  IndexOptions,
  PutBatchOptions,
  PutOptions,
  ReadOptions,
  UpdateOptions,
  WatchOptions,
} from "./types.ts";
import { checkOptions, OPTIONS } from "./options.ts";
import { checkChanges } from "./engine/feed.ts";
import {
  checkCount,
  checkDense,
  checkFields,
  checkIdField,
  checkKey,
  checkReadonly,
  checkTags,
  checkTtl,
  checkVersion,
  describeType,
  hidesValues,
  isKeyedPut,
  MAX_KEY_BYTES,
} from "./validate.ts";
import {
  type CheckedValue,
  checkValue,
  copyValue,
  shareValue,
} from "./value_codec.ts";

/**
 * A query filter: Mongo-style conditions plus `$limit` (MicroTetherDB's
 * result cap). See the README for the operators.
 */
export type QueryFilter = Filter & { readonly $limit?: number };

import type { IndexDeclaration } from "./types.ts";
import {
  type CollectionInternals,
  deleteFirst,
  type DeleteResult,
  findAndUpdate,
  type FindOneAndUpdateOptions,
  replaceDocument,
  type ReplaceOneOptions,
  updateDocuments,
  type UpdateOneOptions,
  type UpdateResult,
} from "./collection_update.ts";
export type { IndexDeclaration } from "./types.ts";

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
  readonly #engine: Engine;
  readonly #name: string;
  #pending: Promise<void> | undefined;

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
    this.#engine = engine;
    this.#name = name;
    if (indexes.length > 0) {
      // Declared indexes are created before any other call of this object
      // runs; a failure is reported by each call.
      const action = `Cannot create the indexes declared for '${name}'`;
      const specs = indexes.map(({ fields, unique, sparse }) => {
        const list = checkFields(fields, action);
        return {
          name: indexName(list),
          fields: list,
          unique: unique === true,
          sparse: sparse === true,
        };
      });
      this.#pending = (async () => {
        for (const spec of specs) {
          await engine.createIndex(name, spec, action);
        }
      })();
      const pending = this.#pending;
      this.#pending.then(
        () => {
          if (this.#pending === pending) this.#pending = undefined;
        },
        () => {},
      );
    }
  }

  /** Whether a read's results are shared and frozen (`readonly`). */
  #shared(options: ReadOptions, action: string): boolean {
    checkOptions(options, OPTIONS.get, action);
    return checkReadonly(options.readonly, action) ??
      this.#engine.settings.readonly === true;
  }

  /** The collection's name. */
  get name(): string {
    return this.#name;
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
  async put(...args: unknown[]): Promise<string> {
    const keyed = args.length >= 3 ||
      (args.length === 2 && isKeyedPut(args[0], args[1], OPTIONS.put.known));
    const key = keyed ? args[0] : undefined;
    const value = keyed ? args[1] : args[0];
    const options = (keyed ? args[2] : args[1]) as PutOptions | undefined;
    const action = typeof key === "string"
      ? `Cannot put '${key}'`
      : `Cannot put into '${this.#name}'`;
    this.#engine.assertOpen(action);
    if (keyed) checkKey(key, action);
    checkOptions(options, OPTIONS.put, action);
    const op = this.#putOp(
      key as string | undefined,
      value,
      options?.ttl,
      options?.tags,
      action,
    );
    await this.#engine.write(this.#name, [op], action);
    return op.id;
  }

  #putOp(
    key: string | undefined,
    value: unknown,
    ttl: unknown,
    tags: unknown,
    action: string,
  ): WriteOp {
    const id = key ?? this.#engine.newKey();
    checkIdField(value, key, action);
    return {
      kind: "put",
      id,
      ...(key === undefined ? { fresh: true } : {}),
      value: checkValue(value, action),
      ttl: checkTtl(ttl, action),
      tags: checkTags(tags, action),
    };
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
    const engine = this.#engine;
    // The common case first, without building an error context: a key
    // surely valid, no options, an open database, a hit (or a sure miss)
    // in RAM. Anything else takes the checked path, with its errors.
    if (
      options === undefined && typeof key === "string" && key.length > 0 &&
      key.length * 3 <= MAX_KEY_BYTES && !engine.closed
    ) {
      const hit = engine.peek(this.#name, key, "Cannot get");
      if (hit === null) return Promise.resolve(null);
      if (hit !== undefined) {
        return Promise.resolve(
          (engine.settings.readonly === true
            ? shareValue(hit.value)
            : copyValue(hit.value)) as T,
        );
      }
    }
    return this.#get(key, options);
  }

  async #get(key: string, options?: ReadOptions): Promise<T | null> {
    const action = `Cannot get '${key}'`;
    checkKey(key, action);
    const shared = options === undefined
      ? this.#engine.settings.readonly === true
      : this.#shared(options, action);
    const engine = this.#engine;
    const hit = engine.peek(this.#name, key, action);
    const record = hit !== undefined
      ? hit
      : await engine.read(this.#name, key, action);
    if (record === null) return null;
    return (shared ? shareValue(record.value) : copyValue(record.value)) as T;
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
    const action = `Cannot get '${key}'`;
    checkKey(key, action);
    const shared = options === undefined
      ? this.#engine.settings.readonly === true
      : this.#shared(options, action);
    const record = await this.#engine.read(this.#name, key, action);
    return record === null
      ? null
      : toEntry<T>(key, record, shared ? shareValue : copyValue);
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
    const action = `Cannot check '${key}'`;
    checkKey(key, action);
    return (await this.#engine.read(this.#name, key, action)) !== null;
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
    const action = `Cannot delete '${key}'`;
    checkKey(key, action);
    const [existed] = await this.#engine.write(this.#name, [{
      kind: "delete",
      id: key,
    }], action);
    return existed === true;
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
    return await this.#engine.clear(this.#name, `Cannot clear '${this.#name}'`);
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
    const action = `Cannot watch '${this.#name}'`;
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.watch, action);
    return this.#engine.changes(this.#name, options.signal);
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
    const action = `Cannot read the changes of '${this.#name}'`;
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.changes, action);
    const request = checkChanges(options, action, [this.#name]);
    return this.#engine.durableChanges<T>(request);
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
    const action = `Cannot put a batch into '${this.#name}'`;
    this.#engine.assertOpen(action);
    const isMap = items instanceof Map;
    if (!isMap && !Array.isArray(items)) {
      throw new TypeError(
        `${action}: items must be an array of values or a Map of keys to values, got ${
          describeType(items)
        }`,
      );
    }
    checkOptions(options, OPTIONS.putBatch, action);
    if (!isMap) checkDense(items as readonly unknown[], "items", action);
    const pairs: [string | undefined, unknown][] = isMap
      ? [...(items as ReadonlyMap<string, T>)]
      : Array.from(items as readonly T[], (v) => [undefined, v]);
    const ttl = options?.ttl;
    if (Array.isArray(ttl)) {
      if (ttl.length !== pairs.length) {
        throw new RangeError(
          `${action}: ${ttl.length} TTLs were given for ${pairs.length} items`,
        );
      }
      checkDense(ttl, "ttl", action);
    }
    const ops = pairs.map(([key, value], i) => {
      const itemAction = `${action}: item ${i}`;
      if (key !== undefined) checkKey(key, itemAction);
      return this.#putOp(
        key,
        value,
        Array.isArray(ttl) ? ttl[i] : ttl,
        options?.tags,
        itemAction,
      );
    });
    if (ops.length === 0) return [];
    const atomic = options?.atomic;
    if (atomic !== undefined && typeof atomic !== "boolean") {
      throw new TypeError(`${action}: atomic must be a boolean`);
    }
    if (atomic === false) {
      await writeSplit(this.#engine, this.#name, ops, action);
    } else await this.#engine.write(this.#name, ops, action);
    return ops.map((op) => op.id);
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
    const action = `Cannot delete a batch from '${this.#name}'`;
    if (
      keys === null || typeof keys !== "object" ||
      typeof (keys as Iterable<string>)[Symbol.iterator] !== "function"
    ) {
      throw new TypeError(
        `${action}: keys must be an iterable of strings, got ${
          describeType(keys)
        }`,
      );
    }
    const unique = [...new Set(keys)];
    for (const key of unique) checkKey(key, action);
    if (unique.length === 0) return 0;
    const existed = await this.#engine.write(
      this.#name,
      unique.map((id) => ({ kind: "delete", id })),
      action,
    );
    return existed.filter(Boolean).length;
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
    const action = `Cannot query '${this.#name}'`;
    checkOptions(options, OPTIONS.find, action);
    const { conditions, limit } = this.#filter(filter, options.limit, action);
    if (options.sort !== undefined) compileSort(options.sort); // validate now
    if (options.fields !== undefined) {
      compileProjection(options.fields, conditions);
    }
    return this.#cursor({
      filter: conditions,
      predicate: compileFilter(conditions),
      sort: options.sort,
      projection: options.fields,
      limit,
      skip: checkCount(options.skip, "skip", action, 0),
      signal: options.signal,
      after: options.after,
      readonly: checkReadonly(options.readonly, action) ??
        this.#engine.settings.readonly === true,
    });
  }

  #filter(
    filter: QueryFilter,
    limit: unknown,
    action: string,
  ): { conditions: Filter; limit: number } {
    if (
      typeof filter !== "object" || filter === null || Array.isArray(filter)
    ) {
      throw new TypeError(
        `${action}: the filter must be an object, got ${describeType(filter)}`,
      );
    }
    const { $limit, ...conditions } = filter;
    const n = checkCount(limit, "limit", action, Infinity);
    return {
      conditions,
      limit: Math.min(n, checkCount($limit, "$limit", action, Infinity)),
    };
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
    this.#engine.assertOpen(`Cannot count '${this.#name}'`);
    const all = filter === undefined || Object.keys(filter).length === 0;
    // A shared storage (Deno KV) is counted by reading it: other processes
    // write to it too.
    if (all && !this.#engine.shared) return this.#engine.count(this.#name);
    return await this.find(filter ?? {}).count();
  }
  // --- Documents (unosql's surface) ---------------------------------------

  #cursor(
    plan:
      & Omit<
        CursorPlan,
        | "engine"
        | "collection"
        | "sort"
        | "projection"
        | "skip"
        | "signal"
        | "limit"
      >
      & Partial<CursorPlan>,
  ): Cursor<T> {
    return createCursor<T>({
      engine: this.#engine,
      collection: this.#name,
      sort: undefined,
      projection: undefined,
      limit: Infinity,
      skip: 0,
      signal: undefined,
      ...plan,
    });
  }

  #ready(): Promise<void> | undefined {
    return this.#pending;
  }

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
    const action = `Cannot insert into '${this.#name}'`;
    this.#engine.assertOpen(action);
    if (!Array.isArray(docs)) {
      throw new TypeError(
        `${action}: documents must be an array, got ${describeType(docs)}`,
      );
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${action}: options must be an object`);
    }
    checkOptions(options, OPTIONS.insert, action);
    checkDense(docs, "documents", action);
    const ttl = checkTtl(options.ttl, action);
    const tags = checkTags(options.tags, action);
    const ids = new Set<string>();
    const ops: WriteOp[] = docs.map((doc, i) => {
      const at = docs.length === 1 ? action : `${action}: document ${i}`;
      const { id, value } = this.#document(doc, undefined, at);
      if (ids.has(id)) {
        throw new DuplicateKeyError(`${at}: the id '${id}' is given twice`);
      }
      ids.add(id);
      return {
        kind: "put",
        id,
        value,
        tags,
        ttl,
        mustBeNew: true,
        ...((doc as { _id?: unknown })._id === undefined
          ? { fresh: true }
          : {}),
      };
    });
    await this.#ready();
    await this.#engine.write(this.#name, ops, action);
    return [...ids];
  }

  #document(
    doc: unknown,
    id: string | undefined,
    action: string,
  ): { id: string; value: CheckedValue } {
    if (
      typeof doc !== "object" || doc === null || Array.isArray(doc) ||
      (Object.getPrototypeOf(doc) !== Object.prototype &&
        Object.getPrototypeOf(doc) !== null)
    ) {
      throw new TypeError(
        `${action}: a document must be a plain object, got ${
          describeType(doc)
        }`,
      );
    }
    const given = (doc as { _id?: unknown })._id;
    if (given !== undefined) {
      if (typeof given !== "string") {
        throw new TypeError(
          `${action}: _id must be a string, got ${describeType(given)}`,
        );
      }
      checkKey(given, action);
      if (id !== undefined && given !== id) {
        throw new TypeError(
          `${action}: _id '${given}' differs from the id '${id}'; _id is immutable`,
        );
      }
    }
    const key = id ?? given ?? this.#engine.newKey();
    const { _id: _, ...rest } = doc as Record<string, unknown>;
    return { id: key, value: checkValue({ _id: key, ...rest }, action) };
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
    checkOptions(options, OPTIONS.findOne, `Cannot query '${this.#name}'`);
    await this.#ready();
    const [first] = await this.find(filter, { ...options, limit: 1 })
      .toArray();
    return first ?? null;
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
    await this.#ready();
    return await this.find({}).toArray();
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
    const action = `Cannot update '${this.#name}'`;
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.update, action);
    const expectedVersion = checkVersion(options?.expectedVersion, action);
    const { conditions, limit } = this.#filter(filter, undefined, action);
    const predicate = compileFilter(conditions);
    const updater = compileUpdate(changes, {
      protect: ["_id"],
      hideValues: hidesValues(this.#engine.storage),
    });
    await this.#ready();
    const collect = async (ids?: readonly string[]) => {
      const ops: WriteOp[] = [];
      const cursor = this.#matching(conditions, predicate, limit, ids);
      for await (const entry of cursor.entries()) {
        if (
          expectedVersion !== undefined && entry.version !== expectedVersion
        ) {
          throw new ConflictError(
            `${action}: expected version ${expectedVersion} of '${entry.key}', found version ${entry.version}`,
          );
        }
        const result = updater(entry.value);
        if (!result.changed) continue;
        const at = `${action}: document '${entry.key}'`;
        ops.push({
          kind: "put",
          id: entry.key,
          value: this.#document(result.doc, entry.key, at).value,
          tags: undefined,
          ttl: undefined,
          keepMeta: true,
          expectedVersion: entry.version,
        });
      }
      return ops;
    };
    const applied = await this.#engine.transact(
      this.#name,
      action,
      () => collect(),
      collect,
    );
    return applied.length;
  }

  /**
   * The documents an `update` or `deleteMany` visits: every match, or only
   * those of `ids` that still match (a group to write again).
   */
  #matching(
    filter: Filter,
    predicate: (doc: unknown) => boolean,
    limit: number,
    ids: readonly string[] | undefined,
  ): Cursor<T> {
    return this.#cursor({
      filter,
      predicate,
      limit,
      ...(ids === undefined
        ? {}
        : { source: () => this.#engine.idPages(this.#name, ids) }),
    });
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
    const action = `Cannot replace '${id}' in '${this.#name}'`;
    checkKey(id, action);
    checkOptions(options, OPTIONS.replace, action);
    const expectedVersion = checkVersion(options?.expectedVersion, action);
    const { value } = this.#document(doc, id, action);
    await this.#ready();
    let found = false;
    await this.#engine.transact(this.#name, action, async () => {
      const record = await this.#engine.read(this.#name, id, action);
      found = record !== null;
      if (record === null) return [];
      if (expectedVersion !== undefined && record.version !== expectedVersion) {
        throw new ConflictError(
          `${action}: expected version ${expectedVersion}, found version ${record.version}`,
        );
      }
      return [{
        kind: "put",
        id,
        value,
        tags: undefined,
        ttl: undefined,
        keepMeta: true,
        expectedVersion: record.version,
      }];
    });
    return found;
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
    const action = `Cannot delete from '${this.#name}'`;
    this.#engine.assertOpen(action);
    const { conditions, limit } = this.#filter(filter, undefined, action);
    const predicate = compileFilter(conditions);
    await this.#ready();
    const collect = async (ids?: readonly string[]) => {
      const ops: WriteOp[] = [];
      const cursor = this.#matching(conditions, predicate, limit, ids);
      for await (const entry of cursor.entries()) {
        ops.push({
          kind: "delete",
          id: entry.key,
          expectedVersion: entry.version,
        });
      }
      return ops;
    };
    const existed = await this.#engine.transact(
      this.#name,
      action,
      () => collect(),
      collect,
    );
    return existed.filter(Boolean).length;
  }

  #ordered(
    n: number,
    reverse: boolean,
    name: string,
  ): Cursor<T> {
    const action = `Cannot read the ${name} items of '${this.#name}'`;
    const limit = checkCount(n, "n", action, 0);
    return this.#cursor({
      filter: {},
      predicate: () => true,
      limit,
      source: (signal) =>
        this.#engine.orderPages(this.#name, { reverse, signal }),
      sourceDescription: `insertion order${reverse ? ", newest first" : ""}`,
    });
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
    await this.#ready();
    return (await this.#ordered(n, true, "last").toArray()).reverse();
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
    await this.#ready();
    return await this.#ordered(n, false, "first").toArray();
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
    const action = `Cannot read '${this.#name}' between two values`;
    for (const bound of [start, end]) {
      if (
        typeof bound !== "number" && typeof bound !== "string" &&
        !(bound instanceof Date)
      ) {
        throw new TypeError(
          `${action}: bounds must be numbers, strings or Dates, got ${
            describeType(bound)
          }`,
        );
      }
    }
    await this.#ready();
    if (field === "_createdAt") {
      const from = start instanceof Date ? start.getTime() : start;
      const to = end instanceof Date ? end.getTime() : end;
      if (typeof from !== "number" || typeof to !== "number") {
        throw new TypeError(
          `${action}: _createdAt bounds must be numbers or Dates`,
        );
      }
      return await this.#cursor({
        filter: {},
        predicate: () => true,
        source: (signal) =>
          this.#engine.orderPages(this.#name, { from, to, signal }),
        sourceDescription: "insertion order, by creation time",
      }).toArray();
    }
    return await this.find({ [field]: { $gte: start, $lte: end } }, {
      sort: { [field]: 1 },
    }).toArray();
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
    this.#engine.assertOpen(`Cannot unload '${this.#name}'`);
    await this.#ready();
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
    const action = `Cannot create an index on '${this.#name}'`;
    checkOptions(options, OPTIONS.createIndex, action);
    const list = checkFields(fields, action);
    await this.#ready();
    return await this.#engine.createIndex(this.#name, {
      name: indexName(list),
      fields: list,
      unique: options.unique === true,
      sparse: options.sparse === true,
    }, action);
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
    const action = `Cannot drop an index of '${this.#name}'`;
    const name = typeof index === "string" && this.#engine.indexes(this.#name)
        .some((i) => i.name === index)
      ? index
      : indexName(checkFields(index, action));
    await this.#ready();
    return await this.#engine.dropIndex(this.#name, name, action);
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
    this.#engine.assertOpen(`Cannot list the indexes of '${this.#name}'`);
    await this.#ready();
    return this.#engine.indexes(this.#name).map((i) => ({
      ...i,
      fields: [...i.fields],
    }));
  }

  /** The internals the MongoDB-style writes in `collection_update.ts` use. */
  #internals(): CollectionInternals<T> {
    return {
      name: this.#name,
      engine: this.#engine,
      ready: () => this.#ready(),
      filter: (filter, action) => this.#filter(filter, undefined, action),
      matching: (conditions, predicate, limit, ids) =>
        this.#matching(conditions, predicate, limit, ids),
      document: (doc, id, action) => this.#document(doc, id, action),
    };
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
    return updateDocuments(this.#internals(), true, filter, update, options);
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
    return updateDocuments(this.#internals(), false, filter, update, options);
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
    return replaceDocument(this.#internals(), filter, replacement, options);
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
    const found = await deleteFirst(this.#internals(), filter);
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
    return findAndUpdate(this.#internals(), filter, update, options);
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
    return deleteFirst(this.#internals(), filter);
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
    const { pushdown, stages } = compilePipeline(pipeline, options);
    const cursor = this.find(pushdown.filter as QueryFilter, {
      ...(pushdown.sort === undefined ? {} : { sort: pushdown.sort }),
      ...(pushdown.skip === 0 ? {} : { skip: pushdown.skip }),
      ...(pushdown.limit === Infinity ? {} : { limit: pushdown.limit }),
    });
    return new AggregationCursor<R>(() => cursor.batches(), stages);
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
    if (typeof field !== "string" || field === "") {
      throw new TypeError(
        "Cannot run distinct: the field must be a non-empty string",
      );
    }
    return await distinctValues(this.find(filter), field);
  }
}
