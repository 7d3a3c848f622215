/**
 * Reads served by the object tier (storages only this process writes): a
 * point read is a map lookup, a scan walks the ordered slots, an index
 * lookup walks only the matching cells of the index's tree. Pages hold
 * the slots themselves (they are storage entries too), so nothing is
 * decoded or copied here.
 *
 * @module
 */

import { settleOrder } from "./settle.ts";
import { decodeKey } from "../key_codec.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { DocPage, EngineCore } from "./state.ts";
import type { DocSlot, RecordTable } from "./record_table.ts";
import type { RunIterator } from "./btree.ts";
import { Budget, turnDue, yieldToLoop } from "./yield.ts";

/** Slots per page. */
const PAGE = 256;

/**
 * A document's record from the object tier, or the storage when only it
 * holds the value (a miss: async).
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param id Document key.
 * @param action For error messages.
 * @returns The record (expired or not), or `null` when absent.
 */
export function localRecord(
  s: EngineCore,
  collection: string,
  id: string,
  action: string,
): StoredRecord | null | Promise<StoredRecord | null> {
  const slot = s.collections.get(collection)?.table?.get(id);
  if (slot === undefined) return null;
  if (slot.record !== undefined) return slot.record;
  return s.storage.get(slot.key).then((entry) =>
    entry === null ? null : s.decode(entry, action)
  );
}

/**
 * A collection's slots in key order, page by page.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param reverse Highest key first.
 * @param after Resume after (before, reversed) this document key.
 * @param signal Stops the scan.
 * @returns Pages of slots.
 */
export async function* localPages(
  s: EngineCore,
  collection: string,
  reverse: boolean,
  after: Uint8Array | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<StorageEntry[]> {
  signal?.throwIfAborted();
  s.assertOpen("Cannot scan");
  const table = s.collections.get(collection)?.table;
  if (table === undefined) return;
  const afterId = after === undefined
    ? undefined
    : decodeKey(after)[2] as string;
  let from = afterId;
  let walk: RunIterator<DocSlot> | undefined;
  for (;;) {
    // Documents added since the order was last read: merged in chunks.
    if (table.pending > 0) {
      await settleOrder(table);
      signal?.throwIfAborted();
      s.assertOpen("Cannot scan");
    }
    // A fresh walk after ids were added or removed between pages.
    if (walk === undefined || walk.stale) walk = table.slots(reverse, from);
    // Made with room for a page: filled without growing.
    const page: DocSlot[] = new Array(PAGE);
    const got = walk.fill(page, PAGE, 0);
    if (got === 0) return;
    page.length = got;
    from = page[got - 1]!.id;
    if (!table.mayMiss) {
      yield page;
    } else {
      const found = withMisses(s, page);
      yield found instanceof Promise ? await found : found;
    }
    if (got < PAGE) return;
    signal?.throwIfAborted();
    s.assertOpen("Cannot scan");
    if (turnDue()) {
      await yieldToLoop();
      signal?.throwIfAborted();
    }
  }
}

/**
 * A page with the slots whose value only the storage holds replaced by the
 * storage's entries (read together: one async read per page with misses).
 */
function withMisses(
  s: EngineCore,
  page: DocSlot[],
): StorageEntry[] | Promise<StorageEntry[]> {
  let misses: number[] | undefined;
  for (let i = 0; i < page.length; i++) {
    if (page[i]!.record === undefined) (misses ??= []).push(i);
  }
  if (misses === undefined) return page;
  return readMisses(s, page, misses);
}

async function readMisses(
  s: EngineCore,
  page: DocSlot[],
  misses: number[],
): Promise<StorageEntry[]> {
  const found = await s.storage.getMany(misses.map((i) => page[i]!.key));
  const out: StorageEntry[] = [];
  let m = 0;
  for (let i = 0; i < page.length; i++) {
    if (misses[m] !== i) {
      out.push(page[i]!);
      continue;
    }
    const entry = found[m++] ?? null;
    if (entry !== null) out.push(entry);
  }
  return out;
}

/**
 * The documents of a range of an index tree, page by page, with the
 * range's number and, when asked, the index entries that led to them
 * (`sourceOf`, made on demand from the tree keys).
 *
 * @param s The engine.
 * @param cells The tree's slots in the range (a walk resumable after a key).
 * @param keyOf The storage key of an index entry from its tree key.
 * @param range The range's number in the plan.
 * @param options Abort signal, a counter of index entries examined, and
 *   whether the pages must give each document's index entry (`sourceOf`).
 * @param seen Documents already given (multikey, several ranges).
 * @returns Pages of slots.
 */
export async function* cellPages(
  s: EngineCore,
  cells: (after: Uint8Array | undefined) => RunIterator<DocSlot>,
  keyOf: (tail: string) => Uint8Array,
  range: number,
  options: {
    signal?: AbortSignal | undefined;
    examined?: { keys: number };
    positions?: boolean | undefined;
  },
  seen: Set<DocSlot> | undefined,
  check?: () => void,
): AsyncGenerator<DocPage> {
  const { signal } = options;
  let after: Uint8Array | undefined;
  let walk: RunIterator<DocSlot> | undefined;
  for (;;) {
    // The consumer may have done anything since the last page: the index
    // must still be the one the walk is on (`IndexWalk.check`).
    check?.();
    // A fresh walk after entries were added or removed between pages.
    if (walk === undefined || walk.stale) walk = cells(after);
    // The slots walked (and their tree keys, when positions are asked
    // for); arrays made at their size (a query's garbage is mostly these
    // pages).
    let run: DocSlot[];
    let tails: string[] | undefined;
    let examined: number;
    if (options.positions === true) {
      run = [];
      tails = [];
      examined = walk.fillKeyed(run, tails, PAGE);
    } else {
      run = new Array(PAGE);
      examined = walk.fill(run, PAGE, 0);
      run.length = examined;
    }
    let page: DocSlot[];
    let keys: string[] | undefined;
    if (seen === undefined) {
      page = run;
      keys = tails;
    } else {
      page = [];
      keys = tails === undefined ? undefined : [];
      for (let i = 0; i < examined; i++) {
        const slot = run[i]!;
        if (seen.has(slot)) continue;
        seen.add(slot);
        page.push(slot);
        keys?.push(tails![i]!);
      }
    }
    if (examined > 0) after = keyOf(walk.lastKey as string);
    if (options.examined !== undefined) options.examined.keys += examined;
    if (page.length > 0) {
      yield (keys === undefined
        ? Object.assign(page, { range })
        : Object.assign(page, {
          sourceOf: (i: number) => ({ key: keyOf(keys[i]!) }),
          range,
        })) as DocPage;
    }
    if (examined < PAGE) return;
    signal?.throwIfAborted();
    s.assertOpen("Cannot scan");
    if (turnDue()) {
      await yieldToLoop();
      signal?.throwIfAborted();
    }
  }
}

/**
 * Counts a collection's unexpired documents that pass `predicate`, walking
 * the object tier's slots in no particular order (a count needs none), in
 * chunks that give the event loop a turn, stopping at `stopAt` matches.
 * `undefined` when the object tier does not hold every record (then the
 * caller scans in key order instead).
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param predicate The compiled filter (value and tags).
 * @param stopAt Stop counting at this many matches.
 * @param signal Stops the count (its reason is thrown).
 * @param examined Counts the documents read.
 * @returns The matches (at most `stopAt`), or `undefined`.
 */
export async function countLocal(
  s: EngineCore,
  collection: string,
  predicate: (value: unknown, tags: readonly string[] | undefined) => boolean,
  stopAt: number,
  signal: AbortSignal | undefined,
  examined: { docs: number },
): Promise<number | undefined> {
  signal?.throwIfAborted();
  s.assertOpen("Cannot count");
  if (!s.local) return undefined;
  const table = s.collections.get(collection)?.table;
  if (table === undefined) return 0;
  if (table.mayMiss) return undefined;
  const budget = new Budget(signal);
  // Slots keep their places while the walk is paused (see `pin`): one that
  // stays in the table is counted once; one added or removed meanwhile may
  // or may not be (a count is not a snapshot, as a scan in key order).
  const walk: CountWalk = {
    table,
    at: 0,
    predicate,
    now: s.now(),
    matched: 0,
    read: 0,
    stopAt,
    miss: undefined,
    done: false,
  };
  const release = table.pin();
  try {
    for (;;) {
      // The documents go through a synchronous function (optimised as a
      // plain loop); this one only awaits between chunks and for misses.
      countChunk(walk, budget);
      if (walk.miss !== undefined) {
        // Only the storage holds it (it was added during a pause).
        const found = await localRecord(
          s,
          collection,
          walk.miss.id,
          "Cannot count",
        );
        walk.miss = undefined;
        if (
          found !== null &&
          !(found.expiresAt !== undefined && walk.now >= found.expiresAt) &&
          predicate(found.value, found.tags) && ++walk.matched >= stopAt
        ) break;
        continue;
      }
      if (walk.done || walk.matched >= stopAt) break;
      await budget.pause();
      s.assertOpen("Cannot count");
      walk.now = s.now();
    }
  } finally {
    release();
  }
  const { matched, read } = walk;
  examined.docs += read;
  return matched;
}

/** A count's walk over the table's dense array, from chunk to chunk. */
interface CountWalk {
  readonly table: RecordTable;
  /** The next place to read. */
  at: number;
  readonly predicate: (
    value: unknown,
    tags: readonly string[] | undefined,
  ) => boolean;
  now: number;
  matched: number;
  read: number;
  readonly stopAt: number;
  /** A slot whose record only the storage holds: the caller reads it. */
  miss: DocSlot | undefined;
  /** The slots ran out. */
  done: boolean;
}

/** Slots read between two looks at the clock in a count. */
const COUNT_STRIDE = 1024;

/** Counts until the budget is spent, the slots end, or a miss. */
function countChunk(w: CountWalk, budget: Budget): void {
  if (w.table.plain) return countPlain(w, budget);
  const { predicate, now, stopAt } = w;
  // Read again each chunk: a `clear()` during a pause replaced it.
  const dense = w.table.dense;
  let matched = w.matched;
  let read = w.read;
  let i = w.at;
  try {
    for (;;) {
      const end = Math.min(dense.length, i + COUNT_STRIDE);
      for (; i < end; i++) {
        const slot = dense[i];
        if (slot === undefined) continue;
        read++;
        // The value, expiry and tags are on the slot: the record is not
        // read.
        const value = slot.doc;
        if (value === undefined) {
          w.miss = slot;
          i++;
          return;
        }
        const expiresAt = slot.expiresAt;
        if (expiresAt !== undefined && now >= expiresAt) continue;
        if (!predicate(value, slot.tags)) continue;
        if (++matched >= stopAt) {
          i++;
          return;
        }
      }
      if (i >= dense.length) {
        w.done = true;
        return;
      }
      if (budget.spent()) return;
    }
  } finally {
    w.matched = matched;
    w.read = read;
    w.at = i;
  }
}

/**
 * {@linkcode countChunk} over a table whose records are all in RAM with no
 * expiry and no tags: only the values are read, from their own array (one
 * pointer less per document than through the slots).
 */
function countPlain(w: CountWalk, budget: Budget): void {
  const { predicate, stopAt } = w;
  const docs = w.table.docs;
  let matched = w.matched;
  let read = w.read;
  let i = w.at;
  try {
    for (;;) {
      const end = Math.min(docs.length, i + COUNT_STRIDE);
      for (; i < end; i++) {
        const value = docs[i];
        if (value === undefined) continue;
        read++;
        if (!predicate(value, undefined)) continue;
        if (++matched >= stopAt) {
          i++;
          return;
        }
      }
      if (i >= docs.length) {
        w.done = true;
        return;
      }
      if (budget.spent()) return;
    }
  } finally {
    w.matched = matched;
    w.read = read;
    w.at = i;
  }
}
