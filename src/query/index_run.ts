/**
 * The synchronous run of an exact index plan: the matches of an index
 * range, read straight from the object tier's tree into a sink, for
 * `toArray()`. An exact plan's range holds only matches, so there is no
 * filter to run; what is left per document is its expiry, `skip`, `limit`
 * and the sink. The run stays on the caller's loop like every other: it
 * reads the tree in runs of {@linkcode RUN} and gives the event loop a turn
 * when the chunk's budget (4 ms) is spent, resuming after the last key read
 * (a fresh walk if the tree changed meanwhile).
 *
 * It replaces, for this one shape, the general run's async generators
 * (`Cursor`'s run, the engine's index pages) and their page arrays, whose
 * cost is per page and per document and whose call sites every other query
 * shares (in a process that runs many kinds of queries they stay generic).
 *
 * @module
 */

import type { Engine } from "../engine/engine.ts";
import type { IndexWalk } from "../engine/read.ts";
import type { DocSlot } from "../engine/record_table.ts";
import { Budget } from "../engine/yield.ts";
import type { Sink } from "./scan_page.ts";

/** Slots read from the tree at a time, between clock reads. */
export const RUN = 128;

/** What an index run needs of its query. */
export interface IndexRunQuery {
  /** The engine. */
  readonly engine: Engine;
  /** The tree walk (from `Engine.indexWalk`). */
  readonly walk: IndexWalk;
  /** For error messages. */
  readonly action: string;
  /** Matches to pass over first. */
  readonly skip: number;
  /** Results wanted (`Infinity`: all). */
  readonly limit: number;
  /** Stops the run (its reason is thrown) at a pause. */
  readonly signal: AbortSignal | undefined;
}

/**
 * Hands every unexpired match of an exact index plan to `sink` (its
 * `addSlot` when it has one and the slot holds its document, else `add`),
 * after `skip`, up to `limit`, in index order.
 *
 * @param q The query.
 * @param sink Receives the results.
 * @returns When every result was handed to the sink.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.createIndex("n");
 * await db.putBatch([{ n: 1 }, { n: 2 }, { n: 2 }, { n: 3 }]);
 * // `toArray()` of an exact index plan takes this run.
 * assert.equal((await db.find({ n: 2 }).toArray()).length, 2);
 * assert.deepEqual(
 *   await db.find({ n: { $gte: 2 } }, { skip: 1, limit: 1 }).toArray(),
 *   [{ n: 2 }],
 * );
 * ```
 */
export async function runIndex(q: IndexRunQuery, sink: Sink): Promise<void> {
  const { engine, walk, action } = q;
  engine.countQuery();
  engine.assertOpen(action); // even for a read of nothing
  let left = q.limit;
  if (left <= 0) return;
  let skip = q.skip;
  const budget = new Budget(q.signal);
  const addSlot = sink.addSlot;
  const run: DocSlot[] = new Array(RUN);
  let it = walk.cells(undefined);
  for (;;) {
    const n = it.fill(run, RUN, 0);
    const now = engine.now();
    for (let i = 0; i < n; i++) {
      const slot = run[i]!;
      if (slot.doc !== undefined) {
        const expiresAt = slot.expiresAt;
        if (expiresAt !== undefined && now >= expiresAt) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        if (addSlot !== undefined) addSlot(slot);
        else sink.add(slot.record!, slot, undefined, 0);
      } else {
        // Not held in RAM: the storage's entry, read as every run reads it.
        const record = engine.visible(slot, now, action);
        if (record === undefined) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        sink.add(record, slot, undefined, 0);
      }
      if (--left === 0) return;
    }
    if (n < RUN) return;
    if (budget.spent()) {
      // Nothing can change the tree until this pause: resume after the
      // last key read, on a fresh walk if writes came in between.
      const after = it.lastKey as string;
      await budget.pause();
      engine.assertOpen(action);
      walk.check();
      if (it.stale) it = walk.cells(after);
    }
  }
}
