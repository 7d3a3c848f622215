/**
 * CRC-32C (Castagnoli), the checksum of the file log's header and frames.
 *
 * @module
 */

/** Eight 256-entry tables for slicing-by-8. */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let s = 1; s < 8; s++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[s * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * The CRC-32C of `bytes[start, end)`, continuing from `crc` (0 to start).
 *
 * @param bytes The data.
 * @param start First byte (default 0).
 * @param end Byte after the last (default `bytes.length`).
 * @param crc A previous result to continue from (default 0).
 * @returns The checksum, an unsigned 32-bit integer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c } from "./crc32c.ts";
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
  crc = 0,
): number {
  const t = TABLES;
  let c = ~crc;
  let i = start;
  while (end - i >= 8) {
    const a = c ^ (bytes[i]! | bytes[i + 1]! << 8 | bytes[i + 2]! << 16 |
      bytes[i + 3]! << 24);
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
