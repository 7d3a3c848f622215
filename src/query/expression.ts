/**
 * Aggregation expressions (MongoDB's expression language), compiled once
 * into a tree of closures: `"$a.b"` field paths, literals, `$literal`,
 * arithmetic, comparison, boolean operators, `$cond`, `$ifNull`, `$in`,
 * `$size`, `$concat`, `$toString`, `$toDouble`, and the date operators of
 * `expression_date.ts`. Used by `$expr` in filters and by the aggregation
 * stages (`aggregate.ts`).
 *
 * An unknown operator or a malformed operand is a `TypeError` at compile
 * time; an operand of the wrong type at run time (`{$add: ["$a", "x"]}` on
 * a string) is a `TypeError` from the evaluation, and a division by zero a
 * `RangeError`, as in MongoDB (which fails the aggregation).
 *
 * A missing field evaluates to `undefined`, which sorts and compares below
 * `null` (MongoDB's order); most operators answer `null` for a `null` or
 * missing operand.
 *
 * @module
 */

import { compareValues, valuesEqual } from "./compare.ts";
import { dateOperators } from "./expression_date.ts";
import {
  evaluationError,
  exactly,
  type Expression,
  expressionError,
  list,
  nullish,
  type OperatorBuilder,
} from "./expression_util.ts";
import { describe, isPlainObject } from "./types.ts";
import { checkValue, copyValue, setOwn } from "../value_codec.ts";

export type { Expression, OperatorBuilder } from "./expression_util.ts";

/** How deep an expression may nest. */
export const MAX_EXPRESSION_DEPTH = 100;

/**
 * Whether a value is true in an expression: everything except `false`,
 * `null`, missing and `0` (MongoDB's rule; `""` and `[]` are true).
 *
 * @param v The value.
 * @returns Its truth.
 */
export function truthy(v: unknown): boolean {
  return v !== false && v !== null && v !== undefined && v !== 0;
}

/** Whether a path can enter a value (a plain object). */
function isDoc(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date) && !(v instanceof RegExp);
}

/** Reads an own data field (inherited names such as `constructor` are missing). */
export function ownField(o: Record<string, unknown>, seg: string): unknown {
  const v = o[seg];
  if (v === undefined || typeof v === "function") return undefined;
  if (seg === "__proto__" && !Object.hasOwn(o, seg)) return undefined;
  return v;
}

/** Walks `segs[i..]` from `v`; arrays map over their elements (MongoDB's rule). */
function walk(v: unknown, segs: readonly string[], i: number): unknown {
  for (; i < segs.length; i++) {
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (const e of v) {
        const r = isDoc(e)
          ? walk(ownField(e, segs[i]!), segs, i + 1)
          : Array.isArray(e)
          ? walk(e, segs, i)
          : undefined;
        if (r !== undefined) out.push(r);
      }
      return out;
    }
    if (!isDoc(v)) return undefined;
    v = ownField(v, segs[i]!);
  }
  return v;
}

/**
 * Compiles a field path such as `"a.b"` (without the `$`) into a reader.
 * Arrays on the way map over their elements: `"$items.price"` of
 * `{items: [{price: 1}, {price: 2}]}` is `[1, 2]`.
 *
 * @param path The dot path.
 * @param where Where (for errors).
 * @returns The reader.
 * @throws {TypeError} If the path has an empty segment or a `$` segment.
 */
export function fieldPath(path: string, where: string): Expression {
  const segs = path.split(".");
  for (const s of segs) {
    if (s === "") {
      throw expressionError(
        where,
        `the field path '$${path}' has an empty segment`,
      );
    }
    if (s.startsWith("$")) {
      throw expressionError(
        where,
        `the field path '$${path}' has a segment starting with '$'`,
      );
    }
  }
  if (segs.length === 1) {
    const seg = segs[0]!;
    return (d) => isDoc(d) ? ownField(d, seg) : undefined;
  }
  if (segs.length === 2) {
    const [s0, s1] = segs as [string, string];
    return (d) => {
      if (!isDoc(d)) return undefined;
      const v = ownField(d, s0);
      if (isDoc(v)) return ownField(v, s1);
      return Array.isArray(v) ? walk(v, segs, 1) : undefined;
    };
  }
  return (d) => walk(d, segs, 0);
}

/** Compiles a `$`-string: a field path or a `$$` variable. */
function dollarString(s: string, where: string): Expression {
  if (!s.startsWith("$$")) return fieldPath(s.slice(1), where);
  const dot = s.indexOf(".");
  const name = dot === -1 ? s.slice(2) : s.slice(2, dot);
  const rest = dot === -1 ? undefined : fieldPath(s.slice(dot + 1), where);
  switch (name) {
    case "ROOT":
    case "CURRENT":
      return rest ?? ((d) => d);
    case "REMOVE":
      return () => undefined;
  }
  throw expressionError(
    where,
    `unknown variable '$$${name}' (supported: $$ROOT, $$CURRENT, $$REMOVE)`,
  );
}

const constant = (v: unknown): Expression => () => v;

/** The expression compiler (depth-counting). */
class ExpressionCompiler {
  #depth = 0;

  compile(spec: unknown, where: string): Expression {
    if (++this.#depth > MAX_EXPRESSION_DEPTH) {
      throw new RangeError(
        `Cannot compile expression at '${where}': it nests deeper than ${MAX_EXPRESSION_DEPTH} levels`,
      );
    }
    try {
      return this.#compile(spec, where);
    } finally {
      this.#depth--;
    }
  }

  #compile(spec: unknown, where: string): Expression {
    const c = (s: unknown, w: string): Expression => this.compile(s, w);
    switch (typeof spec) {
      case "string":
        return spec.startsWith("$")
          ? dollarString(spec, where)
          : constant(spec);
      case "number":
      case "boolean":
        return constant(spec);
      case "undefined":
        throw expressionError(where, "undefined is not an expression");
      case "object":
        break;
      default:
        throw expressionError(where, `${describe(spec)} is not an expression`);
    }
    if (spec === null) return constant(null);
    if (spec instanceof Date) {
      const t = spec.getTime();
      return () => new Date(t);
    }
    if (Array.isArray(spec)) {
      // Array.from visits holes (as undefined: refused); map skips them.
      const items = Array.from(spec, (s, i) => c(s, `${where}.${i}`));
      return (d) => items.map((e) => e(d));
    }
    if (!isPlainObject(spec)) {
      throw expressionError(where, `${describe(spec)} is not an expression`);
    }
    const keys = Object.keys(spec);
    const first = keys[0];
    if (first !== undefined && first.startsWith("$")) {
      if (keys.length !== 1) {
        throw expressionError(
          where,
          `an operator object must have exactly one field, got ${
            keys.map((k) => `'${k}'`).join(", ")
          }`,
        );
      }
      const build = OPERATORS.get(first);
      if (build === undefined) {
        throw expressionError(where, `unknown expression operator '${first}'`);
      }
      return build(spec[first], where === "" ? first : `${where}.${first}`, c);
    }
    // An object of expressions.
    const fields: [string, Expression][] = [];
    for (const k of keys) {
      if (k.startsWith("$")) {
        throw expressionError(
          where,
          `'${k}' mixes an operator with fields in one object`,
        );
      }
      if (k.includes(".")) {
        throw expressionError(where, `the field name '${k}' contains '.'`);
      }
      fields.push([k, c(spec[k], where === "" ? k : `${where}.${k}`)]);
    }
    return (d) => {
      const out: Record<string, unknown> = {};
      for (const [k, e] of fields) {
        const v = e(d);
        if (v !== undefined) setOwn(out, k, v);
      }
      return out;
    };
  }
}

/**
 * Compiles an aggregation expression, once, into a closure.
 *
 * @param spec The expression: `"$field.path"`, a literal, an operator object
 *   such as `{ $add: ["$a", 1] }`, an array or an object of expressions.
 * @param where Where the expression is (for error messages).
 * @returns The compiled expression.
 * @throws {TypeError} On an unknown operator or a malformed operand.
 * @throws {RangeError} If it nests deeper than 100 levels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileExpression } from "./expression.ts";
 * const total = compileExpression({ $multiply: ["$price", { $add: ["$qty", 1] }] });
 * assert.equal(total({ price: 2, qty: 4 }), 10);
 * ```
 */
export function compileExpression(spec: unknown, where = ""): Expression {
  return new ExpressionCompiler().compile(spec, where);
}

/**
 * Compiles the operand of `$expr` in a filter into a document predicate
 * (the hook the filter compilers call).
 *
 * @param spec The expression.
 * @param where Where in the filter (for errors).
 * @returns Whether a document's value of the expression is true.
 * @throws {TypeError} As {@linkcode compileExpression}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exprPredicate } from "./expression.ts";
 * const p = exprPredicate({ $gt: ["$spent", "$budget"] }, "");
 * assert(p({ spent: 5, budget: 3 }));
 * assert(!p({ spent: 1, budget: 3 }));
 * ```
 */
export function exprPredicate(
  spec: unknown,
  where: string,
): (doc: unknown) => boolean {
  const e = compileExpression(spec, where === "" ? "$expr" : `${where}.$expr`);
  return (d) => truthy(e(d));
}

// --- Operand helpers ---------------------------------------------------------

function numeric(op: string, v: unknown): number {
  if (typeof v !== "number") {
    throw evaluationError(op, `expected a number, got ${describe(v)}`);
  }
  return v;
}

/** A one-operand numeric operator (`null`/missing -> `null`). */
function unaryMath(op: string, f: (x: number) => number): OperatorBuilder {
  return (arg, where, compile) => {
    const [a] = exactly(1, arg, where, compile) as [Expression];
    return (d) => {
      const v = a(d);
      return nullish(v) ? null : f(numeric(op, v));
    };
  };
}

/** Rounds half to even at `place` decimal places (MongoDB's `$round`). */
export function roundHalfEven(x: number, place: number): number {
  if (!Number.isFinite(x)) return x;
  const scale = 10 ** Math.abs(place);
  const y = place >= 0 ? x * scale : x / scale;
  let r = Math.round(y);
  if (Math.abs(y - Math.trunc(y)) === 0.5) r = 2 * Math.round(y / 2);
  const out = place >= 0 ? r / scale : r * scale;
  return out === 0 ? 0 : out;
}

function comparison(
  test: (c: number) => unknown,
): OperatorBuilder {
  return (arg, where, compile) => {
    const [a, b] = exactly(2, arg, where, compile) as [Expression, Expression];
    return (d) => test(compareValues(a(d), b(d)));
  };
}

// --- The operators -------------------------------------------------------------

const core: Record<string, OperatorBuilder> = {
  $literal: (arg, where) => {
    // A value a document may hold (not a Map, a function, a symbol), and a
    // copy for each result: results never share it with the caller.
    const v = checkValue(arg, `Cannot compile expression at '${where}'`).value;
    if (typeof v !== "object" || v === null) return () => v;
    return () => copyValue(v);
  },
  $add: (arg, where, compile) => {
    const args = list(arg, where, compile);
    return (d) => {
      let sum = 0;
      let date = false;
      for (const e of args) {
        const v = e(d);
        if (nullish(v)) return null;
        if (typeof v === "number") sum += v;
        else if (v instanceof Date && !date) {
          date = true;
          sum += v.getTime();
        } else {
          throw evaluationError(
            "$add",
            v instanceof Date
              ? "only one date is allowed"
              : `only numbers and dates are allowed, got ${describe(v)}`,
          );
        }
      }
      return date ? new Date(sum) : sum;
    };
  },
  $subtract: (arg, where, compile) => {
    const [a, b] = exactly(2, arg, where, compile) as [Expression, Expression];
    return (d) => {
      const x = a(d);
      const y = b(d);
      if (nullish(x) || nullish(y)) return null;
      if (typeof x === "number" && typeof y === "number") return x - y;
      if (x instanceof Date) {
        if (y instanceof Date) return x.getTime() - y.getTime();
        if (typeof y === "number") return new Date(x.getTime() - y);
      }
      throw evaluationError(
        "$subtract",
        `cannot subtract ${describe(y)} from ${describe(x)}`,
      );
    };
  },
  $multiply: (arg, where, compile) => {
    const args = list(arg, where, compile);
    return (d) => {
      let p = 1;
      for (const e of args) {
        const v = e(d);
        if (nullish(v)) return null;
        p *= numeric("$multiply", v);
      }
      return p;
    };
  },
  $divide: (arg, where, compile) => {
    const [a, b] = exactly(2, arg, where, compile) as [Expression, Expression];
    return (d) => {
      const x = a(d);
      const y = b(d);
      if (nullish(x) || nullish(y)) return null;
      const n = numeric("$divide", y);
      if (n === 0) {
        throw new RangeError("Cannot evaluate '$divide': division by zero");
      }
      return numeric("$divide", x) / n;
    };
  },
  $mod: (arg, where, compile) => {
    const [a, b] = exactly(2, arg, where, compile) as [Expression, Expression];
    return (d) => {
      const x = a(d);
      const y = b(d);
      if (nullish(x) || nullish(y)) return null;
      const n = numeric("$mod", y);
      if (n === 0) {
        throw new RangeError("Cannot evaluate '$mod': division by zero");
      }
      const r = numeric("$mod", x) % n;
      return r === 0 ? 0 : r;
    };
  },
  $abs: unaryMath("$abs", Math.abs),
  $floor: unaryMath("$floor", Math.floor),
  $ceil: unaryMath("$ceil", Math.ceil),
  $round: (arg, where, compile) => {
    const args = list(arg, where, compile);
    if (args.length < 1 || args.length > 2) {
      throw expressionError(
        where,
        `expects 1 or 2 arguments, got ${args.length}`,
      );
    }
    const [a, p] = args as [Expression, Expression | undefined];
    return (d) => {
      const x = a(d);
      const place = p === undefined ? 0 : p(d);
      if (nullish(x) || nullish(place)) return null;
      const n = numeric("$round", place);
      if (!Number.isInteger(n) || n < -20 || n > 100) {
        throw new RangeError(
          `Cannot evaluate '$round': the place must be a whole number from -20 to 100, got ${n}`,
        );
      }
      return roundHalfEven(numeric("$round", x), n);
    };
  },
  $eq: comparison((c) => c === 0),
  $ne: comparison((c) => c !== 0),
  $gt: comparison((c) => c > 0),
  $gte: comparison((c) => c >= 0),
  $lt: comparison((c) => c < 0),
  $lte: comparison((c) => c <= 0),
  $cmp: comparison((c) => c > 0 ? 1 : c < 0 ? -1 : 0),
  $and: (arg, where, compile) => {
    const args = list(arg, where, compile);
    return (d) => {
      for (const e of args) if (!truthy(e(d))) return false;
      return true;
    };
  },
  $or: (arg, where, compile) => {
    const args = list(arg, where, compile);
    return (d) => {
      for (const e of args) if (truthy(e(d))) return true;
      return false;
    };
  },
  $not: (arg, where, compile) => {
    const [a] = exactly(1, arg, where, compile) as [Expression];
    return (d) => !truthy(a(d));
  },
  $cond: (arg, where, compile) => {
    let parts: unknown[];
    if (Array.isArray(arg)) {
      parts = arg;
    } else if (isPlainObject(arg)) {
      for (const k of Object.keys(arg)) {
        if (k !== "if" && k !== "then" && k !== "else") {
          throw expressionError(
            where,
            `unknown field '${k}' (expected if, then, else)`,
          );
        }
      }
      for (const k of ["if", "then", "else"]) {
        if (!Object.hasOwn(arg, k)) {
          throw expressionError(where, `missing '${k}'`);
        }
      }
      parts = [arg.if, arg.then, arg.else];
    } else {
      throw expressionError(
        where,
        `expects [if, then, else] or {if, then, else}, got ${describe(arg)}`,
      );
    }
    const [i, t, e] = exactly(3, parts, where, compile) as [
      Expression,
      Expression,
      Expression,
    ];
    return (d) => truthy(i(d)) ? t(d) : e(d);
  },
  $ifNull: (arg, where, compile) => {
    const args = list(arg, where, compile);
    if (args.length < 2) {
      throw expressionError(
        where,
        `expects at least 2 arguments, got ${args.length}`,
      );
    }
    const last = args.pop()!;
    return (d) => {
      for (const e of args) {
        const v = e(d);
        if (!nullish(v)) return v;
      }
      return last(d);
    };
  },
  $in: (arg, where, compile) => {
    const [a, b] = exactly(2, arg, where, compile) as [Expression, Expression];
    return (d) => {
      const x = a(d);
      const arr = b(d);
      if (!Array.isArray(arr)) {
        throw evaluationError(
          "$in",
          `the second argument must be an array, got ${describe(arr)}`,
        );
      }
      for (const v of arr) if (valuesEqual(v, x)) return true;
      return false;
    };
  },
  $size: (arg, where, compile) => {
    const [a] = exactly(1, arg, where, compile) as [Expression];
    return (d) => {
      const v = a(d);
      if (!Array.isArray(v)) {
        throw evaluationError(
          "$size",
          `the argument must be an array, got ${describe(v)}`,
        );
      }
      return v.length;
    };
  },
  $concat: (arg, where, compile) => {
    const args = list(arg, where, compile);
    return (d) => {
      let s = "";
      for (const e of args) {
        const v = e(d);
        if (nullish(v)) return null;
        if (typeof v !== "string") {
          throw evaluationError(
            "$concat",
            `only strings are allowed, got ${describe(v)}`,
          );
        }
        s += v;
      }
      return s;
    };
  },
  $toString: (arg, where, compile) => {
    const [a] = exactly(1, arg, where, compile) as [Expression];
    return (d) => {
      const v = a(d);
      if (nullish(v)) return null;
      if (typeof v === "string") return v;
      if (typeof v === "number" || typeof v === "boolean") return String(v);
      if (v instanceof Date) return v.toISOString();
      throw evaluationError("$toString", `cannot convert ${describe(v)}`);
    };
  },
  $toDouble: (arg, where, compile) => {
    const [a] = exactly(1, arg, where, compile) as [Expression];
    return (d) => {
      const v = a(d);
      if (nullish(v)) return null;
      if (typeof v === "number") return v;
      if (typeof v === "boolean") return v ? 1 : 0;
      if (v instanceof Date) return v.getTime();
      if (typeof v === "string" && v.trim() !== "") {
        const n = Number(v);
        if (!Number.isNaN(n) || v.trim() === "NaN") return n;
      }
      throw evaluationError("$toDouble", `cannot convert ${describe(v)}`);
    };
  },
};

const OPERATORS: ReadonlyMap<string, OperatorBuilder> = new Map(
  Object.entries({ ...core, ...dateOperators }),
);

/**
 * The names of the supported expression operators, sorted.
 *
 * @returns The names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expressionOperators } from "./expression.ts";
 * assert(expressionOperators().includes("$dateTrunc"));
 * ```
 */
export function expressionOperators(): string[] {
  return [...OPERATORS.keys()].sort();
}
