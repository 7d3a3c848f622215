/**
 * The update operators, each compiled to an action on one path: `$set`,
 * `$setOnInsert`, `$unset`, `$inc`, `$mul`, `$min`, `$max`, `$bit`,
 * `$currentDate`, `$push` and `$addToSet` (with `$each`; `$push` also with
 * `$slice`, `$sort`, `$position`), `$pop`, `$pull`, `$pullAll`, `$rename`.
 *
 * Internal to {@linkcode compileUpdate}; see `update.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileAction } from "./update_ops.ts";
 * import { emptyContext } from "./update_walk.ts";
 * const a = compileAction("$mul", "n", 3, String);
 * assert.deepEqual(a.run({ n: 2 }, emptyContext()), { n: 6 });
 * ```
 *
 * @module
 */

import { compareValues, valuesEqual } from "./compare.ts";
import { compileFilter, type Predicate } from "./compile.ts";
import { getPath } from "./path.ts";
import { describe, isPlainObject } from "./types.ts";
import { copyValue } from "../value_codec.ts";
import {
  type ApplyContext,
  applyError,
  type Doc,
  isDocument,
  KEEP,
  modify,
  REMOVE,
  type Show,
  target,
} from "./update_walk.ts";

/** The deepest nesting of an operand, and the most segments of a path. */
export const MAX_UPDATE_DEPTH = 100;

/** One compiled operator on one path. */
export interface Action {
  readonly segs: readonly string[];
  readonly run: (doc: Doc, ctx: ApplyContext) => Doc;
}

/** Every update operator. */
export const UPDATE_OPERATORS: ReadonlySet<string> = new Set([
  "$set",
  "$setOnInsert",
  "$unset",
  "$inc",
  "$mul",
  "$min",
  "$max",
  "$bit",
  "$currentDate",
  "$push",
  "$addToSet",
  "$pop",
  "$pull",
  "$pullAll",
  "$rename",
]);

/** Filter keywords that make a `$pull` condition a query, not an operator. */
const QUERY_KEYWORDS = new Set(["$and", "$or", "$nor"]);

/**
 * A `TypeError` raised while compiling an update.
 *
 * @param path The update path, or `""`.
 * @param problem What is wrong.
 * @returns The error.
 */
export function compileError(path: string, problem: string): TypeError {
  return new TypeError(
    path === ""
      ? `Cannot compile update: ${problem}`
      : `Cannot compile update at '${path}': ${problem}`,
  );
}

/**
 * Checks that an operand is a storable value: `null`, a boolean, a finite
 * number, a string, a valid `Date`, or an array or plain object of those
 * whose field names do not start with `$`.
 *
 * @param value The operand.
 * @param path The update path it is for.
 * @param op The operator (for messages).
 * @param inner Where inside the operand (for messages).
 * @param depth The nesting so far.
 */
export function checkOperand(
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

function finiteNumber(op: string, path: string, operand: unknown): number {
  if (typeof operand !== "number") {
    throw compileError(path, `${op} needs a number, got ${describe(operand)}`);
  }
  if (!Number.isFinite(operand)) {
    throw new RangeError(
      `Cannot compile update at '${path}': ${op} needs a finite number, got ${operand}`,
    );
  }
  return operand;
}

function integer(op: string, path: string, what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw compileError(
      path,
      `${op} ${what} needs a whole number, got ${describe(v)}`,
    );
  }
  return v;
}

/** `$push`'s and `$addToSet`'s operand, split into items and modifiers. */
interface Each {
  readonly items: readonly unknown[];
  readonly position?: number;
  readonly slice?: number;
  readonly sort?: (a: unknown, b: unknown) => number;
}

function compileSort(
  op: string,
  path: string,
  spec: unknown,
): (a: unknown, b: unknown) => number {
  if (spec === 1 || spec === -1) {
    return (a, b) => compareValues(a, b) * spec;
  }
  if (!isPlainObject(spec) || Object.keys(spec).length === 0) {
    throw compileError(
      path,
      `${op} '$sort' needs 1, -1 or an object of fields to 1 or -1, got ${
        describe(spec)
      }`,
    );
  }
  const fields = Object.keys(spec).map((field) => {
    const dir = spec[field];
    if (dir !== 1 && dir !== -1) {
      throw compileError(
        path,
        `${op} '$sort' direction of '${field}' must be 1 or -1, got ${
          describe(dir)
        }`,
      );
    }
    if (field === "" || field.split(".").some((s) => s === "")) {
      throw compileError(path, `${op} '$sort' has an empty field name`);
    }
    return { field, dir };
  });
  return (a, b) => {
    for (const { field, dir } of fields) {
      const c = compareValues(getPath(a, field), getPath(b, field));
      if (c !== 0) return c * dir;
    }
    return 0;
  };
}

function eachOperand(op: string, path: string, operand: unknown): Each {
  if (!isPlainObject(operand) || !Object.hasOwn(operand, "$each")) {
    checkOperand(operand, path, op);
    return { items: [operand] };
  }
  let position: number | undefined;
  let slice: number | undefined;
  let sort: Each["sort"];
  for (const k of Object.keys(operand)) {
    if (k === "$each") continue;
    if (op === "$addToSet") {
      throw compileError(
        path,
        `$addToSet modifier '${k}' is not allowed (only '$each' is)`,
      );
    }
    const v = operand[k];
    if (k === "$position") position = integer(op, path, "'$position'", v);
    else if (k === "$slice") slice = integer(op, path, "'$slice'", v);
    else if (k === "$sort") sort = compileSort(op, path, v);
    else {
      throw compileError(
        path,
        `${op} modifier '${k}' is unknown; the modifiers are '$each', '$position', '$slice', '$sort'`,
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
  return {
    items: each,
    ...(position === undefined ? {} : { position }),
    ...(slice === undefined ? {} : { slice }),
    ...(sort === undefined ? {} : { sort }),
  };
}

function pushInto(arr: readonly unknown[], each: Each): unknown[] {
  const items = each.items.map(copyValue);
  let out: unknown[];
  if (each.position === undefined) {
    out = [...arr, ...items];
  } else {
    const at = each.position < 0
      ? Math.max(0, arr.length + each.position)
      : Math.min(arr.length, each.position);
    out = [...arr.slice(0, at), ...items, ...arr.slice(at)];
  }
  if (each.sort !== undefined) out.sort(each.sort);
  if (each.slice !== undefined) {
    out = each.slice >= 0
      ? out.slice(0, each.slice)
      : out.slice(Math.max(0, out.length + each.slice));
  }
  return out;
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

const BIT_OPS = ["and", "or", "xor"] as const;

function bitOperand(
  path: string,
  operand: unknown,
): { op: "and" | "or" | "xor"; value: bigint }[] {
  if (!isPlainObject(operand) || Object.keys(operand).length === 0) {
    throw compileError(
      path,
      `$bit needs an object such as { and: 5 }, got ${describe(operand)}`,
    );
  }
  return Object.keys(operand).map((k) => {
    if (!(BIT_OPS as readonly string[]).includes(k)) {
      throw compileError(
        path,
        `$bit operation '${k}' is unknown; use 'and', 'or' or 'xor'`,
      );
    }
    const v = integer("$bit", path, `'${k}'`, operand[k]);
    return { op: k as "and" | "or" | "xor", value: BigInt(v) };
  });
}

/** The leaf of an operator that needs an array field (or creates one). */
function arrayLeaf(
  op: string,
  path: string,
  show: Show,
  missing: () => unknown,
  apply: (arr: readonly unknown[]) => unknown,
): (cur: unknown, exists: boolean) => unknown {
  return (cur, exists) => {
    if (!exists) return missing();
    if (!Array.isArray(cur)) {
      throw applyError(path, `${op} needs an array field, got ${show(cur)}`);
    }
    return apply(cur);
  };
}

/**
 * Compiles one operator on one path.
 *
 * @param op The operator, e.g. `"$inc"`.
 * @param path The dotted path (positional segments allowed).
 * @param operand The operator's value for that path.
 * @param show How stored values are named in errors.
 * @returns The action.
 * @throws {TypeError} When the operand is malformed.
 */
export function compileAction(
  op: string,
  path: string,
  operand: unknown,
  show: Show,
): Action {
  const on = (
    creates: boolean,
    leaf: (cur: unknown, exists: boolean, ctx: ApplyContext) => unknown,
  ): Action => {
    const t = target(op, path, creates, show);
    return {
      segs: t.segs,
      run: (d, ctx) => modify(d, t, (c, e) => leaf(c, e, ctx), ctx),
    };
  };
  switch (op) {
    case "$set":
      checkOperand(operand, path, op);
      return on(true, () => copyValue(operand));
    case "$setOnInsert": {
      checkOperand(operand, path, op);
      const set = on(true, () => copyValue(operand));
      return {
        segs: set.segs,
        run: (d, ctx) => ctx.insert ? set.run(d, ctx) : d,
      };
    }
    case "$unset":
      return on(false, (_, exists) => exists ? REMOVE : KEEP);
    case "$inc":
    case "$mul": {
      const n = finiteNumber(op, path, operand);
      return on(true, (cur, exists) => {
        if (!exists) return op === "$inc" ? n : 0;
        if (typeof cur !== "number") {
          throw applyError(
            path,
            `${op} needs a number field, got ${show(cur)}`,
          );
        }
        const out = op === "$inc" ? cur + n : cur * n;
        if (!Number.isFinite(out)) {
          throw new RangeError(
            `Cannot apply update at '${path}': ${op} overflows to ${out}`,
          );
        }
        return out;
      });
    }
    case "$min":
    case "$max": {
      checkOperand(operand, path, op);
      const sign = op === "$min" ? -1 : 1;
      return on(
        true,
        (cur, exists) =>
          !exists || compareValues(operand, cur) * sign > 0
            ? copyValue(operand)
            : KEEP,
      );
    }
    case "$bit": {
      const ops = bitOperand(path, operand);
      return on(true, (cur, exists) => {
        const start = exists ? cur : 0;
        if (typeof start !== "number" || !Number.isSafeInteger(start)) {
          throw applyError(
            path,
            `$bit needs a whole-number field, got ${show(start)}`,
          );
        }
        let v = BigInt(start);
        for (const { op: bit, value } of ops) {
          v = bit === "and" ? v & value : bit === "or" ? v | value : v ^ value;
        }
        v = BigInt.asIntN(64, v);
        const out = Number(v);
        if (!Number.isSafeInteger(out)) {
          throw new RangeError(
            `Cannot apply update at '${path}': $bit result is not a safe integer`,
          );
        }
        return out;
      });
    }
    case "$currentDate": {
      if (
        operand !== true &&
        !(isPlainObject(operand) && Object.keys(operand).length === 1 &&
          operand.$type === "date")
      ) {
        const ts = isPlainObject(operand) && operand.$type === "timestamp";
        throw compileError(
          path,
          ts
            ? "$currentDate { $type: 'timestamp' } is not supported (there is no Timestamp type); use true for a Date"
            : `$currentDate needs true or { $type: 'date' }, got ${
              describe(operand)
            }`,
        );
      }
      return on(true, (_c, _e, ctx) => new Date(ctx.now.getTime()));
    }
    case "$push":
    case "$addToSet": {
      const each = eachOperand(op, path, operand);
      const add = op === "$push"
        ? (arr: readonly unknown[]) => pushInto(arr, each)
        : (arr: readonly unknown[]) => {
          const out = arr.slice();
          for (const item of each.items) {
            if (!out.some((v) => valuesEqual(v, item))) {
              out.push(copyValue(item));
            }
          }
          return out;
        };
      return on(true, arrayLeaf(op, path, show, () => add([]), add));
    }
    case "$pop": {
      if (operand !== 1 && operand !== -1) {
        throw compileError(
          path,
          `$pop needs 1 or -1, got ${describe(operand)}`,
        );
      }
      return on(
        false,
        arrayLeaf(
          op,
          path,
          show,
          () => KEEP,
          (arr) =>
            arr.length === 0
              ? KEEP
              : operand === 1
              ? arr.slice(0, -1)
              : arr.slice(1),
        ),
      );
    }
    case "$pull":
    case "$pullAll": {
      let test: (el: unknown) => boolean;
      if (op === "$pull") test = pullTest(path, operand);
      else {
        if (!Array.isArray(operand)) {
          throw compileError(
            path,
            `$pullAll needs an array, got ${describe(operand)}`,
          );
        }
        checkOperand(operand, path, op);
        test = (el) => operand.some((v) => valuesEqual(el, v));
      }
      return on(
        false,
        arrayLeaf(
          op,
          path,
          show,
          () => KEEP,
          (arr) => arr.filter((el) => !test(el)),
        ),
      );
    }
    case "$rename": {
      const to = operand as string;
      const from = target(op, path, false, show);
      const dest = target(op, to, true, show);
      return {
        segs: from.segs,
        run: (d, ctx) => {
          let moved: unknown = KEEP;
          const removed = modify(d, from, (cur, exists) => {
            if (!exists) return KEEP;
            moved = cur;
            return REMOVE;
          }, ctx);
          if (moved === KEEP) return d;
          return modify(removed, dest, () => moved, ctx);
        },
      };
    }
    default:
      throw compileError("", `unknown update operator '${op}'`);
  }
}
