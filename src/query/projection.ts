/**
 * The projection compiler: turns a MongoDB-style find projection into a
 * function that picks fields out of a document.
 *
 * A projection either includes fields (`{ name: 1, "address.city": 1 }`) or
 * excludes them (`{ secret: 0 }`), never both, except for `_id`: it is
 * included by default and may be excluded from an inclusion projection
 * (`{ name: 1, _id: 0 }`). Dot paths walk into nested objects, and through
 * arrays element by element: `{ "items.sku": 1 }` keeps `items` as an array
 * of `{ sku }` objects (dropping elements that are not objects), and
 * `{ "items.sku": 0 }` removes `sku` from every element. Fields keep the
 * document's order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileProjection } from "./projection.ts";
 * const p = compileProjection({ name: 1, "items.sku": 1, _id: 0 });
 * const doc = { _id: 7, name: "cart", items: [{ sku: "a", qty: 1 }], note: "x" };
 * assert.deepEqual(p(doc), { name: "cart", items: [{ sku: "a" }] });
 * ```
 *
 * @module
 */

import { setOwn } from "../value_codec.ts";
import { compileFilter, type Filter } from "./compile.ts";
import { splitPath } from "./path.ts";
import { describe, isPlainObject } from "./types.ts";
import { mentions, positionFinder } from "./update_positional.ts";

/**
 * A find projection: paths mapped to inclusion (1/true) or exclusion
 * (0/false), or to a projection operator: `{ $slice: n | [skip, limit] }`
 * or (on a top-level field) `{ $elemMatch: filter }`. A path ending in
 * `.$` (`{ "grades.$": 1 }`) keeps the first element the query's filter
 * matched in that array.
 */
export type Projection = {
  readonly [path: string]:
    | 0
    | 1
    | boolean
    | { readonly $slice: number | readonly [number, number] }
    | { readonly $elemMatch: { readonly [key: string]: unknown } };
};

/** A projection tree: `true` at a selected path, subtrees for its parents. */
interface Tree {
  [field: string]: Tree | true;
}

/** An object a path can walk into (not an array, Date or RegExp). */
function isDocument(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof RegExp);
}

function projectionError(path: string, problem: string): TypeError {
  return new TypeError(`Cannot compile projection at '${path}': ${problem}`);
}

function node(tree: Tree, key: string): Tree | true | undefined {
  return Object.hasOwn(tree, key) ? tree[key] : undefined;
}

function include(
  doc: Record<string, unknown>,
  tree: Tree,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(doc)) {
    const sub = node(tree, k);
    if (sub === undefined) continue;
    const v = doc[k];
    if (sub === true) {
      setOwn(out, k, v);
    } else if (isDocument(v)) {
      setOwn(out, k, include(v, sub));
    } else if (Array.isArray(v)) {
      setOwn(out, k, includeArray(v, sub));
    }
  }
  return out;
}

function includeArray(arr: readonly unknown[], tree: Tree): unknown[] {
  const out: unknown[] = [];
  for (const el of arr) {
    if (isDocument(el)) out.push(include(el, tree));
    else if (Array.isArray(el)) out.push(includeArray(el, tree));
  }
  return out;
}

function exclude(
  doc: Record<string, unknown>,
  tree: Tree,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(doc)) {
    const sub = node(tree, k);
    if (sub === true) continue;
    const v = doc[k];
    if (sub === undefined) setOwn(out, k, v);
    else if (isDocument(v)) setOwn(out, k, exclude(v, sub));
    else if (Array.isArray(v)) setOwn(out, k, excludeArray(v, sub));
    else setOwn(out, k, v);
  }
  return out;
}

function excludeArray(arr: readonly unknown[], tree: Tree): unknown[] {
  return arr.map((el) =>
    isDocument(el)
      ? exclude(el, tree)
      : Array.isArray(el)
      ? excludeArray(el, tree)
      : el
  );
}

/** Adds a path to a tree; rejects a path inside or around another. */
function add(tree: Tree, path: string): void {
  let segs: string[];
  try {
    segs = splitPath(path);
  } catch {
    throw projectionError(path, "the path has an empty segment");
  }
  let cur = tree;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    if (seg.startsWith("$")) {
      throw projectionError(
        path,
        `field names must not start with '$', got '${seg}'`,
      );
    }
    const sub = node(cur, seg);
    const last = i + 1 === segs.length;
    if (sub === true || (last && sub !== undefined)) {
      throw projectionError(
        path,
        "the path collides with another path of the projection",
      );
    }
    if (last) {
      setOwn(cur, seg, true);
    } else if (sub === undefined) {
      const next: Tree = {};
      setOwn(cur, seg, next);
      cur = next;
    } else {
      cur = sub;
    }
  }
}

/**
 * Compiles a find projection (see the module documentation).
 *
 * @param projection Paths mapped to `1`/`true` (include) or `0`/`false`
 * (exclude). `{}` keeps every field.
 * @param filter The query's filter, needed by a positional `.$` path
 * (`{ "grades.$": 1 }` keeps the first element of `grades` for which the
 * filter's conditions on `grades` hold).
 * @returns A function from a document to a new, projected object. Values
 * that are not objects are returned as they are. Selected values are shared
 * with the input, not copied.
 * @throws {TypeError} If the projection is not a plain object; mixes
 * inclusions and exclusions (other than `_id: 0`); has a value other than
 * `0`, `1`, `true`, `false`, `$slice` or `$elemMatch`; uses `$elemMatch`
 * with exclusions; or has an empty, `$`-prefixed or colliding path (`a` with
 * `a.b`); or has a positional `.$` that is not last in its path, is not
 * `1`/`true`, comes twice, meets `$elemMatch` or an exclusion, or has no
 * `filter` condition on its array. Applying a positional projection throws
 * a `TypeError` when no element of the array satisfies the filter's
 * conditions on it on its own (`{ grades: [1, 2] }` matches the whole
 * array, not an element).
 *
 * @example Inclusion and exclusion
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileProjection } from "./projection.ts";
 * const doc = { _id: 1, name: "Ann", address: { city: "NY", zip: "10001" } };
 * assert.deepEqual(
 *   compileProjection({ "address.city": 1 })(doc),
 *   { _id: 1, address: { city: "NY" } },
 * );
 * assert.deepEqual(
 *   compileProjection({ address: 0 })(doc),
 *   { _id: 1, name: "Ann" },
 * );
 * ```
 *
 * @example The positional `.$`: the element the filter matched
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileProjection } from "./projection.ts";
 * const filter = { semester: 1, grades: { $gte: 85 } };
 * const p = compileProjection({ "grades.$": 1 }, filter);
 * assert.deepEqual(
 *   p({ _id: 1, semester: 1, grades: [70, 87, 90] }),
 *   { _id: 1, grades: [87] },
 * );
 * ```
 *
 * @example Inclusion and exclusion cannot be mixed
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileProjection } from "./projection.ts";
 * assert.throws(() => compileProjection({ name: 1, secret: 0 }), TypeError);
 * ```
 */
export function compileProjection(
  projection: Projection,
  filter?: Filter,
): (doc: unknown) => unknown {
  if (!isPlainObject(projection)) {
    throw new TypeError(
      `Cannot compile projection: a projection must be a plain object, got ${
        describe(projection)
      }`,
    );
  }
  const tree: Tree = {};
  let mode: boolean | undefined; // true: inclusion, false: exclusion
  let modePath = "";
  let idIncluded = true;
  const ops: ProjectionOperator[] = [];
  for (const key of Object.keys(projection)) {
    const v: unknown = projection[key];
    const positional = positionalPath(key, v, filter, ops);
    if (positional !== undefined) {
      if (mode === false) {
        throw projectionError(
          key,
          `cannot use the positional '.$' in a projection that excludes '${modePath}'`,
        );
      }
      ops.push(positional);
      mode = true;
      modePath = key;
      add(tree, positional.path);
      continue;
    }
    const path = key;
    let on: boolean;
    if (isPlainObject(v) && path !== "_id") {
      const op = projectionOperator(path, v);
      if (op.kind === "elemMatch" && ops.some((o) => o.kind === "positional")) {
        throw projectionError(
          path,
          "cannot use '$elemMatch' with the positional '.$' in one projection",
        );
      }
      ops.push(op);
      if (op.kind === "elemMatch") {
        if (mode === false) {
          throw projectionError(
            path,
            `cannot use '$elemMatch' in a projection that excludes '${modePath}'`,
          );
        }
        mode = true;
        modePath = path;
      }
      add(tree, path);
      continue;
    }
    if (v === 0 || v === 1 || typeof v === "boolean") {
      on = v === 1 || v === true;
    } else {
      throw projectionError(
        path,
        isPlainObject(v)
          ? "projection operators are not supported"
          : `expected 0, 1, true or false, got ${describe(v)}`,
      );
    }
    if (path === "_id") {
      idIncluded = on;
      continue;
    }
    const inclusive = ops.find((o) => o.kind !== "slice");
    if (mode === true && !on && inclusive !== undefined) {
      throw projectionError(
        path,
        `cannot exclude a field in a projection that uses ${
          inclusive.kind === "elemMatch"
            ? "'$elemMatch'"
            : "the positional '.$'"
        }`,
      );
    }
    if (mode !== undefined && mode !== on) {
      throw projectionError(
        path,
        `cannot ${on ? "include" : "exclude"} a field in a projection that ${
          mode ? "includes" : "excludes"
        } '${modePath}'`,
      );
    }
    mode = on;
    modePath = path;
    add(tree, path);
  }
  if (mode === undefined) {
    // Only `_id` (or nothing): `{_id: 1}` keeps just _id, `{_id: 0}` drops it.
    mode = Object.hasOwn(projection, "_id") ? idIncluded : false;
  }
  if (mode) {
    if (idIncluded) add(tree, "_id");
    if (ops.length !== 0) {
      // Included for the operators, which then rewrite the value.
      return (doc) =>
        isDocument(doc) ? applyOperators(doc, include(doc, tree), ops) : doc;
    }
    return (doc) => isDocument(doc) ? include(doc, tree) : doc;
  }
  // Only `$slice` (with exclusions, or alone): every other field is kept.
  for (const op of ops) removePath(tree, op.path);
  if (!idIncluded) add(tree, "_id");
  if (ops.length !== 0) {
    return (doc) =>
      isDocument(doc) ? applyOperators(doc, exclude(doc, tree), ops) : doc;
  }
  return (doc) => isDocument(doc) ? exclude(doc, tree) : doc;
}

// ---- Projection operators: `$slice` and `$elemMatch` ----

/** A projection operator at a path. */
type ProjectionOperator =
  | { kind: "slice"; path: string; skip: number; limit: number | undefined }
  | { kind: "elemMatch"; path: string; match: (el: unknown) => boolean }
  | {
    kind: "positional";
    path: string;
    segs: readonly string[];
    find: (doc: unknown, segs: readonly string[]) => number | undefined;
  };

/**
 * The positional `.$` at `key` (`"grades.$": 1`), or `undefined` when `key`
 * has no `$` segment. Checks what MongoDB checks (one `.$`, last in the
 * path, an inclusion, no `$slice` on it, no `$elemMatch` beside it), and
 * that the filter has a condition on the array or a path under it.
 */
function positionalPath(
  key: string,
  v: unknown,
  filter: Filter | undefined,
  ops: readonly ProjectionOperator[],
): ProjectionOperator | undefined {
  const segs = key.split(".");
  const at = segs.indexOf("$");
  if (at === -1) return undefined;
  if (at === 0 || at !== segs.length - 1) {
    throw projectionError(
      key,
      "the positional '.$' must end a path that names an array, as in 'grades.$'",
    );
  }
  if (isPlainObject(v)) {
    throw projectionError(
      key,
      `the positional '.$' takes 1 or true, not a projection operator (${
        Object.keys(v).join(", ") || "{}"
      })`,
    );
  }
  if (v === 0 || v === false) {
    throw projectionError(
      key,
      "the positional '.$' cannot be used in an exclusion",
    );
  }
  if (v !== 1 && v !== true) {
    throw projectionError(key, `expected 1 or true, got ${describe(v)}`);
  }
  if (ops.some((o) => o.kind === "positional")) {
    throw projectionError(
      key,
      "only one positional '.$' may appear in a projection",
    );
  }
  if (ops.some((o) => o.kind === "elemMatch")) {
    throw projectionError(
      key,
      "cannot use the positional '.$' with '$elemMatch' in one projection",
    );
  }
  const path = segs.slice(0, -1).join(".");
  if (filter === undefined) {
    throw projectionError(
      key,
      "the positional '.$' needs the query's filter (use it in find())",
    );
  }
  if (!mentions(filter, path)) {
    throw projectionError(
      key,
      `the positional '.$' needs a condition on '${path}' (or a path under it) in the filter`,
    );
  }
  const split = splitPath(path);
  return {
    kind: "positional",
    path,
    segs: split,
    find: positionFinder(filter),
  };
}

function projectionOperator(
  path: string,
  v: { readonly [k: string]: unknown },
): ProjectionOperator {
  const keys = Object.keys(v);
  if (keys.length !== 1) {
    throw projectionError(path, "expected exactly one projection operator");
  }
  const name = keys[0]!;
  const operand = v[name];
  if (name === "$slice") {
    const bad = () =>
      projectionError(
        path,
        `'$slice' needs an integer or [skip, limit] with a positive limit, got ${
          describe(operand)
        }`,
      );
    if (typeof operand === "number") {
      if (!Number.isInteger(operand)) throw bad();
      return operand >= 0
        ? { kind: "slice", path, skip: 0, limit: operand }
        : { kind: "slice", path, skip: operand, limit: undefined };
    }
    if (
      Array.isArray(operand) && operand.length === 2 &&
      Number.isInteger(operand[0]) && Number.isInteger(operand[1]) &&
      (operand[1] as number) > 0
    ) {
      return {
        kind: "slice",
        path,
        skip: operand[0] as number,
        limit: operand[1] as number,
      };
    }
    throw bad();
  }
  if (name === "$elemMatch") {
    if (path.includes(".")) {
      throw projectionError(path, "'$elemMatch' needs a top-level field");
    }
    if (!isPlainObject(operand)) {
      throw projectionError(
        path,
        `'$elemMatch' needs a filter object, got ${describe(operand)}`,
      );
    }
    // The element test of the filter form `{ f: { $elemMatch: q } }`.
    const pred = compileFilter({ x: { $elemMatch: operand } });
    return { kind: "elemMatch", path, match: (el) => pred({ x: [el] }) };
  }
  throw projectionError(
    path,
    `unknown projection operator '${name}' (supported: $slice, $elemMatch)`,
  );
}

function slice(
  arr: readonly unknown[],
  skip: number,
  limit: number | undefined,
): unknown[] {
  const start = skip < 0 ? Math.max(arr.length + skip, 0) : skip;
  return limit === undefined
    ? arr.slice(start)
    : arr.slice(start, start + limit);
}

/** Removes a path added to a tree (to keep a `$slice`d field in full). */
function removePath(tree: Tree, path: string): void {
  const segs = splitPath(path);
  let cur: Tree = tree;
  for (let i = 0; i + 1 < segs.length; i++) {
    const sub = node(cur, segs[i]!);
    if (sub === undefined || sub === true) return;
    cur = sub;
  }
  delete cur[segs[segs.length - 1]!];
}

/** Rewrites `path` in `out` (copying the objects on the way). */
function rewrite(
  out: Record<string, unknown>,
  segs: readonly string[],
  i: number,
  f: (v: unknown) => unknown,
): Record<string, unknown> {
  const k = segs[i]!;
  if (!Object.hasOwn(out, k)) return out;
  const copy = { ...out };
  const v = out[k];
  if (i + 1 === segs.length) {
    setOwn(copy, k, f(v));
  } else if (isDocument(v)) {
    setOwn(copy, k, rewrite(v, segs, i + 1, f));
  } else if (Array.isArray(v)) {
    setOwn(
      copy,
      k,
      v.map((el) => isDocument(el) ? rewrite(el, segs, i + 1, f) : el),
    );
  }
  return copy;
}

function applyOperators(
  doc: Record<string, unknown>,
  out: Record<string, unknown>,
  ops: readonly ProjectionOperator[],
): Record<string, unknown> {
  for (const op of ops) {
    if (op.kind === "slice") {
      const { skip, limit } = op;
      out = rewrite(
        out,
        splitPath(op.path),
        0,
        (v) => Array.isArray(v) ? slice(v, skip, limit) : v,
      );
    } else if (op.kind === "positional") {
      out = positional(doc, out, op.segs, op.find, op.path);
    } else {
      const v = Object.hasOwn(doc, op.path) ? doc[op.path] : undefined;
      const hit = Array.isArray(v) ? v.find(op.match) : undefined;
      if (hit === undefined) delete out[op.path];
      else setOwn(out, op.path, [hit]);
    }
  }
  return out;
}

/** Removes `segs` from `out` (copying the objects on the way). */
function omit(
  out: Record<string, unknown>,
  segs: readonly string[],
  i: number,
): Record<string, unknown> {
  const k = segs[i]!;
  if (!Object.hasOwn(out, k)) return out;
  const copy = { ...out };
  const v = out[k];
  if (i + 1 === segs.length || !isDocument(v)) delete copy[k];
  else setOwn(copy, k, omit(v, segs, i + 1));
  return copy;
}

/**
 * Applies `path.$`: the array at `path` (reached through objects only)
 * becomes `[element]`, the first element the filter's conditions on the
 * array hold for. A missing or non-array value is left out, as is the path
 * when it crosses an array or a scalar.
 */
function positional(
  doc: Record<string, unknown>,
  out: Record<string, unknown>,
  segs: readonly string[],
  find: (doc: unknown, segs: readonly string[]) => number | undefined,
  path: string,
): Record<string, unknown> {
  let cur: unknown = doc;
  for (let i = 0; i < segs.length; i++) {
    if (!isDocument(cur) || !Object.hasOwn(cur, segs[i]!)) {
      return omit(out, segs, 0);
    }
    cur = cur[segs[i]!];
  }
  if (!Array.isArray(cur)) return omit(out, segs, 0);
  const arr = cur;
  const at = find(doc, segs);
  if (at === undefined) {
    throw new TypeError(
      `Cannot project '${path}.$': no element of the array satisfies the filter's conditions on '${path}' (a whole-array match such as { ${path}: [...] } or $size gives no position)`,
    );
  }
  return rewrite(out, segs, 0, () => [arr[at]]);
}
