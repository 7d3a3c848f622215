/**
 * Element operators: `$exists` and `$type`.
 *
 * - `$exists: true` matches when the path produces any value (even `null`);
 *   `$exists: false` when it produces none.
 * - `$type` takes a BSON type alias or number, or a non-empty array of them,
 *   and matches values of one of those types (element-wise in arrays, and the
 *   array itself for `"array"`). JavaScript numbers are typed as the MongoDB
 *   Node.js driver stores them: integers in the 32-bit range are `"int"`,
 *   other numbers `"double"`; `"number"` matches both. Aliases of types that
 *   documents cannot hold (`"objectId"`, `"long"`, `"decimal"`…) are accepted
 *   and match nothing.
 *
 * @module
 */

import {
  describe,
  filterError,
  leafOp,
  type OperatorCompiler,
  type ValueTest,
} from "./types.ts";

function isInt32(v: number): boolean {
  return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
}

const never: ValueTest = () => false;

/** BSON type codes and aliases, with the test of each. */
const TYPES: ReadonlyMap<string | number, ValueTest> = (() => {
  const m = new Map<string | number, ValueTest>();
  const add = (alias: string, code: number | null, test: ValueTest) => {
    m.set(alias, test);
    if (code !== null) m.set(code, test);
  };
  add("double", 1, (v) => typeof v === "number" && !isInt32(v));
  add("string", 2, (v) => typeof v === "string");
  add(
    "object",
    3,
    (v) =>
      typeof v === "object" && v !== null && !Array.isArray(v) &&
      !(v instanceof Date) && !(v instanceof RegExp),
  );
  add("array", 4, (v) => Array.isArray(v));
  add("binData", 5, never);
  add("undefined", 6, never);
  add("objectId", 7, never);
  add("bool", 8, (v) => typeof v === "boolean");
  add("date", 9, (v) => v instanceof Date);
  add("null", 10, (v) => v === null);
  add("regex", 11, (v) => v instanceof RegExp);
  add("dbPointer", 12, never);
  add("javascript", 13, never);
  add("symbol", 14, never);
  add("javascriptWithScope", 15, never);
  add("int", 16, (v) => typeof v === "number" && isInt32(v));
  add("timestamp", 17, never);
  add("long", 18, never);
  add("decimal", 19, never);
  add("minKey", -1, never);
  add("maxKey", 127, never);
  add("number", null, (v) => typeof v === "number");
  return m;
})();

function typeTest(alias: unknown, path: string): ValueTest {
  const test = typeof alias === "string" || typeof alias === "number"
    ? TYPES.get(alias)
    : undefined;
  if (test === undefined) {
    throw filterError(
      path,
      `'$type' got unknown type ${
        describe(alias)
      } (use a BSON type alias such as "string", "number", "array")`,
    );
  }
  return test;
}

/**
 * The element operators, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { elementOperators } from "./element.ts";
 * assert("$exists" in elementOperators && "$type" in elementOperators);
 * ```
 */
export const elementOperators: { readonly [op: string]: OperatorCompiler } = {
  $exists(operand, ctx) {
    if (operand === undefined || typeof operand === "function") {
      throw filterError(
        ctx.path,
        `'$exists' needs a value (true or false), got ${describe(operand)}`,
      );
    }
    // As MongoDB: any truthy operand (1, "x", {}) means true, any falsy
    // one (0, null, "") means false.
    return leafOp((v) => v !== undefined, true, !operand);
  },
  $type(operand, ctx) {
    if (Array.isArray(operand)) {
      if (operand.length === 0) {
        throw filterError(ctx.path, "'$type' needs at least one type");
      }
      // An index loop: a hole (`[, "string"]`) is read as `undefined` and
      // refused like any unknown type (`map` would leave it out).
      const tests: ValueTest[] = [];
      for (let i = 0; i < operand.length; i++) {
        tests.push(typeTest(operand[i], ctx.path));
      }
      return leafOp(
        (v) => {
          for (let i = 0; i < tests.length; i++) {
            if ((tests[i] as ValueTest)(v)) return true;
          }
          return false;
        },
        true,
        false,
      );
    }
    return leafOp(typeTest(operand, ctx.path), true, false);
  },
};
