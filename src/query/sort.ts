/**
 * The sort compiler: turns a MongoDB-style sort specification into a
 * comparator for `Array.prototype.sort` (which is stable, so ties keep their
 * input order).
 *
 * Semantics are MongoDB's: documents are compared by each path in turn, in
 * BSON type order (see {@linkcode compareValues}); a missing field sorts as
 * `null`; an array field sorts by its smallest element ascending and by its
 * largest descending, and an empty array sorts before `null`. A path through
 * an array of objects takes every element's field into account. Documents
 * equal on every key are ordered by `_id` (when the sort does not name `_id`
 * itself), ascending, or descending when the last key is: the order then
 * does not depend on how they were read, and it is the order an index gives
 * when walked backwards for a descending sort (`find` breaks the ties of
 * values without `_id` by their keys the same way).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileSort } from "./sort.ts";
 * const docs = [{ n: 2 }, { n: null }, { n: [5, 0] }, {}];
 * docs.sort(compileSort({ n: -1 }));
 * assert.deepEqual(docs, [{ n: [5, 0] }, { n: 2 }, { n: null }, {}]);
 * ```
 *
 * @module
 */

import { compileSource, helpers, literal } from "./codegen.ts";
import { compareValues } from "./compare.ts";
import { splitPath } from "./path.ts";
import { describe, isPlainObject } from "./types.ts";

/** A sort specification: paths mapped to 1 (ascending) or -1 (descending). */
export type SortSpec = { readonly [path: string]: 1 | -1 };

/** The sort key of an empty array: below `null` (like BSON `undefined`). */
const EMPTY = undefined;

/** An object a path can walk into (not an array, Date or RegExp). */
function isDocument(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof RegExp);
}

function field(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function isIndex(segment: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(segment);
}

/** Collects the candidate sort keys of `value` for `segs[i..]`. */
function collect(
  value: unknown,
  segs: readonly string[],
  i: number,
  out: unknown[],
): void {
  if (i === segs.length) {
    if (Array.isArray(value)) {
      if (value.length === 0) out.push(EMPTY);
      else for (const el of value) out.push(el === undefined ? null : el);
    } else {
      out.push(value === undefined ? null : value);
    }
    return;
  }
  const seg = segs[i] as string;
  if (isDocument(value)) return collect(field(value, seg), segs, i + 1, out);
  if (!Array.isArray(value)) {
    out.push(null);
    return;
  }
  const before = out.length;
  for (const el of value) {
    if (isDocument(el)) collect(field(el, seg), segs, i + 1, out);
  }
  if (isIndex(seg)) {
    const index = Number(seg);
    if (index < value.length) collect(value[index], segs, i + 1, out);
  }
  if (out.length === before) out.push(null);
}

/** The sort key of a document: the smallest (or largest) candidate. */
function sortKey(
  doc: unknown,
  segs: readonly string[],
  desc: boolean,
): unknown {
  // Fast path: no arrays on the way.
  let cur = doc;
  let i = 0;
  for (; i < segs.length; i++) {
    if (!isDocument(cur)) break;
    cur = field(cur, segs[i] as string);
  }
  if (i === segs.length && !Array.isArray(cur)) {
    return cur === undefined ? null : cur;
  }
  const keys: unknown[] = [];
  collect(doc, segs, 0, keys);
  let best = keys[0];
  for (let k = 1; k < keys.length; k++) {
    const c = compareValues(keys[k], best);
    if (desc ? c > 0 : c < 0) best = keys[k];
  }
  return best;
}

/**
 * Compiles a sort specification into a comparator (see the module
 * documentation for the order).
 *
 * @param spec Paths mapped to `1` (ascending) or `-1` (descending), compared
 * in the order given, e.g. `{ "address.city": 1, age: -1 }`. `{}` compares
 * every pair as equal.
 * @returns A comparator for `Array.prototype.sort`: negative, zero or positive
 * as the first document sorts before, with, or after the second.
 * @throws {TypeError} If the specification is not a plain object, a path is
 * empty, has an empty segment or a `$`-prefixed segment, or a direction is not
 * a number.
 * @throws {RangeError} If a direction is a number other than `1` or `-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileSort } from "./sort.ts";
 * const people = [
 *   { name: "Bo", city: "NY" },
 *   { name: "Al", city: "LA" },
 *   { name: "Cy", city: "NY" },
 * ];
 * people.sort(compileSort({ city: 1, name: -1 }));
 * assert.deepEqual(people.map((p) => p.name), ["Al", "Cy", "Bo"]);
 * ```
 */
export function compileSort(
  spec: SortSpec,
): (a: unknown, b: unknown) => number {
  if (!isPlainObject(spec)) {
    throw new TypeError(
      `Cannot compile sort: a sort must be a plain object, got ${
        describe(spec)
      }`,
    );
  }
  const keys: { segs: readonly string[]; desc: boolean }[] = [];
  for (const path of Object.keys(spec)) {
    const dir: unknown = spec[path];
    let segs: string[];
    try {
      segs = splitPath(path);
    } catch {
      throw new TypeError(
        `Cannot compile sort at '${path}': the path has an empty segment`,
      );
    }
    if (segs.some((s) => s.startsWith("$"))) {
      throw new TypeError(
        `Cannot compile sort at '${path}': field names must not start with '$'`,
      );
    }
    if (typeof dir !== "number") {
      throw new TypeError(
        `Cannot compile sort at '${path}': the direction must be 1 or -1, got ${
          describe(dir)
        }`,
      );
    }
    if (dir !== 1 && dir !== -1) {
      throw new RangeError(
        `Cannot compile sort at '${path}': the direction must be 1 or -1, got ${dir}`,
      );
    }
    keys.push({ segs, desc: dir === -1 });
  }
  addIdTieBreak(keys);
  return generateSort(keys) ?? ((a, b) => {
    for (const { segs, desc } of keys) {
      const c = compareValues(sortKey(a, segs, desc), sortKey(b, segs, desc));
      if (c !== 0) return desc ? -c : c;
    }
    return 0;
  });
}

/**
 * Generates the comparator of a sort: each key read inline while the path
 * meets no array (the general `sortKey` otherwise), numbers and strings
 * compared inline. Field names enter the code only as string literals.
 */
function generateSort(
  keys: readonly { segs: readonly string[]; desc: boolean }[],
): ((a: unknown, b: unknown) => number) | undefined {
  // A sort on that many keys spends its time comparing; keep its source out.
  if (keys.length > 32) return undefined;
  const constants: unknown[] = [sortKey];
  const fns: string[] = [];
  const body: string[] = [];
  keys.forEach(({ segs, desc }, k) => {
    constants.push(segs);
    const slow = `return c[0](o, c[${constants.length - 1}], ${desc});`;
    const lines = ["let v = o;"];
    for (const seg of segs) {
      const s = literal(seg);
      lines.push(
        `if (!h.isDoc(v)) ${slow}`,
        `v = h.hasOwn(v, ${s}) ? v[${s}] : undefined;`,
      );
    }
    lines.push(
      `if (h.isArray(v)) ${slow}`,
      "return v === undefined ? null : v;",
    );
    fns.push(`function k${k}(o) {\n  ${lines.join("\n  ")}\n}\n`);
    body.push(
      `x = k${k}(a); y = k${k}(b);`,
      `r = typeof x === "number" && typeof y === "number" && x === x && y === y`,
      `  ? (x < y ? -1 : x > y ? 1 : 0)`,
      `  : typeof x === "string" && typeof y === "string" ? h.cs(x, y) : h.cmp(x, y);`,
      `if (r !== 0) return ${desc ? "-r" : "r"};`,
    );
  });
  const source = `"use strict";\n${
    fns.join("")
  }return function compiledSort(a, b) {\n  let x, y, r;\n  ${
    body.join("\n  ")
  }\n  return 0;\n};\n`;
  return compileSource<(a: unknown, b: unknown) => number>(source)?.(
    constants,
    helpers,
  );
}

/**
 * Makes a sort total and stable across runs: documents equal on every key
 * are ordered by `_id`, in the direction of the last key (as an index
 * walked backwards for a descending sort lists them), unless the sort
 * already names `_id`.
 */
function addIdTieBreak(
  keys: { segs: readonly string[]; desc: boolean }[],
): void {
  if (keys.length === 0) return;
  if (keys.some((k) => k.segs.length === 1 && k.segs[0] === "_id")) return;
  keys.push({ segs: ["_id"], desc: keys[keys.length - 1]!.desc });
}

/**
 * The direction of a sort's ties (see {@linkcode compileSort}): that of
 * its last key; `1` for an empty sort.
 *
 * @param spec The sort.
 * @returns `1` or `-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tieDirection } from "./sort.ts";
 * assert.equal(tieDirection({ city: 1, t: -1 }), -1);
 * assert.equal(tieDirection({ t: -1, city: 1 }), 1);
 * ```
 */
export function tieDirection(spec: SortSpec): 1 | -1 {
  const keys = Object.keys(spec);
  return keys.length > 0 && spec[keys[keys.length - 1]!] === -1 ? -1 : 1;
}
