/**
 * A collection's queries: the filter and its `$limit`, the cursors of
 * `find` (and of the documents an `update` or a delete visits), `count`,
 * `findOne`, the reads in insertion order (`first`, `last`, `between`),
 * `aggregate` and `distinct`. The `Collection` methods of these names call
 * the functions here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ n: 1 }, { n: 2 }, { n: 3 }]);
 * assert.equal(await db.find({ n: { $gte: 2 } }).count(), 2);
 * assert.deepEqual(await db.distinct("n", { $limit: 2 }), [1, 2]);
 * ```
 *
 * @module
 */

import {
  type AggregateOptions,
  AggregationCursor,
  compilePipeline,
  distinctValues,
  type Pipeline,
} from "../query/aggregate.ts";
import { createCursor, type Cursor, type CursorPlan } from "../query/cursor.ts";
import { type Filter, lazyFilter } from "../query/compile.ts";
import { isPlainObject } from "../query/types.ts";
import { compileProjection } from "../query/projection.ts";
import { compileSort } from "../query/sort.ts";
import type { FindOptions } from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import { checkCount, checkReadonly, describeType } from "../validate.ts";
import { type CollectionCore, ready } from "./core.ts";

/**
 * A query filter: Mongo-style conditions plus `$limit` (MicroTetherDB's
 * result cap). See the README for the operators.
 */
export type QueryFilter = Filter & { readonly $limit?: number };

/**
 * Splits a filter into its conditions and its limit (the least of `$limit`
 * and `limit`), checking both.
 *
 * @param filter The filter.
 * @param limit A limit given beside it, if any.
 * @param action For error messages.
 * @returns The conditions and the limit (`Infinity`: none).
 * @throws {TypeError} When the filter is not an object.
 * @throws {RangeError} When a limit is not a whole number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFilter } from "./query.ts";
 * assert.deepEqual(checkFilter({ a: 1, $limit: 5 }, 3, "Cannot query"), {
 *   conditions: { a: 1 },
 *   limit: 3,
 * });
 * ```
 */
export function checkFilter(
  filter: QueryFilter,
  limit: unknown,
  action: string,
): { conditions: Filter; limit: number } {
  // A plain object: the fields of a Map, a Date or a class instance are
  // not its own (a Map would match everything).
  if (!isPlainObject(filter)) {
    throw new TypeError(
      `${action}: the filter must be a plain object, got ${
        describeType(filter)
      }`,
    );
  }
  const { $limit, ...conditions } = filter;
  const n = checkCount(limit, "limit", action, Infinity);
  return {
    conditions,
    limit: Math.min(n, checkCount($limit, "$limit", action, Infinity)),
  };
}

function cursor<T>(
  c: CollectionCore,
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
    engine: c.engine,
    collection: c.name,
    sort: undefined,
    projection: undefined,
    limit: Infinity,
    skip: 0,
    signal: undefined,
    ...plan,
  });
}

/**
 * The documents an `update` or a delete visits: every match, or only those
 * of `ids` that still match (a group to write again).
 *
 * @param c The collection.
 * @param filter The conditions.
 * @param predicate The compiled conditions.
 * @param limit The most documents.
 * @param ids The group to read again, if any.
 * @returns A cursor over them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ n: 1 }, { n: 2 }]);
 * assert.equal(await db.deleteMany({ n: 2 }), 1);
 * ```
 */
export function matching<T>(
  c: CollectionCore,
  filter: Filter,
  predicate: (doc: unknown) => boolean,
  limit: number,
  ids: readonly string[] | undefined,
): Cursor<T> {
  return cursor<T>(c, {
    filter,
    predicate,
    limit,
    ...(ids === undefined
      ? {}
      : { source: () => c.engine.idPages(c.name, ids) }),
  });
}

/**
 * `Collection.find`.
 *
 * @param c The collection.
 * @param filter The filter.
 * @param options `sort`, `fields`, `limit`, `skip`, `after`, `signal`,
 *   `readonly`.
 * @returns The cursor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ n: 1 }, { n: 2 }]);
 * assert.deepEqual(await db.find({}, { sort: { n: -1 }, fields: { n: 1 } }).toArray(), [{ n: 2 }, { n: 1 }]);
 * ```
 */
export function find<T>(
  c: CollectionCore,
  filter: QueryFilter,
  options: FindOptions,
): Cursor<T> {
  const action = `Cannot query '${c.name}'`;
  checkOptions(options, OPTIONS.find, action);
  const { conditions, limit } = checkFilter(filter, options.limit, action);
  if (options.sort !== undefined) compileSort(options.sort); // validate now
  if (options.fields !== undefined) {
    compileProjection(options.fields, conditions);
  }
  return cursor<T>(c, {
    filter: conditions,
    // Compiled when first run: an exact index plan never runs it.
    predicate: lazyFilter(conditions),
    sort: options.sort,
    projection: options.fields,
    limit,
    skip: checkCount(options.skip, "skip", action, 0),
    signal: options.signal,
    after: options.after,
    readonly: checkReadonly(options.readonly, action) ??
      c.engine.settings.readonly === true,
  });
}

/**
 * `Collection.count`.
 *
 * @param c The collection.
 * @param filter Optional conditions.
 * @returns The count.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.count({ n: 1 }), 0);
 * ```
 */
export async function count(
  c: CollectionCore,
  filter: QueryFilter | undefined,
): Promise<number> {
  c.engine.assertOpen(`Cannot count '${c.name}'`);
  const all = filter === undefined ||
    (isPlainObject(filter) && Object.keys(filter).length === 0);
  // A shared storage (Deno KV) is counted by reading it: other processes
  // write to it too.
  if (all && !c.engine.shared) return c.engine.count(c.name);
  return await find(c, filter === undefined ? {} : filter, {}).count();
}

/**
 * `Collection.findOne`.
 *
 * @param c The collection.
 * @param filter The filter.
 * @param options `sort`, `skip`, `fields`, `signal`.
 * @returns The first match, or `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.findOne({}), null);
 * ```
 */
export async function findOne<T>(
  c: CollectionCore,
  filter: QueryFilter,
  options: Omit<FindOptions, "limit">,
): Promise<T | null> {
  checkOptions(options, OPTIONS.findOne, `Cannot query '${c.name}'`);
  if (c.pending !== undefined) await ready(c);
  const [first] = await find<T>(c, filter, { ...options, limit: 1 })
    .toArray();
  return first ?? null;
}

/**
 * The first or last `n` items in insertion order (`Collection.first` and
 * `Collection.last`; `last` gives them newest first).
 *
 * @param c The collection.
 * @param n How many.
 * @param reverse Newest first.
 * @param name `"first"` or `"last"`, for error messages.
 * @returns A cursor over them.
 * @throws {RangeError} When `n` is not a whole number of at least 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([1, 2, 3]);
 * assert.deepEqual(await db.last(2), [2, 3]);
 * ```
 */
export function ordered<T>(
  c: CollectionCore,
  n: number,
  reverse: boolean,
  name: string,
): Cursor<T> {
  const action = `Cannot read the ${name} items of '${c.name}'`;
  const limit = checkCount(n, "n", action, 0);
  return cursor<T>(c, {
    filter: {},
    predicate: () => true,
    limit,
    source: (signal) => c.engine.orderPages(c.name, { reverse, signal }),
    sourceDescription: `insertion order${reverse ? ", newest first" : ""}`,
  });
}

/**
 * `Collection.between`.
 *
 * @param c The collection.
 * @param field A (dotted) field, or `"_createdAt"`.
 * @param start The lowest value.
 * @param end The highest value.
 * @returns Copies, in the field's order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ t: 1 }, { t: 5 }]);
 * assert.equal((await db.between("t", 2, 9)).length, 1);
 * ```
 */
export async function between<T>(
  c: CollectionCore,
  field: string,
  start: number | string | Date,
  end: number | string | Date,
): Promise<T[]> {
  const action = `Cannot read '${c.name}' between two values`;
  if (typeof field !== "string" || field.length === 0) {
    throw new TypeError(
      `${action}: the field must be a non-empty string, got ${
        describeType(field)
      }`,
    );
  }
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
    // NaN (or an invalid Date) is between nothing: a caller's mistake, not
    // an empty range.
    const n = bound instanceof Date ? bound.getTime() : bound;
    if (typeof n === "number" && Number.isNaN(n)) {
      throw new RangeError(
        `${action}: a bound is ${
          bound instanceof Date ? "an invalid Date" : "NaN"
        }, which orders with nothing`,
      );
    }
  }
  if (c.pending !== undefined) await ready(c);
  if (field === "_createdAt") {
    const from = start instanceof Date ? start.getTime() : start;
    const to = end instanceof Date ? end.getTime() : end;
    if (typeof from !== "number" || typeof to !== "number") {
      throw new TypeError(
        `${action}: _createdAt bounds must be numbers or Dates`,
      );
    }
    return await cursor<T>(c, {
      filter: {},
      predicate: () => true,
      source: (signal) => c.engine.orderPages(c.name, { from, to, signal }),
      sourceDescription: "insertion order, by creation time",
    }).toArray();
  }
  return await find<T>(c, { [field]: { $gte: start, $lte: end } }, {
    sort: { [field]: 1 },
  }).toArray();
}

/**
 * `Collection.aggregate`.
 *
 * @param c The collection.
 * @param pipeline The stages.
 * @param options `maxGroups`.
 * @returns The output documents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ t: 1 }, { t: 3 }]);
 * assert.deepEqual(await db.aggregate([{ $group: { _id: null, n: { $sum: 1 } } }]).toArray(), [{ _id: null, n: 2 }]);
 * ```
 */
export function aggregate<R>(
  c: CollectionCore,
  pipeline: Pipeline,
  options: AggregateOptions | undefined,
): AggregationCursor<R> {
  const { pushdown, stages } = compilePipeline(pipeline, options);
  const cursor = find(c, pushdown.filter as QueryFilter, {
    ...(pushdown.sort === undefined ? {} : { sort: pushdown.sort }),
    ...(pushdown.skip === 0 ? {} : { skip: pushdown.skip }),
    ...(pushdown.limit === Infinity ? {} : { limit: pushdown.limit }),
  });
  return new AggregationCursor<R>(() => cursor.batches(), stages);
}

/**
 * `Collection.distinct`.
 *
 * @param c The collection.
 * @param field The field path.
 * @param filter The filter.
 * @returns The distinct values, sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ d: "b" }, { d: "a" }]);
 * assert.deepEqual(await db.distinct("d"), ["a", "b"]);
 * ```
 */
export async function distinct(
  c: CollectionCore,
  field: string,
  filter: QueryFilter,
): Promise<unknown[]> {
  if (typeof field !== "string" || field === "") {
    throw new TypeError(
      "Cannot run distinct: the field must be a non-empty string",
    );
  }
  return await distinctValues(find(c, filter, {}), field);
}
