/**
 * A collection's documents (unosql's surface): the check of a document
 * and its `_id`, `insertMany`, `update`, `replace` and `deleteMany`. The
 * `Collection` methods of these names (and `insert`) call the functions
 * here; MongoDB's single-document writes are in mongo_writes.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c");
 * const [id] = await c.insertMany([{ n: 1 }, { n: 2 }]);
 * assert.equal(await c.update({ n: 1 }, { $inc: { n: 10 } }), 1);
 * assert(await c.replace(id!, { n: 0 }));
 * assert.equal(await c.deleteMany({}), 2);
 * ```
 *
 * @module
 */

import type { WriteOp } from "../engine/engine.ts";
import { ConflictError, DuplicateKeyError } from "../errors.ts";
import { compileFilter } from "../query/compile.ts";
import { compileUpdate, type Update } from "../query/update.ts";
import type { PutOptions, UpdateOptions } from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import {
  checkDense,
  checkKey,
  checkTags,
  checkTtl,
  checkVersion,
  describeType,
  hidesValues,
  shownKey,
} from "../validate.ts";
import {
  checkDocument,
  type CheckedValue,
  checkValue,
} from "../value_codec.ts";
import { type CollectionCore, ready } from "./core.ts";
import { checkFilter, matching, type QueryFilter } from "./query.ts";

/**
 * Checks a document and gives it its id: `id` when given (its `_id` must
 * then be `id` or absent), else its `_id`, else a new key.
 *
 * @param c The collection.
 * @param doc The document.
 * @param id The id it must have, if any.
 * @param action For error messages.
 * @returns Its id and its checked value, with `_id` first.
 * @throws {TypeError} When `doc` is not a plain object, `_id` is not a
 *   valid key or differs from `id`, or a value is not JSON-compatible.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await assert.rejects(db.collection("c").insert({ _id: 5 }), TypeError);
 * ```
 */
export function documentOf(
  c: CollectionCore,
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
      `${action}: a document must be a plain object, got ${describeType(doc)}`,
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
  const key = id ?? given ?? c.engine.newKey();
  return { id: key, value: checkDocument(doc, key, action) };
}

/**
 * The write of an updated document over the version it was read at: its
 * metadata (tags, TTL, creation time) kept, the version checked.
 *
 * @param c The collection.
 * @param entry The document as read: its key, version and value.
 * @param doc The updated document.
 * @param action For error messages.
 * @returns The put.
 * @throws {TypeError} When `doc` is not a valid document for that key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const users = db.collection("users");
 * await users.insert({ _id: "ann", n: 1 });
 * assert.equal(await users.update({ _id: "ann" }, { $inc: { n: 1 } }), 1);
 * assert.deepEqual(await users.get("ann"), { _id: "ann", n: 2 });
 * ```
 */
export function rewriteOp(
  c: CollectionCore,
  entry: { readonly key: string; readonly version: number },
  doc: unknown,
  action: string,
): WriteOp {
  const at = `${action}: document '${entry.key}'`;
  // An item stored without `_id` (`put(key, value)`) stays without one: an
  // update changes what it says and nothing else (`_id` cannot be set).
  const bare = typeof doc === "object" && doc !== null &&
    (doc as { _id?: unknown })._id === undefined;
  return {
    kind: "put",
    id: entry.key,
    value: bare ? checkValue(doc, at) : documentOf(c, doc, entry.key, at).value,
    tags: undefined,
    ttl: undefined,
    keepMeta: true,
    expectedVersion: entry.version,
  };
}

/**
 * `Collection.insertMany` (and `insert`).
 *
 * @param c The collection.
 * @param docs Plain objects.
 * @param options `ttl` and `tags` for every document.
 * @returns Their ids, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.deepEqual(await db.collection("c").insertMany([{ _id: "a" }]), ["a"]);
 * ```
 */
export async function insertMany<T>(
  c: CollectionCore,
  docs: readonly T[],
  options: PutOptions,
): Promise<string[]> {
  const action = `Cannot insert into '${c.name}'`;
  c.engine.assertOpen(action);
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
    const { id, value } = documentOf(c, doc, undefined, at);
    if (ids.has(id)) {
      throw new DuplicateKeyError(`${at}: the id '${id}' is given twice`, {
        key: id,
        holder: id,
      });
    }
    ids.add(id);
    return {
      kind: "put",
      id,
      value,
      tags,
      ttl,
      mustBeNew: true,
      fresh: (doc as { _id?: unknown })._id === undefined,
    };
  });
  if (c.pending !== undefined) await ready(c);
  await c.engine.write(c.name, ops, action);
  return [...ids];
}

/**
 * `Collection.update`.
 *
 * @param c The collection.
 * @param filter Which documents.
 * @param changes A replacement document or update operators.
 * @param options `expectedVersion`.
 * @returns How many documents changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c");
 * await c.insert({ _id: "a", n: 1 });
 * assert.equal(await c.update({ _id: "a" }, { n: 1 }), 0); // unchanged
 * ```
 */
export async function update(
  c: CollectionCore,
  filter: QueryFilter,
  changes: Update,
  options: UpdateOptions,
): Promise<number> {
  const action = `Cannot update '${c.name}'`;
  c.engine.assertOpen(action);
  checkOptions(options, OPTIONS.update, action);
  const expectedVersion = checkVersion(options?.expectedVersion, action);
  const { conditions, limit } = checkFilter(filter, undefined, action);
  const predicate = compileFilter(conditions);
  const updater = compileUpdate(changes, {
    protect: ["_id"],
    hideValues: hidesValues(c.engine.storage),
  });
  if (c.pending !== undefined) await ready(c);
  const collect = async (ids?: readonly string[]) => {
    const ops: WriteOp[] = [];
    const cursor = matching(c, conditions, predicate, limit, ids);
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
      ops.push(rewriteOp(c, entry, result.doc, action));
    }
    return ops;
  };
  const applied = await c.engine.transact(
    c.name,
    action,
    () => collect(),
    collect,
  );
  return applied.length;
}

/**
 * `Collection.replace`.
 *
 * @param c The collection.
 * @param id The document's id.
 * @param doc The new content.
 * @param options `expectedVersion`.
 * @returns Whether it existed and was replaced.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert(!(await db.collection("c").replace("nope", { a: 1 })));
 * ```
 */
export async function replace<T>(
  c: CollectionCore,
  id: string,
  doc: T,
  options: UpdateOptions,
): Promise<boolean> {
  const action = `Cannot replace ${shownKey(id)} in '${c.name}'`;
  checkKey(id, action);
  checkOptions(options, OPTIONS.replace, action);
  const expectedVersion = checkVersion(options?.expectedVersion, action);
  const { value } = documentOf(c, doc, id, action);
  if (c.pending !== undefined) await ready(c);
  let found = false;
  await c.engine.transact(c.name, action, async () => {
    const record = await c.engine.read(c.name, id, action);
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
 * `Collection.deleteMany`.
 *
 * @param c The collection.
 * @param filter Which documents.
 * @returns How many were deleted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.collection("c").deleteMany({}), 0);
 * ```
 */
export async function deleteMany(
  c: CollectionCore,
  filter: QueryFilter,
): Promise<number> {
  const action = `Cannot delete from '${c.name}'`;
  c.engine.assertOpen(action);
  const { conditions, limit } = checkFilter(filter, undefined, action);
  const predicate = compileFilter(conditions);
  if (c.pending !== undefined) await ready(c);
  const collect = async (ids?: readonly string[]) => {
    const ops: WriteOp[] = [];
    const cursor = matching(c, conditions, predicate, limit, ids);
    for await (const entry of cursor.entries()) {
      ops.push({
        kind: "delete",
        id: entry.key,
        expectedVersion: entry.version,
      });
    }
    return ops;
  };
  const existed = await c.engine.transact(
    c.name,
    action,
    () => collect(),
    collect,
  );
  return existed.filter(Boolean).length;
}
