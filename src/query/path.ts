/**
 * Dot-path resolution in documents.
 *
 * {@linkcode getPath} reads one value (for sorting and projection).
 * {@linkcode compilePathMatcher} builds the array-traversing matcher that the
 * query operators use, with MongoDB's semantics:
 *
 * - a path walks into plain objects field by field;
 * - when it meets an array with path left over, it continues into every
 *   element that is an object, and a numeric segment (`"a.0"`) also selects
 *   that element by index; scalar elements are skipped;
 * - when the path ends on an array, the matcher offers each element and then
 *   the array itself ("leaf traversal"), unless the operator asks for the
 *   array alone (`$size`, `$elemMatch`);
 * - a path that leads nowhere offers `undefined` (missing) once — except
 *   inside an array, where elements without the field contribute `undefined`
 *   each and scalar elements contribute nothing.
 *
 * Documents that are not plain objects (numbers, strings, arrays…) have no
 * fields: every path is missing.
 *
 * @module
 */

/** Tests one value that a path produced; `undefined` stands for missing. */
export type ValueTest = (value: unknown) => boolean;

/**
 * Offers the values a path produces in a document to a test, and reports
 * whether any passed. Stops at the first value that passes.
 */
export type PathMatcher = (root: unknown, test: ValueTest) => boolean;

const isArray = Array.isArray;

/** An object a path can walk into (not an array, Date or RegExp). */
function isDocument(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !isArray(value) &&
    !(value instanceof Date) && !(value instanceof RegExp);
}

/** Reads an own data field; inherited methods and `__proto__` are missing. */
function field(obj: Record<string, unknown>, key: string): unknown {
  if (key === "__proto__") {
    return Object.hasOwn(obj, key) ? obj[key] : undefined;
  }
  const v = obj[key];
  return typeof v === "function" ? undefined : v;
}

function isIndex(segment: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(segment);
}

/**
 * Splits and validates a dot path.
 *
 * @param path A dot path such as `"a.b.0"`.
 * @returns The segments.
 * @throws {TypeError} If the path is empty or has an empty segment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitPath } from "./path.ts";
 * assert(splitPath("a.b.0").length === 3);
 * ```
 */
export function splitPath(path: string): string[] {
  const segments = path.split(".");
  for (const s of segments) {
    if (s === "") {
      throw new TypeError(
        `Cannot resolve path '${path}': the path has an empty segment`,
      );
    }
  }
  return segments;
}

/**
 * Reads the value at a dot path without fanning out over arrays: objects are
 * entered by field, arrays by numeric index. Used for sorting and projection.
 *
 * @param doc The document.
 * @param path A dot path such as `"a.b"` or `"items.0.price"`.
 * @returns The value, or `undefined` if the path does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getPath } from "./path.ts";
 * const doc = { a: { b: [10, 20] } };
 * assert(getPath(doc, "a.b.1") === 20);
 * assert(getPath(doc, "a.c") === undefined);
 * assert(getPath(42, "a") === undefined);
 * ```
 */
export function getPath(doc: unknown, path: string): unknown {
  if (!isDocument(doc)) return undefined;
  let cur: unknown = doc;
  let start = 0;
  for (;;) {
    const dot = path.indexOf(".", start);
    const seg = dot === -1 ? path.slice(start) : path.slice(start, dot);
    if (isArray(cur)) {
      if (!isIndex(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (isDocument(cur)) {
      cur = field(cur, seg);
    } else {
      return undefined;
    }
    if (dot === -1) return cur;
    start = dot + 1;
  }
}

/** Offers the value at the end of a path (leaf traversal if requested). */
function leaf(value: unknown, test: ValueTest, traverse: boolean): boolean {
  if (traverse && isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (test(value[i])) return true;
    }
  }
  return test(value);
}

/** `value` is what `segs[i - 1]` resolved to; walk the rest of the path. */
function descend(
  value: unknown,
  segs: readonly string[],
  i: number,
  test: ValueTest,
  traverse: boolean,
): boolean {
  for (;;) {
    if (i === segs.length) return leaf(value, test, traverse);
    if (isArray(value)) return inArray(value, segs, i, test, traverse);
    if (!isDocument(value)) return test(undefined);
    value = field(value, segs[i] as string);
    i++;
  }
}

/** An array met with `segs[i..]` left over. */
function inArray(
  arr: readonly unknown[],
  segs: readonly string[],
  i: number,
  test: ValueTest,
  traverse: boolean,
): boolean {
  const seg = segs[i] as string;
  const index = isIndex(seg) ? Number(seg) : -1;
  const last = i + 1 === segs.length;
  for (let k = 0; k < arr.length; k++) {
    const el = arr[k];
    if (isDocument(el)) {
      if (descend(field(el, seg), segs, i + 1, test, traverse)) return true;
      if (k === index) {
        if (last ? test(el) : descend(el, segs, i + 1, test, traverse)) {
          return true;
        }
      }
    } else if (k === index) {
      if (last) {
        // The element selected by index is offered as is, even an array.
        if (test(el)) return true;
      } else if (isArray(el)) {
        if (inArray(el, segs, i + 1, test, traverse)) return true;
      }
    }
  }
  return false;
}

/**
 * Compiles a dot path into a matcher that offers every value the path
 * produces in a document to a test (see the module documentation).
 *
 * @param path A dot path such as `"a"`, `"a.b"` or `"a.0.b"`.
 * @param traverse Whether an array at the end of the path offers its elements
 * before itself (`true` for most operators; `false` for `$size` and
 * `$elemMatch`).
 * @returns The matcher.
 * @throws {TypeError} If the path is empty or has an empty segment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compilePathMatcher } from "./path.ts";
 * const m = compilePathMatcher("a.b", true);
 * assert(m({ a: [{ b: 1 }, { b: 2 }] }, (v) => v === 2));
 * assert(m({}, (v) => v === undefined)); // missing
 * ```
 */
export function compilePathMatcher(
  path: string,
  traverse: boolean,
): PathMatcher {
  const segs = splitPath(path);
  if (segs.length === 1) {
    const key = segs[0] as string;
    if (key === "__proto__") {
      return (root, test) =>
        isDocument(root)
          ? leaf(field(root, key), test, traverse)
          : test(undefined);
    }
    if (traverse) {
      return (root, test) => {
        if (typeof root !== "object" || root === null || isArray(root)) {
          return test(undefined);
        }
        const v = (root as Record<string, unknown>)[key];
        if (typeof v === "object" && v !== null && isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            if (test(v[i])) return true;
          }
          return test(v);
        }
        return test(typeof v === "function" ? undefined : v);
      };
    }
    return (root, test) => {
      if (typeof root !== "object" || root === null || isArray(root)) {
        return test(undefined);
      }
      const v = (root as Record<string, unknown>)[key];
      return test(typeof v === "function" ? undefined : v);
    };
  }
  return (root, test) =>
    isDocument(root)
      ? descend(field(root, segs[0] as string), segs, 1, test, traverse)
      : test(undefined);
}

/**
 * Like {@linkcode compilePathMatcher}, but the first segment of the path is
 * taken as already resolved to the given value: the matcher walks the rest of
 * the path from there. Used to resolve `tags.…` paths against an item's tags.
 *
 * @param path A dot path with at least one segment.
 * @param traverse As for {@linkcode compilePathMatcher}.
 * @returns A matcher whose first argument is the value of the first segment.
 * @throws {TypeError} If the path is empty or has an empty segment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileRestMatcher } from "./path.ts";
 * const m = compileRestMatcher("tags", true);
 * assert(m(["user", "active"], (v) => v === "active"));
 * ```
 */
export function compileRestMatcher(
  path: string,
  traverse: boolean,
): PathMatcher {
  const segs = splitPath(path);
  return (value, test) => descend(value, segs, 1, test, traverse);
}
