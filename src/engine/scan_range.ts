/**
 * The key range of a storage scan, as the B+trees of ids walk it: the
 * bounds of {@linkcode ScanOptions} (start, end, prefix, direction, limit)
 * as binary strings, and the range of each next page after a cursor. Shared
 * by the memory storage's key table and the file storage's key directory.
 *
 * @module
 */

import type { BTreeRange } from "./btree.ts";
import { binaryString, compareBytes, prefixEnd } from "../bytes.ts";
import type { ScanOptions } from "../storage/contract.ts";

/** A scan's bounds, as binary strings of the keys. */
export interface ScanBounds {
  /** The lowest id in range (inclusive), if bounded. */
  readonly loId: string | undefined;
  /** The id after the range (exclusive), if bounded. */
  readonly hiId: string | undefined;
  /** Highest keys first. */
  readonly reverse: boolean;
  /** The most entries to visit. */
  readonly limit: number;
}

function maxKey(
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
): Uint8Array | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareBytes(a, b) >= 0 ? a : b;
}

function minKey(
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
): Uint8Array | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareBytes(a, b) <= 0 ? a : b;
}

/**
 * The bounds of a scan: a prefix narrows start and end.
 *
 * @param options The scan's options.
 * @returns Its bounds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanBounds } from "./scan_range.ts";
 * const b = scanBounds({ prefix: new Uint8Array([1]), limit: 5 });
 * assert.deepEqual(b, { loId: "\x01", hiId: "\x02", reverse: false, limit: 5 });
 * ```
 */
export function scanBounds(options: ScanOptions): ScanBounds {
  let lo = options.start;
  let hi = options.end;
  if (options.prefix !== undefined) {
    lo = maxKey(lo, options.prefix);
    hi = minKey(hi, prefixEnd(options.prefix));
  }
  return {
    loId: lo === undefined ? undefined : binaryString(lo),
    hiId: hi === undefined ? undefined : binaryString(hi),
    reverse: options.reverse === true,
    limit: options.limit ?? Infinity,
  };
}

/**
 * The range of the next page: after (or, reversed, before) the last id of
 * the previous one.
 *
 * @param b The scan's bounds.
 * @param cursor The last id visited, if any.
 * @returns The B+tree range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageRange, scanBounds } from "./scan_range.ts";
 * const b = scanBounds({ start: new Uint8Array([1]) });
 * assert.deepEqual(pageRange(b, undefined), { gte: "\x01" });
 * assert.deepEqual(pageRange(b, "\x05"), { gt: "\x05" });
 * ```
 */
export function pageRange(
  b: ScanBounds,
  cursor: string | undefined,
): BTreeRange<string> {
  const range: BTreeRange<string> = {};
  if (b.reverse) {
    range.reverse = true;
    if (b.loId !== undefined) range.gte = b.loId;
    const upper = cursor ?? b.hiId;
    if (upper !== undefined) range.lt = upper;
  } else {
    if (cursor !== undefined) range.gt = cursor;
    else if (b.loId !== undefined) range.gte = b.loId;
    if (b.hiId !== undefined) range.lt = b.hiId;
  }
  return range;
}
