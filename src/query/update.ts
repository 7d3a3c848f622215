/**
 * The update compiler: turns a MongoDB-style update document into a function
 * that computes the updated document, once, so that applying it does no
 * parsing.
 *
 * An update is either a **merge** (no top-level key starts with `$`): its
 * top-level fields replace the document's (shallowly), the others are kept;
 * or a set of **operators**: `$set`, `$unset`, `$inc`, `$min`, `$max`,
 * `$push` and `$addToSet` (both with `$each`), `$pull` (a value or a
 * condition) and `$rename`. Semantics are MongoDB's, including the order in
 * which new fields are created (by path, field names compared as strings and
 * array indexes as numbers).
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

import { compareStrings, compareValues, valuesEqual } from "./compare.ts";
import { compileFilter, type Predicate } from "./compile.ts";
import { splitPath } from "./path.ts";
import { describe, isPlainObject } from "./types.ts";
import { copyValue, setOwn } from "../value_codec.ts";

/**
 * An update document: either fields to merge into the document
 * (`{ age: 30 }`) or update operators (`{ $set: { age: 30 } }`).
 */
export type Update = { readonly [key: string]: unknown };

/** Compiled once; applying never mutates its input. */
export type Updater = (
  doc: unknown,
) => { readonly changed: boolean; readonly doc: unknown };

/** Options of {@linkcode compileUpdate}. */
export interface UpdateOptions {
  /**
   * Top-level field names the update may not change, e.g. `["_id"]`. A merge
   * may repeat such a field with its current value.
   */
  readonly protect?: readonly string[];
  /**
   * Leave stored values out of the errors raised when the update is
   * applied (`$inc needs a number field, got a string`): for encrypted
   * databases, whose messages name fields and keys, never values.
   */
  readonly hideValues?: boolean;
}

/** The deepest nesting of an operand, and the most segments of a path. */
export const MAX_UPDATE_DEPTH = 100;

/** How a stored value is named in an error. */
type Show = (value: unknown) => string;

/** A value's kind without its content: `"a string"`, `"null"`. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a Date";
  if (value === undefined) return "undefined";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

type Doc = Record<string, unknown>;

/** A leaf result meaning "leave the field as it is". */
const KEEP: unique symbol = Symbol("keep");
/** A leaf result meaning "remove the field" (`null` in an array element). */
const REMOVE: unique symbol = Symbol("remove");

/** Computes a field's new value, {@linkcode KEEP} or {@linkcode REMOVE}. */
type Leaf = (current: unknown, exists: boolean) => unknown;

/** Where an operator applies and how it walks there. */
interface Target {
  readonly op: string;
  readonly path: string;
  readonly segs: readonly string[];
  /** Whether missing parents are created (every operator but removals). */
  readonly creates: boolean;
  /** Whether the path may go through arrays (not for `$rename`). */
  readonly arrays: boolean;
  /** Names a stored value in errors. */
  readonly show: Show;
}

/** One compiled operator on one path. */
interface Action {
  readonly segs: readonly string[];
  readonly run: (doc: Doc) => Doc;
}

const UPDATE_OPERATORS = new Set([
  "$set",
  "$unset",
  "$inc",
  "$min",
  "$max",
  "$push",
  "$addToSet",
  "$pull",
  "$rename",
]);

/** Filter keywords that make a `$pull` condition a query, not an operator. */
const QUERY_KEYWORDS = new Set(["$and", "$or", "$nor"]);

function compileError(path: string, problem: string): TypeError {
  return new TypeError(
    path === ""
      ? `Cannot compile update: ${problem}`
      : `Cannot compile update at '${path}': ${problem}`,
  );
}

function applyError(path: string, problem: string): TypeError {
  return new TypeError(`Cannot apply update at '${path}': ${problem}`);
}

function immutableError(field: string): TypeError {
  return new TypeError(`Cannot update '${field}': it is immutable`);
}

function isIndex(segment: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(segment);
}

/** An object a path can walk into (not an array, Date or RegExp). */
function isDocument(value: unknown): value is Doc {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof RegExp);
}

function shallowCopy(doc: Doc): Doc {
  const out: Doc = {};
  for (const k of Object.keys(doc)) setOwn(out, k, doc[k]);
  return out;
}

/**
 * Checks that an operand is a storable value: `null`, a boolean, a finite
 * number, a string, a valid `Date`, or an array or plain object of those
 * whose field names do not start with `$`.
 */
function checkOperand(
  value: unknown,
  path: string,
  op: string,
  inner = "",
  depth = 0,
): void {
  const at = inner === "" ? "" : ` at '${inner}'`;
  if (depth > MAX_UPDATE_DEPTH) {
    throw new RangeError(
      `Cannot compile update at '${path}': ${
        op.startsWith("$") ? `${op} value` : op
      } nests deeper than ${MAX_UPDATE_DEPTH} levels`,
    );
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (Number.isFinite(value)) return;
      break;
    case "object":
      if (value === null) return;
      if (value instanceof Date) {
        if (!Number.isNaN(value.getTime())) return;
        throw compileError(path, `${op} needs a valid Date, got Invalid Date`);
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          checkOperand(
            value[i],
            path,
            op,
            inner === "" ? `${i}` : `${inner}.${i}`,
            depth + 1,
          );
        }
        return;
      }
      if (isPlainObject(value)) {
        for (const k of Object.keys(value)) {
          const p = inner === "" ? k : `${inner}.${k}`;
          if (k.startsWith("$")) {
            throw compileError(
              path,
              `${op} value has the field name '${k}' at '${p}'; field names must not start with '$'`,
            );
          }
          checkOperand(value[k], path, op, p, depth + 1);
        }
        return;
      }
  }
  throw compileError(
    path,
    `${op} needs a document value, got ${describe(value)}${at}`,
  );
}

/** Walks `t.segs[i..]` in `container`; returns its replacement or KEEP. */
function modifyIn(
  container: unknown,
  t: Target,
  i: number,
  leaf: Leaf,
): unknown {
  const seg = t.segs[i] as string;
  if (Array.isArray(container)) {
    if (!t.arrays) {
      throw applyError(
        t.path,
        `${t.op} cannot work on a field inside an array`,
      );
    }
    if (!isIndex(seg)) {
      if (!t.creates) return KEEP;
      throw applyError(
        t.path,
        `${t.op} cannot create field '${seg}' in an array`,
      );
    }
    const index = Number(seg);
    const exists = index < container.length;
    const next = step(container[index], exists, t, i, leaf);
    if (next === KEEP) return KEEP;
    const copy = container.slice();
    if (next === REMOVE) {
      copy[index] = null; // MongoDB's $unset of an element leaves a null
    } else {
      while (copy.length < index) copy.push(null);
      copy[index] = next;
    }
    return copy;
  }
  if (isDocument(container)) {
    const exists = Object.hasOwn(container, seg);
    const next = step(exists ? container[seg] : undefined, exists, t, i, leaf);
    if (next === KEEP) return KEEP;
    const copy = shallowCopy(container);
    if (next === REMOVE) delete copy[seg];
    else setOwn(copy, seg, next);
    return copy;
  }
  if (!t.creates) return KEEP;
  throw applyError(
    t.path,
    `${t.op} cannot create field '${seg}' in ${t.show(container)}`,
  );
}

function step(
  current: unknown,
  exists: boolean,
  t: Target,
  i: number,
  leaf: Leaf,
): unknown {
  if (i + 1 === t.segs.length) return leaf(current, exists);
  if (!exists) {
    if (!t.creates) return KEEP;
    current = {};
  }
  return modifyIn(current, t, i + 1, leaf);
}

function modify(doc: Doc, t: Target, leaf: Leaf): Doc {
  const next = modifyIn(doc, t, 0, leaf);
  return next === KEEP ? doc : next as Doc;
}

function target(
  op: string,
  path: string,
  creates: boolean,
  show: Show,
): Target {
  return {
    op,
    path,
    segs: splitPath(path),
    creates,
    arrays: op !== "$rename",
    show,
  };
}

/** Splits `{ $each: [...] }` from a single value for `$push`/`$addToSet`. */
function eachOperand(op: string, path: string, operand: unknown): unknown[] {
  if (isPlainObject(operand) && Object.hasOwn(operand, "$each")) {
    for (const k of Object.keys(operand)) {
      if (k !== "$each") {
        throw compileError(
          path,
          `${op} modifier '${k}' is not supported (only '$each' is)`,
        );
      }
    }
    const each = operand.$each;
    if (!Array.isArray(each)) {
      throw compileError(
        path,
        `${op} '$each' needs an array, got ${describe(each)}`,
      );
    }
    checkOperand(each, path, op);
    return each;
  }
  checkOperand(operand, path, op);
  return [operand];
}

function pullTest(path: string, operand: unknown): (el: unknown) => boolean {
  const wrap = (filter: Record<string, unknown>): Predicate => {
    try {
      return compileFilter(filter);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) {
        const E = e instanceof TypeError ? TypeError : RangeError;
        throw new E(
          `Cannot compile update at '${path}': invalid $pull condition (${e.message})`,
        );
      }
      throw e;
    }
  };
  if (operand instanceof RegExp) {
    const p = wrap({ v: operand });
    return (el) => p({ v: el });
  }
  if (isPlainObject(operand)) {
    const first = Object.keys(operand)[0];
    if (
      first !== undefined && first.startsWith("$") && !QUERY_KEYWORDS.has(first)
    ) {
      // Operator form, e.g. { $gte: 6 }: applies to the element as a value.
      const p = wrap({ v: operand });
      return (el) => p({ v: el });
    }
    // Query form, e.g. { qty: { $lt: 2 } }: applies to document elements.
    const p = wrap(operand);
    return (el) => isDocument(el) && p(el);
  }
  checkOperand(operand, path, "$pull");
  return (el) => valuesEqual(el, operand);
}

function compileAction(
  op: string,
  path: string,
  operand: unknown,
  show: Show,
): Action {
  switch (op) {
    case "$set": {
      checkOperand(operand, path, op);
      const t = target(op, path, true, show);
      return {
        segs: t.segs,
        run: (d) => modify(d, t, () => copyValue(operand)),
      };
    }
    case "$unset": {
      const t = target(op, path, false, show);
      return {
        segs: t.segs,
        run: (d) => modify(d, t, (_, exists) => exists ? REMOVE : KEEP),
      };
    }
    case "$inc": {
      if (typeof operand !== "number") {
        throw compileError(
          path,
          `$inc needs a number, got ${describe(operand)}`,
        );
      }
      if (!Number.isFinite(operand)) {
        throw new RangeError(
          `Cannot compile update at '${path}': $inc needs a finite number, got ${operand}`,
        );
      }
      const t = target(op, path, true, show);
      return {
        segs: t.segs,
        run: (d) =>
          modify(d, t, (cur, exists) => {
            if (!exists) return operand;
            if (typeof cur !== "number") {
              throw applyError(
                path,
                `$inc needs a number field, got ${show(cur)}`,
              );
            }
            return cur + operand;
          }),
      };
    }
    case "$min":
    case "$max": {
      checkOperand(operand, path, op);
      const sign = op === "$min" ? -1 : 1;
      const t = target(op, path, true, show);
      return {
        segs: t.segs,
        run: (d) =>
          modify(
            d,
            t,
            (cur, exists) =>
              !exists || compareValues(operand, cur) * sign > 0
                ? copyValue(operand)
                : KEEP,
          ),
      };
    }
    case "$push":
    case "$addToSet": {
      const items = eachOperand(op, path, operand);
      const t = target(op, path, true, show);
      const add = op === "$push"
        ? (arr: readonly unknown[]) => [...arr, ...items.map(copyValue)]
        : (arr: readonly unknown[]) => {
          const out = arr.slice();
          for (const item of items) {
            if (!out.some((v) => valuesEqual(v, item))) {
              out.push(copyValue(item));
            }
          }
          return out;
        };
      return {
        segs: t.segs,
        run: (d) =>
          modify(d, t, (cur, exists) => {
            if (!exists) return add([]);
            if (!Array.isArray(cur)) {
              throw applyError(
                path,
                `${op} needs an array field, got ${show(cur)}`,
              );
            }
            return add(cur);
          }),
      };
    }
    case "$pull": {
      const test = pullTest(path, operand);
      const t = target(op, path, false, show);
      return {
        segs: t.segs,
        run: (d) =>
          modify(d, t, (cur, exists) => {
            if (!exists) return KEEP;
            if (!Array.isArray(cur)) {
              throw applyError(
                path,
                `$pull needs an array field, got ${show(cur)}`,
              );
            }
            return cur.filter((el) => !test(el));
          }),
      };
    }
    case "$rename": {
      const to = operand as string;
      const from = target(op, path, false, show);
      const dest = target(op, to, true, show);
      return {
        segs: from.segs,
        run: (d) => {
          let moved: unknown = KEEP;
          const removed = modify(d, from, (cur, exists) => {
            if (!exists) return KEEP;
            moved = cur;
            return REMOVE;
          });
          if (moved === KEEP) return d;
          return modify(removed, dest, () => moved);
        },
      };
    }
    default:
      throw compileError("", `unknown update operator '${op}'`);
  }
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
  for (const s of segs) {
    if (s.startsWith("$")) {
      throw compileError(
        path,
        `${op} field names must not start with '$' (positional operators are not supported), got '${s}'`,
      );
    }
  }
  return segs;
}

function compileMerge(
  update: Update,
  protect: ReadonlySet<string>,
  show: Show,
): Updater {
  const keys = Object.keys(update);
  for (const k of keys) {
    if (k.includes(".")) {
      throw compileError(
        k,
        `a merge sets top-level fields; use { $set: { "${k}": … } } to set a nested path`,
      );
    }
    checkOperand(update[k], k, "the merged value");
  }
  return (doc) => {
    if (!isDocument(doc)) {
      throw new TypeError(
        `Cannot apply update: the document is ${show(doc)}, not an object`,
      );
    }
    const out = shallowCopy(doc);
    for (const k of keys) {
      const v = update[k];
      if (
        protect.has(k) && !(Object.hasOwn(doc, k) && valuesEqual(doc[k], v))
      ) {
        throw immutableError(k);
      }
      setOwn(out, k, copyValue(v));
    }
    return { changed: !valuesEqual(doc, out), doc: out };
  };
}

/**
 * Compiles a MongoDB-style update (see the module documentation).
 *
 * @param update A merge such as `{ age: 30 }` (top-level fields replace the
 * document's) or operators such as `{ $set: { "a.b": 1 }, $inc: { n: 1 } }`.
 * @param options `protect`: top-level fields the update may not change.
 * @returns An updater: given a document, it returns the updated copy and
 * whether it differs from the input (deep equality, field order included).
 * The input is never mutated. Applying it throws a `TypeError` if the
 * document is not an object, if an operator meets a field of the wrong type
 * (`$inc` on a non-number, `$push`, `$addToSet` or `$pull` on a non-array), if
 * a path would create a field inside a scalar, `null` or an array, if
 * `$rename` goes through an array, or if a merge changes a protected field.
 * @throws {TypeError} If the update is malformed: not a plain object, mixing
 * operators and fields, an unknown or empty operator, an operand of the wrong
 * type (not a document value, `$inc` not a number, `$rename` not a path), a
 * `$`-prefixed field name, a dotted key in a merge, two operators on
 * conflicting paths (the same path, or one path inside the other), or a path
 * under a protected field.
 * @throws {RangeError} If `$inc` is not finite.
 *
 * @example Operators
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const u = compileUpdate({
 *   $push: { tags: { $each: ["a", "b"] } },
 *   $pull: { scores: { $lt: 5 } },
 *   $unset: { temp: "" },
 * });
 * const { doc } = u({ scores: [3, 8, 1], temp: 1 });
 * assert.deepEqual(doc, { scores: [8], tags: ["a", "b"] });
 * ```
 *
 * @example Merge, no-op detection and protected fields
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const merge = compileUpdate({ age: 30 }, { protect: ["_id"] });
 * assert.deepEqual(merge({ _id: 1, age: 29 }).doc, { _id: 1, age: 30 });
 * assert(!merge({ _id: 1, age: 30 }).changed);
 * assert.throws(
 *   () => compileUpdate({ $set: { _id: 2 } }, { protect: ["_id"] }),
 *   { name: "TypeError", message: "Cannot update '_id': it is immutable" },
 * );
 * ```
 *
 * @example Type errors when applied
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileUpdate } from "./update.ts";
 * const inc = compileUpdate({ $inc: { age: 1 } });
 * assert.throws(() => inc({ age: "x" }), TypeError);
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
  if (ops.length === 0) return compileMerge(update, protect, show);
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
  const touched: { segs: readonly string[]; path: string; op: string }[] = [];
  const touch = (path: string, op: string): void => {
    const segs = checkPath(path, op);
    if (protect.has(segs[0] as string)) throw immutableError(segs[0] as string);
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
    const paths = Object.keys(fields);
    if (paths.length === 0) throw compileError("", `${op} is empty`);
    for (const path of paths) {
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
  actions.sort((a, b) => comparePaths(a.segs, b.segs));
  return (doc) => {
    if (!isDocument(doc)) {
      throw new TypeError(
        `Cannot apply update: the document is ${show(doc)}, not an object`,
      );
    }
    let out: Doc = doc;
    for (const action of actions) out = action.run(out);
    if (out === doc) out = shallowCopy(doc);
    return { changed: !valuesEqual(doc, out), doc: out };
  };
}
