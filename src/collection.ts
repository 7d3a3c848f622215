/**
 * Collections: named sets of keyed items with TTL, tags and queries.
 *
 * @module
 */

import { createCursor, type Cursor, toEntry } from "./cursor.ts";
import type { Engine, WriteOp } from "./engine.ts";
import { compileFilter, type Filter } from "./query/compile.ts";
import type {
  Entry,
  FindOptions,
  PutBatchOptions,
  PutOptions,
} from "./types.ts";
import {
  checkCount,
  checkKey,
  checkTags,
  checkTtl,
  describeType,
} from "./validate.ts";
import { checkValue, copyValue } from "./value_codec.ts";

/**
 * A query filter: Mongo-style conditions plus `$limit` (MicroTetherDB's
 * result cap). See the README for the operators.
 */
export type QueryFilter = Filter & { readonly $limit?: number };

/**
 * A named set of keyed items. `Database` is the default collection, so every
 * method here also exists on the database.
 *
 * @typeParam T The values' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
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

  /**
   * Internal: collections come from `open()` and `db.collection()`.
   *
   * @ignore
   */
  constructor(engine: Engine, name: string) {
    this.#engine = engine;
    this.#name = name;
  }

  /** The collection's name. */
  get name(): string {
    return this.#name;
  }

  /**
   * Stores a value under a new, time-ordered key.
   *
   * @param value The value (JSON-compatible; `Date`s round-trip).
   * @param options `ttl` in milliseconds and `tags`.
   * @returns The generated key.
   * @throws {TypeError} When the value is not JSON-compatible.
   * @throws {RangeError} When the TTL is not a positive number.
   * @throws {TooLargeError} When the record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * const key = await db.put({ temp: 21.5 }, { ttl: 60_000, tags: ["sensor"] });
   * assert(key.length === 26);
   * ```
   */
  put(value: T, options?: PutOptions): Promise<string>;
  /**
   * Stores a value under a key, replacing what was there.
   *
   * @param key The key: a non-empty string of at most 1024 UTF-8 bytes.
   * @param value The value (JSON-compatible; `Date`s round-trip).
   * @param options `ttl` in milliseconds and `tags`.
   * @returns The key.
   * @throws {TypeError} When the key or value is invalid.
   * @throws {RangeError} When the TTL is not a positive number.
   * @throws {TooLargeError} When the record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.put("user1", { name: "John", age: 30 }, { tags: ["user"] });
   * ```
   */
  put(key: string, value: T, options?: PutOptions): Promise<string>;
  async put(...args: unknown[]): Promise<string> {
    const keyed = typeof args[0] === "string" && args.length >= 2;
    const key = keyed ? args[0] as string : undefined;
    const value = keyed ? args[1] : args[0];
    const options = (keyed ? args[2] : args[1]) as PutOptions | undefined;
    const action = key === undefined
      ? `Cannot put into '${this.#name}'`
      : `Cannot put '${key}'`;
    this.#engine.assertOpen(action);
    if (key !== undefined) checkKey(key, action);
    const op = this.#putOp(key, value, options?.ttl, options?.tags, action);
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
    return {
      kind: "put",
      id: key ?? this.#engine.newKey(),
      value: checkValue(value, action),
      ttl: checkTtl(ttl, action),
      tags: checkTags(tags, action),
    };
  }

  /**
   * Reads a value.
   *
   * @param key The key.
   * @returns A copy of the value, or `null` when absent or expired.
   * @throws {TypeError} When the key is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.put("k", { a: 1 });
   * assert((await db.get("k") as { a: number }).a === 1);
   * assert(await db.get("missing") === null);
   * ```
   */
  async get(key: string): Promise<T | null> {
    const action = `Cannot get '${key}'`;
    checkKey(key, action);
    const record = await this.#engine.read(this.#name, key, action);
    return record === null ? null : copyValue(record.value) as T;
  }

  /**
   * Reads an item with its metadata (tags, expiry, timestamps, version).
   *
   * @param key The key.
   * @returns The entry, or `null` when absent or expired.
   * @throws {TypeError} When the key is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.put("k", { a: 1 }, { tags: ["t"], ttl: 1000 });
   * const entry = await db.getEntry("k");
   * assert(entry?.tags[0] === "t" && entry.expiresAt !== undefined);
   * ```
   */
  async getEntry(key: string): Promise<Entry<T> | null> {
    const action = `Cannot get '${key}'`;
    checkKey(key, action);
    const record = await this.#engine.read(this.#name, key, action);
    return record === null ? null : toEntry<T>(key, record);
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
   * import { open } from "../mod.ts";
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
   * import { open } from "../mod.ts";
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
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.putBatch([1, 2, 3]);
   * assert(await db.clear() === 3);
   * ```
   */
  async clear(): Promise<number> {
    return await this.#engine.clear(this.#name, `Cannot clear '${this.#name}'`);
  }

  /**
   * Stores several values in one atomic write: all are stored or none is.
   *
   * @param items Values (stored under new keys, in order) or a `Map` of keys
   *   to values.
   * @param options `ttl` (one for all, or one per item) and `tags` (for all).
   * @returns The keys, in the order of `items`.
   * @throws {TypeError} When any key or value is invalid (nothing is stored).
   * @throws {RangeError} When a TTL is invalid or the TTL array's length
   *   differs from the number of items.
   * @throws {TooLargeError} When any record is over `maxValueBytes`.
   * @throws {QuotaError} When the memory limit would be passed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
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
    const pairs: [string | undefined, unknown][] = isMap
      ? [...(items as ReadonlyMap<string, T>)]
      : (items as readonly T[]).map((v) => [undefined, v]);
    const ttl = options?.ttl;
    if (Array.isArray(ttl) && ttl.length !== pairs.length) {
      throw new RangeError(
        `${action}: ${ttl.length} TTLs were given for ${pairs.length} items`,
      );
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
    await this.#engine.write(this.#name, ops, action);
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
   * import { open } from "../mod.ts";
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
   * @param options `limit`, `skip` and an abort `signal`.
   * @returns A cursor over value copies, in key order.
   * @throws {TypeError} When the filter is malformed.
   * @throws {RangeError} When `limit` or `skip` is not a whole number.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.put("a", { address: { city: "NY" } });
   * const found = await db.find({ "address.city": "NY" }, { limit: 5 }).toArray();
   * assert(found.length === 1);
   * ```
   */
  find(filter: QueryFilter = {}, options: FindOptions = {}): Cursor<T> {
    const action = `Cannot query '${this.#name}'`;
    if (
      typeof filter !== "object" || filter === null || Array.isArray(filter)
    ) {
      throw new TypeError(
        `${action}: the filter must be an object, got ${describeType(filter)}`,
      );
    }
    const { $limit, ...conditions } = filter;
    let limit = checkCount(options.limit, "limit", action, Infinity);
    limit = Math.min(limit, checkCount($limit, "$limit", action, Infinity));
    return createCursor<T>({
      engine: this.#engine,
      collection: this.#name,
      predicate: compileFilter(conditions),
      limit,
      skip: checkCount(options.skip, "skip", action, 0),
      signal: options.signal,
    });
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
   * import { open } from "../mod.ts";
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
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }]);
   * assert(await db.count() === 2);
   * assert(await db.count({ n: 1 }) === 1);
   * ```
   */
  async count(filter?: QueryFilter): Promise<number> {
    this.#engine.assertOpen(`Cannot count '${this.#name}'`);
    if (filter === undefined || Object.keys(filter).length === 0) {
      return this.#engine.count(this.#name);
    }
    return await this.find(filter).count();
  }
}
