/**
 * Before a scan reads an order that takes new entries lazily (a
 * collection's key order, an index tree): merges what waits, in chunks
 * that give the event loop a turn when the chunk budget is spent, so that
 * a first scan after a million puts does not hold the loop for the whole
 * sort.
 *
 * @module
 */

import type { RecordTable } from "./record_table.ts";
import type { RamIndexes } from "./ram_index.ts";
import { nextTurn, turnDue } from "./yield.ts";

/** Entries merged between two looks at the clock. */
export const SETTLE_CHUNK = 2048;

/**
 * Merges a collection's added documents into its key order.
 *
 * @param table The collection's record table.
 * @returns Once nothing waits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DocSlot, RecordTable } from "./record_table.ts";
 * import { settleOrder } from "./settle.ts";
 * const table = new RecordTable();
 * table.add(new DocSlot("a", new Uint8Array(), undefined));
 * await settleOrder(table);
 * assert.equal(table.pending, 0);
 * ```
 */
export async function settleOrder(table: RecordTable): Promise<void> {
  while (table.settle(SETTLE_CHUNK) > 0) {
    if (turnDue()) await nextTurn();
  }
}

/**
 * Merges an index's pending entries into its tree.
 *
 * @param ram The collection's index trees.
 * @param name The index's name (`""`: insertion order).
 * @returns Once nothing of that index waits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RamIndexes } from "./ram_index.ts";
 * import { settleIndex } from "./settle.ts";
 * const ram = new RamIndexes("c", true);
 * await settleIndex(ram, "age_1");
 * assert.equal(ram.pending, 0);
 * ```
 */
export async function settleIndex(
  ram: RamIndexes,
  name: string,
): Promise<void> {
  if (ram.pending === 0) return;
  while (ram.settle(name, SETTLE_CHUNK) > 0) {
    if (turnDue()) await nextTurn();
  }
}
