/**
 * Array operators: `$all`, `$size`, `$elemMatch`, and the `$contains`
 * extension.
 *
 * - `$all: [v1, v2]` matches when the field equals (element-wise, as for
 *   `{field: v}`) every listed value; `RegExp`s match as regexes, and
 *   `{ $elemMatch: … }` entries are allowed. `$all: []` matches nothing.
 * - `$size: n` matches arrays of exactly `n` elements.
 * - `$elemMatch` matches arrays with at least one element that satisfies the
 *   operand: an operator object (`{ $gte: 80, $lt: 85 }`), applied to the
 *   element itself, or else a sub-document filter (`{ product: "x" }`),
 *   applied to object elements.
 * - `$contains` (not in MongoDB): for a string field, a substring test (the
 *   operand must be a string); for an array field, equality with an element;
 *   for any other value, no match.
 *
 * @module
 */

import { equalityTest } from "./comparison.ts";
import { regexTest } from "./evaluation.ts";
import {
  checkValue,
  describe,
  elementTest,
  type FieldOp,
  filterError,
  filterRangeError,
  isPlainObject,
  leafOp,
  type OperatorCompiler,
  type ValueTest,
} from "./types.ts";

const TOP_LEVEL = new Set(["$and", "$or", "$nor"]);

function isDocument(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date) && !(v instanceof RegExp);
}

/**
 * The array operators, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayOperators } from "./array.ts";
 * assert("$elemMatch" in arrayOperators && "$contains" in arrayOperators);
 * ```
 */
export const arrayOperators: { readonly [op: string]: OperatorCompiler } = {
  $all(operand, ctx) {
    if (!Array.isArray(operand)) {
      throw filterError(
        ctx.path,
        `'$all' needs an array, got ${describe(operand)}`,
      );
    }
    if (operand.length === 0) return leafOp(() => false, true, false);
    const ops: FieldOp[] = [];
    let elemMatches = 0;
    for (const v of operand) {
      if (isPlainObject(v) && Object.keys(v)[0]?.startsWith("$")) {
        const keys = Object.keys(v);
        if (keys.length !== 1 || keys[0] !== "$elemMatch") {
          throw filterError(
            ctx.path,
            `'$all' entries may only use '$elemMatch', got '${
              keys.join("', '")
            }'`,
          );
        }
        ops.push(...ctx.compileOperators(v));
        elemMatches++;
      } else {
        checkValue(v, ctx.path, "$all");
        ops.push(
          leafOp(
            v instanceof RegExp ? regexTest(v) : equalityTest(v),
            true,
            false,
          ),
        );
      }
    }
    if (elemMatches !== 0 && elemMatches !== operand.length) {
      throw filterError(
        ctx.path,
        "'$all' cannot mix '$elemMatch' entries with plain values",
      );
    }
    return ops;
  },
  $size(operand, ctx) {
    if (typeof operand !== "number") {
      throw filterError(
        ctx.path,
        `'$size' needs a number, got ${describe(operand)}`,
      );
    }
    if (!Number.isInteger(operand) || operand < 0) {
      throw filterRangeError(
        ctx.path,
        `'$size' needs a non-negative integer, got ${operand}`,
      );
    }
    return leafOp(
      (v) => Array.isArray(v) && v.length === operand,
      false,
      false,
    );
  },
  $elemMatch(operand, ctx) {
    if (!isPlainObject(operand)) {
      throw filterError(
        ctx.path,
        `'$elemMatch' needs an object, got ${describe(operand)}`,
      );
    }
    const first = Object.keys(operand)[0];
    let match: ValueTest;
    if (first !== undefined && first.startsWith("$") && !TOP_LEVEL.has(first)) {
      // Operator form: every operator applies to the element itself.
      const tests = ctx.compileOperators(operand).map(elementTest);
      match = tests.length === 1 ? tests[0] as ValueTest : (el) => {
        for (let i = 0; i < tests.length; i++) {
          if (!(tests[i] as ValueTest)(el)) return false;
        }
        return true;
      };
    } else {
      const sub = ctx.compileFilter(operand);
      // Arrays are elements too: `{ "0": 1 }` reads an inner array's index.
      match = (el) =>
        isDocument(el)
          ? sub(el, undefined)
          : Array.isArray(el) && sub({ ...el }, undefined);
    }
    return leafOp(
      (v) => {
        if (!Array.isArray(v)) return false;
        for (let i = 0; i < v.length; i++) {
          if (match(v[i])) return true;
        }
        return false;
      },
      false,
      false,
    );
  },
  $contains(operand, ctx) {
    checkValue(operand, ctx.path, "$contains");
    const eq = equalityTest(operand);
    const inArray = (v: readonly unknown[]): boolean => {
      for (let i = 0; i < v.length; i++) {
        if (eq(v[i])) return true;
      }
      return false;
    };
    if (typeof operand === "string") {
      return leafOp(
        (v) =>
          typeof v === "string"
            ? v.includes(operand)
            : Array.isArray(v) && inArray(v),
        false,
        false,
      );
    }
    return leafOp((v) => Array.isArray(v) && inArray(v), false, false);
  },
};
