/**
 * Logical operators: `$and`, `$or` and `$nor` at the top level of a filter
 * (each takes a non-empty array of filters), and `$not` at a field (it takes
 * an operator object or a `RegExp`, and matches when that does not — so it
 * matches a missing field).
 *
 * @module
 */

import { regexTest } from "./evaluation.ts";
import {
  describe,
  type DocPredicate,
  filterError,
  isPlainObject,
  leafOp,
  type OperatorCompiler,
} from "./types.ts";

/**
 * Combines predicates into one that passes when all of them do.
 *
 * @param preds The predicates; none means "always".
 * @returns The combined predicate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allOf } from "./logical.ts";
 * const p = allOf([(d) => d !== 0, (d) => d !== 1]);
 * assert(p(2, undefined) && !p(1, undefined));
 * ```
 */
export function allOf(preds: readonly DocPredicate[]): DocPredicate {
  switch (preds.length) {
    case 0:
      return () => true;
    case 1:
      return preds[0] as DocPredicate;
    case 2: {
      const a = preds[0] as DocPredicate;
      const b = preds[1] as DocPredicate;
      return (d, t) => a(d, t) && b(d, t);
    }
    case 3: {
      const a = preds[0] as DocPredicate;
      const b = preds[1] as DocPredicate;
      const c = preds[2] as DocPredicate;
      return (d, t) => a(d, t) && b(d, t) && c(d, t);
    }
    default:
      return (d, t) => {
        for (let i = 0; i < preds.length; i++) {
          if (!(preds[i] as DocPredicate)(d, t)) return false;
        }
        return true;
      };
  }
}

/**
 * Combines predicates into one that passes when any of them does.
 *
 * @param preds The predicates; none means "never".
 * @returns The combined predicate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { anyOf } from "./logical.ts";
 * const p = anyOf([(d) => d === 0, (d) => d === 1]);
 * assert(p(1, undefined) && !p(2, undefined));
 * ```
 */
export function anyOf(preds: readonly DocPredicate[]): DocPredicate {
  if (preds.length === 1) return preds[0] as DocPredicate;
  return (d, t) => {
    for (let i = 0; i < preds.length; i++) {
      if ((preds[i] as DocPredicate)(d, t)) return true;
    }
    return false;
  };
}

/**
 * Checks the operand of `$and`, `$or` or `$nor` and compiles each filter in
 * it.
 *
 * @param op The operator.
 * @param operand Its operand: a non-empty array of filters.
 * @param compile Compiles one filter.
 * @param where Where the operator is (for error messages).
 * @returns The compiled filters.
 * @throws {TypeError} When the operand is not a non-empty array.
 */
export function filterList<P>(
  op: string,
  operand: unknown,
  compile: (filter: unknown, where: string) => P,
  where: string,
): P[] {
  if (!Array.isArray(operand)) {
    throw filterError(
      where,
      `'${op}' needs an array of filters, got ${describe(operand)}`,
    );
  }
  if (operand.length === 0) {
    throw filterError(
      where,
      `'${op}' needs a non-empty array of filters, got []`,
    );
  }
  // An index loop: a hole (`[, { a: 1 }]`) is read as `undefined` and
  // refused like any other non-filter (`map` would leave it out).
  const out: P[] = [];
  for (let i = 0; i < operand.length; i++) {
    out.push(compile(operand[i], `${op}[${i}]`));
  }
  return out;
}

/**
 * Compiles a top-level logical operator.
 *
 * @param op `"$and"`, `"$or"` or `"$nor"`.
 * @param operand The operator's operand: a non-empty array of filters.
 * @param compile Compiles one filter of the array; `where` names it (e.g.
 * `"$or[1]"`) for error messages.
 * @param where Where the operator is in the enclosing filter (`""` for the
 * top level), for error messages.
 * @returns The predicate.
 * @throws {TypeError} If the operand is not a non-empty array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileLogical } from "./logical.ts";
 * const p = compileLogical("$or", [1, 2], (f) => (doc) => doc === f);
 * assert(p(2, undefined) && !p(3, undefined));
 * ```
 */
export function compileLogical(
  op: "$and" | "$or" | "$nor",
  operand: unknown,
  compile: (filter: unknown, where: string) => DocPredicate,
  where = "",
): DocPredicate {
  const preds = filterList(op, operand, compile, where);
  switch (op) {
    case "$and":
      return allOf(preds);
    case "$or":
      return anyOf(preds);
    case "$nor": {
      const any = anyOf(preds);
      return (d, t) => !any(d, t);
    }
  }
}

/**
 * The field-level logical operators (`$not`), by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fieldLogicalOperators } from "./logical.ts";
 * assert("$not" in fieldLogicalOperators);
 * ```
 */
export const fieldLogicalOperators: {
  readonly [op: string]: OperatorCompiler;
} = {
  $not(operand, ctx) {
    if (operand instanceof RegExp) {
      return leafOp(regexTest(operand), true, true);
    }
    if (!isPlainObject(operand) || Object.keys(operand).length === 0) {
      throw filterError(
        ctx.path,
        `'$not' needs a RegExp or a non-empty operator object, got ${
          isPlainObject(operand) ? "{}" : describe(operand)
        }`,
      );
    }
    if (!Object.keys(operand).every((k) => k.startsWith("$"))) {
      throw filterError(
        ctx.path,
        "'$not' needs an operator object such as { $gt: 1 }, not a document",
      );
    }
    return { kind: "not", ops: ctx.compileOperators(operand) };
  },
};
