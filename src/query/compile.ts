/**
 * The query compiler: turns a MongoDB-style filter into a predicate, once,
 * so that matching a document walks a tree of closures instead of re-reading
 * the filter.
 *
 * Supported: implicit AND of fields; `{field: value}` equality (a `RegExp`
 * value means a regex match); dot paths through objects and arrays; `$and`,
 * `$or`, `$nor`; `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`;
 * `$exists`, `$type`; `$all`, `$size`, `$elemMatch`; `$regex` (+ `$options`),
 * `$mod`; `$not`; `$jsonSchema` (top level); `$bitsAllSet`, `$bitsAnySet`,
 * `$bitsAllClear`, `$bitsAnyClear`; and the `$contains` extension.
 * Semantics are MongoDB's.
 *
 * Tags rule: when the predicate is given an item's tags, a path whose first
 * segment is `tags` resolves against those tags instead of the document's
 * `tags` field.
 *
 * Malformed filters throw at compile time, never match silently.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFilter } from "./compile.ts";
 * const adultsInNY = compileFilter({ age: { $gt: 30 }, city: "NY" });
 * assert(adultsInNY({ age: 41, city: "NY" }));
 * assert(!adultsInNY({ age: 41, city: "LA" }));
 * ```
 *
 * @module
 */

import { arrayOperators } from "./array.ts";
import { bitwiseOperators } from "./bitwise.ts";
import { comparisonOperators, equalityTest } from "./comparison.ts";
import { elementOperators } from "./element.ts";
import { evaluationOperators, regexTest } from "./evaluation.ts";
import { generateFilter } from "./codegen.ts";
import { exprPredicate } from "./expression.ts";
import { interpret } from "./interpret.ts";
import { compileJsonSchema } from "./json_schema.ts";
import { fieldLogicalOperators, filterList } from "./logical.ts";
import {
  checkValue,
  type CompileContext,
  describe,
  type FieldOp,
  filterError,
  type FilterNode,
  filterRangeError,
  inlineTest,
  isPlainObject,
  leafOp,
  MAX_FILTER_DEPTH,
  type OperatorCompiler,
} from "./types.ts";

/** A query filter: field paths mapped to values or operator objects. */
export type Filter = { readonly [field: string]: unknown };

/**
 * A compiled filter. `tags`, when given, is what `tags…` paths resolve
 * against (see {@linkcode compileFilter}).
 */
export type Predicate = (doc: unknown, tags?: readonly string[]) => boolean;

const FIELD_OPERATORS: ReadonlyMap<string, OperatorCompiler> = new Map(
  Object.entries({
    ...comparisonOperators,
    ...elementOperators,
    ...arrayOperators,
    ...evaluationOperators,
    ...fieldLogicalOperators,
    ...bitwiseOperators,
  }),
);

const FIND_OPTIONS: { readonly [op: string]: string } = {
  $limit: "limit",
  $skip: "skip",
  $sort: "sort",
};

function prefixed(where: string, path: string): string {
  return where === "" ? path : `${where}.${path}`;
}

/** Splits an operator object from a literal; rejects a mix of the two. */
function isOperatorObject(value: unknown, path: string): boolean {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  let ops = 0;
  for (const k of keys) if (k.startsWith("$")) ops++;
  if (ops === 0) return false;
  if (ops !== keys.length) {
    const field = keys.find((k) => !k.startsWith("$"));
    const op = keys.find((k) => k.startsWith("$"));
    throw filterError(
      path,
      `operator object mixes operators and fields ('${op}' with '${field}')`,
    );
  }
  return true;
}

/** Shortens the location of a deep error for its message. */
function shortWhere(where: string): string {
  return where.length > 120 ? `${where.slice(0, 120)}…` : where;
}

class Compiler {
  readonly #tags: boolean;
  /** How many filters and operator objects enclose the current one. */
  #depth: number;

  constructor(tags: boolean, depth = 0) {
    this.#tags = tags;
    this.#depth = depth;
  }

  /** Counts one more level of nesting; refuses one too many. */
  #enter(where: string): void {
    if (++this.#depth > MAX_FILTER_DEPTH) {
      throw filterRangeError(
        shortWhere(where),
        `the filter nests deeper than ${MAX_FILTER_DEPTH} levels`,
      );
    }
  }

  /** Compiles a filter document; `where` locates it in the enclosing filter. */
  filter(filter: unknown, where: string): FilterNode {
    this.#enter(where);
    try {
      return this.#filter(filter, where);
    } finally {
      this.#depth--;
    }
  }

  #filter(filter: unknown, where: string): FilterNode {
    if (!isPlainObject(filter)) {
      throw filterError(
        where,
        `a filter must be a plain object, got ${describe(filter)}`,
      );
    }
    const nodes: FilterNode[] = [];
    for (const key of Object.keys(filter)) {
      const value = filter[key];
      if (key.startsWith("$")) {
        nodes.push(this.#topLevel(key, value, where));
      } else {
        this.#field(key, value, prefixed(where, key), nodes);
      }
    }
    return nodes.length === 1 ? nodes[0]! : { kind: "and", nodes };
  }

  #topLevel(key: string, value: unknown, where: string): FilterNode {
    switch (key) {
      case "$and":
      case "$or":
      case "$nor":
        return {
          kind: key === "$and" ? "and" : key === "$or" ? "or" : "nor",
          nodes: filterList(
            key,
            value,
            (f, w) => this.filter(f, prefixed(where, w)),
            where,
          ),
        };
      case "$expr":
        // Aggregation expressions: compiled by expression.ts.
        return { kind: "expr", test: exprPredicate(value, where) };
      case "$where":
        throw filterError(
          where,
          "'$where' is not supported (no JavaScript in filters)",
        );
      case "$jsonSchema":
        return { kind: "doc", test: compileJsonSchema(value, where) };
    }
    const option = FIND_OPTIONS[key];
    if (option !== undefined) {
      throw filterError(
        where,
        `'${key}' is not a filter operator; pass it as the '${option}' find option`,
      );
    }
    throw filterError(where, `unknown top-level operator '${key}'`);
  }

  #field(key: string, value: unknown, path: string, out: FilterNode[]): void {
    if (key.split(".").some((s) => s === "")) {
      throw filterError(path, "the field path has an empty segment");
    }
    const ops = isOperatorObject(value, path)
      ? this.#operators(key, value as Filter, path)
      : [this.#literal(value, path)];
    for (const op of ops) {
      out.push({ kind: "field", key, op, tags: this.#tags });
    }
  }

  #literal(value: unknown, path: string): FieldOp {
    checkValue(value, path, "");
    return value instanceof RegExp
      ? leafOp(regexTest(value), true, false)
      : leafOp(equalityTest(value), true, false, inlineTest("eq", value));
  }

  #operators(key: string, ops: Filter, path: string): FieldOp[] {
    const ctx: CompileContext = {
      path,
      siblings: ops,
      compileFilter: (f) =>
        interpret(new Compiler(false, this.#depth).filter(f, path)),
      compileOperators: (o) => {
        if (!isPlainObject(o) || !isOperatorObject(o, path)) {
          throw filterError(
            path,
            `expected an operator object, got ${describe(o)}`,
          );
        }
        return this.#operators(key, o, path);
      },
    };
    this.#enter(path);
    try {
      return this.#operatorList(ops, ctx, path);
    } finally {
      this.#depth--;
    }
  }

  #operatorList(ops: Filter, ctx: CompileContext, path: string): FieldOp[] {
    const out: FieldOp[] = [];
    for (const op of Object.keys(ops)) {
      const compile = FIELD_OPERATORS.get(op);
      if (compile === undefined) {
        if (op === "$where") {
          throw filterError(
            path,
            "'$where' is not supported (no JavaScript in filters)",
          );
        }
        throw filterError(path, `unknown operator '${op}'`);
      }
      const r = compile(ops[op], ctx);
      if (Array.isArray(r)) out.push(...r);
      else out.push(r as FieldOp);
    }
    return out;
  }
}

/**
 * Validates a filter and builds its {@linkcode FilterNode} (internal: the
 * input of both back ends).
 *
 * @param filter The filter.
 * @returns The validated filter.
 * @throws {TypeError} / {RangeError} As {@linkcode compileFilter}.
 */
export function parseFilter(filter: Filter): FilterNode {
  return new Compiler(true).filter(filter, "");
}

/**
 * Compiles a MongoDB-style filter into a predicate (see the module
 * documentation for the supported operators). The filter is read once; the
 * predicate does no parsing and allocates nothing for simple paths.
 *
 * `$limit`, `$skip` and `$sort` are find options, not filter operators, and
 * are rejected here.
 *
 * @param filter The filter, e.g. `{ age: { $gt: 30 }, city: "NY" }`.
 * @returns A predicate over documents. Its optional second argument is the
 * item's tags: when given, paths starting with `tags` resolve against them
 * instead of the document's `tags` field. Documents that are not plain
 * objects have no fields.
 * @throws {TypeError} If the filter is malformed: an unknown operator, an
 * operator object mixed with fields, an operand of the wrong type, an empty
 * `$and`/`$or`/`$nor`, an invalid regular expression, `$where`, a function or
 * other non-document value.
 * @throws {RangeError} If a number is out of range: a negative or fractional
 * `$size`, a zero or non-finite `$mod` operand; or if the filter nests
 * deeper than 100 levels (`$and`/`$or`/`$nor`, `$not`, `$elemMatch`,
 * operator objects), or a value in it does.
 *
 * @example Query documents
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFilter } from "./compile.ts";
 * const p = compileFilter({ "address.city": "NY", tags: { $all: ["vip"] } });
 * assert(p({ address: { city: "NY" }, tags: ["vip", "new"] }));
 * assert(!p({ address: { city: "NY" }, tags: [] }));
 * ```
 *
 * @example Match against an item's tags
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFilter } from "./compile.ts";
 * const active = compileFilter({ tags: "active" });
 * assert(active({ name: "Ann" }, ["user", "active"]));
 * assert(!active({ name: "Ann", tags: ["active"] }, ["user"]));
 * ```
 *
 * @example Malformed filters throw
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFilter } from "./compile.ts";
 * try {
 *   compileFilter({ age: { $gtx: 1 } });
 *   assert(false);
 * } catch (e) {
 *   assert(e instanceof TypeError);
 *   assert((e as Error).message === "Cannot compile filter at 'age': unknown operator '$gtx'");
 * }
 * ```
 */
export function compileFilter(filter: Filter): Predicate {
  const node = parseFilter(filter);
  return generateFilter(node) ?? interpret(node);
}

/** A predicate that compiles itself on first use (see `lazyFilter`). */
type LazyPredicate = Predicate & { resolve?: () => Predicate };

/**
 * {@linkcode compileFilter}, checking the filter now and compiling it only
 * when first used: a query whose index plan holds only matches never runs
 * its filter, and skips the code generation. A loop takes the compiled
 * function once from {@linkcode resolvePredicate}, not through the wrapper.
 *
 * @param filter The filter.
 * @returns The predicate.
 * @throws {TypeError} When the filter is malformed (at once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lazyFilter, resolvePredicate } from "./compile.ts";
 * const p = lazyFilter({ age: { $gte: 30 } });
 * assert(p({ age: 31 }));
 * assert(!resolvePredicate(p)({ age: 29 }));
 * ```
 */
export function lazyFilter(filter: Filter): Predicate {
  const node = parseFilter(filter);
  let compiled: Predicate | undefined;
  const resolve = (): Predicate =>
    compiled ??= generateFilter(node) ?? interpret(node);
  const lazy: LazyPredicate = (doc, tags) => resolve()(doc, tags);
  lazy.resolve = resolve;
  return lazy;
}

/**
 * The function behind a predicate of {@linkcode lazyFilter} (compiled
 * now), or the predicate itself.
 *
 * @param p A predicate.
 * @returns The function to call in a loop.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFilter, resolvePredicate } from "./compile.ts";
 * const p = compileFilter({ a: 1 });
 * assert.equal(resolvePredicate(p), p);
 * ```
 */
export function resolvePredicate(p: Predicate): Predicate {
  return (p as LazyPredicate).resolve?.() ?? p;
}
