/**
 * The synchronous inner loop of a query run: takes one page of documents
 * (object-tier slots or storage entries) through expiry, the filter, skip,
 * limit, an in-memory sort and the sink, until the page ends, the chunk's
 * time budget is spent, or the query has what it needs. Kept out of the
 * async generator that drives it (`Cursor`'s run), where every document
 * would pay for a resumable frame.
 *
 * @module
 */

import type { DocPage } from "../engine/engine.ts";
import { upperBound } from "../engine/btree_node.ts";
import { DocSlot } from "../engine/record_table.ts";
import type { Budget } from "../engine/yield.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { StoredRecord } from "../value_codec.ts";

/** A match held for an in-memory sort (internal). */
export interface Hit {
  /** The document's entry. */
  readonly entry: StorageEntry;
  /** Its record. */
  readonly record: StoredRecord;
  /** The index entry visited (`undefined`: the document itself). */
  readonly source: { readonly key: Uint8Array } | undefined;
  /** The index range it came from. */
  readonly range: number;
}

/** Receives a query's results as stored records (internal). */
export interface Sink {
  /** Takes one result: the stored record (not a copy: do not change it). */
  add(
    record: StoredRecord,
    entry: StorageEntry,
    source: { readonly key: Uint8Array } | undefined,
    range: number,
  ): void;
  /** Whether results wait to be taken (the scan then pauses for them). */
  readonly pending: boolean;
  /**
   * Takes one result that is an object-tier slot, read just now (its
   * record is `slot.record`): a sink that has it gets slots here instead
   * of through `add`, in unsorted runs past `skip`.
   */
  readonly addSlot?: (slot: DocSlot) => void;
  /**
   * Whether `add` needs the index entry of each result (`source`, for
   * cursor positions); when not, it gets `undefined` for index pages
   * whose entries are made on demand.
   */
  readonly positions?: boolean;
}

/** What a page scan reads records with (the engine's `visible`). */
export type Visible = (
  entry: StorageEntry,
  now: number,
  action: string,
) => StoredRecord | undefined;

/** A query run's state across pages (internal, mutated by the scan). */
export interface RunState {
  /** The chunk budget. */
  readonly budget: Budget;
  /** Reads a storage entry's record, `undefined` when expired or gone. */
  readonly visible: Visible;
  /** For error messages. */
  readonly action: string;
  /** The compiled filter. */
  readonly predicate: (
    value: unknown,
    tags: readonly string[] | undefined,
  ) => boolean;
  /** No sink: matches are only counted. */
  readonly counting: boolean;
  /** Stop counting at this many matches. */
  readonly stopAt: number;
  /** Matches are sorted in memory (kept in `all`). */
  readonly inMemory: boolean;
  /** Keep at most this many sorted hits (skip + limit). */
  readonly keep: number;
  /** The kept hits of an in-memory sort. */
  readonly all: Hit[];
  /** Orders hits, for an in-memory sort. */
  readonly order: (a: Hit, b: Hit) => number;
  /** Where results go (none: counting). */
  readonly sink: Sink | undefined;
  /** Counts results handed to the sink. */
  readonly tally: { n: number };
  /** Matches still to skip. */
  skip: number;
  /** Results still wanted. */
  left: number;
  /** Matches counted (counting only). */
  matched: number;
}

/**
 * Scans `page` from `from`: stops at its end, when the budget is spent
 * (before the document it would read next), or when the query is done
 * (`left` or `stopAt` reached; see {@linkcode runDone}).
 *
 * @param r The run's state.
 * @param page The documents.
 * @param from The first index to read.
 * @param now The time expiry is judged at.
 * @returns The index to resume at: `page.length` when the page is done,
 *   less when the budget ran out or the query is done.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanPage, type RunState } from "./scan_page.ts";
 * import { Budget } from "../engine/yield.ts";
 * const r: RunState = {
 *   budget: new Budget(), visible: () => undefined, action: "test",
 *   predicate: () => true, counting: true, stopAt: Infinity,
 *   inMemory: false, keep: Infinity, all: [], order: () => 0,
 *   sink: undefined, tally: { n: 0 }, skip: 0, left: Infinity, matched: 0,
 * };
 * assert.equal(scanPage(r, [] as never, 0, Date.now()), 0);
 * ```
 */
export function scanPage(
  r: RunState,
  page: DocPage,
  from: number,
  now: number,
): number {
  const { budget, predicate, counting, inMemory, sink } = r;
  const sources = page.sources;
  // Index entries made on demand: only for a sink that asks for positions
  // (a sorted run's positions are offsets).
  const sourceOf = sink?.positions === true && !inMemory
    ? page.sourceOf
    : undefined;
  const range = page.range ?? 0;
  const n = page.length;
  const addSlot = inMemory || counting ? undefined : sink?.addSlot;
  let i = from;
  for (; i < n; i++) {
    if (budget.due()) return i;
    const entry = page[i]!;
    let record: StoredRecord | undefined;
    // The object tier's slots hold the record, and its value, expiry and
    // tags on the slot itself (one class: the reads stay monomorphic).
    if (entry instanceof DocSlot && entry.doc !== undefined) {
      const expiresAt = entry.expiresAt;
      if (expiresAt !== undefined && now >= expiresAt) continue;
      if (!predicate(entry.doc, entry.tags)) continue;
      if (addSlot !== undefined && r.skip === 0) {
        r.tally.n++;
        addSlot(entry);
        if (--r.left === 0) return i + 1;
        continue;
      }
      record = entry.record!;
    } else {
      record = r.visible(entry, now, r.action);
      if (record === undefined) continue;
      if (!predicate(record.value, record.tags)) continue;
    }
    if (counting) {
      if (++r.matched >= r.stopAt) return i + 1;
      continue;
    }
    const src = sources !== undefined ? sources[i] : sourceOf?.(i);
    if (inMemory) {
      keepSorted(r, { entry, record, source: src, range });
      continue;
    }
    if (r.skip > 0) {
      r.skip--;
      continue;
    }
    r.tally.n++;
    sink!.add(record, entry, src, range);
    if (--r.left === 0) return i + 1;
  }
  return i;
}

/**
 * Whether the run has what it needs (the limit reached, or the count at
 * its stop).
 *
 * @param r The run's state.
 * @returns `true` to stop reading.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runDone, type RunState } from "./scan_page.ts";
 * assert(runDone({ counting: false, left: 0 } as RunState));
 * ```
 */
export function runDone(r: RunState): boolean {
  return r.counting ? r.matched >= r.stopAt : r.left === 0;
}

/**
 * Keeps a hit for an in-memory sort: every hit without a limit, else the
 * best `keep` (sorted, ties in arrival order, so the result equals a
 * stable sort).
 */
function keepSorted(r: RunState, hit: Hit): void {
  const { all, keep, order } = r;
  if (keep === Infinity) {
    all.push(hit);
    return;
  }
  if (all.length < keep || order(hit, all[all.length - 1]!) < 0) {
    // After every equal hit already kept: ties keep arrival order.
    all.splice(upperBound(all, hit, order), 0, hit);
    if (all.length > keep) all.pop();
  }
}
