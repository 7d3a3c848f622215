/**
 * Order-preserving encoding of key tuples into bytes.
 *
 * The storage layer keeps everything under byte keys: a document under
 * `(collection, id)`, a secondary index entry under
 * `(collection, index, value..., id)`. {@linkcode encodeKey} turns such a
 * tuple into bytes whose unsigned lexicographic order (as computed by
 * `compareBytes` in `./bytes.ts`) is exactly the order of the tuples, and
 * {@linkcode decodeKey} turns the bytes back into the tuple.
 *
 * ## Order
 *
 * Values of different types order by type, in the order of
 * {@linkcode KEY_TYPE_ORDER}: `null` < numbers < strings < byte arrays <
 * `false` < `true` < dates. Within a type:
 *
 * - numbers order numerically, `-Infinity` first and `Infinity` last; `-0`
 *   equals `0`; `NaN` is rejected;
 * - strings order by Unicode code point (which is the order of their UTF-8
 *   bytes, and differs from the UTF-16 order of JavaScript's `<` for
 *   characters above U+FFFF against U+E000–U+FFFF); strings with lone
 *   surrogates are rejected;
 * - byte arrays order by unsigned lexicographic byte order;
 * - dates order by time; invalid dates are rejected.
 *
 * Tuples compare element by element; a tuple that is a prefix of another
 * sorts first. The encoding of a tuple is a byte prefix of the encoding of
 * every tuple that extends it, so a prefix scan over the encoding of
 * `(collection)` or `(collection, index, firstValue)` visits exactly the
 * keys that start with those elements.
 *
 * ## Format
 *
 * Every element starts with a one-byte type tag:
 *
 * | Tag    | Type       | Payload                                          |
 * | ------ | ---------- | ------------------------------------------------ |
 * | `0x10` | null       | none                                             |
 * | `0x20` | number     | 8 bytes: float64 big-endian, sign-adjusted       |
 * | `0x30` | string     | UTF-8, `0x00` escaped as `0x00 0xff`, then `0x00` |
 * | `0x40` | (reserved) | objects                                          |
 * | `0x50` | (reserved) | arrays                                           |
 * | `0x60` | byte array | bytes, `0x00` escaped as `0x00 0xff`, then `0x00` |
 * | `0x70` | false      | none                                             |
 * | `0x71` | true       | none                                             |
 * | `0x80` | date       | 8 bytes: `getTime()` encoded as a number         |
 *
 * A sign-adjusted float64 has all its bits flipped when negative, and only
 * its sign bit flipped otherwise, which makes the byte order of the IEEE-754
 * representation numeric. No tag is `0xff`, so the `0x00` terminator of a
 * string or byte array always sorts before an escaped `0x00` that continues
 * it.
 *
 * ## Index keys
 *
 * {@linkcode encodeKey} accepts scalar parts only. Secondary index entries
 * can also hold objects and arrays; {@linkcode encodeIndexKey} and
 * {@linkcode decodeIndexKey} extend the format with the reserved tags, in the
 * order of `compareValues` (`./query/compare.ts`), MongoDB's BSON order:
 *
 * - an object (`0x40`) is, for each own field in `Object.keys` order, a
 *   bracket byte for the field's value (its tag, with `true` as `0x70` like
 *   `false`), the field name as a string element and the value as an element;
 *   then `0x00`;
 * - an array (`0x50`) is its elements, then `0x00`.
 *
 * Since no tag or bracket byte is `0x00`, a shorter object or array sorts
 * before one that extends it. A tuple of scalars encodes exactly as with
 * {@linkcode encodeKey}.
 *
 * @example Prefix scans
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeKey, encodeKey } from "./key_codec.ts";
 * import { compareBytes, startsWith } from "./bytes.ts";
 *
 * const doc = encodeKey(["users", "u1"]);
 * assert(startsWith(doc, encodeKey(["users"])));
 * assert(compareBytes(doc, encodeKey(["users", "u2"])) < 0);
 * assert(decodeKey(doc)[1] === "u1");
 * ```
 *
 * @module
 */

import { allocBytes, compareBytes } from "./bytes.ts";

/** A value that can be an element of a key tuple. */
export type KeyPart = null | number | string | Uint8Array | boolean | Date;

/**
 * The names of the key part types, in the order values of different types
 * sort in. `"boolean"` stands for `false` followed by `true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KEY_TYPE_ORDER } from "./key_codec.ts";
 * assert(KEY_TYPE_ORDER.indexOf("number") < KEY_TYPE_ORDER.indexOf("string"));
 * ```
 */
export const KEY_TYPE_ORDER: readonly string[] = Object.freeze([
  "null",
  "number",
  "string",
  "bytes",
  "boolean",
  "date",
]);

const TAG_NULL = 0x10;
const TAG_NUMBER = 0x20;
const TAG_STRING = 0x30;
// 0x40 and 0x50 are reserved for objects and arrays.
const TAG_BYTES = 0x60;
const TAG_FALSE = 0x70;
const TAG_TRUE = 0x71;
const TAG_DATE = 0x80;

const EXPECTED_TYPES =
  "null, a number, a string, a Uint8Array, a boolean or a Date";

const getTime = Date.prototype.getTime;

// Float64 conversion buffer, big-endian through the DataView.
const f64View = new DataView(new ArrayBuffer(8));
const f64Bytes = new Uint8Array(f64View.buffer);

// Encoding happens in a reusable scratch buffer that is copied out once the
// size is known. It is taken (set to EMPTY) while in use, so a re-entrant
// call (say, from a getter on the parts array) allocates its own.
const EMPTY = new Uint8Array(0);
let scratch: Uint8Array = new Uint8Array(256);

function grow(buf: Uint8Array, used: number, needed: number): Uint8Array {
  let size = buf.length < 64 ? 64 : buf.length * 2;
  while (size < needed) size *= 2;
  const bigger = new Uint8Array(size);
  bigger.set(buf.subarray(0, used));
  return bigger;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "bigint":
      return "a bigint";
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
    case "object": {
      if (Array.isArray(value)) return "an array";
      const name = (value as { constructor?: { name?: unknown } }).constructor
        ?.name;
      return typeof name === "string" && name !== "Object"
        ? `an object (${name})`
        : "an object";
    }
    default:
      return typeof value;
  }
}

function writeFloat(buf: Uint8Array, pos: number, value: number): void {
  f64View.setFloat64(0, value === 0 ? 0 : value);
  if (value < 0) {
    for (let i = 0; i < 8; i++) buf[pos + i] = ~f64Bytes[i]! & 0xff;
  } else {
    buf[pos] = f64Bytes[0]! ^ 0x80;
    for (let i = 1; i < 8; i++) buf[pos + i] = f64Bytes[i]!;
  }
}

/**
 * Encodes a key tuple into bytes whose unsigned lexicographic order is the
 * order of the tuples (see the module documentation for the order and the
 * format). The result is an independent array (a view into pooled memory,
 * see `allocBytes`), and the encoding of a tuple is a
 * prefix of the encoding of every tuple that extends it.
 *
 * @param parts The elements of the key.
 * @param prefix Already-encoded leading elements (the encoding of a tuple
 *   is the concatenation of its elements' encodings), copied in front.
 * @returns The encoded key.
 * @throws {TypeError} When `parts` is not an array, an element is not a
 * {@linkcode KeyPart}, or a string element has a lone surrogate.
 * @throws {RangeError} When an element is `NaN` or an invalid `Date`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeKey } from "./key_codec.ts";
 * import { compareBytes } from "./bytes.ts";
 *
 * const a = encodeKey(["users", 2]);
 * const b = encodeKey(["users", 10]);
 * assert(compareBytes(a, b) < 0);
 * ```
 */
export function encodeKey(
  parts: readonly KeyPart[],
  prefix?: Uint8Array,
): Uint8Array {
  if (!Array.isArray(parts)) {
    throw new TypeError(
      `Cannot encode key: expected an array of key parts, got ${
        describe(parts)
      }`,
    );
  }
  let buf = scratch;
  scratch = EMPTY;
  let pos = 0;
  if (prefix !== undefined) {
    if (prefix.length > buf.length) buf = grow(buf, 0, prefix.length);
    buf.set(prefix);
    pos = prefix.length;
  }
  const count = parts.length;
  for (let i = 0; i < count; i++) {
    const part: unknown = parts[i];
    if (typeof part === "string") {
      const n = part.length;
      // Each UTF-16 code unit takes at most 3 bytes (an escaped 0x00 takes
      // 2, a surrogate pair 4), plus the tag and the terminator.
      const needed = pos + 3 * n + 2;
      if (needed > buf.length) buf = grow(buf, pos, needed);
      buf[pos++] = TAG_STRING;
      for (let j = 0; j < n; j++) {
        const c = part.charCodeAt(j);
        if (c < 0x80) {
          if (c === 0) {
            buf[pos++] = 0;
            buf[pos++] = 0xff;
          } else {
            buf[pos++] = c;
          }
        } else if (c < 0x800) {
          buf[pos++] = 0xc0 | (c >> 6);
          buf[pos++] = 0x80 | (c & 0x3f);
        } else if (c < 0xd800 || c >= 0xe000) {
          buf[pos++] = 0xe0 | (c >> 12);
          buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
          buf[pos++] = 0x80 | (c & 0x3f);
        } else {
          const d = j + 1 < n ? part.charCodeAt(j + 1) : 0;
          if (c >= 0xdc00 || d < 0xdc00 || d >= 0xe000) {
            scratch = buf;
            throw new TypeError(
              `Cannot encode key part ${i}: the string has a lone surrogate at index ${j}`,
            );
          }
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[pos++] = 0xf0 | (cp >> 18);
          buf[pos++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[pos++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[pos++] = 0x80 | (cp & 0x3f);
          j++;
        }
      }
      buf[pos++] = 0;
    } else if (typeof part === "number") {
      if (part !== part) {
        scratch = buf;
        throw new RangeError(`Cannot encode key part ${i}: NaN has no order`);
      }
      if (pos + 9 > buf.length) buf = grow(buf, pos, pos + 9);
      buf[pos] = TAG_NUMBER;
      writeFloat(buf, pos + 1, part);
      pos += 9;
    } else if (part === null) {
      if (pos + 1 > buf.length) buf = grow(buf, pos, pos + 1);
      buf[pos++] = TAG_NULL;
    } else if (typeof part === "boolean") {
      if (pos + 1 > buf.length) buf = grow(buf, pos, pos + 1);
      buf[pos++] = part ? TAG_TRUE : TAG_FALSE;
    } else if (part instanceof Uint8Array) {
      const n = part.length;
      const needed = pos + 2 * n + 2;
      if (needed > buf.length) buf = grow(buf, pos, needed);
      buf[pos++] = TAG_BYTES;
      for (let j = 0; j < n; j++) {
        const b = part[j]!;
        buf[pos++] = b;
        if (b === 0) buf[pos++] = 0xff;
      }
      buf[pos++] = 0;
    } else if (part instanceof Date) {
      const time = getTime.call(part);
      if (time !== time) {
        scratch = buf;
        throw new RangeError(
          `Cannot encode key part ${i}: an invalid Date has no order`,
        );
      }
      if (pos + 9 > buf.length) buf = grow(buf, pos, pos + 9);
      buf[pos] = TAG_DATE;
      writeFloat(buf, pos + 1, time);
      pos += 9;
    } else {
      scratch = buf;
      throw new TypeError(
        `Cannot encode key part ${i}: ${
          describe(part)
        } is not a key part (expected ${EXPECTED_TYPES})`,
      );
    }
  }
  const out = allocBytes(pos);
  if (pos <= 64) {
    for (let j = 0; j < pos; j++) out[j] = buf[j]!;
  } else {
    out.set(buf.subarray(0, pos));
  }
  scratch = buf;
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function malformed(detail: string, offset: number): TypeError {
  return new TypeError(`Cannot decode key: ${detail} at offset ${offset}`);
}

function readFloat(bytes: Uint8Array, pos: number, what: string): number {
  if (pos + 8 > bytes.length) {
    throw malformed(
      `the ${what} is truncated (${bytes.length - pos} of 8 bytes)`,
      pos,
    );
  }
  if (bytes[pos]! & 0x80) {
    f64Bytes[0] = bytes[pos]! ^ 0x80;
    for (let i = 1; i < 8; i++) f64Bytes[i] = bytes[pos + i]!;
  } else {
    for (let i = 0; i < 8; i++) f64Bytes[i] = ~bytes[pos + i]! & 0xff;
  }
  const value = f64View.getFloat64(0);
  if (value !== value) throw malformed(`the ${what} is NaN`, pos);
  if (value === 0 && 1 / value < 0) throw malformed(`the ${what} is -0`, pos);
  return value;
}

// Side outputs of scanTerminated: how many escaped 0x00 bytes the payload
// has, and whether it is all ASCII.
let escapes = 0;
let ascii = true;

/**
 * Finds the end of an escaped, 0x00-terminated payload starting at `start`.
 * Returns the index of the terminator and sets `escapes` and `ascii`.
 */
function scanTerminated(
  bytes: Uint8Array,
  start: number,
  what: string,
): number {
  const len = bytes.length;
  escapes = 0;
  ascii = true;
  let end = start;
  for (;;) {
    if (end >= len) throw malformed(`the ${what} has no terminator`, start - 1);
    const b = bytes[end]!;
    if (b === 0) {
      if (end + 1 < len && bytes[end + 1] === 0xff) {
        escapes++;
        end += 2;
        continue;
      }
      return end;
    }
    if (b >= 0x80) ascii = false;
    end++;
  }
}

function unescape(
  bytes: Uint8Array,
  start: number,
  end: number,
  count: number,
): Uint8Array {
  const out = new Uint8Array(end - start - count);
  let o = 0;
  for (let p = start; p < end; p++) {
    const b = bytes[p]!;
    out[o++] = b;
    if (b === 0) p++;
  }
  return out;
}

/**
 * Decodes bytes produced by {@linkcode encodeKey} back into the key tuple.
 * Byte array elements are fresh copies. Decoding is strict: whatever it
 * accepts re-encodes to the same bytes.
 *
 * @param bytes The encoded key.
 * @returns The elements of the key.
 * @throws {TypeError} When `bytes` is not a `Uint8Array` or is not a valid
 * encoding (unknown tag, truncated number or date, missing terminator,
 * invalid UTF-8, non-canonical number).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeKey, encodeKey } from "./key_codec.ts";
 *
 * const [collection, id] = decodeKey(encodeKey(["users", 42]));
 * assert(collection === "users" && id === 42);
 * ```
 */
export function decodeKey(bytes: Uint8Array): KeyPart[] {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot decode key: expected a Uint8Array, got ${describe(bytes)}`,
    );
  }
  const parts: KeyPart[] = [];
  const len = bytes.length;
  let pos = 0;
  while (pos < len) {
    const tag = bytes[pos++]!;
    switch (tag) {
      case TAG_NULL:
        parts.push(null);
        break;
      case TAG_NUMBER:
        parts.push(readFloat(bytes, pos, "number"));
        pos += 8;
        break;
      case TAG_STRING: {
        const end = scanTerminated(bytes, pos, "string");
        if (ascii && end - pos < 64) {
          let s = "";
          for (let p = pos; p < end; p++) {
            const b = bytes[p]!;
            s += String.fromCharCode(b);
            if (b === 0) p++;
          }
          parts.push(s);
        } else {
          const payload = escapes === 0
            ? bytes.subarray(pos, end)
            : unescape(bytes, pos, end, escapes);
          try {
            parts.push(utf8.decode(payload));
          } catch {
            throw malformed("the string is not valid UTF-8", pos - 1);
          }
        }
        pos = end + 1;
        break;
      }
      case TAG_BYTES: {
        const end = scanTerminated(bytes, pos, "byte array");
        parts.push(
          escapes === 0
            ? bytes.slice(pos, end)
            : unescape(bytes, pos, end, escapes),
        );
        pos = end + 1;
        break;
      }
      case TAG_FALSE:
        parts.push(false);
        break;
      case TAG_TRUE:
        parts.push(true);
        break;
      case TAG_DATE: {
        const time = readFloat(bytes, pos, "date");
        const date = new Date(time);
        if (getTime.call(date) !== time) {
          throw malformed(`the date ${time} is not a valid time value`, pos);
        }
        parts.push(date);
        pos += 8;
        break;
      }
      default:
        throw malformed(
          `unknown type tag 0x${tag.toString(16).padStart(2, "0")}`,
          pos - 1,
        );
    }
  }
  return parts;
}

/** Rank of a part's type (booleans split into false and true). */
function rank(part: unknown, side: string): number {
  switch (typeof part) {
    case "number":
      if (part !== part) {
        throw new RangeError(
          `Cannot compare key parts: ${side} is NaN, which has no order`,
        );
      }
      return 1;
    case "string":
      if (!part.isWellFormed()) {
        throw new TypeError(
          `Cannot compare key parts: ${side} is a string with a lone surrogate`,
        );
      }
      return 2;
    case "boolean":
      return part ? 5 : 4;
    case "object":
      if (part === null) return 0;
      if (part instanceof Uint8Array) return 3;
      if (part instanceof Date) {
        if (getTime.call(part) !== getTime.call(part)) {
          throw new RangeError(
            `Cannot compare key parts: ${side} is an invalid Date, which has no order`,
          );
        }
        return 6;
      }
  }
  throw new TypeError(
    `Cannot compare key parts: ${side} is ${
      describe(part)
    }, not a key part (expected ${EXPECTED_TYPES})`,
  );
}

function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      // Move surrogates (D800-DFFF) above E000-FFFF so that code unit order
      // becomes code point order.
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/**
 * Compares two key parts in the order their encodings sort in (see the
 * module documentation), without encoding them.
 *
 * @param a The first part.
 * @param b The second part.
 * @returns A negative number when `a` sorts first, a positive number when
 * `b` does, zero when they are equal.
 * @throws {TypeError} When a part is not a {@linkcode KeyPart} or is a
 * string with a lone surrogate.
 * @throws {RangeError} When a part is `NaN` or an invalid `Date`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareKeyParts } from "./key_codec.ts";
 *
 * assert(compareKeyParts(null, -Infinity) < 0);
 * assert(compareKeyParts(99, "1") < 0);
 * assert(compareKeyParts("\u{1F600}", "\uFFFD") > 0);
 * assert(compareKeyParts(-0, 0) === 0);
 * ```
 */
export function compareKeyParts(a: KeyPart, b: KeyPart): number {
  const ra = rank(a, "the first part");
  const rb = rank(b, "the second part");
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 1: {
      const x = a as number;
      const y = b as number;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 2:
      return compareStrings(a as string, b as string);
    case 3:
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 6: {
      const x = getTime.call(a as Date);
      const y = getTime.call(b as Date);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default:
      return 0;
  }
}

/**
 * Compares two key tuples in the order their encodings sort in: element by
 * element with {@linkcode compareKeyParts}, a prefix first. Elements past
 * the first difference (or past the end of the shorter tuple) are not
 * inspected.
 *
 * @param a The first tuple.
 * @param b The second tuple.
 * @returns A negative number when `a` sorts first, a positive number when
 * `b` does, zero when they are equal.
 * @throws {TypeError} When an element is not a {@linkcode KeyPart} or is a
 * string with a lone surrogate.
 * @throws {RangeError} When an element is `NaN` or an invalid `Date`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareKeys } from "./key_codec.ts";
 *
 * assert(compareKeys(["users"], ["users", 1]) < 0);
 * assert(compareKeys(["a", 2], ["a", 10]) < 0);
 * ```
 */
export function compareKeys(
  a: readonly KeyPart[],
  b: readonly KeyPart[],
): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const c = compareKeyParts(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

// --- Index keys: objects and arrays ----------------------------------------

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
 * import { encodeIndexKey, encodeKey } from "./key_codec.ts";
 * import { compareBytes } from "./bytes.ts";
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
 * import { decodeIndexKey, encodeIndexKey } from "./key_codec.ts";
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
 * import { compareIndexKeyParts } from "./key_codec.ts";
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
 * import { compareIndexKeys } from "./key_codec.ts";
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
