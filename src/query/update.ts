/**
 * The update compiler: turns a MongoDB-style update document into a function
 * that computes the updated document, once, so that applying it does no
 * parsing.
 *
 * An update is either a **replacement** (no top-level key starts with `$`):
 * the document becomes it, keeping only its protected fields (`_id`); or a
 * set of **operators**: `$set`, `$setOnInsert`, `$unset`, `$inc`, `$mul`,
 * `$min`, `$max`, `$bit`, `$currentDate`, `$push` (with `$each`, `$slice`,
 * `$sort`, `$position`), `$addToSet` (with `$each`), `$pop`, `$pull` (a
 * value or a condition), `$pullAll` and `$rename`. Paths may hold the
 * positional segments `$` (the element the filter matched, given the
 * `filter` option), `$[]` (every element) and `$[<id>]` (the elements the
 * `arrayFilters` option's filter for `<id>` selects). Semantics are
 * MongoDB's, including the order in which new fields are created (by path,
 * field names compared as strings and array indexes as numbers).
 *
 * Malformed updates throw at compile time; an operator meeting a value it
 * cannot work on (`$inc` on a string, `$push` on an object, a path through a
 * scalar) throws when applied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const birthday = compileUpdate({ $inc: { age: 1 }, $set: { "address.city": "NY" } });
 * const { changed, doc } = birthday({ name: "Ann", age: 41 });
 * assert(changed);
 * assert.deepEqual(doc, { name: "Ann", age: 42, address: { city: "NY" } });
 * ```
 *
 * @module
 */

import { compareStrings, valuesEqual } from "./compare.ts";
import type { Filter } from "./compile.ts";
import { splitPath } from "./path.ts";
import { describe, isPlainObject } from "./types.ts";
import { copyValue, setOwn } from "../value_codec.ts";
import {
  type Action,
  checkOperand,
  compileAction,
  compileError,
  MAX_UPDATE_DEPTH,
  UPDATE_OPERATORS,
} from "./update_ops.ts";
import {
  type ApplyContext,
  type Doc,
  isDocument,
  isIndex,
  positional,
  shallowCopy,
  type Show,
} from "./update_walk.ts";
import { compileArrayFilters, positionFinder } from "./update_positional.ts";

export { MAX_UPDATE_DEPTH };

/**
 * An update document: either a replacement (`{ name: "Ann" }`) or update
 * operators (`{ $set: { age: 30 } }`).
 */
export type Update = { readonly [key: string]: unknown };

/** How one application runs. */
export interface ApplyOptions {
  /** The document is being inserted by an upsert: `$setOnInsert` applies. */
  readonly insert?: boolean;
  /** The time `$currentDate` writes (default: now). */
  readonly now?: Date;
}

/** Compiled once; applying never mutates its input. */
export type Updater = (
  doc: unknown,
  options?: ApplyOptions,
) => { readonly changed: boolean; readonly doc: unknown };

/** Options of {@linkcode compileUpdate}. */
export interface UpdateOptions {
  /**
   * Top-level field names the update may not change, e.g. `["_id"]`. A
   * replacement keeps them (and may repeat them with their current value);
   * `$setOnInsert` may set them.
   */
  readonly protect?: readonly string[];
  /**
   * Leave stored values out of the errors raised when the update is
   * applied (`$inc needs a number field, got a string`): for encrypted
   * databases, whose messages name fields and keys, never values.
   */
  readonly hideValues?: boolean;
  /** The filters of the `$[<id>]` segments, one per identifier. */
  readonly arrayFilters?: readonly Filter[];
  /** The filter the documents matched, for the positional `$`. */
  readonly filter?: Filter;
}

/** A value's kind without its content: `"a string"`, `"null"`. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a Date";
  if (value === undefined) return "undefined";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function immutableError(field: string): TypeError {
  return new TypeError(`Cannot update '${field}': it is immutable`);
}

function comparePaths(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x === y) continue;
    if (isIndex(x) && isIndex(y)) return Number(x) - Number(y);
    return compareStrings(x, y);
  }
  return a.length - b.length;
}

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkPath(path: string, op: string): readonly string[] {
  let segs: string[];
  try {
    segs = splitPath(path);
  } catch {
    throw compileError(path, `${op} path has an empty segment`);
  }
  if (segs.length > MAX_UPDATE_DEPTH) {
    throw new RangeError(
      `Cannot compile update at '${
        path.slice(0, 100)
      }…': ${op} path has ${segs.length} segments, more than ${MAX_UPDATE_DEPTH}`,
    );
  }
  segs.forEach((s, i) => {
    if (!s.startsWith("$")) return;
    if (positional(s) === undefined) {
      throw compileError(
        path,
        `${op} field names must not start with '$', got '${s}'`,
      );
    }
    if (i === 0 || op === "$rename") {
      throw compileError(
        path,
        op === "$rename"
          ? `$rename cannot use the positional '${s}'`
          : `the positional '${s}' needs an array field before it`,
      );
    }
  });
  return segs;
}

function compileReplacement(
  update: Update,
  protect: ReadonlySet<string>,
  show: Show,
): Updater {
  const keys = Object.keys(update);
  for (const k of keys) {
    if (k.includes(".")) {
      throw compileError(
        k,
        `a replacement document's field names must not hold '.'; use { $set: { "${k}": … } } to set a nested path`,
      );
    }
    checkOperand(update[k], k, "the replacement value");
  }
  return (doc) => {
    if (!isDocument(doc)) {
      throw new TypeError(
        `Cannot apply update: the document is ${show(doc)}, not an object`,
      );
    }
    const out: Doc = {};
    for (const k of protect) {
      if (Object.hasOwn(doc, k)) setOwn(out, k, doc[k]);
    }
    for (const k of keys) {
      const v = update[k];
      if (protect.has(k)) {
        if (!(Object.hasOwn(doc, k) && valuesEqual(doc[k], v))) {
          throw immutableError(k);
        }
        continue;
      }
      setOwn(out, k, copyValue(v));
    }
    return { changed: !valuesEqual(doc, out), doc: out };
  };
}

/**
 * Compiles a MongoDB-style update (see the module documentation).
 *
 * @param update A replacement such as `{ name: "Ann" }` (the document
 * becomes it, keeping its protected fields) or operators such as
 * `{ $set: { "a.b": 1 }, $inc: { n: 1 } }`.
 * @param options `protect`: top-level fields the update may not change;
 * `hideValues`: keep stored values out of errors; `arrayFilters`: the
 * filters of `$[<id>]`; `filter`: the query, for the positional `$`.
 * @returns An updater: given a document (and whether it is being inserted
 * by an upsert), it returns the updated copy and whether it differs from
 * the input (deep equality, field order included). The input is never
 * mutated. Applying it throws a `TypeError` if the document is not an
 * object, if an operator meets a field of the wrong type (`$inc` on a
 * non-number, `$push`, `$addToSet`, `$pop` or `$pull` on a non-array), if a
 * path would create a field inside a scalar, `null` or an array, if
 * `$rename` goes through an array, if `$` finds no matched element, or if a
 * replacement changes a protected field.
 * @throws {TypeError} If the update is malformed: not a plain object, mixing
 * operators and fields, an unknown operator, an operand of the wrong type
 * (not a document value, `$inc` not a number, `$rename` not a path, `$pop`
 * not 1 or -1, a bad `$push` modifier), a `$`-prefixed field name, a dotted
 * key in a replacement, two operators on conflicting paths (the same path,
 * or one path inside the other), a path under a protected field, a
 * `$[<id>]` without its array filter or an array filter not used.
 * @throws {RangeError} If `$inc` or `$mul` is not finite.
 *
 * @example Operators
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const u = compileUpdate({
 *   $push: { tags: { $each: ["c", "a"], $sort: 1, $slice: -2 } },
 *   $pull: { scores: { $lt: 5 } },
 *   $unset: { temp: "" },
 * });
 * const { doc } = u({ scores: [3, 8, 1], temp: 1, tags: ["b"] });
 * assert.deepEqual(doc, { scores: [8], tags: ["b", "c"] });
 * ```
 *
 * @example Replacement, no-op detection and protected fields
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const replace = compileUpdate({ age: 30 }, { protect: ["_id"] });
 * assert.deepEqual(replace({ _id: 1, name: "Ann", age: 29 }).doc, { _id: 1, age: 30 });
 * assert(!replace({ _id: 1, age: 30 }).changed);
 * assert.throws(
 *   () => compileUpdate({ $set: { _id: 2 } }, { protect: ["_id"] }),
 *   { name: "TypeError", message: "Cannot update '_id': it is immutable" },
 * );
 * ```
 *
 * @example Positional updates
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const first = compileUpdate({ $set: { "grades.$": 82 } }, { filter: { grades: 80 } });
 * assert.deepEqual(first({ grades: [85, 80, 80] }).doc, { grades: [85, 82, 80] });
 * const some = compileUpdate(
 *   { $set: { "grades.$[high]": 100 } },
 *   { arrayFilters: [{ high: { $gte: 100 } }] },
 * );
 * assert.deepEqual(some({ grades: [95, 102, 90] }).doc, { grades: [95, 100, 90] });
 * ```
 */
export function compileUpdate(
  update: Update,
  options: UpdateOptions = {},
): Updater {
  if (!isPlainObject(update)) {
    throw compileError(
      "",
      `an update must be a plain object, got ${describe(update)}`,
    );
  }
  const protect = new Set(options.protect ?? []);
  const keys = Object.keys(update);
  const ops = keys.filter((k) => k.startsWith("$"));
  const show: Show = options.hideValues === true ? kindOf : describe;
  const arrayFilters = compileArrayFilters(options.arrayFilters);
  if (ops.length === 0) {
    if (arrayFilters.size > 0) {
      throw compileError(
        "",
        "a replacement document takes no arrayFilters",
      );
    }
    return compileReplacement(update, protect, show);
  }
  if (ops.length !== keys.length) {
    const field = keys.find((k) => !k.startsWith("$"));
    throw compileError(
      "",
      `an update mixes operators and fields ('${
        ops[0]
      }' with '${field}'); put fields under '$set'`,
    );
  }
  const actions: Action[] = [];
  const used = new Set<string>();
  let dollar = false;
  let anyPositional = false;
  const touched: { segs: readonly string[]; path: string; op: string }[] = [];
  const touch = (path: string, op: string): void => {
    const segs = checkPath(path, op);
    if (protect.has(segs[0] as string) && op !== "$setOnInsert") {
      throw immutableError(segs[0] as string);
    }
    for (const s of segs) {
      const kind = positional(s);
      if (kind !== undefined) anyPositional = true;
      if (kind === "$") dollar = true;
      else if (kind !== undefined && kind !== "") {
        if (!arrayFilters.has(kind)) {
          throw compileError(
            path,
            `no array filter found for the identifier '${kind}'`,
          );
        }
        used.add(kind);
      }
    }
    for (const other of touched) {
      if (isPrefix(other.segs, segs) || isPrefix(segs, other.segs)) {
        throw compileError(
          path,
          `${op} conflicts with ${other.op} at '${other.path}'`,
        );
      }
    }
    touched.push({ segs, path, op });
  };
  for (const op of ops) {
    if (!UPDATE_OPERATORS.has(op)) {
      throw compileError("", `unknown update operator '${op}'`);
    }
    const fields = update[op];
    if (!isPlainObject(fields)) {
      throw compileError(
        "",
        `${op} needs an object of fields, got ${describe(fields)}`,
      );
    }
    for (const path of Object.keys(fields)) {
      const operand = fields[path];
      touch(path, op);
      if (op === "$rename") {
        if (typeof operand !== "string") {
          throw compileError(
            path,
            `$rename needs a field path string, got ${describe(operand)}`,
          );
        }
        touch(operand, op);
      }
      actions.push(compileAction(op, path, operand, show));
    }
  }
  for (const id of arrayFilters.keys()) {
    if (!used.has(id)) {
      throw compileError(
        "",
        `the array filter for the identifier '${id}' is not used in the update`,
      );
    }
  }
  actions.sort((a, b) => comparePaths(a.segs, b.segs));
  const findPosition = dollar
    ? positionFinder(options.filter ?? {})
    : undefined;
  // Positional paths can reach one field from two update paths
  // ({ "a.$[x].b": 1, "a.$[y].b": 2 } where x and y select one element):
  // MongoDB's "Update created a conflict" is checked as the update applies.
  const checkConflicts = anyPositional && actions.length > 1;
  return (doc, apply = {}) => {
    if (!isDocument(doc)) {
      throw new TypeError(
        `Cannot apply update: the document is ${show(doc)}, not an object`,
      );
    }
    const ctx: ApplyContext = {
      insert: apply.insert === true,
      now: apply.now ?? new Date(),
      position: findPosition === undefined
        ? () => undefined
        : (prefix) => findPosition(doc, prefix),
      arrayFilters,
      ...(checkConflicts
        ? { conflicts: { trail: [], written: [], original: doc } }
        : {}),
    };
    let out: Doc = doc;
    for (const action of actions) out = action.run(out, ctx);
    if (out === doc) out = shallowCopy(doc);
    return { changed: !valuesEqual(doc, out), doc: out };
  };
}
