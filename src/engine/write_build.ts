/**
 * Building a write: the new record of each put (versions, timestamps,
 * expiry, insertion sequence), size checks, and the bookkeeping after the
 * commit (TTL schedule, counters, change feed). Shared by the full pipeline
 * (write.ts) and the fast path (local_write.ts).
 *
 * @module
 */

import { DuplicateKeyError, IntegrityError, TooLargeError } from "../errors.ts";
import type { StorageEntry, StorageSet } from "../storage/contract.ts";
import type { Change } from "../types.ts";
import { encodeRecord, type StoredRecord } from "../value_codec.ts";
import { lastRecordBound, objectRecordCost } from "./size_estimate.ts";
import type {
  CollectionState,
  EngineCore,
  ItemChange,
  PutOp,
  WriteOp,
} from "./state.ts";
import { isExpired } from "./layout.ts";
import { docKeyLength } from "./record_table.ts";
import { encodeKey } from "../key_codec.ts";

/** An item's change, whose storage key is made only when asked. */
export class LazyChange implements ItemChange {
  /** The item's id. */
  readonly id: string;
  /** Its current entry. */
  readonly entry: StorageEntry | null;
  /** Its current record. */
  readonly old: StoredRecord | undefined;
  /** Its new record (`undefined`: removed). */
  readonly next: StoredRecord | undefined;
  /** The id was just generated. */
  readonly fresh: boolean;
  readonly #prefix: Uint8Array;
  #key: Uint8Array | undefined;

  /**
   * @param id The item's id.
   * @param prefix Its collection's key prefix.
   * @param key Its storage key, if already made.
   * @param entry Its current entry.
   * @param old Its current record.
   * @param next Its new record.
   * @param fresh The id was just generated.
   */
  constructor(
    id: string,
    prefix: Uint8Array,
    key: Uint8Array | undefined,
    entry: StorageEntry | null,
    old: StoredRecord | undefined,
    next: StoredRecord | undefined,
    fresh: boolean,
  ) {
    this.id = id;
    this.#prefix = prefix;
    this.#key = key;
    this.entry = entry;
    this.old = old;
    this.next = next;
    this.fresh = fresh;
  }

  /** The storage key (made on first use). */
  get key(): Uint8Array {
    return this.#key ??= encodeKey([this.id], this.#prefix);
  }

  /** The storage key if it was made, else `undefined`. */
  get knownKey(): Uint8Array | undefined {
    return this.#key;
  }
}

/**
 * The record a put writes: its metadata as given (import, restore) or
 * computed from the item it replaces.
 *
 * @param s The engine.
 * @param op The put.
 * @param old The current record, if any.
 * @param live Whether `old` is visible (not expired).
 * @param now The time of the write.
 * @param seq The insertion sequence number of the record.
 * @returns The record, with a new change feed position.
 */
export function newRecord(
  s: EngineCore,
  op: PutOp,
  old: StoredRecord | undefined,
  live: boolean,
  now: number,
  seq: number,
): StoredRecord {
  const meta = op.meta;
  if (meta !== undefined) {
    return {
      value: op.value.value,
      tags: op.tags,
      expiresAt: meta.expiresAt,
      createdAt: meta.createdAt,
      updatedAt: meta.updatedAt,
      version: meta.version,
      seq,
      feed: s.feedIndex.next(),
      dates: op.value.dates,
    };
  }
  const keep = op.keepMeta === true && live;
  return {
    value: op.value.value,
    tags: keep ? old!.tags : op.tags,
    expiresAt: keep
      ? old!.expiresAt
      : op.ttl === undefined
      ? undefined
      : now + op.ttl,
    createdAt: live ? old!.createdAt : now,
    updatedAt: now,
    version: live ? old!.version + 1 : 1,
    seq,
    feed: s.feedIndex.next(),
    dates: op.value.dates,
  };
}

/** A write's changes, ready to commit. */
export interface Built {
  /** Per step, whether a visible item existed before. */
  readonly existed: boolean[];
  /** Per step, the item's change. */
  readonly changes: ItemChange[];
  /** Per step, the encoded record (where the storage needs bytes). */
  readonly values: (Uint8Array | undefined)[];
  /** Per step, the record's memory estimate (object tier). */
  readonly costs: (number | undefined)[];
  /** The collection's insertion sequence after the write. */
  readonly seq: number;
  /** The time the write was built at. */
  readonly now: number;
}

/**
 * Builds the changes of a write over the items' current entries.
 *
 * @param s The engine.
 * @param state The collection's bookkeeping.
 * @param ops The steps.
 * @param action For error messages.
 * @param keys The items' storage keys, where already made (else made when
 *   first asked, from `prefix`).
 * @param current The items' current entries.
 * @param prefix The collection's key prefix.
 * @returns The changes, or `undefined` when an expected version does not
 *   match (a lost race).
 * @throws {DuplicateKeyError} An insert over a visible item.
 * @throws {TooLargeError} A record over `maxValueBytes`.
 */
export function buildChanges(
  s: EngineCore,
  state: CollectionState,
  ops: readonly WriteOp[],
  action: string,
  keys: readonly (Uint8Array | undefined)[],
  current: readonly (StorageEntry | null)[],
  prefix: Uint8Array,
): Built | undefined {
  const { maxValueBytes } = s.settings;
  const now = s.now();
  const existed: boolean[] = [];
  const changes: ItemChange[] = [];
  const values: (Uint8Array | undefined)[] = [];
  const costs: (number | undefined)[] = [];
  const { volatile } = s;
  // A storage that keeps values on disk and that only we write (the file
  // storage) takes the records of puts as RecordSets: no bytes here.
  const lazy = s.valuesOnDisk && !s.shared;
  let seq = state.seq;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const entry = current[i] ?? null;
    const old = entry === null
      ? undefined
      : currentRecord(s, entry, op, action);
    const live = old !== undefined && !isExpired(old, now);
    // A damaged item (see `currentRecord`) is deleted as one that existed.
    existed.push(live || (entry !== null && old === undefined));
    if (
      op.expectedVersion !== undefined &&
      (live ? old.version : 0) !== op.expectedVersion
    ) {
      return undefined; // changed since `build` read it: a lost race
    }
    let next: StoredRecord | undefined;
    if (op.kind === "put") {
      if (op.mustBeNew === true && live) {
        throw new DuplicateKeyError(
          `${action}: an item with id '${op.id}' already exists`,
          { key: op.id, holder: op.id },
        );
      }
      next = newRecord(s, op, old, live, now, live ? old.seq : ++seq);
      // Bytes only where the storage keeps them, or to measure a record
      // that may be over the limit.
      let value: Uint8Array | undefined;
      let cost: number | undefined;
      if (volatile || lazy) {
        // The estimate bounds the encoded size: the record is encoded here
        // only when it may be over the limit (the memory storage keeps the
        // record, the file storage writes it from the record: RecordSet).
        cost = objectRecordCost(
          keys[i]?.length ?? docKeyLength(prefix, op.id),
          next,
        );
        if (lastRecordBound() > maxValueBytes) value = encodeRecord(next);
      } else {
        value = encodeRecord(next);
      }
      if (value !== undefined && value.length > maxValueBytes) {
        throw new TooLargeError(
          `${action}: the record for '${op.id}' is ${value.length} bytes, over maxValueBytes ${maxValueBytes}`,
        );
      }
      values.push(volatile ? undefined : value);
      costs.push(cost);
    } else {
      values.push(undefined);
      costs.push(undefined);
    }
    changes.push(
      new LazyChange(
        op.id,
        prefix,
        keys[i],
        entry,
        old,
        next,
        op.kind === "put" && op.fresh === true,
      ),
    );
  }
  return { existed, changes, values, costs, seq, now };
}

/**
 * An item's current record, for a write over it: a plain `put` or a
 * `delete` may go over a damaged item (see {@linkcode recordOrDamaged});
 * any other write fails with the `IntegrityError`.
 */
function currentRecord(
  s: EngineCore,
  entry: StorageEntry,
  op: WriteOp,
  action: string,
): StoredRecord | undefined {
  const heals = op.expectedVersion === undefined &&
    (op.kind === "delete" ||
      (op.mustBeNew !== true && op.keepMeta !== true &&
        op.meta === undefined));
  return recordOrDamaged(
    s,
    entry,
    op.id,
    action,
    op.kind === "delete" ? "deleted" : "replaced",
    heals,
  );
}

/**
 * An item's record, or `undefined` for a damaged item that the write
 * removes or replaces: on a shared storage (Deno KV), one whose stored
 * value cannot be read (another program wrote there; a record that does
 * not decode). The commit then also removes the index entries that point
 * at it (their values unknown: found by a scan). Warns the logger.
 *
 * @param s The engine.
 * @param entry The item's entry.
 * @param id Its key.
 * @param action For error messages.
 * @param what What the write does to it, for the warning.
 * @param heals Whether the write may go over a damaged item.
 * @returns The record, or `undefined` when damaged.
 * @throws {IntegrityError} When damaged and the write may not heal it, or
 *   on a local storage.
 */
export function recordOrDamaged(
  s: EngineCore,
  entry: StorageEntry,
  id: string,
  action: string,
  what: "deleted" | "replaced",
  heals = true,
): StoredRecord | undefined {
  try {
    return s.decode(entry, action);
  } catch (e) {
    if (!heals || !(e instanceof IntegrityError) || !s.shared) throw e;
    s.settings.log?.warn(
      "damaged-item",
      `${action}: the stored value of '${id}' cannot be read (${e.message}); it is ${what}, with the index entries that point at it`,
      { key: id },
    );
    return undefined;
  }
}

/**
 * The bookkeeping of a committed write: insertion sequence, TTL schedule,
 * counters, and the changes told to watchers once durable. Runs with no
 * await between the commit and it.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param state Its bookkeeping.
 * @param ops The steps.
 * @param built What was committed.
 * @param durable The storage's durability promise, if any.
 */
export function afterCommit(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  ops: readonly WriteOp[],
  built: Built,
  durable: Promise<void> | undefined,
): void {
  const { changes, existed, seq } = built;
  state.seq = seq;
  const { schedule, inflight } = state;
  const told: Change[] | undefined = s.listeners.size > 0 ? [] : undefined;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const next = changes[i]!.next;
    // This write supersedes a sweep that may be waiting for the key.
    if (inflight.size > 0) inflight.delete(op.id);
    if (next?.expiresAt !== undefined) {
      schedule.set(op.id, next.expiresAt);
    } else if (schedule.size > 0) {
      schedule.delete(op.id);
    }
    if (op.kind === "put") s.ops.puts++;
    else if (existed[i]) s.ops.deletes++;
    if (told !== undefined && (next !== undefined || existed[i])) {
      told.push(
        next === undefined ? { type: "delete", collection, key: op.id } : {
          type: "put",
          collection,
          key: op.id,
          version: next.version,
        },
      );
    }
  }
  // Told once the commit is durable, never if it is taken back.
  if (told !== undefined) s.feed.publish(told, durable);
}

/**
 * A document's set whose bytes are made only when first read
 * (`StorageSet.lazy`): the file storage writes the record from `memo`, and
 * the record is never encoded whole.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordSet } from "./write_build.ts";
 * import { decodeRecord } from "../value_codec.ts";
 * const record = {
 *   value: { a: 1 }, tags: undefined, expiresAt: undefined, createdAt: 1,
 *   updatedAt: 1, version: 1, seq: 1, dates: undefined,
 * };
 * const set = new RecordSet(new Uint8Array([1]), record);
 * assert(set.lazy);
 * assert.equal(decodeRecord(set.value, "test").version, 1);
 * ```
 */
export class RecordSet implements StorageSet {
  /** The document's key. */
  readonly key: Uint8Array;
  /** Its record. */
  readonly memo: StoredRecord;
  #value: Uint8Array | undefined;

  /**
   * @param key The document's key.
   * @param memo Its record.
   */
  constructor(key: Uint8Array, memo: StoredRecord) {
    this.key = key;
    this.memo = memo;
  }

  /**
   * `value` is made from `memo` on first read. A getter, not an own field:
   * a wrapper that copies the set with other bytes (`{ ...set, value }`)
   * does not carry it over.
   */
  get lazy(): boolean {
    return true;
  }

  /** The encoded record, made on first read. */
  get value(): Uint8Array {
    return this.#value ??= encodeRecord(this.memo);
  }
}
