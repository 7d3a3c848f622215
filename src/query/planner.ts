/**
 * The query planner: picks the secondary index (if any) that answers a
 * filter, and the ranges of index value tuples to scan.
 *
 * An index over `[f1, …, fn]` stores the tuples of `./index_keys.ts`. A plan
 * narrows the index with
 *
 * - equality on a prefix of the fields: `{f: v}` or `{f: {$eq: v}}` with a
 *   scalar `v` (`null`, a number, a string, a boolean or a `Date`), or
 *   `{f: {$in: [v, …]}}` with scalars (one range per combination, at most
 *   {@linkcode MAX_RANGES});
 * - then, on the next field, `$gt`/`$gte`/`$lt`/`$lte` with a scalar
 *   operand, bounded to the operand's type bracket as the operators are
 *   (`{$gt: 5}` only covers numbers).
 *
 * Conditions are read from the top level of the filter and from `$and`;
 * anything else (`$or`, `$ne`, regular expressions, equality with an object
 * or an array, paths under `tags`, which resolve against an item's tags…)
 * is left to the filter, which the engine applies to every fetched document
 * unless the plan is {@linkcode Plan.exact}.
 *
 * Soundness rules:
 *
 * - a sparse index is used only when a condition it answers rejects missing
 *   fields (so no matching document lacks entries);
 * - on a multikey index, range bounds are not intersected (different
 *   elements may satisfy different bounds): one bound is used, the others
 *   are left to the filter;
 * - a multikey index never gives results in sort order, and on a multikey
 *   index a document may appear under several keys: the engine must
 *   deduplicate by id.
 *
 * Plans are scored: more equality fields first, then a range, then covering
 * the sort, then exactness, then fewer index fields. An index that narrows
 * nothing is used only to produce the sort order.
 *
 * The planner assumes the filter sees the virtual fields `_createdAt`,
 * `_updatedAt` and `_version` as the index does (see `./index_keys.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planQuery } from "./planner.ts";
 *
 * const indexes = [{ name: "city_1_age_1", fields: ["city", "age"], unique: false, sparse: false, multikey: false }];
 * const plan = planQuery({ city: "NY", age: { $gte: 30 } }, undefined, indexes);
 * assert(plan.kind === "index" && plan.index === "city_1_age_1" && plan.exact);
 * assert.deepStrictEqual(plan.ranges, [
 *   { start: ["NY", 30], startInclusive: true, end: ["NY", ""], endInclusive: false },
 * ]);
 * ```
 *
 * @module
 */

import { prefixEnd } from "../bytes.ts";
import type { IndexSpec } from "../engine/index_keys.ts";
import {
  compareIndexKeyParts,
  compareIndexKeys,
  encodeIndexKey,
  type IndexKeyPart,
} from "../index_key_codec.ts";
import type { Filter } from "./compile.ts";

export type { IndexKeyPart } from "../index_key_codec.ts";
export type { KeyPart } from "../key_codec.ts";
export type { Filter } from "./compile.ts";

/** A sort specification: dot paths mapped to `1` (ascending) or `-1`. */
export type SortSpec = { readonly [path: string]: 1 | -1 };

/** An index as the planner sees it. */
export interface IndexInfo extends IndexSpec {
  /** Whether some document made the index multikey (sticky). */
  readonly multikey: boolean;
  /**
   * A blind index (encrypted database): its keys hold digests of the values,
   * so it serves equality and `$in`, not ranges or sorts.
   */
  readonly blind?: boolean;
}

/**
 * A range of index value tuples. A tuple is in the range when its leading
 * elements (as many as `start` has) sort after `start` (or equal it, when
 * inclusive) and its leading elements (as many as `end` has) sort before
 * `end` (or equal it, when inclusive). See {@linkcode tupleInRange} and
 * {@linkcode rangeToBytes}.
 */
export interface KeyRange {
  /** The lower bound, a tuple prefix. */
  readonly start: IndexKeyPart[];
  /** Whether tuples starting with `start` are in the range. */
  readonly startInclusive: boolean;
  /** The upper bound, a tuple prefix. */
  readonly end: IndexKeyPart[];
  /** Whether tuples starting with `end` are in the range. */
  readonly endInclusive: boolean;
}

/** How to find the documents that match a filter. */
export interface Plan {
  /** `"scan"`: read the whole collection; `"index"`: scan index ranges. */
  readonly kind: "scan" | "index";
  /** The index name, for `"index"` plans. */
  readonly index?: string;
  /**
   * For `"index"`: disjoint ranges, in index order, even when `reverse` is
   * set (none: nothing matches).
   */
  readonly ranges: readonly KeyRange[];
  /** Walk the ranges last to first, each backwards (sort descending). */
  readonly reverse: boolean;
  /** Results come out in the requested sort order (always with no sort). */
  readonly sortCovered: boolean;
  /**
   * Every document with an entry in the ranges (for a scan: every document)
   * matches the filter, so a count need not read documents (but must
   * deduplicate ids on a multikey index); `false`: the engine applies the
   * filter to each document. A scan is exact only for an empty filter.
   */
  readonly exact: boolean;
  /** A human-readable summary, for `explain()`. */
  readonly description: string;
}

/** The most ranges an `$in` plan may have; longer products use fewer fields. */
export const MAX_RANGES = 200;

/** An operand the planner can turn into index ranges. */
export type Scalar = null | number | string | boolean | Date;
/** The ordering operators, which become index ranges. */
export type RangeOp = "$gt" | "$gte" | "$lt" | "$lte";

/** One condition of the filter that an index can answer. */
interface Cond {
  readonly path: string;
  readonly kind: "eq" | "range";
  /** eq: the accepted values (several for `$in`, none for `$in: []`). */
  readonly values: readonly Scalar[];
  /** range: the operator and operand. */
  readonly op: RangeOp | undefined;
  /** Whether a missing field satisfies the condition. */
  readonly acceptsMissing: boolean;
  /** A short rendering for the description. */
  readonly text: string;
}

/** A range over the values of one field. */
interface Interval {
  readonly start: IndexKeyPart;
  readonly startInclusive: boolean;
  readonly end: IndexKeyPart;
  readonly endInclusive: boolean;
}

const MIN_DATE = -8.64e15;
const MAX_DATE = 8.64e15;

function isPlainObject(
  value: unknown,
): value is { readonly [key: string]: unknown } {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isScalar(value: unknown): value is Scalar {
  switch (typeof value) {
    case "number":
      return value === value;
    case "string":
      return value.isWellFormed();
    case "boolean":
      return true;
    case "object":
      return value === null ||
        (value instanceof Date && value.getTime() === value.getTime());
  }
  return false;
}

function show(value: unknown): string {
  if (value instanceof Date) return `Date(${value.toISOString()})`;
  if (typeof value === "number") {
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (isPlainObject(value)) {
    return `{${
      Object.keys(value).map((k) => `${JSON.stringify(k)}: ${show(value[k])}`)
        .join(", ")
    }}`;
  }
  return String(value);
}

/** Whether a path resolves against an item's tags (see `compileFilter`). */
function isTagsPath(path: string): boolean {
  return path === "tags" || path.startsWith("tags.");
}

/** Reads the conditions an index can answer; returns whether any is left. */
function collect(filter: unknown, out: Cond[]): boolean {
  if (!isPlainObject(filter)) return true;
  let residual = false;
  for (const key of Object.keys(filter)) {
    const value = filter[key];
    if (key === "$and") {
      if (!Array.isArray(value) || value.length === 0) residual = true;
      else for (const f of value) if (collect(f, out)) residual = true;
      continue;
    }
    if (
      key.startsWith("$") || isTagsPath(key) || key.split(".").includes("")
    ) {
      residual = true;
      continue;
    }
    const ops = isPlainObject(value) &&
      Object.keys(value).some((k) => k.startsWith("$"));
    if (!ops) {
      if (isScalar(value)) out.push(eq(key, [value], show(value)));
      else residual = true;
      continue;
    }
    const operators = value as { readonly [op: string]: unknown };
    for (const op of Object.keys(operators)) {
      const operand = operators[op];
      switch (op) {
        case "$eq":
          if (isScalar(operand)) {
            out.push(eq(key, [operand], show(operand)));
            continue;
          }
          break;
        case "$in":
          if (Array.isArray(operand) && operand.every(isScalar)) {
            out.push(eq(key, operand, `in ${show(operand)}`));
            continue;
          }
          break;
        case "$gt":
        case "$gte":
        case "$lt":
        case "$lte":
          if (isScalar(operand)) {
            out.push({
              path: key,
              kind: "range",
              values: [operand],
              op,
              acceptsMissing: operand === null &&
                (op === "$gte" || op === "$lte"),
              text: `${op} ${show(operand)}`,
            });
            continue;
          }
          break;
      }
      residual = true;
    }
  }
  return residual;
}

function eq(path: string, values: readonly Scalar[], text: string): Cond {
  return {
    path,
    kind: "eq",
    values,
    op: undefined,
    acceptsMissing: values.includes(null),
    text: values.length === 1 ? `= ${text}` : text,
  };
}

/**
 * The range of single values that an ordering operator accepts, bounded to
 * the operand's type bracket (MongoDB semantics, as in `compileFilter`):
 * `$gt: 5` covers the numbers above 5, `$lte: "m"` the strings up to `"m"`,
 * `$gte: null` and `$lte: null` cover `null` (and missing fields, indexed as
 * `null`). Bracket ends are the first value of the next bracket (`""` after
 * the numbers, `{}` after the strings), exclusive, or the last value of the
 * bracket (`true`, the latest `Date`), inclusive.
 *
 * @param op `"$gt"`, `"$gte"`, `"$lt"` or `"$lte"`.
 * @param operand `null`, a number, a string, a boolean or a valid `Date`.
 * @returns The range of one-element tuples, or `undefined` when nothing
 * matches (`$gt: null`, `$lt: null`).
 * @throws {TypeError} When `op` is not an ordering operator or `operand` is
 * not a scalar (`NaN`, an invalid date, an object…).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { operatorRange } from "./planner.ts";
 *
 * assert.deepStrictEqual(operatorRange("$gt", 5), {
 *   start: [5], startInclusive: false, end: [""], endInclusive: false,
 * });
 * assert(operatorRange("$lt", null) === undefined);
 * ```
 */
export function operatorRange(
  op: RangeOp,
  operand: Scalar,
): KeyRange | undefined {
  if (op !== "$gt" && op !== "$gte" && op !== "$lt" && op !== "$lte") {
    throw new TypeError(
      `Cannot compute the range of operator '${
        String(op)
      }': expected $gt, $gte, $lt or $lte`,
    );
  }
  if (!isScalar(operand)) {
    throw new TypeError(
      `Cannot compute the range of '${op}': the operand ${
        show(operand)
      } is not null, a number, a string, a boolean or a valid Date`,
    );
  }
  const iv = interval(op, operand);
  return iv === undefined ? undefined : {
    start: [iv.start],
    startInclusive: iv.startInclusive,
    end: [iv.end],
    endInclusive: iv.endInclusive,
  };
}

function interval(op: RangeOp, v: Scalar): Interval | undefined {
  let lo: IndexKeyPart;
  let hi: IndexKeyPart;
  let hiInclusive: boolean;
  if (v === null) {
    return op === "$gte" || op === "$lte"
      ? { start: null, startInclusive: true, end: null, endInclusive: true }
      : undefined;
  } else if (typeof v === "number") {
    [lo, hi, hiInclusive] = [-Infinity, "", false];
  } else if (typeof v === "string") {
    [lo, hi, hiInclusive] = ["", {}, false];
  } else if (typeof v === "boolean") {
    [lo, hi, hiInclusive] = [false, true, true];
  } else {
    [lo, hi, hiInclusive] = [new Date(MIN_DATE), new Date(MAX_DATE), true];
  }
  switch (op) {
    case "$gt":
    case "$gte":
      return {
        start: v,
        startInclusive: op === "$gte",
        end: hi,
        endInclusive: hiInclusive,
      };
    case "$lt":
    case "$lte":
      return {
        start: lo,
        startInclusive: true,
        end: v,
        endInclusive: op === "$lte",
      };
  }
}

/** The intersection of intervals (of a single-valued field). */
function intersect(a: Interval, b: Interval): Interval {
  const cs = compareIndexKeyParts(a.start, b.start);
  const [start, startInclusive] = cs > 0 || (cs === 0 && !a.startInclusive)
    ? [a.start, a.startInclusive]
    : [b.start, b.startInclusive];
  const ce = compareIndexKeyParts(a.end, b.end);
  const [end, endInclusive] = ce < 0 || (ce === 0 && !a.endInclusive)
    ? [a.end, a.endInclusive]
    : [b.end, b.endInclusive];
  return { start, startInclusive, end, endInclusive };
}

function isEmpty(iv: Interval): boolean {
  const c = compareIndexKeyParts(iv.start, iv.end);
  return c > 0 || (c === 0 && !(iv.startInclusive && iv.endInclusive));
}

/** A candidate plan on one index, with its score. */
interface Candidate {
  readonly plan: Plan;
  readonly eqFields: number;
  readonly hasRange: boolean;
  readonly fieldCount: number;
}

function sortedDistinct(values: readonly Scalar[]): Scalar[] {
  const sorted = values.map((v) => v === 0 ? 0 : v).sort(compareIndexKeyParts);
  return sorted.filter((v, i) =>
    i === 0 || compareIndexKeyParts(sorted[i - 1]!, v) !== 0
  );
}

function planIndex(
  index: IndexInfo,
  conds: readonly Cond[],
  residual: boolean,
  sortKeys: readonly [string, 1 | -1][],
): Candidate | undefined {
  const fields = index.fields;
  const used = new Set<Cond>();
  let points: IndexKeyPart[][] = [[]];
  const pinned = new Set<string>();
  const texts: string[] = [];
  let k = 0;
  for (; k < fields.length; k++) {
    const field = fields[k]!;
    const cond = conds.find((c) => c.path === field && c.kind === "eq");
    if (cond === undefined) break;
    const values = sortedDistinct(cond.values);
    if (values.length > 0 && points.length * values.length > MAX_RANGES) break;
    const next: IndexKeyPart[][] = [];
    for (const p of points) for (const v of values) next.push([...p, v]);
    points = next;
    used.add(cond);
    texts.push(`${field} ${cond.text}`);
    if (values.length === 1) pinned.add(field);
  }
  let iv: Interval | undefined;
  let emptyRange = false;
  const blind = index.blind === true;
  if (k < fields.length && !blind) {
    const field = fields[k]!;
    for (const c of conds) {
      if (c.path !== field || c.kind !== "range") continue;
      if (iv !== undefined && index.multikey) break;
      const civ = interval(c.op!, c.values[0]!);
      used.add(c);
      texts.push(`${field} ${c.text}`);
      if (civ === undefined) emptyRange = true;
      else iv = iv === undefined ? civ : intersect(iv, civ);
    }
    if (iv !== undefined && isEmpty(iv)) emptyRange = true;
  }
  const hasRange = iv !== undefined || emptyRange;
  if (k === 0 && !hasRange) {
    // Narrows nothing: only worth it to produce the sort order.
    if (sortKeys.length === 0 || index.sparse || index.multikey || blind) {
      return undefined;
    }
  }
  if (index.sparse && ![...used].some((c) => !c.acceptsMissing)) {
    return undefined;
  }
  let ranges: KeyRange[];
  if (emptyRange) {
    ranges = [];
  } else if (iv !== undefined) {
    const r = iv;
    ranges = points.map((p) => ({
      start: [...p, r.start],
      startInclusive: r.startInclusive,
      end: [...p, r.end],
      endInclusive: r.endInclusive,
    }));
  } else {
    ranges = points.map((p) => ({
      start: p,
      startInclusive: true,
      end: [...p],
      endInclusive: true,
    }));
  }
  const exact = !residual && used.size === conds.length &&
    !(index.multikey && [...used].some((c) => c.acceptsMissing));
  let sortCovered = sortKeys.length === 0;
  let reverse = false;
  // Ties go by key in the direction of the sort's last key (sort.ts): a
  // walk covers the sort only if it lists them so, forwards or backwards,
  // so the sort must name every field of the index that is not pinned
  // (a prefix would leave ties in the order of the next field).
  const tieDir = sortKeys.length === 0 ? 1 : sortKeys[sortKeys.length - 1]![1];
  if (!sortCovered && blind) {
    // Digests keep no order: only sorts on pinned fields are covered, and
    // only when every field is pinned (else ties follow the digests).
    sortCovered = sortKeys.every(([p]) => pinned.has(p)) &&
      fields.every((f) => pinned.has(f));
    reverse = sortCovered && tieDir === -1;
  } else if (!sortCovered && !index.multikey) {
    const rest = sortKeys.filter(([p]) => !pinned.has(p));
    const seq = fields.filter((f) => !pinned.has(f));
    const dir = rest[0]?.[1] ?? tieDir;
    sortCovered = dir === tieDir && rest.length === seq.length &&
      rest.every(([p, d], i) => p === seq[i] && d === dir && !isTagsPath(p));
    reverse = sortCovered && dir === -1;
  }
  if (k === 0 && !hasRange && !sortCovered) return undefined;
  const flags = [
    `${ranges.length} range${ranges.length === 1 ? "" : "s"}`,
    exact ? "exact" : "filtered",
  ];
  if (sortKeys.length > 0 && sortCovered) flags.push("sort covered");
  if (reverse) flags.push("reverse");
  if (index.multikey) flags.push("multikey");
  if (blind) flags.push("blind");
  const description = `index ${index.name} [${
    texts.length === 0 ? "all" : texts.join(", ")
  }] (${flags.join(", ")})`;
  return {
    plan: {
      kind: "index",
      index: index.name,
      ranges,
      reverse,
      sortCovered,
      exact,
      description,
    },
    eqFields: k,
    hasRange,
    fieldCount: fields.length,
  };
}

function better(a: Candidate, b: Candidate): boolean {
  if (a.eqFields !== b.eqFields) return a.eqFields > b.eqFields;
  if (a.hasRange !== b.hasRange) return a.hasRange;
  if (a.plan.sortCovered !== b.plan.sortCovered) return a.plan.sortCovered;
  if (a.plan.exact !== b.plan.exact) return a.plan.exact;
  if (a.plan.ranges.length !== b.plan.ranges.length) {
    return a.plan.ranges.length < b.plan.ranges.length;
  }
  return a.fieldCount < b.fieldCount;
}

/**
 * Plans a query: picks the best usable index (see the module documentation)
 * or a collection scan. The ranges never leave out a document that matches
 * the filter.
 *
 * The ranges are in index order; when `reverse` is set, the engine walks
 * them last to first, and each from its end to its start.
 *
 * @param filter The filter, as given to `compileFilter` (it is not
 *   validated here: conditions the planner does not understand are left to
 *   the compiled filter).
 * @param sort The requested order, or `undefined`.
 * @param indexes The collection's indexes.
 * @returns The plan.
 * @throws {TypeError} When an index has no fields.
 *
 * @example Equality prefix, range, and a covered sort
 * ```ts
 * import assert from "node:assert/strict";
 * import { planQuery } from "./planner.ts";
 *
 * const indexes = [
 *   { name: "city_1_age_1", fields: ["city", "age"], unique: false, sparse: false, multikey: false },
 * ];
 * const plan = planQuery({ city: { $in: ["LA", "NY"] } }, undefined, indexes);
 * assert.deepStrictEqual(plan.ranges.map((r) => r.start), [["LA"], ["NY"]]);
 * assert(plan.exact);
 *
 * const sorted = planQuery({ city: "NY" }, { age: -1 }, indexes);
 * assert(sorted.sortCovered && sorted.reverse);
 * assert(planQuery({ name: "x" }, undefined, indexes).kind === "scan");
 * ```
 */
export function planQuery(
  filter: Filter,
  sort: SortSpec | undefined,
  indexes: readonly IndexInfo[],
): Plan {
  const conds: Cond[] = [];
  const residual = collect(filter, conds);
  const sortKeys = sort === undefined
    ? []
    : Object.keys(sort).map((p): [string, 1 | -1] => [p, sort[p]!]);
  let best: Candidate | undefined;
  for (const index of indexes) {
    if (!Array.isArray(index.fields) || index.fields.length === 0) {
      throw new TypeError(
        `Cannot plan query: index '${index.name}' has no fields`,
      );
    }
    const c = planIndex(index, conds, residual, sortKeys);
    if (c !== undefined && (best === undefined || better(c, best))) best = c;
  }
  if (best !== undefined) return best.plan;
  // Blind indexes that a range or sort on their first field could have used.
  const blinds = indexes.filter((i) =>
    i.blind === true && Array.isArray(i.fields) &&
    (conds.some((c) => c.path === i.fields[0] && c.kind === "range") ||
      sortKeys.some(([p]) => p === i.fields[0]))
  ).map((i) => i.name);
  return {
    kind: "scan",
    ranges: [],
    reverse: false,
    sortCovered: sortKeys.length === 0,
    exact: !residual && conds.length === 0,
    description: `collection scan${
      blinds.length > 0
        ? ` (blind index ${
          blinds.join(", ")
        } of an encrypted database serves equality only, not ranges or sorts)`
        : indexes.length === 0
        ? ""
        : " (no usable index)"
    }`,
  };
}

/**
 * Whether an index value tuple is in a range (see {@linkcode KeyRange}),
 * comparing values in index order. Agrees with the byte range of
 * {@linkcode rangeToBytes} for keys that extend the tuple.
 *
 * @param tuple The index values of an entry.
 * @param range The range.
 * @returns `true` when the tuple is in the range.
 * @throws {TypeError} When a value is not an index key part.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tupleInRange } from "./planner.ts";
 *
 * const range = { start: ["NY", 30], startInclusive: true, end: ["NY", ""], endInclusive: false };
 * assert(tupleInRange(["NY", 41], range));
 * assert(!tupleInRange(["NY", "41"], range));
 * ```
 */
export function tupleInRange(
  tuple: readonly IndexKeyPart[],
  range: KeyRange,
): boolean {
  const s = compareIndexKeys(tuple.slice(0, range.start.length), range.start);
  if (range.startInclusive ? s < 0 : s <= 0) return false;
  const e = compareIndexKeys(tuple.slice(0, range.end.length), range.end);
  return range.endInclusive ? e <= 0 : e < 0;
}

/**
 * Turns a range into the byte bounds of a storage scan over index keys
 * `prefix + encode(tuple) + …` (the engine's keys continue with the
 * document id): `start` inclusive, `end` exclusive.
 *
 * @param prefix The encoded key prefix of the index, e.g.
 *   `encodeKey(["i", collection, indexName])`.
 * @param range The range.
 * @param blind Turns the bounds' values into their digests (blind indexes:
 *   equality ranges only).
 * @returns The bounds for `storage.scan({ start, end })`.
 * @throws {TypeError} When a bound is not made of index key parts.
 * @throws {RangeError} When the range has no byte bound (an empty prefix
 *   with an empty inclusive bound).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rangeToBytes } from "./planner.ts";
 * import { encodeKey } from "@tether/db/storage";
 * import { compareBytes } from "@tether/db/storage";
 *
 * const prefix = encodeKey(["i", "users", "age_1"]);
 * const { start, end } = rangeToBytes(prefix, {
 *   start: [30], startInclusive: false, end: [""], endInclusive: false,
 * });
 * const key = encodeKey([31, "u1"], prefix);
 * assert(compareBytes(start, key) <= 0 && compareBytes(key, end) < 0);
 * const excluded = encodeKey([30, "u2"], prefix);
 * assert(compareBytes(excluded, start) < 0);
 * ```
 */
export function rangeToBytes(
  prefix: Uint8Array,
  range: KeyRange,
  blind?: (tuple: readonly IndexKeyPart[]) => IndexKeyPart[],
): { start: Uint8Array; end: Uint8Array } {
  const lo = encodeIndexKey(blind?.(range.start) ?? range.start, prefix);
  const hi = encodeIndexKey(blind?.(range.end) ?? range.end, prefix);
  const start = range.startInclusive ? lo : prefixEnd(lo);
  const end = range.endInclusive ? prefixEnd(hi) : hi;
  if (start === undefined || end === undefined) {
    throw new RangeError(
      "Cannot turn the range into bytes: the key prefix is empty and an empty bound is not inclusive at the start or is inclusive at the end",
    );
  }
  return { start, end };
}
