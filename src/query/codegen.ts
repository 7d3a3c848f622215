/**
 * The query code generator: turns a validated filter ({@linkcode FilterNode})
 * into the source of one plain function, compiled once with `new Function`
 * and cached by the filter's shape.
 *
 * Safety: nothing from the filter enters the source as code. Field names go
 * in only as JSON string literals (with U+2028 and U+2029 escaped too);
 * operands, regular expressions, `$in` lists and every test the generator
 * does not inline are passed in through a constants array and read as
 * `c0`, `c1`… So the source depends only on the filter's shape (its fields,
 * operators and operand types), and it is also the cache key: `{ age: 42 }`
 * and `{ age: 43 }` share one compiled function, bound to different
 * constants.
 *
 * Where code generation from strings is not allowed (an `EvalError` from
 * `new Function`, as on hosts that disable it), {@linkcode generateFilter}
 * returns `undefined` from then on and the interpreter (`interpret.ts`)
 * answers instead. {@linkcode setCodeGeneration} forces that fallback (for
 * tests).
 *
 * @module
 */

import { compareStrings, compareValues } from "./compare.ts";
import { interpretField } from "./interpret.ts";
import { compilePathMatcher, splitPath } from "./path.ts";
import type {
  DocPredicate,
  FieldOp,
  FilterNode,
  InlineTest,
  LeafOp,
} from "./types.ts";

/** How many filter shapes keep their compiled function. */
export const SHAPE_CACHE_SIZE = 256;

/**
 * Filters with more field conditions than this are interpreted: compiling
 * grows with the source (a 10,000-branch `$or` took over half a second,
 * holding the event loop), while a filter that large spends its time in
 * per-branch work either way, and its source would crowd the cache.
 */
export const MAX_GENERATED_CONDITIONS = 200;

/** `"auto"`: generate code while the host allows it; `"off"`: interpret. */
export type CodeGeneration = "auto" | "off";

let mode: CodeGeneration = "auto";
/** Set once `new Function` threw an `EvalError`. */
let forbidden = false;

/** Factory of a compiled filter: binds the constants, returns the predicate. */
type Factory = (c: readonly unknown[], h: Helpers) => DocPredicate;

/** Shape (the generated source) -> factory, in least recently used order. */
const cache = new Map<string, Factory>();

/** What generated code may call, as `h.…`. */
export interface Helpers {
  /** `Array.isArray`. */
  readonly isArray: (v: unknown) => v is unknown[];
  /** `Object.hasOwn`. */
  readonly hasOwn: (o: object, k: PropertyKey) => boolean;
  /** Whether a path can walk into a value (an object, not an array, Date or RegExp). */
  readonly isDoc: (v: unknown) => boolean;
  /** `compareStrings`. */
  readonly cs: (a: string, b: string) => number;
  /** `compareValues`. */
  readonly cmp: (a: unknown, b: unknown) => number;
}

/** The helpers generated code is given. */
export const helpers: Helpers = {
  isArray: Array.isArray,
  hasOwn: Object.hasOwn,
  isDoc: (v) =>
    typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date) && !(v instanceof RegExp),
  cs: compareStrings,
  cmp: compareValues,
};

/**
 * Chooses whether filters are compiled to code (`"auto"`, the default) or
 * interpreted (`"off"`). Internal: tests run the query suites both ways.
 * Clears the shape cache.
 *
 * @param value The mode.
 * @returns The previous mode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codeGeneration, setCodeGeneration } from "./codegen.ts";
 * const before = setCodeGeneration("off");
 * assert(codeGeneration() === "interpreted");
 * setCodeGeneration(before);
 * ```
 */
export function setCodeGeneration(value: CodeGeneration): CodeGeneration {
  if (value !== "auto" && value !== "off") {
    throw new TypeError(
      `Cannot set code generation: expected "auto" or "off", got ${
        String(value)
      }`,
    );
  }
  const before = mode;
  mode = value;
  cache.clear();
  return before;
}

/**
 * Reports how filters run now.
 *
 * @returns `"compiled"` when filters become generated code, `"interpreted"`
 * when code generation is switched off or the host forbids it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codeGeneration } from "./codegen.ts";
 * assert(["compiled", "interpreted"].includes(codeGeneration()));
 * ```
 */
export function codeGeneration(): "compiled" | "interpreted" {
  return mode === "off" || forbidden ? "interpreted" : "compiled";
}

/**
 * How many filter shapes are cached now (for tests and diagnostics).
 *
 * @returns The number of cached shapes, at most {@linkcode SHAPE_CACHE_SIZE}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cachedShapes, SHAPE_CACHE_SIZE } from "./codegen.ts";
 * assert(cachedShapes() <= SHAPE_CACHE_SIZE);
 * ```
 */
export function cachedShapes(): number {
  return cache.size;
}

/**
 * A JavaScript string literal for any string: JSON's escaping, plus U+2028
 * and U+2029 (line terminators that older parsers refuse in literals).
 *
 * @param s Any string.
 * @returns The literal, quotes included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { literal } from "./codegen.ts";
 * assert.equal(literal('a"\u2028'), '"a\\"\\u2028"');
 * ```
 */
export function literal(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

/**
 * Builds one filter's source and its constants.
 *
 * The source tests the document's kind once: most documents are plain
 * objects, and the test of each top-level field then reads the field
 * without looking at the document again (each such look cost ~1 ns a
 * document and field, about a quarter of a two-field filter). For any
 * other value (an array, a scalar, `null`) every top-level field is
 * missing, so those tests become their result for a missing field, inline.
 */
class Generator {
  readonly constants: unknown[] = [];
  readonly #fns: string[] = [];
  /**
   * Generating the branch for a document that is not a plain object (`d`
   * is then an array, a scalar or `null`).
   */
  #notObject = false;

  /** A constant's name in the generated code. */
  constant(value: unknown): string {
    this.constants.push(value);
    return `c${this.constants.length - 1}`;
  }

  /** Function source -> name (both branches may need the same one). */
  readonly #names = new Map<string, string>();

  /** Declares a function in the factory's scope; returns its name. */
  #fn(params: string, body: string): string {
    const key = `${params}\n${body}`;
    const known = this.#names.get(key);
    if (known !== undefined) return known;
    const name = `f${this.#fns.length}`;
    this.#names.set(key, name);
    this.#fns.push(`function ${name}(${params}) {\n${body}}\n`);
    return name;
  }

  /** An expression (over `d` and `t`) that is the node's result. */
  node(node: FilterNode): string {
    switch (node.kind) {
      case "and":
        return node.nodes.length === 0
          ? "true"
          : `(${node.nodes.map((n) => this.node(n)).join(" && ")})`;
      case "or":
        return `(${node.nodes.map((n) => this.node(n)).join(" || ")})`;
      case "nor":
        return `!(${node.nodes.map((n) => this.node(n)).join(" || ")})`;
      case "field":
        return this.#field(node.key, node.op, node.tags);
      case "doc": // `$jsonSchema`
        return this.#docTest(node.test);
      case "expr": // `$expr`: its closure (expression.ts) answers.
        return this.#docTest(node.test);
    }
  }

  /**
   * The expression of a filter: `compiledFilter`'s body. The document's
   * kind is tested once (see the class).
   */
  body(node: FilterNode): string {
    this.#notObject = false;
    const plain = this.node(node);
    this.#notObject = true;
    const other = this.node(node);
    this.#notObject = false;
    return plain === other
      ? `  return ${plain};\n`
      : `  if (typeof d !== "object" || d === null || h.isArray(d)) {\n` +
        `    return ${other};\n  }\n  return ${plain};\n`;
  }

  #field(key: string, op: FieldOp, tags: boolean): string {
    if (op.kind === "not") {
      const parts = op.ops.map((o) => this.#field(key, o, tags));
      return `!(${parts.join(" && ")})`;
    }
    const segs = splitPath(key);
    const tagged = tags && segs[0] === "tags";
    if (tagged && segs.length > 1) {
      // Rare: a path into the tags; the interpreter's closure answers.
      let pred = this.#tested.get(op);
      if (pred === undefined) {
        pred = this.constant(interpretField(key, op, tags));
        this.#tested.set(op, pred);
      }
      return `${pred}(d, t)`;
    }
    if (this.#notObject && !tagged) {
      // Not a plain object: every path is missing (`h.isDoc` fails too).
      const missing = this.#test(op)("undefined");
      return op.negate ? `!(${missing})` : `(${missing})`;
    }
    const body = this.#matchBody(key, segs, op, tagged);
    const name = this.#fn("d, t", body);
    return op.negate ? `!${name}(d, t)` : `${name}(d, t)`;
  }

  /** Each operator's test, made once (both branches use its constants). */
  readonly #tests = new Map<LeafOp, (x: string) => string>();
  /** Each whole-document test's constant, named once. */
  readonly #tested = new Map<unknown, string>();

  /** A whole-document test (`$expr`, `$jsonSchema`) as a call on `d`. */
  #docTest(test: unknown): string {
    let name = this.#tested.get(test);
    if (name === undefined) {
      name = this.constant(test);
      this.#tested.set(test, name);
    }
    return `${name}(d)`;
  }

  /** The test of one value, bound to the variable `x`. */
  #test(op: LeafOp): (x: string) => string {
    let made = this.#tests.get(op);
    if (made === undefined) {
      made = this.#makeTest(op);
      this.#tests.set(op, made);
    }
    return made;
  }

  #makeTest(op: LeafOp): (x: string) => string {
    const inline: InlineTest | undefined = op.inline;
    if (inline === undefined) {
      const test = this.constant(op.test);
      return (x) => `${test}(${x})`;
    }
    const { value } = inline;
    if (value === null) return (x) => `(${x} === null || ${x} === undefined)`;
    const c = this.constant(value);
    if (inline.op === "eq") return (x) => `${x} === ${c}`;
    const rel = { gt: ">", gte: ">=", lt: "<", lte: "<=" }[inline.op];
    if (typeof value === "number") {
      return (x) => `(typeof ${x} === "number" && ${x} ${rel} ${c})`;
    }
    return (x) => `(typeof ${x} === "string" && h.cs(${x}, ${c}) ${rel} 0)`;
  }

  /**
   * The body of a function that tells whether any value the path produces
   * passes the test (the path matcher of `path.ts`, unrolled for one path).
   */
  #matchBody(
    key: string,
    segs: readonly string[],
    op: LeafOp,
    tagged: boolean,
  ): string {
    const test = this.#test(op);
    const lines: string[] = [];
    const missing = `return ${test("undefined")};`;
    // A method is not a field (`v = undefined`); a comparison with a
    // number, string or boolean fails on a function as on a missing field,
    // so it needs no such step.
    const inline = op.inline;
    const callable = inline === undefined || inline.value === null;
    /** `v = o[seg]`, reading own data fields only. */
    const read = (o: string, seg: string): string =>
      seg === "__proto__"
        ? `v = h.hasOwn(${o}, ${literal(seg)}) ? ${o}[${
          literal(seg)
        }] : undefined;`
        : `v = ${o}[${literal(seg)}];${
          callable ? ' if (typeof v === "function") v = undefined;' : ""
        }`;
    lines.push("let v;");
    const first = segs[0]!;
    if (segs.length === 1 && first !== "__proto__") {
      // Any object but an array has fields (as in path.ts's fast path).
      const root =
        `if (typeof d !== "object" || d === null || h.isArray(d)) ${missing}`;
      if (tagged) {
        lines.push(
          `if (t !== undefined) v = t; else {`,
          root,
          read("d", first),
        );
        lines.push("}");
      } else {
        // `compiledFilter` tested that `d` is a plain object.
        lines.push(read("d", first));
      }
    } else {
      lines.push(`if (!h.isDoc(d)) ${missing}`, read("d", first));
      if (segs.length > 1) {
        // Arrays on the way fan out: the general matcher walks those.
        const matcher = this.constant(compilePathMatcher(key, op.traverse));
        const fn = this.constant(op.test);
        for (let i = 1; i < segs.length; i++) {
          lines.push(`if (h.isArray(v)) return ${matcher}(d, ${fn});`);
          lines.push(`if (!h.isDoc(v)) ${missing}`);
          lines.push(read("v", segs[i]!));
        }
      }
    }
    // A scalar (or a missing field) is tested as it is: no array to look at.
    lines.push(`if (typeof v !== "object") return ${test("v")};`);
    if (op.traverse) {
      lines.push(
        "if (h.isArray(v)) {",
        "  for (let i = 0; i < v.length; i++) {",
        "    const x = v[i];",
        `    if (${test("x")}) return true;`,
        "  }",
        "}",
      );
    }
    lines.push("const x = v;", `return ${test("x")};`);
    return lines.map((l) => `  ${l}\n`).join("");
  }

  /** The factory's source, around {@linkcode Generator.body}'s result. */
  source(body: string): string {
    const consts = this.constants.map((_, i) => `const c${i} = c[${i}];\n`);
    return `"use strict";\n${consts.join("")}${
      this.#fns.join("")
    }return function compiledFilter(d, t) {\n${body}};\n`;
  }
}

/** Counts field conditions, stopping once past the limit. */
function conditions(node: FilterNode, n: number): number {
  if (node.kind === "field") {
    return n + (node.op.kind === "not" ? node.op.ops.length : 1);
  }
  if (node.kind === "doc") return n + 1;
  if (node.kind === "expr") return n + 1;
  for (const sub of node.nodes) {
    n = conditions(sub, n);
    if (n > MAX_GENERATED_CONDITIONS) break;
  }
  return n;
}

function isEvalError(e: unknown): boolean {
  return e instanceof EvalError ||
    (e instanceof Error && e.name === "EvalError");
}

/**
 * Compiles generated source into a factory, or takes it from the shape
 * cache (internal: shared by filters and sorts).
 *
 * @param source The body of a function of `c` (the constants) and `h`
 * (helpers) that returns the compiled function. It must contain no value
 * from a query except as a JSON string literal (see the module
 * documentation).
 * @returns The factory, or `undefined` when code generation is switched off
 * or forbidden by the host.
 */
export function compileSource<F>(
  source: string,
): ((c: readonly unknown[], h: Helpers) => F) | undefined {
  if (mode === "off" || forbidden) return undefined;
  let factory = cache.get(source);
  if (factory !== undefined) {
    // Most recently used last.
    cache.delete(source);
    cache.set(source, factory);
  } else {
    try {
      factory = new Function("c", "h", source) as Factory;
    } catch (e) {
      // A source past the engine's limits: interpret this one.
      if (e instanceof RangeError) return undefined;
      if (!isEvalError(e)) throw e;
      forbidden = true;
      return undefined;
    }
    cache.set(source, factory);
    if (cache.size > SHAPE_CACHE_SIZE) {
      cache.delete(cache.keys().next().value!);
    }
  }
  return factory as unknown as (c: readonly unknown[], h: Helpers) => F;
}

/**
 * Compiles a validated filter into a generated function, reusing the code of
 * an earlier filter of the same shape.
 *
 * @param node The validated filter.
 * @returns The predicate, or `undefined` when code generation is switched
 * off or forbidden by the host (the caller then interprets the filter).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateFilter } from "./codegen.ts";
 * import { parseFilter } from "./compile.ts";
 * const p = generateFilter(parseFilter({ age: { $gte: 30 }, city: "SF" }));
 * if (p !== undefined) {
 *   assert(p({ age: 31, city: "SF" }, undefined));
 *   assert(!p({ age: 29, city: "SF" }, undefined));
 * }
 * ```
 */
export function generateFilter(node: FilterNode): DocPredicate | undefined {
  if (mode === "off" || forbidden) return undefined;
  if (conditions(node, 0) > MAX_GENERATED_CONDITIONS) return undefined;
  const g = new Generator();
  const source = g.source(g.body(node));
  return compileSource<DocPredicate>(source)?.(g.constants, helpers);
}

/**
 * The generated source of a filter, for tests and debugging.
 *
 * @param node The validated filter.
 * @returns The source and the constants it is bound to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filterSource } from "./codegen.ts";
 * import { parseFilter } from "./compile.ts";
 * const a = filterSource(parseFilter({ age: 42 }));
 * const b = filterSource(parseFilter({ age: 43 }));
 * assert(a.source === b.source && a.constants[0] === 42);
 * ```
 */
export function filterSource(
  node: FilterNode,
): { source: string; constants: readonly unknown[] } {
  const g = new Generator();
  const source = g.source(g.body(node));
  return { source, constants: g.constants };
}
