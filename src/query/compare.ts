/**
 * Ordering and equality of document values.
 *
 * Values are ordered first by type bracket, following MongoDB's BSON order,
 * then within a bracket:
 *
 * | rank | bracket            | order within the bracket                     |
 * | ---- | ------------------ | -------------------------------------------- |
 * | 0    | `undefined`/missing| all equal                                    |
 * | 1    | `null`             | all equal                                    |
 * | 2    | numbers            | numeric; `NaN` below every number; `-0 == 0` |
 * | 3    | strings            | by Unicode code point (as UTF-8 bytes)       |
 * | 4    | plain objects      | field by field: value bracket, name, value   |
 * | 5    | arrays             | element by element; a prefix sorts first     |
 * | 6    | booleans           | `false < true`                               |
 * | 7    | `Date`s            | by time; an invalid date sorts first         |
 * | 8    | `RegExp`s          | by source, then flags                        |
 * | 9    | anything else      | all equal (not a document value)             |
 *
 * Object comparison, like MongoDB's, depends on field order: `{a: 1, b: 2}`
 * and `{b: 2, a: 1}` are different values.
 *
 * @module
 */

/** The rank of `undefined` (a missing value) in {@linkcode typeRank}. */
export const RANK_MISSING = 0;
/** The rank of `null` in {@linkcode typeRank}. */
export const RANK_NULL = 1;
/** The rank of numbers in {@linkcode typeRank}. */
export const RANK_NUMBER = 2;
/** The rank of strings in {@linkcode typeRank}. */
export const RANK_STRING = 3;
/** The rank of plain objects in {@linkcode typeRank}. */
export const RANK_OBJECT = 4;
/** The rank of arrays in {@linkcode typeRank}. */
export const RANK_ARRAY = 5;
/**
 * The rank of byte arrays (`Uint8Array`) in {@linkcode typeRank}: after
 * arrays, before booleans, where MongoDB puts BinData.
 */
export const RANK_BINARY = 5.5;
/** The rank of booleans in {@linkcode typeRank}. */
export const RANK_BOOLEAN = 6;
/** The rank of `Date`s in {@linkcode typeRank}. */
export const RANK_DATE = 7;
/** The rank of `RegExp`s in {@linkcode typeRank}. */
export const RANK_REGEXP = 8;
/** The rank of values that are not document values (functions, symbols…). */
export const RANK_OTHER = 9;

/**
 * Returns the type bracket of a value, the first key of the total order used
 * by {@linkcode compareValues}.
 *
 * @param value Any value.
 * @returns A rank from {@linkcode RANK_MISSING} (0) to {@linkcode RANK_OTHER} (9).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RANK_NUMBER, RANK_STRING, typeRank } from "./compare.ts";
 * assert(typeRank(42) === RANK_NUMBER);
 * assert(typeRank("x") === RANK_STRING);
 * ```
 */
export function typeRank(value: unknown): number {
  switch (typeof value) {
    case "undefined":
      return RANK_MISSING;
    case "number":
      return RANK_NUMBER;
    case "string":
      return RANK_STRING;
    case "boolean":
      return RANK_BOOLEAN;
    case "object":
      if (value === null) return RANK_NULL;
      if (Array.isArray(value)) return RANK_ARRAY;
      if (value instanceof Date) return RANK_DATE;
      if (value instanceof RegExp) return RANK_REGEXP;
      if (value instanceof Uint8Array) return RANK_BINARY;
      return RANK_OBJECT;
    default:
      return RANK_OTHER;
  }
}

/**
 * Compares two strings by Unicode code point, which is the order of their
 * UTF-8 encodings (MongoDB's binary string order). It differs from `<` only
 * for characters above U+FFFF against characters in U+E000–U+FFFF.
 *
 * @param a The first string.
 * @param b The second string.
 * @returns A negative number, zero or a positive number as `a` sorts before,
 * equal to, or after `b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareStrings } from "./compare.ts";
 * assert(compareStrings("a", "b") < 0);
 * assert(compareStrings("\u{1F600}", "\uFFFF") > 0); // "<" says otherwise
 * ```
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Map UTF-16 code units onto code-point order: surrogates (D800–DFFF)
    // encode code points above every BMP character.
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

function compareNumbers(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  // At least one NaN: NaN sorts below every number and equals NaN.
  const an = a !== a;
  const bn = b !== b;
  return an === bn ? 0 : an ? -1 : 1;
}

function compareObjects(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): number {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const n = ka.length < kb.length ? ka.length : kb.length;
  for (let i = 0; i < n; i++) {
    const na = ka[i] as string;
    const nb = kb[i] as string;
    const va = a[na];
    const vb = b[nb];
    const r = typeRank(va) - typeRank(vb);
    if (r !== 0) return r;
    const c = compareStrings(na, nb);
    if (c !== 0) return c;
    const v = compareValues(va, vb);
    if (v !== 0) return v;
  }
  return ka.length - kb.length;
}

/** MongoDB's BinData order: shorter first, then byte by byte. */
function compareBinary(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}

function compareArrays(a: readonly unknown[], b: readonly unknown[]): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * Compares two document values in a total order: MongoDB's BSON type order
 * (see the module documentation), then by value within a type.
 *
 * @param a The first value.
 * @param b The second value.
 * @returns A negative number, zero or a positive number as `a` sorts before,
 * equal to, or after `b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareValues } from "./compare.ts";
 * assert(compareValues(1, 2) < 0);
 * assert(compareValues(null, 0) < 0); // null sorts before numbers
 * assert(compareValues("10", 9) > 0); // strings after numbers
 * assert(compareValues(new Date(5), new Date(5)) === 0);
 * ```
 */
export function compareValues(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case RANK_NUMBER:
      return compareNumbers(a as number, b as number);
    case RANK_STRING:
      return compareStrings(a as string, b as string);
    case RANK_OBJECT:
      return compareObjects(
        a as Record<string, unknown>,
        b as Record<string, unknown>,
      );
    case RANK_ARRAY:
      return compareArrays(a as unknown[], b as unknown[]);
    case RANK_BOOLEAN:
      return a === b ? 0 : a ? 1 : -1;
    case RANK_DATE:
      return compareNumbers((a as Date).getTime(), (b as Date).getTime());
    case RANK_BINARY:
      return compareBinary(a as Uint8Array, b as Uint8Array);
    case RANK_REGEXP: {
      const c = compareStrings((a as RegExp).source, (b as RegExp).source);
      return c !== 0
        ? c
        : compareStrings((a as RegExp).flags, (b as RegExp).flags);
    }
    default:
      return 0;
  }
}

/**
 * Tests two document values for deep equality: the same as
 * `compareValues(a, b) === 0`, but faster. `Date`s are equal when their times
 * are; objects must have the same fields in the same order (as in MongoDB);
 * `NaN` equals `NaN` and `-0` equals `0`.
 *
 * @param a The first value.
 * @param b The second value.
 * @returns `true` when the values are equal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { valuesEqual } from "./compare.ts";
 * assert(valuesEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }));
 * assert(valuesEqual(new Date(7), new Date(7)));
 * assert(!valuesEqual({ a: 1, b: 2 }, { b: 2, a: 1 }));
 * ```
 */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object") {
    // Only NaN is unequal to itself among primitives.
    return typeof a === "number" && typeof b === "number" && a !== a &&
      b !== b;
  }
  if (a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (!valuesEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Date) {
    return b instanceof Date && compareNumbers(a.getTime(), b.getTime()) === 0;
  }
  if (b instanceof Date) return false;
  if (a instanceof RegExp) {
    return b instanceof RegExp && a.source === b.source && a.flags === b.flags;
  }
  if (b instanceof RegExp) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array &&
      compareBinary(a, b) === 0;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i] as string;
    if (k !== kb[i]) return false;
    if (
      !valuesEqual(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
      )
    ) return false;
  }
  return true;
}
