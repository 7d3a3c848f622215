/**
 * MongoDB's single- and multi-document writes on a collection:
 * `updateOne`, `updateMany`, `replaceOne` (with `upsert`),
 * `findOneAndUpdate`, `findOneAndDelete`, `deleteOne`. Each is one atomic
 * commit (on Deno KV, an `updateMany` over more documents than one commit
 * holds is split, as `update` is). The `Collection` methods of these names
 * call the functions here with the collection's state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c");
 * const r = await c.updateOne({ sku: "abc" }, { $inc: { qty: 5 } }, { upsert: true });
 * assert.equal(r.upsertedId, (await c.findOne({ sku: "abc" }) as { _id: string })._id);
 * ```
 *
 * @module
 */

import type { WriteOp } from "../engine/engine.ts";
import { ConflictError } from "../errors.ts";
import { compileFilter, type Filter } from "../query/compile.ts";
import { compileUpdate, type Update } from "../query/update.ts";
import { isPlainObject } from "../query/types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import { checkVersion, describeType, hidesValues } from "../validate.ts";
import { copyValue } from "../value_codec.ts";
import { type CollectionCore, ready } from "./core.ts";
import { documentOf, rewriteOp } from "./documents.ts";
import { checkFilter, matching } from "./query.ts";

/** Options of `updateOne` and `updateMany`. */
export interface UpdateOneOptions {
  /** Insert a document when none matches (built from the filter's equalities, `$setOnInsert` and the update). */
  readonly upsert?: boolean;
  /** The filters of the `$[<id>]` segments. */
  readonly arrayFilters?: readonly Filter[];
  /** Every matching document must be at this version, else `ConflictError`. */
  readonly expectedVersion?: number;
}

/** Options of `replaceOne`. */
export interface ReplaceOneOptions {
  /** Insert the replacement when no document matches. */
  readonly upsert?: boolean;
  /** The matching document must be at this version, else `ConflictError`. */
  readonly expectedVersion?: number;
}

/** Options of `findOneAndUpdate`. */
export interface FindOneAndUpdateOptions {
  /** Insert a document when none matches. */
  readonly upsert?: boolean;
  /** The filters of the `$[<id>]` segments. */
  readonly arrayFilters?: readonly Filter[];
  /** Return the document as it was (default) or as it became. */
  readonly returnDocument?: "before" | "after";
}

/** MongoDB's update result. */
export interface UpdateResult {
  /** Always `true` (as MongoDB's acknowledged writes). */
  readonly acknowledged: true;
  /** How many documents matched the filter. */
  readonly matchedCount: number;
  /** How many of them changed. */
  readonly modifiedCount: number;
  /** 1 when an upsert inserted a document, else 0. */
  readonly upsertedCount: number;
  /** The `_id` an upsert inserted, else `null`. */
  readonly upsertedId: string | null;
}

/** MongoDB's delete result. */
export interface DeleteResult {
  /** Always `true`. */
  readonly acknowledged: true;
  /** How many documents were deleted. */
  readonly deletedCount: number;
}

const LOGICAL_OR_OPERATOR = /^\$/;

/** The `$set` of an upsert's equalities: `{a: 1}`, `{a: {$eq: 1}}`, `$and`. */
function equalities(filter: Filter, out: Record<string, unknown>): void {
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (k === "$and" && Array.isArray(v)) {
      for (const f of v) if (isPlainObject(f)) equalities(f, out);
      continue;
    }
    if (LOGICAL_OR_OPERATOR.test(k)) continue;
    if (v instanceof RegExp) continue;
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (keys.length > 0 && keys.every((x) => x.startsWith("$"))) {
        if (Object.hasOwn(v, "$eq")) out[k] = v.$eq;
        continue;
      }
    }
    out[k] = v;
  }
}

function checkUpsertFlag(value: unknown, action: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(
      `${action}: option 'upsert' must be a boolean, got ${
        describeType(value)
      }`,
    );
  }
  return value;
}

interface Run {
  readonly one: boolean;
  readonly replacement: boolean;
  readonly upsert: boolean;
  readonly arrayFilters?: readonly Filter[];
  readonly expectedVersion?: number;
}

interface Outcome<T> {
  matched: number;
  modified: number;
  upsertedId: string | null;
  before: T | null;
  after: T | null;
}

async function runUpdate<T>(
  c: CollectionCore,
  filter: Filter,
  update: Update,
  run: Run,
  action: string,
): Promise<Outcome<T>> {
  c.engine.assertOpen(action);
  const { conditions, limit } = checkFilter(filter, undefined, action);
  const predicate = compileFilter(conditions);
  if (run.replacement) {
    if (
      !isPlainObject(update) ||
      Object.keys(update).some((k) => k.startsWith("$"))
    ) {
      throw new TypeError(
        `${action}: a replacement document must be a plain object without update operators`,
      );
    }
  } else if (
    !isPlainObject(update) || Object.keys(update).length === 0 ||
    !Object.keys(update).every((k) => k.startsWith("$"))
  ) {
    throw new TypeError(
      `${action}: an update needs update operators such as { $set: { … } }; use replaceOne to replace a document`,
    );
  }
  const updater = compileUpdate(update, {
    protect: ["_id"],
    hideValues: hidesValues(c.engine.storage),
    filter: conditions,
    ...(run.arrayFilters === undefined
      ? {}
      : { arrayFilters: run.arrayFilters }),
  });
  let base: Record<string, unknown> | undefined;
  if (run.upsert) {
    const eq: Record<string, unknown> = {};
    equalities(conditions, eq);
    if (run.replacement) {
      base = Object.hasOwn(eq, "_id") ? { _id: eq._id } : {};
    } else {
      const { _id, ...rest } = eq;
      base = compileUpdate({ $set: rest })({}).doc as Record<string, unknown>;
      if (_id !== undefined) base = { _id, ...base };
    }
  }
  if (c.pending !== undefined) await ready(c);
  const out: Outcome<T> = {
    matched: 0,
    modified: 0,
    upsertedId: null,
    before: null,
    after: null,
  };
  const now = new Date();
  const collect = async (ids?: readonly string[]) => {
    // A regroup (Deno KV splitting a large updateMany) re-reads one group
    // of the documents already counted by the first pass.
    const counting = ids === undefined;
    if (counting) {
      out.matched = 0;
      out.upsertedId = null;
      out.before = out.after = null;
    }
    const ops: WriteOp[] = [];
    const cursor = matching<T>(
      c,
      conditions,
      predicate,
      run.one ? 1 : limit,
      ids,
    );
    for await (const entry of cursor.entries()) {
      if (
        run.expectedVersion !== undefined &&
        entry.version !== run.expectedVersion
      ) {
        throw new ConflictError(
          `${action}: expected version ${run.expectedVersion} of '${entry.key}', found version ${entry.version}`,
        );
      }
      const result = updater(entry.value, { now });
      if (counting) {
        out.matched++;
        out.before = entry.value;
        out.after = result.doc as T;
      }
      if (!result.changed) continue;
      ops.push(rewriteOp(c, entry, result.doc, action));
    }
    if (out.matched === 0 && base !== undefined && ids === undefined) {
      const result = updater(base, { insert: true, now });
      const fresh = (result.doc as { _id?: unknown })._id === undefined;
      const { id, value } = documentOf(c, result.doc, undefined, action);
      out.upsertedId = id;
      const { _id: _, ...rest } = result.doc as Record<string, unknown>;
      out.after = { _id: id, ...rest } as T;
      ops.push({
        kind: "put",
        id,
        value,
        tags: undefined,
        ttl: undefined,
        mustBeNew: true,
        ...(fresh ? { fresh: true } : {}),
      });
    }
    return ops;
  };
  const applied = await c.engine.transact(
    c.name,
    action,
    () => collect(),
    run.one ? undefined : collect,
  );
  out.modified = applied.length - (out.upsertedId === null ? 0 : 1);
  return out;
}

function result<T>(o: Outcome<T>): UpdateResult {
  return {
    acknowledged: true,
    matchedCount: o.matched,
    modifiedCount: o.modified,
    upsertedCount: o.upsertedId === null ? 0 : 1,
    upsertedId: o.upsertedId,
  };
}

/**
 * `updateOne` and `updateMany`.
 *
 * @param c The collection.
 * @param one Only the first matching document.
 * @param filter Which documents.
 * @param update Update operators.
 * @param options `upsert`, `arrayFilters`, `expectedVersion`.
 * @returns MongoDB's update result.
 */
export async function updateDocuments<T>(
  c: CollectionCore,
  one: boolean,
  filter: Filter,
  update: Update,
  options: UpdateOneOptions = {},
): Promise<UpdateResult> {
  const action = `Cannot update '${c.name}'`;
  checkOptions(options, OPTIONS[one ? "updateOne" : "updateMany"]!, action);
  const upsert = checkUpsertFlag(options.upsert, action);
  const expectedVersion = checkVersion(options.expectedVersion, action);
  return result(
    await runUpdate(c, filter, update, {
      one,
      replacement: false,
      upsert,
      ...(options.arrayFilters === undefined
        ? {}
        : { arrayFilters: options.arrayFilters }),
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    }, action),
  );
}

/**
 * `replaceOne`.
 *
 * @param c The collection.
 * @param filter Which document.
 * @param replacement The new content (its `_id`, if any, must not change).
 * @param options `upsert`, `expectedVersion`.
 * @returns MongoDB's update result.
 */
export async function replaceDocument<T>(
  c: CollectionCore,
  filter: Filter,
  replacement: T,
  options: ReplaceOneOptions = {},
): Promise<UpdateResult> {
  const action = `Cannot replace in '${c.name}'`;
  checkOptions(options, OPTIONS.replaceOne!, action);
  const upsert = checkUpsertFlag(options.upsert, action);
  const expectedVersion = checkVersion(options.expectedVersion, action);
  return result(
    await runUpdate(c, filter, replacement as Update, {
      one: true,
      replacement: true,
      upsert,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    }, action),
  );
}

/**
 * `findOneAndUpdate`.
 *
 * @param c The collection.
 * @param filter Which document (the first in key order).
 * @param update Update operators.
 * @param options `upsert`, `arrayFilters`, `returnDocument`.
 * @returns The document before (default) or after, or `null`.
 */
export async function findAndUpdate<T>(
  c: CollectionCore,
  filter: Filter,
  update: Update,
  options: FindOneAndUpdateOptions = {},
): Promise<T | null> {
  const action = `Cannot update '${c.name}'`;
  checkOptions(options, OPTIONS.findOneAndUpdate!, action);
  const upsert = checkUpsertFlag(options.upsert, action);
  const ret = options.returnDocument ?? "before";
  if (ret !== "before" && ret !== "after") {
    throw new TypeError(
      `${action}: option 'returnDocument' must be "before" or "after", got ${
        describeType(ret)
      }`,
    );
  }
  const o = await runUpdate(c, filter, update, {
    one: true,
    replacement: false,
    upsert,
    ...(options.arrayFilters === undefined
      ? {}
      : { arrayFilters: options.arrayFilters }),
  }, action);
  const doc = ret === "after" ? o.after : o.before;
  return doc === null ? null : copyValue(doc) as T;
}

/**
 * `deleteOne` and `findOneAndDelete`.
 *
 * @param c The collection.
 * @param filter Which document (the first in key order).
 * @returns The deleted document, or `null`.
 */
export async function deleteFirst<T>(
  c: CollectionCore,
  filter: Filter,
): Promise<T | null> {
  const action = `Cannot delete from '${c.name}'`;
  c.engine.assertOpen(action);
  const { conditions } = checkFilter(filter, undefined, action);
  const predicate = compileFilter(conditions);
  if (c.pending !== undefined) await ready(c);
  let found: T | null = null;
  await c.engine.transact(c.name, action, async () => {
    found = null;
    for await (
      const entry of matching<T>(
        c,
        conditions,
        predicate,
        1,
        undefined,
      )
        .entries()
    ) {
      found = entry.value;
      return [{
        kind: "delete",
        id: entry.key,
        expectedVersion: entry.version,
      }];
    }
    return [];
  });
  return found === null ? null : copyValue(found) as T;
}
