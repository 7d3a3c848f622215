/**
 * Byte-array helpers shared by the engine and the storages.
 *
 * @module
 */

/**
 * Compares two byte arrays in unsigned lexicographic order (a proper prefix
 * sorts first).
 *
 * @param a First bytes.
 * @param b Second bytes.
 * @returns A negative number, zero or a positive number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareBytes } from "@tether/db/storage";
 * assert(compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])) < 0);
 * ```
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The smallest byte string greater than every string that starts with
 * `prefix`, or `undefined` when there is none (the prefix is all `0xff`).
 *
 * @param prefix The prefix.
 * @returns The exclusive upper bound of the prefix's range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefixEnd } from "@tether/db/storage";
 * assert(prefixEnd(new Uint8Array([1, 255]))![0] === 2);
 * ```
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! !== 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]!++;
      return end;
    }
  }
  return undefined;
}

/**
 * Whether `bytes` starts with `prefix`.
 *
 * @param bytes The bytes to test.
 * @param prefix The prefix.
 * @returns `true` when every byte of `prefix` leads `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startsWith } from "./bytes.ts";
 * assert(startsWith(new Uint8Array([1, 2]), new Uint8Array([1])));
 * ```
 */
export function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[i] !== prefix[i]) return false;
  }
  return true;
}

/** Slab size of {@linkcode allocBytes}. */
const SLAB = 64 * 1024;
/** Requests above this size get their own buffer. */
const SMALL = 2048;
let slab = new Uint8Array(SLAB);
let slabUsed = 0;

/**
 * Allocates a small byte array carved out of a shared 64 KiB slab, as Node's
 * Buffer pool does: creating an `ArrayBuffer` costs far more than a view on
 * one, and keys and records are allocated on every operation. Requests over
 * 2 KiB get a buffer of their own. A slab is freed once no view on it lives;
 * never transfer or resize the `.buffer` of a returned array.
 *
 * @param size Bytes wanted.
 * @returns A zero-filled array of exactly `size` bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allocBytes } from "./bytes.ts";
 * assert(allocBytes(10).length === 10);
 * ```
 */
export function allocBytes(size: number): Uint8Array {
  if (size > SMALL) return new Uint8Array(size);
  if (slabUsed + size > SLAB) {
    slab = new Uint8Array(SLAB);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  return out;
}

const textEncoder = new TextEncoder();

/**
 * UTF-8-encodes a string into pooled memory (see {@linkcode allocBytes}).
 *
 * @param text The string.
 * @returns Its UTF-8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUtf8 } from "./bytes.ts";
 * assert(encodeUtf8("é").length === 2);
 * ```
 */
export function encodeUtf8(text: string): Uint8Array {
  const worst = text.length * 3;
  if (worst > SMALL) return textEncoder.encode(text);
  if (slabUsed + worst > SLAB) {
    slab = new Uint8Array(SLAB);
    slabUsed = 0;
  }
  const { written } = textEncoder.encodeInto(text, slab.subarray(slabUsed));
  const out = slab.subarray(slabUsed, slabUsed + written);
  slabUsed += written;
  return out;
}

/**
 * UTF-8-encodes `text` from index `from` on, after the byte `lead` when it
 * is not negative, into pooled memory: the bytes of
 * `String.fromCharCode(lead) + text.slice(from)` without concatenating
 * that string (a slice is a view in V8; the concatenation is a copy).
 *
 * @param text The string (well-formed UTF-16).
 * @param from The first index to encode.
 * @param lead A byte (0-127) to put first, or -1 for none.
 * @returns The UTF-8 bytes (pooled memory, see {@linkcode allocBytes}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUtf8Tail } from "./bytes.ts";
 * assert.deepEqual(encodeUtf8Tail('xx"é"', 2, 0x7b), new TextEncoder().encode('{"é"'));
 * ```
 */
export function encodeUtf8Tail(
  text: string,
  from: number,
  lead: number,
): Uint8Array {
  const tail = text.slice(from);
  if (lead < 0) return encodeUtf8(tail);
  const worst = tail.length * 3 + 1;
  if (worst > SMALL) {
    const bytes = textEncoder.encode(tail);
    const out = new Uint8Array(bytes.length + 1);
    out[0] = lead;
    out.set(bytes, 1);
    return out;
  }
  if (slabUsed + worst > SLAB) {
    slab = new Uint8Array(SLAB);
    slabUsed = 0;
  }
  slab[slabUsed] = lead;
  const { written } = textEncoder.encodeInto(
    tail,
    slab.subarray(slabUsed + 1),
  );
  const out = slab.subarray(slabUsed, slabUsed + 1 + written);
  slabUsed += 1 + written;
  return out;
}

const codes: number[] = [];

/**
 * The bytes as a string of char codes 0-255. JS compares strings by code
 * unit, so these strings compare exactly like the bytes (several times
 * faster than {@linkcode compareBytes}), and they work as `Map` keys.
 *
 * @param bytes The bytes.
 * @returns One char per byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binaryString } from "./bytes.ts";
 * assert(binaryString(new Uint8Array([1, 255])) < binaryString(new Uint8Array([2])));
 * ```
 */
export function binaryString(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n > 4096) {
    let out = "";
    for (let i = 0; i < n; i += 4096) {
      out += binaryString(bytes.subarray(i, Math.min(n, i + 4096)));
    }
    return out;
  }
  codes.length = n;
  for (let i = 0; i < n; i++) codes[i] = bytes[i]!;
  return String.fromCharCode.apply(null, codes);
}

/**
 * {@linkcode binaryString} of the first `length` bytes (no view made).
 *
 * @param bytes The bytes.
 * @param length How many, from the start.
 * @returns One char per byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binaryStringOf } from "./bytes.ts";
 * assert.equal(binaryStringOf(new Uint8Array([65, 66, 67]), 2), "AB");
 * ```
 */
export function binaryStringOf(bytes: Uint8Array, length: number): string {
  if (length > 4096) return binaryString(bytes.subarray(0, length));
  codes.length = length;
  for (let i = 0; i < length; i++) codes[i] = bytes[i]!;
  return String.fromCharCode.apply(null, codes);
}

/**
 * The bytes of a binary string (one char per byte, as
 * {@linkcode binaryString} makes), after `prefix`.
 *
 * @param prefix Bytes to put first.
 * @param text The binary string.
 * @returns The bytes (pooled memory, see {@linkcode allocBytes}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binaryBytes } from "./bytes.ts";
 * assert.deepEqual(binaryBytes(new Uint8Array([1]), "AB"), new Uint8Array([1, 65, 66]));
 * ```
 */
export function binaryBytes(prefix: Uint8Array, text: string): Uint8Array {
  const n = prefix.length;
  const out = allocBytes(n + text.length);
  out.set(prefix);
  for (let i = 0; i < text.length; i++) out[n + i] = text.charCodeAt(i);
  return out;
}

/**
 * Standard base64 of bytes.
 *
 * @param bytes The bytes.
 * @returns The base64 text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { base64ToBytes, bytesToBase64 } from "./bytes.ts";
 * assert.equal(bytesToBase64(new Uint8Array([1, 2, 3])), "AQID");
 * assert.deepEqual(base64ToBytes("AQID"), new Uint8Array([1, 2, 3]));
 * ```
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * Bytes of standard base64 text.
 *
 * @param text The base64 text.
 * @returns The bytes.
 * @throws {DOMException} When `text` is not base64.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { base64ToBytes } from "./bytes.ts";
 * assert.equal(base64ToBytes("AQID").length, 3);
 * ```
 */
export function base64ToBytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * Joins byte arrays into one.
 *
 * @param parts The arrays.
 * @returns A new array holding them in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts";
 * assert.deepEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
