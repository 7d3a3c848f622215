/**
 * The document half of a collection's API: unosql's document methods and
 * MongoDB's single-document writes, aggregation and `distinct`.
 *
 * `Collection` (src/collection.ts) extends this class with key-value reads
 * and writes, queries, changes and indexes; both hand the same
 * `CollectionCore` to the plain functions of src/collection/.
 *
 * @module
 */

import type {
  AggregateOptions,
  AggregationCursor,
  Pipeline,
} from "../query/aggregate.ts";
import type { Update } from "../query/update.ts";
import type { FindOptions, PutOptions, UpdateOptions } from "../types.ts";
import { attachCore, type CollectionCore } from "./core.ts";
import { aggregate, distinct, findOne, type QueryFilter } from "./query.ts";
import { deleteMany, insertMany, replace, update } from "./documents.ts";
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
} from "./mongo_writes.ts";

/**
 * Document methods shared by every {@linkcode Collection} and the
 * `Database`: `insert`, `findOne`, `update`, the MongoDB-style
 * `updateOne`/`updateMany`/`replaceOne`/`deleteOne`/`findOneAnd*`,
 * `aggregate` and `distinct`. Not constructed directly: collections come
 * from `open()` and `db.collection()`.
 *
 * @typeParam T The documents' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const people = db.collection<{ _id?: string; name: string }>("people");
 * const id = await people.insert({ name: "Ada" });
 * assert((await people.findOne({ _id: id }))?.name === "Ada");
 * ```
 */
export class CollectionBase<T = unknown> {
  readonly #c: CollectionCore;

  /**
   * Internal: collections come from `open()` and `db.collection()`.
   *
   * @ignore
   */
  constructor(core: CollectionCore) {
    this.#c = core;
    attachCore(this, core);
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
