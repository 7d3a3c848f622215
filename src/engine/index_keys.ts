/**
 * Which entries a document contributes to a secondary index.
 *
 * An index over fields `[f1, …, fn]` stores, for each document, one or more
 * value tuples `[v1, …, vn]` (the engine appends the document id and keys
 * the entry under the collection's index prefix). The values follow the
 * query matcher (`./query/path.ts`), so that an index range found by the
 * planner never misses a document the filter matches:
 *
 * - a field's values are what its dot path offers to a query operator: the
 *   value itself, or, when the path meets arrays, the value in each element
 *   (`items.sku` over `items: [{sku: "a"}, {sku: "b"}]` gives `"a"` and
 *   `"b"`), with an array at the end of the path expanded into its elements
 *   (`tags: ["x", "y"]` gives `"x"` and `"y"`; the array as a whole is not
 *   indexed, as in MongoDB);
 * - a missing field (`undefined`) is indexed as `null`, and so is a field
 *   that offers no value at all (an empty array, or a path through an array
 *   of scalars);
 * - the tuples are the cross product of the fields' values, deduplicated;
 * - a document whose values came through an array makes the index
 *   *multikey*; at most one indexed field may be an array, unless the arrays
 *   are shared (`items.sku` and `items.qty` over the same `items`);
 * - a sparse index skips documents where every indexed field is missing;
 * - the virtual fields `_createdAt`, `_updatedAt` and `_version` read the
 *   item's metadata unless the document has a field of that name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexEntries } from "./index_keys.ts";
 *
 * const spec = { name: "city_1_tags_1", fields: ["city", "tags"], unique: false, sparse: false };
 * const { tuples, multikey } = indexEntries(spec, { city: "NY", tags: ["a", "b"] });
 * assert.deepStrictEqual(tuples, [["NY", "a"], ["NY", "b"]]);
 * assert(multikey);
 * ```
 *
 * @module
 */

import { encodeIndexKeyBinary, type IndexKeyPart } from "../index_key_codec.ts";
import { splitPath } from "../query/path.ts";

export type { IndexKeyPart } from "../index_key_codec.ts";
export type { KeyPart } from "../key_codec.ts";

/** The definition of a secondary index. */
export interface IndexSpec {
  /** The index name, unique within its collection (see {@linkcode indexName}). */
  readonly name: string;
  /** The indexed dot paths, in key order (at least one). */
  readonly fields: readonly string[];
  /** Whether two documents may not share a value tuple (enforced by the engine). */
  readonly unique: boolean;
  /** Whether documents missing every indexed field are left out. */
  readonly sparse: boolean;
}

/**
 * Whether two index definitions are the same: the same fields in the same
 * order, the same `unique` and `sparse` (the name follows from the fields).
 * Fields are compared one by one, not joined, so that no separator a field
 * may contain makes two lists equal.
 *
 * @param a One definition.
 * @param b The other.
 * @returns `true` when they index the same way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sameIndexSpec } from "./index_keys.ts";
 * const spec = { name: "a_1", fields: ["a"], unique: false, sparse: false };
 * assert(sameIndexSpec(spec, { ...spec }));
 * assert(!sameIndexSpec(spec, { ...spec, unique: true }));
 * ```
 */
export function sameIndexSpec(
  a: Omit<IndexSpec, "name">,
  b: Omit<IndexSpec, "name">,
): boolean {
  if (a.unique !== b.unique || a.sparse !== b.sparse) return false;
  if (a.fields.length !== b.fields.length) return false;
  for (let i = 0; i < a.fields.length; i++) {
    if (a.fields[i] !== b.fields[i]) return false;
  }
  return true;
}

/** The item metadata that the virtual fields `_createdAt`, `_updatedAt` and `_version` read. */
export interface IndexMeta {
  /** Epoch ms of the first write. */
  readonly createdAt: number;
  /** Epoch ms of the last write. */
  readonly updatedAt: number;
  /** 1 on the first write, incremented on every later one. */
  readonly version: number;
}

/** The entries a document contributes to an index. */
export interface IndexEntries {
  /** The distinct value tuples, one value per indexed field, in index order. */
  readonly tuples: IndexKeyPart[][];
  /** Whether a value came through an array (the index becomes multikey). */
  readonly multikey: boolean;
}

const META_FIELDS: { readonly [field: string]: keyof IndexMeta } = {
  _createdAt: "createdAt",
  _updatedAt: "updatedAt",
  _version: "version",
};

/**
 * The default name of an index over some fields, MongoDB style: each field
 * followed by `_1` (ascending), joined with `_`.
 *
 * @param fields The indexed dot paths.
 * @returns The name, e.g. `"city_1_age_1"`.
 * @throws {TypeError} When `fields` is empty or a field is not a non-empty
 * string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexName } from "./index_keys.ts";
 * assert(indexName(["city", "age"]) === "city_1_age_1");
 * assert(indexName(["address.zip"]) === "address.zip_1");
 * ```
 */
export function indexName(fields: readonly string[]): string {
  if (!Array.isArray(fields) || fields.length === 0) {
    throw new TypeError(
      "Cannot name index: expected a non-empty array of field paths",
    );
  }
  for (const f of fields) {
    if (typeof f !== "string" || f === "") {
      throw new TypeError(
        `Cannot name index: field paths must be non-empty strings, got ${
          typeof f === "string" ? "an empty string" : typeof f
        }`,
      );
    }
  }
  return fields.map((f) => `${f}_1`).join("_");
}

/** An object a path can walk into (as in `./query/path.ts`). */
function isDocument(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof RegExp);
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

/** The values one path offers in one document, mirroring `./query/path.ts`. */
class PathValues {
  /** Offered values, except arrays offered as a whole at the end of the path. */
  readonly values: unknown[] = [];
  /** Every array the path met. */
  readonly arrays: unknown[][] = [];
  /** Whether an array was offered as a whole at the end of the path. */
  leafArray = false;
  readonly #segs: readonly string[];

  constructor(segs: readonly string[]) {
    this.#segs = segs;
  }

  collect(root: unknown): this {
    if (!isDocument(root)) this.#offer(undefined);
    else this.#descend(field(root, this.#segs[0]!), 1);
    return this;
  }

  #offer(value: unknown): void {
    this.values.push(value);
  }

  #leaf(value: unknown): void {
    if (Array.isArray(value)) {
      this.arrays.push(value);
      for (let i = 0; i < value.length; i++) this.#offer(value[i]);
      this.leafArray = true;
    } else {
      this.#offer(value);
    }
  }

  #descend(value: unknown, i: number): void {
    const segs = this.#segs;
    for (;;) {
      if (i === segs.length) return this.#leaf(value);
      if (Array.isArray(value)) return this.#inArray(value, i);
      if (!isDocument(value)) return this.#offer(undefined);
      value = field(value, segs[i]!);
      i++;
    }
  }

  #inArray(arr: unknown[], i: number): void {
    this.arrays.push(arr);
    const seg = this.#segs[i]!;
    const index = isIndex(seg) ? Number(seg) : -1;
    const last = i + 1 === this.#segs.length;
    for (let k = 0; k < arr.length; k++) {
      const el = arr[k];
      if (isDocument(el)) {
        this.#descend(field(el, seg), i + 1);
        if (k === index) {
          if (last) this.#offer(el);
          else this.#descend(el, i + 1);
        }
      } else if (k === index) {
        if (last) this.#offer(el);
        else if (Array.isArray(el)) this.#inArray(el, i + 1);
      }
    }
  }
}

/** Split paths of the field lists already checked (an index's are fixed). */
const checkedFields = new WeakMap<readonly unknown[], string[][]>();

function checkSpec(spec: IndexSpec): string[][] {
  const known = typeof spec === "object" && spec !== null &&
      Array.isArray(spec.fields)
    ? checkedFields.get(spec.fields)
    : undefined;
  if (known !== undefined && known.length === spec.fields.length) return known;
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(
      `Cannot compute index entries: expected an index spec, got ${
        spec === null ? "null" : typeof spec
      }`,
    );
  }
  const fields: unknown = spec.fields;
  if (!Array.isArray(fields) || fields.length === 0) {
    throw new TypeError(
      `Cannot compute index entries for index '${
        String(spec.name)
      }': the index has no fields`,
    );
  }
  const paths = fields.map((f: unknown) => {
    if (typeof f !== "string") {
      throw new TypeError(
        `Cannot compute index entries for index '${
          String(spec.name)
        }': a field path is ${typeof f}, not a string`,
      );
    }
    return splitPath(f);
  });
  checkedFields.set(fields, paths);
  return paths;
}

/**
 * Computes the entries a document contributes to an index (see the module
 * documentation) and whether it makes the index multikey. A sparse index
 * gives no tuples for a document missing every indexed field.
 *
 * @param spec The index.
 * @param doc The document (a value that is not a plain object has no fields).
 * @param meta The item's metadata, for the virtual fields `_createdAt`,
 *   `_updatedAt` and `_version`; without it they are missing.
 * @returns The distinct tuples (in first-seen order) and the multikey flag.
 * @throws {TypeError} When the spec has no fields or an empty path segment,
 * when two indexed fields are separate arrays ("more than one array
 * field"), or when a value cannot be a key (a string with a lone surrogate).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexEntries } from "./index_keys.ts";
 *
 * const spec = { name: "items.sku_1", fields: ["items.sku"], unique: false, sparse: false };
 * const doc = { items: [{ sku: "a" }, { sku: "b" }, { sku: "a" }] };
 * assert.deepStrictEqual(indexEntries(spec, doc), {
 *   tuples: [["a"], ["b"]],
 *   multikey: true,
 * });
 * ```
 */
export function indexEntries(
  spec: IndexSpec,
  doc: unknown,
  meta?: IndexMeta,
): IndexEntries {
  const paths = checkSpec(spec);
  if (paths.length === 1 && paths[0]!.length === 1 && isDocument(doc)) {
    // The common case: one top-level field holding a string, number or
    // boolean gives one tuple (what the walk below gives, without it).
    const path = spec.fields[0]!;
    if (META_FIELDS[path] === undefined) {
      const v = field(doc, paths[0]![0]!);
      if (
        typeof v === "string" || typeof v === "number" ||
        typeof v === "boolean"
      ) {
        const tuple: IndexKeyPart[] = [v];
        check(tuple, spec.name);
        return { tuples: [tuple], multikey: false };
      }
    }
  }
  const perField: IndexKeyPart[][] = [];
  let multikey = false;
  let present = false;
  let arrayField = -1;
  let arrays: readonly unknown[][] = [];
  for (let f = 0; f < paths.length; f++) {
    const path = spec.fields[f]!;
    const metaKey = META_FIELDS[path];
    if (
      metaKey !== undefined && meta !== undefined &&
      !(isDocument(doc) && Object.hasOwn(doc, path))
    ) {
      perField.push([meta[metaKey]]);
      present = true;
      continue;
    }
    const pv = new PathValues(paths[f]!).collect(doc);
    if (pv.arrays.length > 0) {
      multikey = true;
      if (arrayField < 0) {
        arrayField = f;
        arrays = pv.arrays;
      } else if (!pv.arrays.some((a) => arrays.includes(a))) {
        throw new TypeError(
          `Cannot index document in index '${spec.name}': more than one array field ('${
            spec.fields[arrayField]
          }' and '${path}'); a compound index allows one array per document`,
        );
      }
    }
    if (pv.leafArray || pv.values.some((v) => v !== undefined)) {
      present = true;
    }
    const values: IndexKeyPart[] = [];
    for (const v of pv.values) {
      values.push(v === undefined ? null : v as IndexKeyPart);
    }
    if (values.length === 0) values.push(null);
    perField.push(values);
  }
  if (spec.sparse && !present) return { tuples: [], multikey };
  return { tuples: product(perField, spec.name), multikey };
}

/** The distinct tuples of the cross product of the fields' values. */
function product(
  perField: readonly IndexKeyPart[][],
  name: string,
): IndexKeyPart[][] {
  let tuples: IndexKeyPart[][] = [[]];
  for (const values of perField) {
    const next: IndexKeyPart[][] = [];
    for (const t of tuples) {
      for (const v of values) next.push([...t, v]);
    }
    tuples = next;
  }
  if (tuples.length === 1) {
    check(tuples[0]!, name);
    return tuples;
  }
  const seen = new Set<string>();
  const out: IndexKeyPart[][] = [];
  for (const t of tuples) {
    const k = check(t, name);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(t);
    }
  }
  return out;
}

/**
 * The value a document gives an index over one top-level field when that
 * field holds a string, number or boolean: the common case, whose one
 * entry needs no walk, no tuples and no product (see
 * {@linkcode indexEntries}, which gives the same single tuple `[value]`).
 *
 * @param spec The index.
 * @param doc The document.
 * @returns The value, or `undefined` when the general walk is needed.
 * @throws {TypeError} As {@linkcode indexEntries}, for a malformed spec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scalarValue } from "./index_keys.ts";
 * const spec = { name: "age_1", fields: ["age"], unique: false, sparse: false };
 * assert.equal(scalarValue(spec, { age: 42 }), 42);
 * assert.equal(scalarValue(spec, { age: [42] }), undefined);
 * ```
 */
export function scalarValue(
  spec: IndexSpec,
  doc: unknown,
): string | number | boolean | undefined {
  const paths = checkSpec(spec);
  if (paths.length !== 1 || paths[0]!.length !== 1 || !isDocument(doc)) {
    return undefined;
  }
  if (META_FIELDS[spec.fields[0]!] !== undefined) return undefined;
  const v = field(doc, paths[0]![0]!);
  return typeof v === "string" || typeof v === "number" ||
      typeof v === "boolean"
    ? v
    : undefined;
}

const ONE: IndexKeyPart[] = [null];
const PAIR: IndexKeyPart[] = [null, null];

/**
 * The key tail (after the index's prefix, one char per byte) of the entry
 * `[value]` (unique index) or `[value, id]`, as the general path encodes
 * it, without building the tuple.
 *
 * @param spec The index.
 * @param value What {@linkcode scalarValue} gave.
 * @param id The item's id.
 * @returns The tail.
 * @throws {TypeError} When the value cannot be a key (a lone surrogate),
 *   with the message {@linkcode indexEntries} gives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scalarTail } from "./index_keys.ts";
 * import { encodeIndexKeyBinary } from "../index_key_codec.ts";
 * const spec = { name: "age_1", fields: ["age"], unique: false, sparse: false };
 * assert.equal(scalarTail(spec, 42, "k"), encodeIndexKeyBinary([42, "k"]));
 * ```
 */
export function scalarTail(
  spec: IndexSpec,
  value: string | number | boolean,
  id: string,
): string {
  const parts = spec.unique === true ? ONE : PAIR;
  parts[0] = value;
  if (parts === PAIR) PAIR[1] = id;
  try {
    return encodeIndexKeyBinary(parts);
  } catch (e) {
    const Err = e instanceof RangeError ? RangeError : TypeError;
    throw new Err(
      `Cannot index document in index '${spec.name}': ${(e as Error).message}`,
    );
  } finally {
    parts[0] = null;
    PAIR[1] = null;
  }
}

/** The tuple's key as a binary string; throws when a value cannot be one. */
function check(tuple: readonly IndexKeyPart[], name: string): string {
  try {
    return encodeIndexKeyBinary(tuple);
  } catch (e) {
    const Err = e instanceof RangeError ? RangeError : TypeError;
    throw new Err(
      `Cannot index document in index '${name}': ${(e as Error).message}`,
    );
  }
}

/**
 * The value tuples a document contributes to an index: the `tuples` of
 * {@linkcode indexEntries}.
 *
 * @param spec The index.
 * @param doc The document.
 * @param meta The item's metadata, for `_createdAt`, `_updatedAt` and
 *   `_version`.
 * @returns The distinct tuples; none for a sparse index when every indexed
 *   field is missing.
 * @throws {TypeError} As {@linkcode indexEntries}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexTuples } from "./index_keys.ts";
 *
 * const spec = { name: "city_1_age_1", fields: ["city", "age"], unique: false, sparse: false };
 * assert.deepStrictEqual(indexTuples(spec, { city: "NY" }), [["NY", null]]);
 * assert.deepStrictEqual(indexTuples({ ...spec, sparse: true }, { name: "x" }), []);
 * ```
 */
export function indexTuples(
  spec: IndexSpec,
  doc: unknown,
  meta?: IndexMeta,
): IndexKeyPart[][] {
  return indexEntries(spec, doc, meta).tuples;
}

/**
 * Whether a document makes an index multikey (a value of an indexed field
 * came through an array, even an empty one). A multikey index cannot give
 * results in sort order, and range bounds on it cannot be intersected.
 *
 * @param spec The index.
 * @param doc The document.
 * @param meta The item's metadata.
 * @returns `true` when the document's entries came through an array.
 * @throws {TypeError} As {@linkcode indexEntries}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isMultikeyDocument } from "./index_keys.ts";
 *
 * const spec = { name: "tags_1", fields: ["tags"], unique: false, sparse: false };
 * assert(isMultikeyDocument(spec, { tags: ["a"] }));
 * assert(!isMultikeyDocument(spec, { tags: "a" }));
 * ```
 */
export function isMultikeyDocument(
  spec: IndexSpec,
  doc: unknown,
  meta?: IndexMeta,
): boolean {
  return indexEntries(spec, doc, meta).multikey;
}
