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
 * import { decodeKey, encodeKey } from "@tether/db/storage";
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

import { allocBytes, binaryStringOf, compareBytes } from "./bytes.ts";

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

/** Shared with `./index_key_codec.ts`. */
export const TAG_NULL = 0x10;
/** Shared with `./index_key_codec.ts`. */
export const TAG_NUMBER = 0x20;
/** Shared with `./index_key_codec.ts`. */
export const TAG_STRING = 0x30;
// 0x40 and 0x50 are reserved for objects and arrays.
/** Shared with `./index_key_codec.ts`. */
export const TAG_BYTES = 0x60;
/** Shared with `./index_key_codec.ts`. */
export const TAG_FALSE = 0x70;
/** Shared with `./index_key_codec.ts`. */
export const TAG_TRUE = 0x71;
/** Shared with `./index_key_codec.ts`. */
export const TAG_DATE = 0x80;

/** Shared with `./index_key_codec.ts`. */
export const EXPECTED_TYPES =
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

/** Names a value for an error message. Shared with `./index_key_codec.ts`. */
export function describe(value: unknown): string {
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
 * import { encodeKey } from "@tether/db/storage";
 * import { compareBytes } from "@tether/db/storage";
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
  const pos = encodeToScratch(parts, prefix);
  const buf = scratch;
  const out = allocBytes(pos);
  if (pos <= 64) {
    for (let j = 0; j < pos; j++) out[j] = buf[j]!;
  } else {
    out.set(buf.subarray(0, pos));
  }
  return out;
}

/** Encodes into `scratch`; returns the length. */
function encodeToScratch(
  parts: readonly KeyPart[],
  prefix: Uint8Array | undefined,
): number {
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
  scratch = buf;
  return pos;
}

/**
 * Encodes a key tuple as {@linkcode encodeKey} does, as a binary string
 * (one char per byte: strings compare exactly like the bytes) without
 * making the bytes. For keys that live in RAM only (the object tier's
 * index trees).
 *
 * @param parts The elements of the key.
 * @returns The encoded key, one char per byte.
 * @throws {TypeError} As {@linkcode encodeKey}.
 * @throws {RangeError} As {@linkcode encodeKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeKey, encodeKeyBinary } from "./key_codec.ts";
 * import { binaryString } from "./bytes.ts";
 * assert.equal(encodeKeyBinary(["a", 1]), binaryString(encodeKey(["a", 1])));
 * ```
 */
export function encodeKeyBinary(parts: readonly KeyPart[]): string {
  const n = encodeToScratch(parts, undefined);
  return binaryStringOf(scratch, n);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The TypeError for undecodable key bytes. Shared with `./index_key_codec.ts`. */
export function malformed(detail: string, offset: number): TypeError {
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
 * import { decodeKey, encodeKey } from "@tether/db/storage";
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
export function rank(part: unknown, side: string): number {
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

/** Compares strings by code point (UTF-8 byte order). Shared with `./index_key_codec.ts`. */
export function compareStrings(a: string, b: string): number {
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
