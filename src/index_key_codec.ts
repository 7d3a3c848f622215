/**
 * Order-preserving encoding of index key tuples: {@linkcode KeyPart}s plus
 * plain objects and arrays of them, in MongoDB's order across types (the
 * byte layout is in FORMAT.md, "Index keys").
 *
 * @module
 */

import { binaryString } from "./bytes.ts";
import {
  compareKeyParts,
  compareStrings,
  decodeKey,
  describe,
  encodeKey,
  encodeKeyBinary,
  EXPECTED_TYPES,
  type KeyPart,
  malformed,
  rank,
  TAG_BYTES,
  TAG_DATE,
  TAG_FALSE,
  TAG_NULL,
  TAG_NUMBER,
  TAG_STRING,
  TAG_TRUE,
} from "./key_codec.ts";

/**
 * A value that can be an element of an index key tuple: a
 * {@linkcode KeyPart}, a plain object of index key parts or an array of
 * them. Encoded by {@linkcode encodeIndexKey}.
 */
export type IndexKeyPart =
  | KeyPart
  | readonly IndexKeyPart[]
  | { readonly [field: string]: IndexKeyPart };

const TAG_OBJECT = 0x40;
const TAG_ARRAY = 0x50;
const END = 0x00;
/** Deeper values are rejected (stored values nest at most 100 levels). */
const MAX_INDEX_DEPTH = 200;

function isPlainRecord(
  value: unknown,
): value is { readonly [field: string]: IndexKeyPart } {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isComposite(value: unknown): boolean {
  return Array.isArray(value) || isPlainRecord(value);
}

/**
 * The byte that orders an object field's value by type: its tag, with both
 * booleans mapped to `false`'s tag (`compareValues` compares the field name
 * before telling `false` from `true`). `-1` for a non-key-part.
 */
function bracketByte(value: unknown): number {
  switch (typeof value) {
    case "number":
      return TAG_NUMBER;
    case "string":
      return TAG_STRING;
    case "boolean":
      return TAG_FALSE;
    case "object":
      if (value === null) return TAG_NULL;
      if (Array.isArray(value)) return TAG_ARRAY;
      if (value instanceof Date) return TAG_DATE;
      if (value instanceof Uint8Array) return TAG_BYTES;
      if (isPlainRecord(value)) return TAG_OBJECT;
  }
  return -1;
}

function where(path: string): string {
  return path === "" ? "" : ` at '${path}'`;
}

class IndexKeyWriter {
  chunks: Uint8Array[] = [];
  size = 0;
  readonly index: number;

  constructor(index: number) {
    this.index = index;
  }

  byte(b: number): void {
    this.push(new Uint8Array([b]));
  }

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  scalar(value: unknown, path: string): void {
    try {
      this.push(encodeKey([value as KeyPart]));
    } catch (e) {
      const message = (e as Error).message.replace(
        /^Cannot encode key part 0: /,
        "",
      );
      const Err = e instanceof RangeError ? RangeError : TypeError;
      throw new Err(
        `Cannot encode key part ${this.index}${where(path)}: ${message}`,
      );
    }
  }

  value(value: unknown, path: string, depth: number): void {
    if (!isComposite(value)) return this.scalar(value, path);
    if (depth > MAX_INDEX_DEPTH) {
      throw new RangeError(
        `Cannot encode key part ${this.index}${
          where(path)
        }: the value nests deeper than ${MAX_INDEX_DEPTH} levels`,
      );
    }
    if (Array.isArray(value)) {
      this.byte(TAG_ARRAY);
      for (let i = 0; i < value.length; i++) {
        this.value(value[i], path === "" ? `${i}` : `${path}.${i}`, depth + 1);
      }
    } else {
      const record = value as { readonly [field: string]: unknown };
      this.byte(TAG_OBJECT);
      for (const name of Object.keys(record)) {
        const v = record[name];
        const sub = path === "" ? name : `${path}.${name}`;
        const bracket = bracketByte(v);
        if (bracket < 0) this.scalar(v, sub); // throws: not a key part
        this.byte(bracket);
        this.scalar(name, sub);
        this.value(v, sub, depth + 1);
      }
    }
    this.byte(END);
  }
}

/**
 * Encodes an index key tuple, whose elements may be plain objects and arrays
 * (see "Index keys" in the module documentation), into bytes whose unsigned
 * lexicographic order is the tuple order of {@linkcode compareIndexKeys}.
 * Tuples of scalars encode exactly as with {@linkcode encodeKey}, and the
 * encoding of a tuple is a prefix of the encoding of every tuple that
 * extends it.
 *
 * @param parts The elements of the key.
 * @param prefix Already-encoded leading elements, copied in front.
 * @returns The encoded key.
 * @throws {TypeError} When `parts` is not an array, or an element (or a value
 * nested in one) is not an {@linkcode IndexKeyPart}: `undefined`, a class
 * instance, a hole in an array, a string with a lone surrogate…
 * @throws {RangeError} When a number is `NaN`, a date is invalid, or a value
 * nests deeper than 200 levels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIndexKey } from "./index_key_codec.ts";
 * import { encodeKey } from "@tether/db/storage";
 * import { compareBytes } from "@tether/db/storage";
 *
 * // Strings < objects < arrays < booleans, as in MongoDB.
 * const s = encodeIndexKey(["zzz"]);
 * const o = encodeIndexKey([{ city: "NY" }]);
 * const a = encodeIndexKey([[1, 2]]);
 * assert(compareBytes(s, o) < 0 && compareBytes(o, a) < 0);
 * assert(compareBytes(a, encodeIndexKey([false])) < 0);
 * // Scalars encode as with encodeKey.
 * assert.deepStrictEqual(encodeIndexKey(["x", 1]), encodeKey(["x", 1]));
 * ```
 */
export function encodeIndexKey(
  parts: readonly IndexKeyPart[],
  prefix?: Uint8Array,
): Uint8Array {
  if (!Array.isArray(parts)) {
    throw new TypeError(
      `Cannot encode key: expected an array of key parts, got ${
        describe(parts)
      }`,
    );
  }
  let composite = false;
  for (let i = 0; i < parts.length; i++) {
    if (isComposite(parts[i])) {
      composite = true;
      break;
    }
  }
  if (!composite) return encodeKey(parts as readonly KeyPart[], prefix);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (prefix !== undefined) {
    chunks.push(prefix);
    size += prefix.length;
  }
  for (let i = 0; i < parts.length; i++) {
    const w = new IndexKeyWriter(i);
    w.value(parts[i], "", 0);
    chunks.push(...w.chunks);
    size += w.size;
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * {@linkcode encodeIndexKey} as a binary string (one char per byte, which
 * compares like the bytes), without making the bytes when every part is a
 * scalar.
 *
 * @param parts The elements of the key.
 * @returns The encoded key, one char per byte.
 * @throws {TypeError} As {@linkcode encodeIndexKey}.
 * @throws {RangeError} As {@linkcode encodeIndexKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIndexKey, encodeIndexKeyBinary } from "./index_key_codec.ts";
 * import { binaryString } from "./bytes.ts";
 * const parts = [{ a: 1 }, "x"];
 * assert.equal(encodeIndexKeyBinary(parts), binaryString(encodeIndexKey(parts)));
 * ```
 */
export function encodeIndexKeyBinary(parts: readonly IndexKeyPart[]): string {
  if (Array.isArray(parts)) {
    let composite = false;
    for (let i = 0; i < parts.length; i++) {
      if (isComposite(parts[i])) {
        composite = true;
        break;
      }
    }
    if (!composite) return encodeKeyBinary(parts as readonly KeyPart[]);
  }
  return binaryString(encodeIndexKey(parts));
}

/** The end (exclusive) of the scalar element whose tag is at `pos`. */
function scalarEnd(bytes: Uint8Array, pos: number): number {
  switch (bytes[pos]) {
    case TAG_NULL:
    case TAG_FALSE:
    case TAG_TRUE:
      return pos + 1;
    case TAG_NUMBER:
    case TAG_DATE:
      return Math.min(pos + 9, bytes.length);
    case TAG_STRING:
    case TAG_BYTES: {
      const len = bytes.length;
      let p = pos + 1;
      while (p < len) {
        if (bytes[p] === 0) {
          if (p + 1 < len && bytes[p + 1] === 0xff) {
            p += 2;
            continue;
          }
          return p + 1;
        }
        p++;
      }
      return len;
    }
    default:
      return pos + 1; // decodeKey reports the unknown tag
  }
}

class IndexKeyReader {
  pos = 0;
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  scalar(): KeyPart {
    const start = this.pos;
    const end = scalarEnd(this.bytes, start);
    let parts: KeyPart[];
    try {
      parts = decodeKey(this.bytes.subarray(start, end));
    } catch (e) {
      // Rebase the offset onto the whole key.
      throw new TypeError(
        (e as Error).message.replace(
          / at offset (\d+)$/,
          (_, n: string) => ` at offset ${start + Number(n)}`,
        ),
      );
    }
    this.pos = end;
    return parts[0]!;
  }

  value(depth: number): IndexKeyPart {
    const bytes = this.bytes;
    const tag = bytes[this.pos];
    if (tag !== TAG_OBJECT && tag !== TAG_ARRAY) return this.scalar();
    const start = this.pos++;
    if (depth > MAX_INDEX_DEPTH) {
      throw malformed(`the value nests deeper than ${MAX_INDEX_DEPTH}`, start);
    }
    const what = tag === TAG_ARRAY ? "array" : "object";
    if (tag === TAG_ARRAY) {
      const out: IndexKeyPart[] = [];
      for (;;) {
        if (this.pos >= bytes.length) {
          throw malformed(`the ${what} has no terminator`, start);
        }
        if (bytes[this.pos] === END) {
          this.pos++;
          return out;
        }
        out.push(this.value(depth + 1));
      }
    }
    const out: Record<string, IndexKeyPart> = {};
    const names: string[] = [];
    for (;;) {
      if (this.pos >= bytes.length) {
        throw malformed(`the ${what} has no terminator`, start);
      }
      const bracket = bytes[this.pos]!;
      if (bracket === END) {
        this.pos++;
        break;
      }
      const at = this.pos++;
      if (bytes[this.pos] !== TAG_STRING) {
        throw malformed("an object field name is not a string", this.pos);
      }
      const name = this.scalar() as string;
      if (this.pos >= bytes.length) {
        throw malformed(`the object field '${name}' has no value`, this.pos);
      }
      const v = this.value(depth + 1);
      if (bracketByte(v) !== bracket) {
        throw malformed(
          `the bracket byte of object field '${name}' does not match its value`,
          at,
        );
      }
      if (Object.hasOwn(out, name)) {
        throw malformed(`the object has field '${name}' twice`, at);
      }
      Object.defineProperty(out, name, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      names.push(name);
    }
    const keys = Object.keys(out);
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== names[i]) {
        throw malformed("the object fields are not in property order", start);
      }
    }
    return out;
  }
}

/**
 * Decodes bytes produced by {@linkcode encodeIndexKey} (or
 * {@linkcode encodeKey}) back into the key tuple. Objects are plain objects
 * with fields in their encoded order. Decoding is strict: whatever it accepts
 * re-encodes to the same bytes.
 *
 * @param bytes The encoded key.
 * @returns The elements of the key.
 * @throws {TypeError} When `bytes` is not a `Uint8Array` or is not a valid
 * encoding (see {@linkcode decodeKey}; also an object or array without its
 * terminator, a field name that is not a string, a bracket byte that does
 * not match the field's value, a repeated field).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeIndexKey, encodeIndexKey } from "./index_key_codec.ts";
 *
 * const key = encodeIndexKey(["i", { city: "NY", zip: [10001] }, "u1"]);
 * assert.deepStrictEqual(decodeIndexKey(key), [
 *   "i",
 *   { city: "NY", zip: [10001] },
 *   "u1",
 * ]);
 * ```
 */
export function decodeIndexKey(bytes: Uint8Array): IndexKeyPart[] {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot decode key: expected a Uint8Array, got ${describe(bytes)}`,
    );
  }
  let composite = false;
  for (let p = 0; p < bytes.length;) {
    const tag = bytes[p]!;
    if (tag === TAG_OBJECT || tag === TAG_ARRAY) {
      composite = true;
      break;
    }
    p = scalarEnd(bytes, p);
  }
  if (!composite) return decodeKey(bytes);
  const reader = new IndexKeyReader(bytes);
  const parts: IndexKeyPart[] = [];
  while (reader.pos < bytes.length) parts.push(reader.value(0));
  return parts;
}

/** Rank of an index key part's type, in encoding order. */
function indexRank(part: unknown, side: string): number {
  if (Array.isArray(part)) return 4;
  if (isPlainRecord(part)) return 3;
  const r = rank(part, side);
  // null, number, string | object, array | bytes, false, true, date
  return r <= 2 ? r : r + 2;
}

/**
 * Compares two index key parts in the order their
 * {@linkcode encodeIndexKey} encodings sort in, without encoding them: for
 * scalars as {@linkcode compareKeyParts}; objects after strings and arrays
 * after objects; objects field by field (value type bracket, then name, then
 * value), arrays element by element, a prefix first. For values without
 * byte arrays this is the order of `compareValues`.
 *
 * @param a The first part.
 * @param b The second part.
 * @returns A negative number when `a` sorts first, a positive number when
 * `b` does, zero when they are equal.
 * @throws {TypeError} When a part (or a nested value) is not an
 * {@linkcode IndexKeyPart}.
 * @throws {RangeError} When a part is `NaN` or an invalid `Date`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareIndexKeyParts } from "./index_key_codec.ts";
 *
 * assert(compareIndexKeyParts("z", { a: 1 }) < 0);
 * assert(compareIndexKeyParts([1], [1, 0]) < 0);
 * assert(compareIndexKeyParts({ a: 1 }, { a: "0" }) < 0); // by type first
 * assert(compareIndexKeyParts([9], true) < 0);
 * ```
 */
export function compareIndexKeyParts(a: IndexKeyPart, b: IndexKeyPart): number {
  const ra = indexRank(a, "the first part");
  const rb = indexRank(b, "the second part");
  if (ra !== rb) return ra - rb;
  if (ra === 4) {
    const x = a as readonly IndexKeyPart[];
    const y = b as readonly IndexKeyPart[];
    return compareIndexKeys(x, y);
  }
  if (ra === 3) {
    const x = a as { readonly [field: string]: IndexKeyPart };
    const y = b as { readonly [field: string]: IndexKeyPart };
    const kx = Object.keys(x);
    const ky = Object.keys(y);
    const n = kx.length < ky.length ? kx.length : ky.length;
    for (let i = 0; i < n; i++) {
      const vx = x[kx[i]!]!;
      const vy = y[ky[i]!]!;
      const bx = bracketByte(vx);
      const by = bracketByte(vy);
      if (bx < 0 || by < 0) {
        throw new TypeError(
          `Cannot compare key parts: field '${
            bx < 0 ? kx[i] : ky[i]
          }' is not a key part (expected ${EXPECTED_TYPES}, a plain object or an array)`,
        );
      }
      if (bx !== by) return bx - by;
      const c = compareStrings(kx[i]!, ky[i]!);
      if (c !== 0) return c;
      const v = compareIndexKeyParts(vx, vy);
      if (v !== 0) return v;
    }
    return kx.length - ky.length;
  }
  return compareKeyParts(a as KeyPart, b as KeyPart);
}

/**
 * Compares two index key tuples in the order their
 * {@linkcode encodeIndexKey} encodings sort in: element by element with
 * {@linkcode compareIndexKeyParts}, a prefix first.
 *
 * @param a The first tuple.
 * @param b The second tuple.
 * @returns A negative number when `a` sorts first, a positive number when
 * `b` does, zero when they are equal.
 * @throws {TypeError} When an element is not an {@linkcode IndexKeyPart}.
 * @throws {RangeError} When an element is `NaN` or an invalid `Date`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareIndexKeys } from "./index_key_codec.ts";
 *
 * assert(compareIndexKeys([{ a: 1 }], [{ a: 1 }, "x"]) < 0);
 * assert(compareIndexKeys([[2]], [[10]]) < 0);
 * ```
 */
export function compareIndexKeys(
  a: readonly IndexKeyPart[],
  b: readonly IndexKeyPart[],
): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const c = compareIndexKeyParts(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}
