/**
 * Shared types and helpers of the query compiler: the compiled form of a
 * field operator, the context an operator compiler receives, and the error
 * and operand-validation helpers every operator family uses.
 *
 * @module
 */

import type { ValueTest } from "./path.ts";

export type { ValueTest } from "./path.ts";

/**
 * A compiled field operator that tests the values a path produces. The field
 * matches when `test` passes for any of them (or, when `negate` is set, when
 * it passes for none).
 */
export interface LeafOp {
  /** Discriminant. */
  readonly kind: "leaf";
  /** Tests one value; `undefined` stands for a missing field. */
  readonly test: ValueTest;
  /**
   * Whether an array at the end of the path also offers its elements (most
   * operators), or only itself (`$size`, `$elemMatch`, `$contains`).
   */
  readonly traverse: boolean;
  /** Whether the field matches when no value passes (`$ne`, `$nin`…). */
  readonly negate: boolean;
  /**
   * The same test in a form the code generator can inline (see
   * `codegen.ts`), when it has one; `test` is used otherwise.
   */
  readonly inline?: InlineTest | undefined;
}

/**
 * A value test simple enough to inline into generated code: equality with a
 * number (not `NaN`), a string, a boolean or `null` (which also matches
 * missing), or an ordering against a number (not `NaN`) or a string.
 */
export interface InlineTest {
  /** Which comparison. */
  readonly op: "eq" | "gt" | "gte" | "lt" | "lte";
  /** The operand; its type selects the generated code. */
  readonly value: number | string | boolean | null;
}

/** `$not`: the field matches when the wrapped operators do not all match. */
export interface NotOp {
  /** Discriminant. */
  readonly kind: "not";
  /** The wrapped operators, all of which must match for `$not` to fail. */
  readonly ops: readonly FieldOp[];
}

/** A compiled field operator. */
export type FieldOp = LeafOp | NotOp;

/** A compiled filter over a document (and an item's tags, if given). */
export type DocPredicate = (
  doc: unknown,
  tags: readonly string[] | undefined,
) => boolean;

/**
 * A validated filter, the common input of the interpreter (closures, below)
 * and the code generator (`codegen.ts`).
 */
export type FilterNode =
  | {
    /** `$and` (and a filter's implicit AND of fields), `$or`, `$nor`. */
    readonly kind: "and" | "or" | "nor";
    /** The operands. */
    readonly nodes: readonly FilterNode[];
  }
  | {
    /**
     * A test of the whole document (`$jsonSchema`), compiled beforehand;
     * both back ends call it.
     */
    readonly kind: "doc";
    /** The test. */
    readonly test: (doc: unknown) => boolean;
  }
  | {
    /** One field operator. */
    readonly kind: "field";
    /** The field path. */
    readonly key: string;
    /** The operator. */
    readonly op: FieldOp;
    /** Whether a `tags…` path resolves against an item's tags. */
    readonly tags: boolean;
  }
  | {
    /** `$expr`: an aggregation expression (compiled by `expression.ts`). */
    readonly kind: "expr";
    /** Whether the expression is true for a document. */
    readonly test: (doc: unknown) => boolean;
  };

/** What an operator compiler may use besides its operand. */
export interface CompileContext {
  /** The field path the operator applies to (for error messages). */
  readonly path: string;
  /** The whole operator object the operator appears in (e.g. for `$options`). */
  readonly siblings: { readonly [op: string]: unknown };
  /** Compiles a sub-document filter (the object form of `$elemMatch`). */
  compileFilter(filter: unknown): DocPredicate;
  /** Compiles an operator object such as `{ $gt: 1, $lt: 5 }` at this path. */
  compileOperators(operators: unknown): FieldOp[];
}

/** Compiles one operator of an operator object into field operators. */
export type OperatorCompiler = (
  operand: unknown,
  ctx: CompileContext,
) => FieldOp | readonly FieldOp[];

/**
 * Builds a {@linkcode LeafOp}.
 *
 * @param test The value test.
 * @param traverse Whether leaf arrays offer their elements.
 * @param negate Whether the result is negated.
 * @param inline The same test in a form generated code can inline.
 * @returns The operator.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { leafOp } from "./types.ts";
 * const op = leafOp((v) => v === 1, true, false);
 * assert(op.kind === "leaf" && op.test(1));
 * ```
 */
export function leafOp(
  test: ValueTest,
  traverse: boolean,
  negate: boolean,
  inline?: InlineTest,
): LeafOp {
  return { kind: "leaf", test, traverse, negate, inline };
}

/**
 * The inline form of a comparison with a document value, when it has one
 * (see {@linkcode InlineTest}).
 *
 * @param op The comparison.
 * @param value The operand.
 * @returns The inline test, or `undefined` when the operand needs the
 * general test (`NaN`, a `Date`, an object, an ordering against `null` or a
 * boolean…).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inlineTest } from "./types.ts";
 * assert.deepEqual(inlineTest("gt", 30), { op: "gt", value: 30 });
 * assert(inlineTest("eq", NaN) === undefined);
 * ```
 */
export function inlineTest(
  op: InlineTest["op"],
  value: unknown,
): InlineTest | undefined {
  switch (typeof value) {
    case "number":
      return value === value ? { op, value } : undefined;
    case "string":
      return { op, value };
    case "boolean":
      return op === "eq" ? { op, value } : undefined;
    case "object":
      return value === null && op === "eq" ? { op, value } : undefined;
  }
  return undefined;
}

/**
 * Tests a single value against a compiled operator, without path traversal
 * (the element semantics of `$elemMatch`'s operator form).
 *
 * @param op The operator.
 * @returns The value test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { elementTest, leafOp } from "./types.ts";
 * const ne1 = elementTest(leafOp((v) => v === 1, true, true));
 * assert(ne1(2) && !ne1(1));
 * ```
 */
export function elementTest(op: FieldOp): ValueTest {
  if (op.kind === "not") {
    const tests = op.ops.map(elementTest);
    return (v) => {
      for (let i = 0; i < tests.length; i++) {
        if (!(tests[i] as ValueTest)(v)) return true;
      }
      return false;
    };
  }
  const test = op.test;
  return op.negate ? (v) => !test(v) : test;
}

/**
 * Tests whether a value is a plain object (created by `{}`, `JSON.parse` or
 * `Object.create(null)`).
 *
 * @param value Any value.
 * @returns `true` for plain objects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPlainObject } from "./types.ts";
 * assert(isPlainObject({ a: 1 }));
 * assert(!isPlainObject([]) && !isPlainObject(new Date()));
 * ```
 */
export function isPlainObject(
  value: unknown,
): value is { readonly [key: string]: unknown } {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The deepest nesting a filter may have, MongoDB's figure: levels of
 * `$and`/`$or`/`$nor`, operator objects, `$not` and `$elemMatch`, counted
 * apart from the nesting of a literal value (which has the same limit, as
 * stored documents do). Deeper is a `RangeError` at compile time, never a
 * stack overflow.
 */
export const MAX_FILTER_DEPTH = 100;

/**
 * Builds the error for a malformed filter at a field path.
 *
 * @param path The field path, or `""` for the top level of the filter.
 * @param problem What is wrong, e.g. `"unknown operator '$gtx'"`.
 * @returns A `TypeError` whose message names the path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filterError } from "./types.ts";
 * const e = filterError("age", "unknown operator '$gtx'");
 * assert(e.message === "Cannot compile filter at 'age': unknown operator '$gtx'");
 * ```
 */
export function filterError(path: string, problem: string): TypeError {
  return new TypeError(
    path === ""
      ? `Cannot compile filter: ${problem}`
      : `Cannot compile filter at '${path}': ${problem}`,
  );
}

/**
 * Builds the error for an out-of-range number in a filter.
 *
 * @param path The field path.
 * @param problem What is wrong, e.g. `"'$size' must not be negative, got -1"`.
 * @returns A `RangeError` whose message names the path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filterRangeError } from "./types.ts";
 * const e = filterRangeError("n", "'$mod' divisor must not be 0");
 * assert(e instanceof RangeError);
 * ```
 */
export function filterRangeError(path: string, problem: string): RangeError {
  return new RangeError(
    path === ""
      ? `Cannot compile filter: ${problem}`
      : `Cannot compile filter at '${path}': ${problem}`,
  );
}

/**
 * Describes a value briefly for error messages.
 *
 * @param value Any value.
 * @returns E.g. `"number 5"`, `"string 'x'"`, `"array"`, `"function"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "./types.ts";
 * assert(describe(5) === "number 5");
 * ```
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return `string ${
        JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)
      }`;
    case "number":
    case "boolean":
    case "bigint":
      return `${typeof value} ${String(value)}`;
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return "array";
      if (value instanceof Date) return "Date";
      if (value instanceof RegExp) return `RegExp ${String(value)}`;
      return isPlainObject(value)
        ? "object"
        : `${value.constructor?.name ?? "object"} instance`;
    default:
      return typeof value;
  }
}

/**
 * Checks that an operand is a document value: `null`, a boolean, a number, a
 * string, a `Date`, a `RegExp`, or an array or plain object of those.
 *
 * @param value The operand.
 * @param path The field path (for the error message).
 * @param op The operator name, or `""` for an implicit equality.
 * @param depth How deep `value` already is (for the nesting limit).
 * @throws {TypeError} If the value or anything inside it is not a document
 * value (`undefined`, a function, a symbol, a bigint, a class instance…).
 * @throws {RangeError} If it nests deeper than {@linkcode MAX_FILTER_DEPTH}
 * levels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkValue } from "./types.ts";
 * checkValue({ a: [1, "x", null, new Date()] }, "f", "$eq"); // passes
 * let threw = false;
 * try { checkValue(() => 1, "f", "$eq"); } catch { threw = true; }
 * assert(threw);
 * ```
 */
export function checkValue(
  value: unknown,
  path: string,
  op: string,
  depth = 0,
): void {
  if (depth > MAX_FILTER_DEPTH) {
    throw filterRangeError(
      path,
      `${
        op === "" ? "the value" : `the operand of '${op}'`
      } nests deeper than ${MAX_FILTER_DEPTH} levels`,
    );
  }
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return;
    case "object":
      if (
        value === null || value instanceof Date || value instanceof RegExp ||
        value instanceof Uint8Array
      ) {
        return;
      }
      if (Array.isArray(value)) {
        for (const v of value) checkValue(v, path, op, depth + 1);
        return;
      }
      if (isPlainObject(value)) {
        for (const k of Object.keys(value)) {
          checkValue(value[k], path, op, depth + 1);
        }
        return;
      }
  }
  const what = op === "" ? "the value" : `the operand of '${op}'`;
  const hint = value === undefined
    ? " (use null to match a missing field)"
    : "";
  throw filterError(
    path,
    `${what} must be a document value, got ${describe(value)}${hint}`,
  );
}
