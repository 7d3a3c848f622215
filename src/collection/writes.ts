/**
 * A collection's writes by key: `put` (under a given key or a new one),
 * `putBatch`, `delete`, `deleteBatch` and `clear`, each checking all its
 * arguments before anything is written. The `Collection` methods of these
 * names call the functions here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const [a, b] = await db.putBatch([1, 2]);
 * await db.put("k", 3);
 * assert.equal(await db.deleteBatch([a!, b!]), 2);
 * assert.equal(await db.clear(), 1);
 * ```
 *
 * @module
 */

import type { WriteOp } from "../engine/engine.ts";
import { writeSplit } from "../batch_split.ts";
import type { PutBatchOptions, PutOptions } from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import {
  checkDense,
  checkIdField,
  checkKey,
  checkTags,
  checkTtl,
  describeType,
  isKeyedPut,
  shownKey,
} from "../validate.ts";
import { checkValue } from "../value_codec.ts";
import type { CollectionCore } from "./core.ts";

/**
 * `Collection.put`, either form: `(value, options?)` or
 * `(key, value, options?)`.
 *
 * @param c The collection.
 * @param args The method's arguments.
 * @returns The key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.put("k", { a: 1 }), "k");
 * assert.equal((await db.put({ a: 1 })).length, 26);
 * ```
 */
export function put(
  c: CollectionCore,
  args: unknown[],
): Promise<string> {
  // Not async: a put the engine applies at once costs one settled promise.
  try {
    const keyed = args.length >= 3 ||
      (args.length === 2 && isKeyedPut(args[0], args[1], OPTIONS.put.known));
    const key = keyed ? args[0] : undefined;
    const value = keyed ? args[1] : args[0];
    const options = (keyed ? args[2] : args[1]) as PutOptions | undefined;
    const action = typeof key === "string"
      ? `Cannot put '${key}'`
      : `Cannot put into '${c.name}'`;
    c.engine.assertOpen(action);
    if (keyed) checkKey(key, action);
    checkOptions(options, OPTIONS.put, action);
    const op = putOp(
      c,
      key as string | undefined,
      value,
      options?.ttl,
      options?.tags,
      action,
    );
    const done = c.engine.writeOne(c.name, op, action);
    return done === undefined ? Promise.resolve(op.id) : done.then(() => op.id);
  } catch (e) {
    return Promise.reject(e);
  }
}

function putOp(
  c: CollectionCore,
  key: string | undefined,
  value: unknown,
  ttl: unknown,
  tags: unknown,
  action: string,
): WriteOp {
  const id = key ?? c.engine.newKey();
  checkIdField(value, key, action);
  return {
    kind: "put",
    id,
    fresh: key === undefined,
    value: checkValue(value, action),
    ttl: checkTtl(ttl, action),
    tags: checkTags(tags, action),
  };
}

/**
 * `Collection.delete`.
 *
 * @param c The collection.
 * @param key The key.
 * @returns Whether a visible item was deleted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert(!(await db.delete("nope")));
 * ```
 */
export async function deleteKey(
  c: CollectionCore,
  key: string,
): Promise<boolean> {
  const action = `Cannot delete ${shownKey(key)}`;
  checkKey(key, action);
  const [existed] = await c.engine.write(c.name, [{
    kind: "delete",
    id: key,
  }], action);
  return existed === true;
}

/**
 * `Collection.clear`.
 *
 * @param c The collection.
 * @returns How many visible items were deleted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.clear(), 0);
 * ```
 */
export async function clear(c: CollectionCore): Promise<number> {
  return await c.engine.clear(c.name, `Cannot clear '${c.name}'`);
}

/**
 * `Collection.putBatch`.
 *
 * @param c The collection.
 * @param items Values or a `Map` of keys to values.
 * @param options `ttl`, `tags`, `atomic`, `assumeNew`, `onlyNew`,
 *   `deletes`.
 * @returns The keys, in the order of `items`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.deepEqual(await db.putBatch(new Map([["a", 1]]), { atomic: false }), ["a"]);
 * const bulk = { atomic: false, assumeNew: true };
 * assert.deepEqual(await db.putBatch(new Map([["b", 2]]), bulk), ["b"]);
 * ```
 */
export async function putBatch<T>(
  c: CollectionCore,
  items: readonly T[] | ReadonlyMap<string, T>,
  options: PutBatchOptions | undefined,
): Promise<string[]> {
  const action = `Cannot put a batch into '${c.name}'`;
  c.engine.assertOpen(action);
  const isMap = items instanceof Map;
  if (!isMap && !Array.isArray(items)) {
    throw new TypeError(
      `${action}: items must be an array of values or a Map of keys to values, got ${
        describeType(items)
      }`,
    );
  }
  checkBatchOptions(options, action);
  if (!isMap) checkDense(items as readonly unknown[], "items", action);
  const pairs: [string | undefined, unknown][] = isMap
    ? [...(items as ReadonlyMap<string, T>)]
    : Array.from(items as readonly T[], (v) => [undefined, v]);
  return await putPairs(c, pairs, options, action);
}

/**
 * `putBatch` of keys and values given as pairs, for code of this package
 * whose keys are distinct by construction (the gateway's receiver): a `Map`
 * of keys the caller just made costs a first hashing of each (~1 µs a key
 * on a batch of strings just parsed), which this skips.
 *
 * @param c The collection.
 * @param pairs Keys (`undefined`: a new key) and values; keys distinct.
 * @param options As `putBatch`'s (checked here).
 * @param action For error messages.
 * @returns The keys, in the order of `pairs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { coreOf } from "./core.ts";
 * import { putPairs } from "./writes.ts";
 * await using db = await open();
 * const readings = db.collection("readings");
 * const keys = await putPairs(coreOf(readings), [["a", 1], ["b", 2]], {
 *   atomic: false,
 *   assumeNew: true,
 * }, "Cannot put");
 * assert.deepEqual(keys, ["a", "b"]);
 * assert.equal(await readings.get("b"), 2);
 * ```
 */
export async function putPairs(
  c: CollectionCore,
  pairs: readonly (readonly [string | undefined, unknown])[],
  options: PutBatchOptions | undefined,
  action: string,
): Promise<string[]> {
  c.engine.assertOpen(action);
  const onlyNew = checkBatchOptions(options, action);
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
    const op = putOp(
      c,
      key,
      value,
      Array.isArray(ttl) ? ttl[i] : ttl,
      options?.tags,
      itemAction,
    );
    return onlyNew === true ? { ...op, mustBeNew: true } : op;
  });
  const deletes = deleteOps(options?.deletes, pairs, action);
  const atomic = options?.atomic;
  if (atomic !== undefined && typeof atomic !== "boolean") {
    throw new TypeError(`${action}: atomic must be a boolean`);
  }
  const assumeNew = options?.assumeNew;
  if (assumeNew !== undefined && typeof assumeNew !== "boolean") {
    throw new TypeError(`${action}: assumeNew must be a boolean`);
  }
  if (assumeNew === true && atomic !== false) {
    throw new TypeError(
      `${action}: assumeNew writes in several atomic steps: pass atomic: false with it`,
    );
  }
  if (assumeNew === true && deletes.length > 0) {
    throw new TypeError(`${action}: deletes cannot go with assumeNew`);
  }
  if (ops.length + deletes.length === 0) return [];
  const all = deletes.length === 0 ? ops : [...ops, ...deletes];
  if (assumeNew === true) {
    await c.engine.writeNew(c.name, ops, action);
  } else if (atomic === false) {
    await writeSplit(c.engine, c.name, all, action);
  } else await c.engine.write(c.name, all, action);
  return ops.map((op) => op.id);
}

/**
 * Checks `putBatch`'s option names and `onlyNew`.
 *
 * @returns `onlyNew`.
 */
function checkBatchOptions(
  options: PutBatchOptions | undefined,
  action: string,
): boolean | undefined {
  checkOptions(options, OPTIONS.putBatch, action);
  const onlyNew = options?.onlyNew;
  if (onlyNew !== undefined && typeof onlyNew !== "boolean") {
    throw new TypeError(`${action}: onlyNew must be a boolean`);
  }
  if (onlyNew === true && options?.assumeNew === true) {
    throw new TypeError(
      `${action}: onlyNew checks that every key is absent, assumeNew does not look: pass one of them`,
    );
  }
  return onlyNew;
}

/** The delete steps of `putBatch`'s `deletes` (each key once). */
function deleteOps(
  keys: unknown,
  pairs: readonly (readonly [string | undefined, unknown])[],
  action: string,
): WriteOp[] {
  if (keys === undefined) return [];
  const unique = uniqueKeys(keys, "deletes", `${action}: deletes`);
  if (unique.length === 0) return [];
  const put = new Set<string>();
  for (const [key] of pairs) if (key !== undefined) put.add(key);
  return unique.map((key) => {
    if (put.has(key)) {
      throw new TypeError(
        `${action}: '${key}' is both put and deleted`,
      );
    }
    return { kind: "delete", id: key };
  });
}

/**
 * `Collection.deleteBatch`.
 *
 * @param c The collection.
 * @param keys The keys (duplicates are ignored).
 * @returns How many visible items were deleted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("a", 1);
 * assert.equal(await db.deleteBatch(new Set(["a", "b"])), 1);
 * ```
 */
export async function deleteBatch(
  c: CollectionCore,
  keys: Iterable<string>,
): Promise<number> {
  const action = `Cannot delete a batch from '${c.name}'`;
  c.engine.assertOpen(action);
  const unique = uniqueKeys(keys, "keys", action);
  if (unique.length === 0) return 0;
  const existed = await c.engine.write(
    c.name,
    unique.map((id) => ({ kind: "delete", id })),
    action,
  );
  return existed.filter(Boolean).length;
}

/**
 * The keys of an iterable, each once, each checked.
 *
 * @param keys What was given.
 * @param name The argument's name, for the message.
 * @param action What is attempted, for the message.
 * @returns The keys, in first-seen order.
 * @throws {TypeError} When it is not an iterable of valid keys.
 * @throws {RangeError} When a key is too long.
 */
function uniqueKeys(keys: unknown, name: string, action: string): string[] {
  if (
    keys === null || typeof keys !== "object" ||
    typeof (keys as Iterable<string>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `${action}: ${name} must be an iterable of keys, got ${
        describeType(keys)
      }`,
    );
  }
  const unique = [...new Set(keys as Iterable<unknown>)];
  for (const key of unique) checkKey(key, action);
  return unique as string[];
}
