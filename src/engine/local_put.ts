/**
 * The fast path of one put on the memory storage: a write of a single item
 * makes its record, its slot (when new) and its index entries, and nothing
 * else: no per-commit arrays, no change objects, no prepared commit. Same
 * checks, order and errors as the batch form ({@linkcode writeNow}, which
 * calls this for a single put): every check runs before anything changes,
 * the storage takes the commit before the object tier changes.
 *
 * @module
 */

import { ConflictError, DuplicateKeyError, TooLargeError } from "../errors.ts";
import type { IndexEntry } from "./indexes.ts";
import { entryKeyId, entryLength, sameEntry } from "./indexes.ts";
import type {
  ObjectCommit,
  ObjectSet,
  StorageSet,
} from "../storage/contract.ts";
import { encodeRecord } from "../value_codec.ts";
import {
  indexEntryCost,
  lastRecordBound,
  objectRecordCost,
} from "./size_estimate.ts";
import type { CollectionState, EngineCore, PutOp } from "./state.ts";
import { indexMetaKey, isExpired, tombKey } from "./layout.ts";
import { docKeyLength, DocSlot } from "./record_table.ts";
import { encodeUtf8 } from "../bytes.ts";
import { PUT } from "./feed_format.ts";
import { newRecord } from "./write_build.ts";

const NONE: readonly IndexEntry[] = [];
const NO_DELETES: readonly Uint8Array[] = [];
/** The set of the one-set commit, filled for the call only. */
const ONE_SET: ObjectSet[] = [];
const ONE_COMMIT: ObjectCommit = { sets: ONE_SET, deletes: NO_DELETES };

/**
 * Applies one put at once, on a storage whose object tier is volatile
 * (memory), when nothing is queued.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param state Its bookkeeping.
 * @param op The put.
 * @param action For error messages.
 * @returns Whether a visible item existed before; `undefined` when the put
 *   must take the general path (nothing changed).
 * @throws {TooLargeError} The record is over `maxValueBytes`.
 * @throws {QuotaError} The write would pass `memoryLimit`.
 * @throws {DuplicateKeyError} The id (an insert) or a unique index value is
 *   taken.
 */
export function putNow(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  op: PutOp,
  action: string,
): boolean | undefined {
  const table = state.table!;
  const id = op.id;
  const slot = table.get(id);
  const old = slot?.record;
  if (slot !== undefined && old === undefined) return undefined;
  const now = s.now();
  const live = old !== undefined && !isExpired(old, now);
  if (
    op.expectedVersion !== undefined &&
    (live ? old.version : 0) !== op.expectedVersion
  ) {
    return undefined; // the general path reports the conflict
  }
  if (op.mustBeNew === true && live) {
    throw new DuplicateKeyError(
      `${action}: an item with id '${id}' already exists`,
      { key: id, holder: id },
    );
  }
  const next = newRecord(
    s,
    op,
    old,
    live,
    now,
    live ? old.seq : state.seq + 1,
  );
  const prefix = s.collectionPrefix(collection);
  const known = slot?.knownKey;
  const cost = objectRecordCost(
    known?.length ?? docKeyLength(prefix, id),
    next,
  );
  const { maxValueBytes } = s.settings;
  if (lastRecordBound() > maxValueBytes) {
    const bytes = encodeRecord(next).length;
    if (bytes > maxValueBytes) {
      throw new TooLargeError(
        `${action}: the record for '${id}' is ${bytes} bytes, over maxValueBytes ${maxValueBytes}`,
      );
    }
  }
  let delta = cost - (slot?.cost ?? 0);
  // Index entries: checked before anything changes.
  const { indexes } = state;
  let removed = NONE;
  let added = NONE;
  let multikey: Set<string> | undefined;
  if (indexes.size > 0 || indexes.ordered) {
    const ram = state.ram!;
    multikey = new Set();
    const before = old === undefined ? NONE : indexes.entries(id, old);
    const after = s.entriesOf(indexes, id, next, action, multikey);
    if (
      !(before.length === 1 && after.length === 1 &&
        sameEntry(before[0]!, after[0]!))
    ) {
      const beforeIds = before.length === 0 ? [] : before.map(entryKeyId);
      const afterIds = before.length === 0 ? [] : after.map(entryKeyId);
      const out: IndexEntry[] = [];
      for (const e of before) {
        if (afterIds.includes(entryKeyId(e))) continue;
        if (e.unique && ram.holder(e) !== slot) continue;
        out.push(e);
        delta -= indexEntryCost(entryLength(e), true);
      }
      const into: IndexEntry[] = [];
      for (const e of after) {
        if (beforeIds.length > 0 && beforeIds.includes(entryKeyId(e))) {
          continue;
        }
        if (e.unique) {
          const holder = ram.holder(e);
          // One that has expired left a stale entry: take it.
          if (
            holder !== undefined && holder !== slot && holder.id !== id &&
            holder.record !== undefined && !isExpired(holder.record, now)
          ) {
            throw s.duplicate(action, collection, e, holder.id, id);
          }
        }
        into.push(e);
        delta += indexEntryCost(entryLength(e), true);
      }
      removed = out;
      added = into;
    }
  }
  s.fitsMemory(delta, action);
  // Back after a removal: the tombstone goes.
  const tombs = state.tombs!;
  const untomb = !live && op.fresh !== true && tombs.size > 0 &&
    tombs.has(id);
  const target = slot ?? new DocSlot(id, prefix, next, known);
  const plain = !untomb && (multikey === undefined || multikey.size === 0);
  // The common commit (one set) reuses one commit object (ObjectTier).
  const sets: (ObjectSet | StorageSet)[] = plain ? ONE_SET : [target];
  if (plain) ONE_SET[0] = target;
  if (multikey !== undefined && multikey.size > 0) {
    for (const name of multikey) {
      sets.push({
        key: indexMetaKey(collection, name),
        value: encodeUtf8(
          JSON.stringify({ ...indexes.get(name)!, multikey: true }),
        ),
      });
    }
  }
  let result;
  try {
    result = s.storage.objects!.commit(
      plain ? ONE_COMMIT : {
        sets,
        deletes: untomb ? [tombKey(collection, id)] : NO_DELETES,
      },
    );
  } finally {
    ONE_SET.length = 0;
  }
  if (!result.ok) {
    throw new ConflictError(`${action}: the storage refused the commit`);
  }
  // Applied to the object tier (no await since the checks).
  if (untomb) tombs.delete(id);
  if (multikey !== undefined) {
    for (const name of multikey) {
      indexes.add({ ...indexes.get(name)!, multikey: true });
    }
  }
  const ram = state.ram!;
  for (const e of removed) ram.remove(e, target);
  if (slot === undefined) {
    table.add(target);
    state.stored++;
  } else {
    table.update(slot, next);
  }
  target.cost = cost;
  for (const e of added) ram.add(e, target);
  s.account(delta);
  const durable = result.durable;
  s.feedIndex.appliedOne(next.feed!, collection, id, PUT, durable);
  // The bookkeeping of afterCommit (write_build.ts), for one put.
  if (!live) state.seq = next.seq;
  const { schedule, inflight } = state;
  if (inflight.size > 0) inflight.delete(id);
  if (next.expiresAt !== undefined) schedule.set(id, next.expiresAt);
  else if (schedule.size > 0) schedule.delete(id);
  s.ops.puts++;
  if (s.listeners.size > 0) {
    s.feed.publish([{
      type: "put",
      collection,
      key: id,
      version: next.version,
    }], durable);
  }
  return live;
}
