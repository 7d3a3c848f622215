/**
 * Comparison operators: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`
 * and `$nin`, with MongoDB's semantics:
 *
 * - equality is deep (see {@linkcode valuesEqual}); `null` also matches a
 *   missing field;
 * - `$gt`/`$gte`/`$lt`/`$lte` only match values of the operand's type bracket
 *   (numbers with numbers, strings with strings, dates with dates…);
 *   `$gte: null` and `$lte: null` match `null` and missing;
 * - `$ne` and `$nin` are the negations of `$eq` and `$in`, so they match a
 *   missing field;
 * - `$in` takes an array whose elements may be `RegExp`s.
 *
 * @module
 */

import {
  compareStrings,
  compareValues,
  typeRank,
  valuesEqual,
} from "./compare.ts";
import { regexTest } from "./evaluation.ts";
import {
  checkValue,
  describe,
  filterError,
  inlineTest,
  leafOp,
  type OperatorCompiler,
  type ValueTest,
} from "./types.ts";

/**
 * Builds the test for equality with a value (MongoDB `$eq`): deep equality,
 * `Date`s by time, and `null` also matching missing (`undefined`). A `RegExp`
 * operand matches an equal `RegExp` value, not strings; implicit equality
 * (`{a: /x/}`) uses {@linkcode regexTest} instead.
 *
 * @param value The operand, a document value.
 * @returns The value test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { equalityTest } from "./comparison.ts";
 * assert(equalityTest(null)(undefined));
 * assert(equalityTest([1, 2])([1, 2]));
 * assert(!equalityTest(1)("1"));
 * ```
 */
export function equalityTest(value: unknown): ValueTest {
  switch (typeof value) {
    case "number":
      return value !== value
        ? (v) => v !== v && typeof v === "number"
        : (v) => v === value;
    case "string":
    case "boolean":
      return (v) => v === value;
  }
  if (value === null) return (v) => v === null || v === undefined;
  if (value instanceof Date) {
    const t = value.getTime();
    if (t !== t) return (v) => v instanceof Date && v.getTime() !== v.getTime();
    return (v) => v instanceof Date && v.getTime() === t;
  }
  return (v) => typeof v === "object" && v !== null && valuesEqual(v, value);
}

/** The ordering operators. */
export type OrderingOperator = "$gt" | "$gte" | "$lt" | "$lte";

function accept(op: OrderingOperator, c: number): boolean {
  switch (op) {
    case "$gt":
      return c > 0;
    case "$gte":
      return c >= 0;
    case "$lt":
      return c < 0;
    case "$lte":
      return c <= 0;
  }
}

/**
 * Builds the test for an ordering operator: it passes for values of the
 * operand's type bracket that compare as the operator says.
 *
 * @param op `"$gt"`, `"$gte"`, `"$lt"` or `"$lte"`.
 * @param value The operand, a document value.
 * @returns The value test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderingTest } from "./comparison.ts";
 * const gt = orderingTest("$gt", 30);
 * assert(gt(31) && !gt(30) && !gt("31"));
 * assert(orderingTest("$gte", null)(undefined));
 * ```
 */
export function orderingTest(op: OrderingOperator, value: unknown): ValueTest {
  const inclusive = op === "$gte" || op === "$lte";
  if (value === null) {
    return inclusive ? (v) => v === null || v === undefined : () => false;
  }
  if (typeof value === "number") {
    if (value !== value) {
      // NaN equals NaN and is otherwise unordered.
      return inclusive ? (v) => typeof v === "number" && v !== v : () => false;
    }
    switch (op) {
      case "$gt":
        return (v) => typeof v === "number" && v > value;
      case "$gte":
        return (v) => typeof v === "number" && v >= value;
      case "$lt":
        return (v) => typeof v === "number" && v < value;
      case "$lte":
        return (v) => typeof v === "number" && v <= value;
    }
  }
  if (typeof value === "string") {
    return (v) => typeof v === "string" && accept(op, compareStrings(v, value));
  }
  if (value instanceof Date) {
    const t = value.getTime();
    if (t !== t) {
      return inclusive
        ? (v) => v instanceof Date && v.getTime() !== v.getTime()
        : () => false;
    }
    return (v) => {
      if (!(v instanceof Date)) return false;
      const u = v.getTime();
      return u === u && accept(op, u - t);
    };
  }
  const rank = typeRank(value);
  return (v) => typeRank(v) === rank && accept(op, compareValues(v, value));
}

/**
 * Builds the test for membership in a list (MongoDB `$in`): equality with any
 * element, or a match of any `RegExp` element; a `null` element also matches
 * missing.
 *
 * @param values The list.
 * @returns The value test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { membershipTest } from "./comparison.ts";
 * const t = membershipTest(["a", 1, /^x/, null]);
 * assert(t("a") && t(1) && t("xy") && t(undefined) && !t("b"));
 * ```
 */
export function membershipTest(values: readonly unknown[]): ValueTest {
  const primitives = new Set<unknown>();
  const dates = new Set<number>();
  const others: unknown[] = [];
  const regexes: ValueTest[] = [];
  let hasNull = false;
  for (const v of values) {
    if (v === null) hasNull = true;
    else if (typeof v !== "object") primitives.add(v);
    else if (v instanceof Date) dates.add(v.getTime());
    else if (v instanceof RegExp) regexes.push(regexTest(v));
    else others.push(v);
  }
  return (v) => {
    switch (typeof v) {
      case "string":
        if (primitives.has(v)) return true;
        for (let i = 0; i < regexes.length; i++) {
          if ((regexes[i] as ValueTest)(v)) return true;
        }
        return false;
      case "number":
      case "boolean":
        return primitives.has(v);
      case "undefined":
        return hasNull;
      case "object":
        if (v === null) return hasNull;
        if (v instanceof Date) return dates.has(v.getTime());
        if (v instanceof RegExp) {
          for (let i = 0; i < regexes.length; i++) {
            if ((regexes[i] as ValueTest)(v)) return true;
          }
        }
        for (let i = 0; i < others.length; i++) {
          if (valuesEqual(v, others[i])) return true;
        }
        return false;
      default:
        return false;
    }
  };
}

function listOperand(op: string, operand: unknown, path: string): unknown[] {
  if (!Array.isArray(operand)) {
    throw filterError(path, `'${op}' needs an array, got ${describe(operand)}`);
  }
  checkValue(operand, path, op);
  return operand;
}

function ordering(op: OrderingOperator): OperatorCompiler {
  return (operand, ctx) => {
    checkValue(operand, ctx.path, op);
    return leafOp(
      orderingTest(op, operand),
      true,
      false,
      inlineTest(
        op === "$gt"
          ? "gt"
          : op === "$gte"
          ? "gte"
          : op === "$lt"
          ? "lt"
          : "lte",
        operand,
      ),
    );
  };
}

/**
 * The comparison operators, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { comparisonOperators } from "./comparison.ts";
 * assert("$gte" in comparisonOperators);
 * ```
 */
export const comparisonOperators: { readonly [op: string]: OperatorCompiler } =
  {
    $eq(operand, ctx) {
      checkValue(operand, ctx.path, "$eq");
      return leafOp(
        equalityTest(operand),
        true,
        false,
        inlineTest("eq", operand),
      );
    },
    $ne(operand, ctx) {
      checkValue(operand, ctx.path, "$ne");
      if (operand instanceof RegExp) {
        throw filterError(
          ctx.path,
          "'$ne' cannot take a RegExp; use { $not: /…/ } instead",
        );
      }
      return leafOp(
        equalityTest(operand),
        true,
        true,
        inlineTest("eq", operand),
      );
    },
    $gt: ordering("$gt"),
    $gte: ordering("$gte"),
    $lt: ordering("$lt"),
    $lte: ordering("$lte"),
    $in(operand, ctx) {
      return leafOp(
        membershipTest(listOperand("$in", operand, ctx.path)),
        true,
        false,
      );
    },
    $nin(operand, ctx) {
      return leafOp(
        membershipTest(listOperand("$nin", operand, ctx.path)),
        true,
        true,
      );
    },
  };
