/**
 * What the positional update segments need: for `$`, the index of the
 * array element the filter matched; for `$[<id>]`, the compiled array
 * filters.
 *
 * Internal to {@linkcode compileUpdate}; see `update.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { positionFinder } from "./update_positional.ts";
 * const find = positionFinder({ "grades": { $gte: 90 } });
 * assert.equal(find({ grades: [80, 95, 99] }, ["grades"]), 1);
 * ```
 *
 * @module
 */

import { compileFilter, type Filter } from "./compile.ts";
import { describe, isPlainObject } from "./types.ts";
import { setOwn } from "../value_codec.ts";
import { isDocument, shallowCopy } from "./update_walk.ts";
import { compileError } from "./update_ops.ts";

const LOGICAL = new Set(["$and", "$or", "$nor"]);

/** Whether a field path is `prefix` or a path under it. */
function under(key: string, prefix: string): boolean {
  return key === prefix || key.startsWith(`${prefix}.`);
}

/**
 * Whether a filter has a condition on `prefix` or a path under it, at the
 * top level or inside `$and`, `$or` and `$nor`.
 *
 * @param filter The filter.
 * @param prefix The array's dot path.
 * @returns Whether a condition names the array.
 */
export function mentions(filter: Filter, prefix: string): boolean {
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (LOGICAL.has(k)) {
      if (
        Array.isArray(v) &&
        v.some((f) => isPlainObject(f) && mentions(f, prefix))
      ) return true;
    } else if (under(k, prefix)) {
      return true;
    }
  }
  return false;
}

/**
 * The filter's conditions on `prefix` or paths under it: those at the top
 * level and inside `$and`, and each `$or` / `$nor` that names the array
 * (whole, since its branches decide together).
 */
function conditionsOn(filter: Filter, prefix: string): Filter[] {
  const out: Filter[] = [];
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (k === "$and" && Array.isArray(v)) {
      for (const f of v as unknown[]) {
        if (isPlainObject(f)) out.push(...conditionsOn(f, prefix));
      }
    } else if (LOGICAL.has(k)) {
      if (mentions({ [k]: v }, prefix)) out.push({ [k]: v });
    } else if (under(k, prefix)) {
      out.push({ [k]: v });
    }
  }
  return out;
}

function withElement(
  doc: unknown,
  segs: readonly string[],
  element: unknown,
): unknown {
  if (segs.length === 0) return [element];
  if (!isDocument(doc)) return doc;
  const copy = shallowCopy(doc);
  const [head, ...rest] = segs as [string, ...string[]];
  setOwn(copy, head, withElement(copy[head], rest, element));
  return copy;
}

function getSegs(doc: unknown, segs: readonly string[]): unknown {
  let cur = doc;
  for (const s of segs) {
    if (Array.isArray(cur)) cur = cur[Number(s)];
    else if (isDocument(cur)) cur = Object.hasOwn(cur, s) ? cur[s] : undefined;
    else return undefined;
  }
  return cur;
}

/**
 * For `$`: a function giving, for a document the filter matched and the
 * array's path, the index of the first element that satisfies the
 * filter's conditions on that array (tested as if it were the array's only
 * element).
 *
 * @param filter The filter the document matched.
 * @returns The finder; `undefined` when the filter has no condition on
 * that array or no element satisfies them.
 */
export function positionFinder(
  filter: Filter,
): (doc: unknown, prefix: readonly string[]) => number | undefined {
  const cache = new Map<string, ((doc: unknown) => boolean) | null>();
  return (doc, prefix) => {
    const key = prefix.join(".");
    let test = cache.get(key);
    if (test === undefined) {
      const conds = conditionsOn(filter, key);
      test = conds.length === 0 ? null : compileFilter({ $and: conds });
      cache.set(key, test);
    }
    if (test === null) return undefined;
    const arr = getSegs(doc, prefix);
    if (!Array.isArray(arr)) return undefined;
    for (let i = 0; i < arr.length; i++) {
      if (test(withElement(doc, prefix, arr[i]))) return i;
    }
    return undefined;
  };
}

/** Renames the identifier `id` to `v` in an array filter's field names. */
function rename(filter: Filter, id: string, seen: Set<string>): Filter {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (LOGICAL.has(k) && Array.isArray(v)) {
      setOwn(out, k, v.map((f) => isPlainObject(f) ? rename(f, id, seen) : f));
      continue;
    }
    if (k.startsWith("$")) {
      throw compileError(
        "",
        `array filter operator '${k}' is not supported at the top level; name the identifier, e.g. { "${id}": { ${k}: … } }`,
      );
    }
    const dot = k.indexOf(".");
    const name = dot === -1 ? k : k.slice(0, dot);
    seen.add(name);
    out[`v${dot === -1 ? "" : k.slice(dot)}`] = v;
  }
  return out;
}

/**
 * Compiles `arrayFilters`: each a filter whose field names all start with
 * one identifier (`{ "x.grade": { $gte: 85 } }`).
 *
 * @param arrayFilters The option's value.
 * @returns The element tests by identifier.
 * @throws {TypeError} When not an array of filters, when a filter names
 * several identifiers or none, or when an identifier is given twice.
 */
export function compileArrayFilters(
  arrayFilters: unknown,
): Map<string, (element: unknown) => boolean> {
  const out = new Map<string, (element: unknown) => boolean>();
  if (arrayFilters === undefined) return out;
  if (!Array.isArray(arrayFilters)) {
    throw compileError(
      "",
      `arrayFilters needs an array of filters, got ${describe(arrayFilters)}`,
    );
  }
  for (const f of arrayFilters) {
    if (!isPlainObject(f) || Object.keys(f).length === 0) {
      throw compileError(
        "",
        `each array filter must be a non-empty object, got ${describe(f)}`,
      );
    }
    const seen = new Set<string>();
    const renamed = rename(f, "x", seen);
    if (seen.size !== 1) {
      throw compileError(
        "",
        seen.size === 0
          ? "an array filter names no identifier"
          : `an array filter names several identifiers (${
            [...seen].join(", ")
          }); use one per filter`,
      );
    }
    const [id] = seen as Set<string>;
    if (!/^[a-z][a-zA-Z0-9]*$/.test(id!)) {
      throw compileError(
        "",
        `the array filter identifier '${id}' must start with a lowercase letter and hold only letters and digits`,
      );
    }
    if (out.has(id!)) {
      throw compileError(
        "",
        `the array filter identifier '${id}' is given twice`,
      );
    }
    const test = compileFilter(renamed);
    out.set(id!, (el) => test({ v: el }));
  }
  return out;
}
