/**
 * The order of the change feed index's entries by position (see
 * feed_index.ts).
 *
 * @module
 */

/**
 * The order of entries by position. Positions are distinct whole numbers,
 * and the entries of an index mostly fill their range (every change since
 * the last compaction): they are placed by position in a table as long as
 * the range, with no comparisons (a comparison sort of 300,000 entries
 * took ~70 ms of a gateway's first change-feed read). A sparse range, or
 * a position met twice, falls back to sorting.
 *
 * @param pos The entries' positions.
 * @returns Their indexes, by ascending position (ties by index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byPosition } from "./position_order.ts";
 * assert.deepEqual(byPosition([5, 3, 4]), [1, 2, 0]);
 * assert.deepEqual(byPosition([9e9, 1]), [1, 0]); // sparse: sorted
 * ```
 */
export function byPosition(pos: readonly number[]): number[] {
  const n = pos.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = pos[i]!;
    if (p < min) min = p;
    if (p > max) max = p;
  }
  if (n > 0 && max - min < 4 * n + 1024) {
    const table = new Int32Array(max - min + 1).fill(-1);
    let distinct = true;
    for (let i = 0; i < n; i++) {
      const at = pos[i]! - min;
      if (table[at] !== -1) {
        distinct = false;
        break;
      }
      table[at] = i;
    }
    if (distinct) {
      const order: number[] = [];
      for (let at = 0; at < table.length; at++) {
        if (table[at] !== -1) order.push(table[at]!);
      }
      return order;
    }
  }
  const order = pos.map((_, i) => i);
  order.sort((a, b) => pos[a]! - pos[b]! || a - b);
  return order;
}
