/**
 * The fast path's commit, for storages that only this process writes
 * (memory, file): item changes are checked against the object tier (unique
 * indexes are one tree lookup each, the memory limit one sum), written to
 * the storage without version checks (as objects where it keeps objects,
 * else as bytes with their index entries), then applied to the object tier:
 * the record table, the index trees, counts, the TTL schedule.
 *
 * Same atomicity and errors as the full pipeline (commit.ts): every check
 * runs before anything changes; the storage applies the commit whole or
 * not at all; the object tier changes only after the storage accepted it.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import { ConflictError } from "../errors.ts";
import {
  entryKeyId,
  entryLength,
  type IndexEntry,
  sameEntry,
} from "./indexes.ts";
import type {
  ObjectSet,
  StorageCommitResult,
  StorageEntry,
  StorageSet,
} from "../storage/contract.ts";
import { encodeRecord, type StoredRecord } from "../value_codec.ts";
import {
  fileRecordCost,
  indexEntryCost,
  objectRecordCost,
} from "./size_estimate.ts";
import type { CollectionState, EngineCore, ItemChange } from "./state.ts";
import { indexMetaKey, isExpired, tombKey } from "./layout.ts";
import { docKeyLength, DocSlot } from "./record_table.ts";
import { LazyChange } from "./write_build.ts";
import { FeedCommit } from "./feed_hooks.ts";

/** What the commit changes in the object tier once the storage took it. */
interface Pending {
  readonly id: string;
  /** The storage key, if made (else the slot makes it when asked). */
  readonly key: Uint8Array | undefined;
  readonly slot: DocSlot | undefined;
  /** The new slot of a document the commit creates, if already made. */
  readonly made?: DocSlot | undefined;
  readonly next: StoredRecord | undefined;
  readonly cost: number;
  /** 1: a tombstone was written; -1: one was removed. */
  readonly tomb: number;
  readonly removed: readonly IndexEntry[];
  readonly added: readonly IndexEntry[];
}

const NONE: readonly IndexEntry[] = [];
const NONE_MUTABLE: IndexEntry[] = [];
const NO_IDS: readonly string[] = [];
const NO_MULTIKEY: Set<string> = new Set();

/** The storage key of a change if it was made, without making it. */
function knownKey(c: ItemChange): Uint8Array | undefined {
  return c instanceof LazyChange ? c.knownKey : c.key;
}

/**
 * Writes item changes on a local storage. Arguments and result as
 * `commitItems` (commit.ts), which calls this when `s.local`.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param state Its bookkeeping.
 * @param changes The items' changes (`old` as the object tier holds it).
 * @param values Encoded records of the puts (`undefined` where the storage
 *   keeps objects).
 * @param action For error messages.
 * @param committed Called (synchronously) once applied.
 * @param costs The memory estimate of each put's record, when known.
 * @returns The storage's `durable` promise, if any, and versionstamp.
 * @throws {DuplicateKeyError} A unique index value is held by another live
 *   item.
 * @throws {QuotaError} The write would pass `memoryLimit`.
 */
export async function commitLocal(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  changes: readonly ItemChange[],
  values: readonly (Uint8Array | undefined)[],
  action: string,
  committed?: (durable: Promise<void> | undefined) => void,
  costs?: readonly (number | undefined)[],
): Promise<{ durable: Promise<void> | undefined; versionstamp: string }> {
  const { indexes } = state;
  if (indexes.blinder !== undefined) {
    const records: StoredRecord[] = [];
    for (const c of changes) {
      if (c.old !== undefined) records.push(c.old);
      if (c.next !== undefined) records.push(c.next);
    }
    await indexes.prepare(records);
  }
  const p = prepareLocal(
    s,
    collection,
    state,
    changes,
    values,
    action,
    costs,
  );
  const result = await storeLocal(s, p, action);
  applyLocal(s, state, p, result, committed);
  return { durable: result.durable, versionstamp: result.versionstamp };
}

/**
 * Hands a prepared commit to the storage: at once (synchronously) through
 * its object tier, else as a byte commit.
 *
 * @param s The engine.
 * @param p The prepared commit.
 * @param action For error messages.
 * @returns The storage's answer (a promise for byte commits).
 */
export function storeLocal(
  s: EngineCore,
  p: Prepared,
  action: string,
):
  | { durable?: Promise<void> | undefined; versionstamp: string }
  | Promise<{ durable?: Promise<void> | undefined; versionstamp: string }> {
  const objects = s.storage.objects;
  if (s.volatile && objects !== undefined) {
    return accepted(
      objects.commit({ sets: p.sets, deletes: p.deletes }),
      action,
    );
  }
  return s.storage.commit({ sets: p.sets as StorageSet[], deletes: p.deletes })
    .then((result) => accepted(result, action));
}

function accepted(
  result: StorageCommitResult,
  action: string,
): { durable?: Promise<void> | undefined; versionstamp: string } {
  // Nobody else writes, and nothing was checked: a storage fault.
  if (!result.ok) {
    throw new ConflictError(`${action}: the storage refused the commit`);
  }
  return result;
}

/** A commit checked and ready for the storage. */
export interface Prepared {
  /** The storage's sets. */
  readonly sets: (StorageSet | ObjectSet)[];
  /** The storage's deletes. */
  readonly deletes: Uint8Array[];
  /** What changes in the object tier. */
  readonly pending: readonly Pending[];
  /** The memory estimate's change. */
  readonly delta: number;
  /** The change in stored documents. */
  readonly stored: number;
  /** Indexes that became multikey. */
  readonly multikey: ReadonlySet<string>;
  /** The change feed's positions of the commit. */
  readonly feed: FeedCommit;
  /** The collection's key prefix. */
  readonly prefix: Uint8Array;
}

/**
 * Checks item changes against the object tier and builds the storage
 * commit, changing nothing (synchronous; blind digests prepared before).
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param state Its bookkeeping.
 * @param changes The items' changes.
 * @param values Encoded records of the puts, where the storage needs bytes.
 * @param action For error messages.
 * @param costs The memory estimate of each put's record, when known.
 * @param slots The items' slots as the caller just read them from the
 *   record table, with nothing in between (else they are looked up).
 * @param now The time of the write, if the caller read the clock already.
 * @returns The prepared commit.
 * @throws {DuplicateKeyError} A unique index value is held by another live
 *   item.
 * @throws {QuotaError} The write would pass `memoryLimit`.
 */
export function prepareLocal(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  changes: readonly ItemChange[],
  values: readonly (Uint8Array | undefined)[],
  action: string,
  costs?: readonly (number | undefined)[],
  slots?: readonly (StorageEntry | null)[],
  now: number = s.now(),
): Prepared {
  const { indexes } = state;
  const table = state.table!;
  const ram = state.ram!;
  const tombs = state.tombs!;
  const feed = new FeedCommit(s, collection);
  const volatile = s.volatile;
  const prefix = s.collectionPrefix(collection);
  const sets: (StorageSet | ObjectSet)[] = [];
  const deletes: Uint8Array[] = [];
  const pending: Pending[] = [];
  let delta = 0;
  let stored = 0;
  let claimed: Map<string, string> | undefined;
  let rewritten: Set<string> | undefined;
  // Unique values claimed from items this commit rewrites.
  let held:
    | { entry: IndexEntry; holder: string; claimant: string }[]
    | undefined;
  // Stored unique entries the items give up (their deletes wait).
  let released: IndexEntry[] | undefined;
  const indexed = indexes.size > 0 || indexes.ordered;
  // Filled only by index entries (none without indexes): no set per write.
  const multikey = indexed ? new Set<string>() : NO_MULTIKEY;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const { id, next } = c;
    const slot = slots !== undefined
      ? (slots[i] as DocSlot | null) ?? undefined
      : table.get(id);
    const old = slot?.record;
    // Key bytes only where the storage keeps bytes or already has them.
    const key = volatile
      ? slot !== undefined ? slot.knownKey : knownKey(c)
      : slot?.key ?? c.key;
    if (slot !== undefined) {
      delta -= slot.cost;
      stored--;
    }
    let cost = 0;
    let tomb = 0;
    let made: DocSlot | undefined;
    const wasLive = old !== undefined && !isExpired(old, now);
    if (next !== undefined) {
      const value = values[i];
      if (volatile) {
        cost = costs?.[i] ??
          objectRecordCost(key?.length ?? docKeyLength(prefix, id), next);
        // The slot itself is the memory storage's set (see DocSlot).
        sets.push(slot ?? (made = new DocSlot(id, prefix, next, key)));
      } else {
        const bytes = value ?? encodeRecord(next);
        cost = fileRecordCost(key!.length, next);
        sets.push({ key: key!, value: bytes, memo: next });
      }
      delta += cost;
      stored++;
      feed.put(id, next, old, undefined);
      // Back after a removal: the tombstone goes.
      if (!wasLive && c.fresh !== true && tombs.has(id)) {
        deletes.push(tombKey(collection, id));
        tomb = -1;
      }
    } else if (slot !== undefined) {
      deletes.push(slot.key);
      // A deletion leaves a tombstone (for backups and the change feed), an
      // expiry a tombstone marked as one (for the change feed only).
      if (old !== undefined) {
        sets.push(feed.gone(id, old, wasLive, now));
        tomb = 1;
      }
    }
    if (!indexed) {
      pending.push({
        id,
        key,
        slot,
        made,
        next,
        cost,
        tomb,
        removed: NONE,
        added: NONE,
      });
      continue;
    }
    const before = old === undefined ? NONE : indexes.entries(id, old);
    const after = next === undefined
      ? NONE
      : s.entriesOf(indexes, id, next, action, multikey);
    if (
      before.length === 1 && after.length === 1 &&
      sameEntry(before[0]!, after[0]!)
    ) {
      pending.push({
        id,
        key,
        slot,
        made,
        next,
        cost,
        tomb,
        removed: NONE,
        added: NONE,
      });
      continue; // One entry, unchanged.
    }
    // Entries per item are few: arrays, not sets.
    const beforeIds = before.length === 0 ? NO_IDS : before.map(entryKeyId);
    const afterIds = after.length === 0 || before.length === 0
      ? NO_IDS
      : after.map(entryKeyId);
    const removed: IndexEntry[] = before.length === 0 ? NONE_MUTABLE : [];
    const added: IndexEntry[] = [];
    for (const e of before) {
      if (afterIds.includes(entryKeyId(e))) continue;
      // A unique entry another item took over stays.
      if (e.unique && ram.holder(e) !== slot) continue;
      removed.push(e);
      delta -= indexEntryCost(entryLength(e), volatile);
      if (volatile) continue;
      // Another item of this commit may claim it (before or after): its
      // set must not be undone by this delete (checked below).
      if (e.unique) (released ??= []).push(e);
      else deletes.push(e.key);
    }
    for (const e of after) {
      if (beforeIds.length > 0 && beforeIds.includes(entryKeyId(e))) continue;
      if (e.unique) {
        const kid = entryKeyId(e);
        claimed ??= new Map();
        const mine = claimed.get(kid);
        if (mine !== undefined && mine !== id) {
          throw s.duplicate(action, collection, e, mine, id);
        }
        claimed.set(kid, id);
        const holder = ram.holder(e);
        if (holder !== undefined && holder !== slot) {
          rewritten ??= new Set(changes.map((x) => x.id));
          // One that has expired left a stale entry: take it. A holder
          // rewritten by this same commit gives it up or keeps it: known
          // once every change's entries are (below).
          const live = holder.record !== undefined &&
            !isExpired(holder.record, now);
          if (live && !rewritten.has(holder.id)) {
            throw s.duplicate(action, collection, e, holder.id, id);
          }
          if (live) {
            (held ??= []).push({ entry: e, holder: holder.id, claimant: id });
          }
        }
      }
      added.push(e);
      delta += indexEntryCost(entryLength(e), volatile);
      if (!volatile) sets.push({ key: e.key, value: key! });
    }
    pending.push({ id, key, slot, made, next, cost, tomb, removed, added });
  }
  for (const { entry, holder, claimant } of held ?? []) {
    if (keepsEntry(s, state, changes, holder, entry, action)) {
      throw s.duplicate(action, collection, entry, holder, claimant);
    }
  }
  for (const e of released ?? []) {
    // Taken over in this commit: the claimant's set writes it.
    if (claimed?.has(entryKeyId(e)) !== true) deletes.push(e.key);
  }
  for (const name of multikey) {
    sets.push({
      key: indexMetaKey(collection, name),
      value: encodeUtf8(
        JSON.stringify({ ...indexes.get(name)!, multikey: true }),
      ),
    });
  }
  s.fitsMemory(delta, action);
  return { sets, deletes, pending, delta, stored, multikey, feed, prefix };
}

/**
 * Applies a prepared commit that the storage accepted to the object tier:
 * the record table, the index trees, counts (no await in between).
 *
 * @param s The engine.
 * @param state The collection's bookkeeping.
 * @param p The prepared commit.
 * @param result The storage's answer.
 * @param committed Called once applied.
 */
export function applyLocal(
  s: EngineCore,
  state: CollectionState,
  p: Prepared,
  result: { durable?: Promise<void> | undefined },
  committed?: (durable: Promise<void> | undefined) => void,
): void {
  const table = state.table!;
  const ram = state.ram!;
  const { indexes } = state;
  for (const c of p.pending) {
    let slot = c.slot;
    if (c.tomb !== 0) {
      if (c.tomb > 0) state.tombs!.add(c.id);
      else state.tombs!.delete(c.id);
    }
    for (const e of c.removed) ram.remove(e, slot!);
    if (c.next === undefined) {
      if (slot !== undefined) table.delete(c.id);
      continue;
    }
    if (slot === undefined) {
      slot = c.made ?? new DocSlot(c.id, p.prefix, c.next, c.key);
      table.add(slot);
    } else {
      table.update(slot, c.next);
    }
    slot.cost = c.cost;
    for (const e of c.added) ram.add(e, slot);
  }
  s.account(p.delta);
  state.stored += p.stored;
  for (const name of p.multikey) {
    indexes.add({ ...indexes.get(name)!, multikey: true });
  }
  p.feed.applied("", result.durable);
  committed?.(result.durable);
}

/**
 * Whether an item that a commit rewrites still holds a unique index entry
 * in its new version (then no other item of the commit may take it; one
 * it gives up, another may). An item the commit deletes holds nothing.
 *
 * @param s The engine.
 * @param state The collection's bookkeeping (its index definitions).
 * @param changes The commit's changes.
 * @param holder The item that holds the entry now.
 * @param entry The unique entry another item of the commit claims.
 * @param action For error messages.
 * @returns `true` when the holder's new version keeps it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DuplicateKeyError, open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("u", { indexes: [{ fields: "e", unique: true }] });
 * await c.put("a", { e: 1 });
 * // "a" keeps e: 1, so "b" cannot take it in the same batch.
 * const batch = new Map([["a", { e: 1, n: 2 }], ["b", { e: 1 }]]);
 * await assert.rejects(c.putBatch(batch), DuplicateKeyError);
 * ```
 */
export function keepsEntry(
  s: EngineCore,
  state: CollectionState,
  changes: readonly ItemChange[],
  holder: string,
  entry: IndexEntry,
  action: string,
): boolean {
  const next = changes.find((c) => c.id === holder)?.next;
  if (next === undefined) return false;
  const kid = entryKeyId(entry);
  return s.entriesOf(state.indexes, holder, next, action)
    .some((e) => entryKeyId(e) === kid);
}
