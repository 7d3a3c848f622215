/**
 * The read path: point reads, collection scans, index and insertion-order
 * scans, counts from an index, exports of raw documents.
 *
 * @module
 */

import { settleIndex } from "./settle.ts";
import { ConflictError } from "../errors.ts";
import { binaryString, prefixEnd } from "../bytes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import {
  type KeyRange,
  type Plan,
  planQuery,
  rangeToBytes,
} from "../query/planner.ts";
import type { Filter } from "../query/compile.ts";
import type { SortSpec } from "../query/sort.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { DocPage, EngineCore } from "./state.ts";
import { DOC, isExpired, successor } from "./layout.ts";
import { turnDue, yieldToLoop } from "./yield.ts";
import { poke } from "./expiry.ts";
import { ensureOrder } from "./index_build.ts";
import { cellPages, localPages, localRecord } from "./local_read.ts";
import type { DocSlot } from "./record_table.ts";
import { type RamIndexes, tailBounds } from "./ram_index.ts";
import type { RunIterator } from "./btree.ts";

/**
 * Reads one document.
 *
 * @param collection Collection name.
 * @param id Document key.
 * @param action For error messages.
 * @returns The record, or `null` when absent or expired.
 */
/**
 * Reads one document at once from the object tier.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param id Document key.
 * @param action For error messages.
 * @returns The record, `null` when absent or expired, `undefined` when it
 *   must be read with {@linkcode read} (not in RAM, or not a local storage).
 * @throws {ClosedError} After `close()`.
 */
export function peek(
  s: EngineCore,
  collection: string,
  id: string,
  action: string,
): StoredRecord | null | undefined {
  const slot = peekSlot(s, collection, id, action);
  return slot === null || slot === undefined ? slot : slot.record;
}

/**
 * {@linkcode peek} returning the document's slot (its value is `doc`, read
 * without going through the record): for `get`.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param id Document key.
 * @param action For error messages.
 * @returns The slot, `null` when absent or expired, `undefined` when the
 *   document must be read with {@linkcode read}.
 * @throws {ClosedError} After `close()`.
 */
export function peekSlot(
  s: EngineCore,
  collection: string,
  id: string,
  action: string,
): DocSlot | null | undefined {
  if (!s.local) return undefined;
  s.assertOpen(action);
  const slot = s.collections.get(collection)?.table?.get(id);
  if (slot === undefined) {
    s.ops.gets++;
    return null;
  }
  if (slot.doc === undefined) return undefined;
  s.ops.gets++;
  const expiresAt = slot.expiresAt;
  if (expiresAt !== undefined && s.now() >= expiresAt) {
    poke(s);
    return null;
  }
  return slot;
}

export async function read(
  s: EngineCore,
  collection: string,
  id: string,
  action: string,
): Promise<StoredRecord | null> {
  s.assertOpen(action);
  s.ops.gets++;
  let record: StoredRecord | null;
  if (s.local) {
    const found = localRecord(s, collection, id, action);
    record = found instanceof Promise ? await found : found;
  } else {
    const entry = await s.storage.get(s.docKey(collection, id));
    record = entry === null ? null : s.decode(entry, action);
  }
  if (record === null) return null;
  if (isExpired(record, s.now())) {
    poke(s);
    return null;
  }
  return record;
}

/**
 * Visits a collection's entries page by page, giving the event loop a turn
 * regularly. Expiry is for the caller to check (see `visible`).
 *
 * @param collection Collection name.
 * @param options Direction and abort signal.
 * @returns Pages of raw entries.
 */
export function pages(s: EngineCore, collection: string, options: {
  reverse?: boolean;
  signal?: AbortSignal | undefined;
  after?: Uint8Array | undefined;
} = {}): AsyncGenerator<readonly StorageEntry[]> {
  // The object tier's pages directly (one generator less per page).
  return s.local
    ? localPages(
      s,
      collection,
      options.reverse === true,
      options.after,
      options.signal,
    )
    : storagePages(s, collection, options);
}

async function* storagePages(s: EngineCore, collection: string, options: {
  reverse?: boolean;
  signal?: AbortSignal | undefined;
  after?: Uint8Array | undefined;
}): AsyncGenerator<readonly StorageEntry[]> {
  const { signal, after } = options;
  signal?.throwIfAborted();
  s.assertOpen("Cannot scan");
  const reverse = options.reverse === true;
  const prefix = s.collectionPrefix(collection);
  const scan = s.scanOpen(
    after === undefined
      ? { prefix, reverse }
      : reverse
      ? { prefix, end: after, reverse }
      : { prefix, start: successor(after), reverse },
  );
  for await (const page of scan) {
    signal?.throwIfAborted();
    yield page;
    if (turnDue()) {
      await yieldToLoop();
      signal?.throwIfAborted();
    }
  }
}

/**
 * Pages of the given items' current documents (for `regroup`).
 *
 * @param collection Collection name.
 * @param ids Document keys.
 * @returns One page with the documents that exist.
 */
export async function* idPages(
  s: EngineCore,
  collection: string,
  ids: readonly string[],
): AsyncGenerator<DocPage> {
  let docs: StorageEntry[];
  if (s.local) {
    const table = s.state(collection).table!;
    docs = [];
    for (const id of ids) {
      const slot = table.get(id);
      if (slot !== undefined) docs.push(slot);
    }
  } else {
    const keys = ids.map((id) => s.docKey(collection, id));
    const found = await s.getManyOpen(keys);
    docs = found.filter((e): e is StorageEntry => e !== null);
  }
  if (docs.length > 0) {
    // No sources: the positions are the documents' own keys.
    yield Object.assign(docs, { range: 0 });
  }
}

/**
 * Plans a query over a collection's indexes.
 *
 * @param collection Collection name.
 * @param filter The filter (without `$limit`).
 * @param sort The requested order, if any.
 * @returns The plan.
 */
export function plan(
  s: EngineCore,
  collection: string,
  filter: Filter,
  sort: SortSpec | undefined,
): Plan {
  const state = s.collections.get(collection);
  let indexes = state === undefined
    ? []
    : state.indexes.list.filter((i) => i.building !== true);
  if (s.blinder !== undefined) {
    indexes = indexes.map((i) => ({ ...i, blind: true }));
  }
  return planQuery(filter, sort, indexes);
}

/**
 * Visits the documents an index plan selects, in index order, page by
 * page; each document once even when a multikey index lists it twice.
 * Expiry and the filter are for the caller to check.
 *
 * @param collection Collection name.
 * @param plan An index plan from {@linkcode Engine.plan}.
 * @param options Abort signal, a counter of index entries examined, where
 *   to resume, and whether pages must give each document's index entry.
 * @returns Pages of document entries.
 */
export async function* indexPages(
  s: EngineCore,
  collection: string,
  plan: Plan,
  options: {
    signal?: AbortSignal | undefined;
    examined?: { keys: number };
    after?: { range: number; key: Uint8Array } | undefined;
    positions?: boolean | undefined;
  },
): AsyncGenerator<DocPage> {
  const state = s.state(collection);
  const prefix = state.indexes.prefix(plan.index!);
  const ranges = plan.reverse ? [...plan.ranges].reverse() : plan.ranges;
  const dedupe = plan.ranges.length > 1 ||
    state.indexes.get(plan.index!)?.multikey === true;
  // Sets only where a document can come up twice.
  const seen = dedupe ? new Set<string>() : undefined;
  const slots = dedupe ? new Set<DocSlot>() : undefined;
  const { after } = options;
  for (let r = after?.range ?? 0; r < ranges.length; r++) {
    let { start, end } = await rangeBytes(
      s,
      prefix,
      ranges[r]!,
      collection,
      plan.index!,
    );
    if (after !== undefined && r === after.range) {
      if (plan.reverse) end = after.key;
      else start = successor(after.key);
    }
    if (s.local) {
      if (state.ram!.pending > 0) await settleIndex(state.ram!, plan.index!);
      const ram = state.ram!;
      const name = plan.index!;
      yield* cellPages(
        s,
        treeRange(ram, name, start, end, plan.reverse),
        (tail) => ram.keyOf(name, tail),
        r,
        options,
        slots,
        treeCheck(ram, name, collection),
      );
      continue;
    }
    // The storage's index keys: a drop deletes them, and a query over a
    // dropped index would end early, leaving matches out silently.
    const name = plan.index!;
    yield* entryPages(
      s,
      { start, end, reverse: plan.reverse },
      options,
      seen,
      r,
      () => {
        if (s.collections.get(collection)?.indexes.get(name) === undefined) {
          throw dropped(collection, name);
        }
      },
    );
  }
}

/** The error of a query whose index went while it ran. */
function dropped(collection: string, name: string): ConflictError {
  return new ConflictError(
    `Cannot query '${collection}': index '${name}' was dropped or rebuilt (or the collection cleared) while the query ran; run it again`,
  );
}

/**
 * The object tier's walk of an index plan, for a caller that visits the
 * slots in one synchronous loop (an exact plan's `toArray()`: no async
 * generator per page, no page arrays). Only where that is the whole plan:
 * a local storage, one range, an index that lists each document once, no
 * blind index; `undefined` otherwise (take {@linkcode indexPages}).
 */
export interface IndexWalk {
  /**
   * A walk of the range, from its start or past (before, reversed) a tree
   * key: a walk's `lastKey`, where it paused.
   */
  readonly cells: (after: string | undefined) => RunIterator<DocSlot>;
  /**
   * Throws a ConflictError when the index was dropped (or dropped and made
   * again) since the walk began: its tree no longer follows the documents,
   * and an exact plan does not filter what it lists.
   */
  readonly check: () => void;
}

/**
 * Finds an {@linkcode IndexWalk} for `plan`, settling the index first.
 *
 * @param collection Collection name.
 * @param plan An index plan.
 * @returns The walk, or `undefined` when the plan needs {@linkcode indexPages}.
 */
export async function indexWalk(
  s: EngineCore,
  collection: string,
  plan: Plan,
): Promise<IndexWalk | undefined> {
  const state = s.collections.get(collection);
  const name = plan.index;
  if (
    !s.local || s.blinder !== undefined || state === undefined ||
    plan.kind !== "index" || name === undefined || plan.ranges.length !== 1 ||
    state.indexes.get(name)?.multikey !== false
  ) {
    return undefined;
  }
  // The tree's own keys, made from the tuples: no key bytes.
  const bounds = tailBounds(plan.ranges[0]!);
  const ram = state.ram!;
  if (ram.pending > 0) await settleIndex(ram, name);
  // Settling may have found an array value: the index is multikey now.
  if (state.indexes.get(name)?.multikey !== false) return undefined;
  const { reverse } = plan;
  const check = treeCheck(ram, name, collection);
  return {
    cells: (after) => ram.rangeOf(name, bounds, reverse, after),
    check,
  };
}

/**
 * A check that an index's tree is still the one a walk began on (see
 * {@linkcode IndexWalk.check}).
 */
function treeCheck(
  ram: RamIndexes,
  name: string,
  collection: string,
): () => void {
  const tree = ram.tree(name);
  return () => {
    if (ram.treeIf(name) !== tree) throw dropped(collection, name);
  };
}

/**
 * The scan bounds of an index range, with digests (bound to the collection
 * and the index's fields) for blind indexes.
 */
export async function rangeBytes(
  s: EngineCore,
  prefix: Uint8Array,
  range: KeyRange,
  collection: string,
  index: string,
): Promise<{ start: Uint8Array; end: Uint8Array }> {
  const blinder = s.blinder;
  if (blinder === undefined) return rangeToBytes(prefix, range);
  const fields = s.collections.get(collection)?.indexes.get(index)?.fields ??
    [];
  await blinder.prepare(collection, [
    [fields, range.start],
    [fields, range.end],
  ]);
  return rangeToBytes(
    prefix,
    range,
    (t) => blinder.tuple(collection, fields, t),
  );
}

/**
 * Every stored document of the given collections (all when omitted), in
 * key order, page by page, as raw record bytes (expired ones included: the
 * caller checks `recordMeta`).
 *
 * @param collections Collection names, or `undefined` for all.
 * @returns Pages of `{ collection, id, bytes }`.
 */
export async function* documents(
  s: EngineCore,
  collections?: readonly string[],
): AsyncGenerator<{ collection: string; id: string; bytes: Uint8Array }[]> {
  s.assertOpen("Cannot export");
  const prefixes = collections === undefined
    ? [encodeKey([DOC])]
    : [...new Set(collections)].sort().map((c) => s.collectionPrefix(c));
  for (const prefix of prefixes) {
    for await (const page of s.storage.scan({ prefix })) {
      yield page.map((entry) => {
        const parts = decodeKey(entry.key);
        return {
          collection: parts[1] as string,
          id: parts[2] as string,
          bytes: entry.value,
        };
      });
      // A turn for the event loop after some work, not after every page.
      if (turnDue()) await yieldToLoop();
    }
  }
}

/**
 * The names of the collections that hold at least one stored document,
 * found by skipping from one collection to the next.
 *
 * @returns The names, in order.
 */
export async function collectionNames(s: EngineCore): Promise<string[]> {
  const names: string[] = [];
  const all = encodeKey([DOC]);
  const end = prefixEnd(all)!;
  let start: Uint8Array = all;
  for (;;) {
    let found: string | undefined;
    for await (const page of s.storage.scan({ start, end, limit: 1 })) {
      found = decodeKey(page[0]!.key)[1] as string;
    }
    if (found === undefined) return names;
    names.push(found);
    const next = prefixEnd(s.collectionPrefix(found));
    if (next === undefined) return names;
    start = next;
  }
}

/**
 * Counts the documents an exact index plan selects from the index alone,
 * without reading a document; `undefined` when that would not be exact
 * (the plan is inexact, or some item may have expired).
 *
 * @param collection Collection name.
 * @param plan The plan.
 * @param examined Counts the index entries read.
 * @returns The count, or `undefined`.
 */
export async function countByIndex(
  s: EngineCore,
  collection: string,
  plan: Plan,
  examined?: { keys: number },
): Promise<number | undefined> {
  const state = s.collections.get(collection);
  if (
    // Items of other processes may have expired unseen.
    s.shared ||
    state === undefined || plan.kind !== "index" || !plan.exact ||
    state.inflight.size > 0 || state.schedule.countExpired(s.now()) > 0
  ) {
    return undefined;
  }
  const prefix = state.indexes.prefix(plan.index!);
  const dedupe = plan.ranges.length > 1 ||
    state.indexes.get(plan.index!)?.multikey === true;
  const seen = new Set<string>();
  const slots = new Set<DocSlot>();
  let n = 0;
  for (const range of plan.ranges) {
    const { start, end } = await rangeBytes(
      s,
      prefix,
      range,
      collection,
      plan.index!,
    );
    if (s.local) {
      const ram = state.ram!;
      if (ram.pending > 0) await settleIndex(ram, plan.index!);
      for (const slot of ram.range(plan.index!, start, end, false)) {
        if (examined !== undefined) examined.keys++;
        if (!dedupe) n++;
        else slots.add(slot);
      }
      continue;
    }
    for await (const page of s.storage.scan({ start, end })) {
      if (examined !== undefined) examined.keys += page.length;
      if (!dedupe) {
        n += page.length;
      } else {
        for (const entry of page) seen.add(binaryString(entry.value));
      }
      if (turnDue()) await yieldToLoop();
    }
  }
  return dedupe ? seen.size + slots.size : n;
}

/** The cells of an index tree between two keys, resumable after a key. */
function treeRange(
  ram: RamIndexes,
  name: string,
  start: Uint8Array,
  end: Uint8Array | undefined,
  reverse: boolean,
): (after: Uint8Array | undefined) => RunIterator<DocSlot> {
  return (after) =>
    after === undefined
      ? ram.range(name, start, end, reverse)
      : reverse
      ? ram.range(name, start, after, true)
      : ram.range(name, successor(after), end, false);
}

/**
 * Visits documents in insertion order (or reversed), optionally within a
 * creation-time frame.
 *
 * @param collection Collection name.
 * @param options Direction, time frame (inclusive), abort signal.
 * @returns Pages of document entries.
 */
export async function* orderPages(s: EngineCore, collection: string, options: {
  reverse?: boolean;
  from?: number;
  to?: number;
  signal?: AbortSignal | undefined;
}): AsyncGenerator<DocPage> {
  await ensureOrder(s, collection);
  const prefix = s.state(collection).indexes.orderPrefix;
  const start = options.from === undefined
    ? prefix
    : encodeKey([options.from], prefix);
  const end = options.to === undefined
    ? prefixEnd(prefix)
    : prefixEnd(encodeKey([options.to], prefix));
  if (s.local) {
    const reverse = options.reverse === true;
    const ram = s.state(collection).ram!;
    if (ram.pending > 0) await settleIndex(ram, "");
    yield* cellPages(
      s,
      treeRange(ram, "", start, end, reverse),
      (tail) => ram.keyOf("", tail),
      0,
      { signal: options.signal },
      undefined,
    );
    return;
  }
  yield* entryPages(
    s,
    end === undefined
      ? { start, reverse: options.reverse === true }
      : { start, end, reverse: options.reverse === true },
    { signal: options.signal },
    undefined,
  );
}

export async function* entryPages(
  s: EngineCore,
  scan: { start: Uint8Array; end?: Uint8Array; reverse: boolean },
  options: { signal?: AbortSignal | undefined; examined?: { keys: number } },
  seen: Set<string> | undefined,
  range = 0,
  check?: () => void,
): AsyncGenerator<DocPage> {
  const { signal } = options;
  signal?.throwIfAborted();
  s.assertOpen("Cannot scan");
  for await (const page of s.scanOpen(scan)) {
    signal?.throwIfAborted();
    // Also after the consumer's turn with the last page (see `check`).
    check?.();
    if (options.examined !== undefined) options.examined.keys += page.length;
    const keys: Uint8Array[] = [];
    const from: StorageEntry[] = [];
    for (const entry of page) {
      if (seen !== undefined) {
        const id = binaryString(entry.value);
        if (seen.has(id)) continue;
        seen.add(id);
      }
      keys.push(entry.value); // the item's key
      from.push(entry);
    }
    const docs = await s.getManyOpen(keys);
    const found: StorageEntry[] = [];
    const sources: StorageEntry[] = [];
    for (let i = 0; i < docs.length; i++) {
      const doc = docs[i] ?? null;
      if (doc === null) continue;
      found.push(doc);
      sources.push(from[i]!);
    }
    if (found.length > 0) {
      yield Object.assign(found, { sources, range }) as DocPage;
    }
    if (turnDue()) {
      await yieldToLoop();
      signal?.throwIfAborted();
    }
  }
  // A scan that ran out because the index's keys were deleted.
  check?.();
}
