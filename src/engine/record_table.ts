/**
 * The object tier of a collection on a storage that only this process
 * writes (memory, file): its documents as decoded records, by id (a `Map`)
 * and in key order (a B+tree), so that a read is a lookup and a scan a walk,
 * with no key encoding and no storage round trip.
 *
 * A slot's `record` is `undefined` when its value is kept only by the
 * storage (a file storage that keeps values on disk): the reader then asks
 * the storage for it, asynchronously. A hit in RAM is served synchronously.
 *
 * @module
 */

import { BTree, type BTreeRange, type RunIterator } from "./btree.ts";
import { compareStrings } from "./btree_node.ts";
import { encodeRecord, shareValue, type StoredRecord } from "../value_codec.ts";
import type { ObjectSet, StorageEntry } from "../storage/contract.ts";
import { encodeKey } from "../key_codec.ts";

/**
 * One document of the object tier. It is also a {@linkcode StorageEntry}
 * (cursors and exports take it as one): its bytes are made only when asked.
 * The engine updates `record` in place, so index cells that point at the
 * slot stay valid across updates.
 *
 * It is also the `ObjectSet` of its puts on the memory storage, which logs
 * it and reads `key` and `memo` only when it folds its log, before any
 * read: the record it then finds is the one of the last commit that logged
 * the slot, as every change of `record` is such a commit (no copy per put).
 */
export class DocSlot implements StorageEntry, ObjectSet {
  /** The document's id. */
  readonly id: string;
  /** The decoded record, or `undefined` while only the storage holds it. */
  #record: StoredRecord | undefined;
  /**
   * The record's value, expiry and tags, kept on the slot so that a count
   * reads one object less per document (see {@linkcode DocSlot.set}).
   */
  doc: unknown;
  /** The record's `expiresAt`. */
  expiresAt: number | undefined;
  /** The record's `tags`. */
  tags: readonly string[] | undefined;
  /** The memory estimate accounted for it. */
  cost = 0;
  /** The storage's note (see `ObjectSet.logged`). */
  logged: number | undefined = undefined;
  /** Its place in its table's dense array (see `RecordTable.dense`). */
  pos = -1;
  readonly #prefix: Uint8Array;
  #key: Uint8Array | undefined;
  /** `doc` is deeply frozen (it was shared once, see `shared()`). */
  #frozen = false;

  /**
   * @param id The document's id.
   * @param prefix Its collection's key prefix (shared, not copied).
   * @param record Its record.
   * @param key Its storage key, when already made (else made when first
   *   asked: a write to the object tier makes no bytes).
   */
  constructor(
    id: string,
    prefix: Uint8Array,
    record: StoredRecord | undefined,
    key?: Uint8Array,
  ) {
    this.id = id;
    this.#record = record;
    this.doc = record?.value;
    this.expiresAt = record?.expiresAt;
    this.tags = record?.tags;
    this.#prefix = prefix;
    this.#key = key;
  }

  /** The decoded record, or `undefined` while only the storage holds it. */
  get record(): StoredRecord | undefined {
    return this.#record;
  }

  /**
   * Replaces the record (an update: index cells keep pointing at the slot).
   *
   * @param record The new record.
   */
  set(record: StoredRecord): void {
    this.#record = record;
    this.#frozen = false;
    this.doc = record.value;
    this.expiresAt = record.expiresAt;
    this.tags = record.tags;
  }

  /**
   * The value to hand out to a `readonly` reader: `doc` itself, deeply
   * frozen on first use (remembered, so later readers skip the check), or
   * a copy when it holds dates or byte arrays (see `shareValue`).
   *
   * @returns The shared value.
   */
  shared(): unknown {
    if (this.#frozen) return this.doc;
    const doc = this.doc;
    const out = shareValue(doc);
    if (out === doc) this.#frozen = true;
    return out;
  }

  /** The document's storage key (made on first use). */
  get key(): Uint8Array {
    return this.#key ??= encodeKey([this.id], this.#prefix);
  }

  /** The storage key if it was made, else `undefined`. */
  get knownKey(): Uint8Array | undefined {
    return this.#key;
  }

  /** The record (the engine's decoded form). */
  get memo(): StoredRecord | undefined {
    return this.record;
  }

  /**
   * The bytes of a record (an object tier's `ObjectSet.encode`: the slot
   * is handed to the memory storage as the set of its put).
   *
   * @param memo The record.
   * @returns Its encoding.
   */
  encode(memo: unknown): Uint8Array {
    return encodeRecord(memo as StoredRecord);
  }

  /** The encoded record, made on demand (exports, measurements). */
  get value(): Uint8Array {
    return encodeRecord(this.record!);
  }

  /** Not tracked by the object tier. */
  get versionstamp(): string {
    return "";
  }
}

/**
 * The length of a document's storage key (`encodeKey([id], prefix)`)
 * without making it: the prefix, a tag, the id in UTF-8 (a NUL escaped in
 * two bytes) and a terminator.
 *
 * @param prefix The collection's key prefix.
 * @param id The document's id (well-formed UTF-16).
 * @returns Bytes.
 */
export function docKeyLength(prefix: Uint8Array, id: string): number {
  let n = prefix.length + 2;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    // A surrogate pair is 4 bytes: 2 for each half.
    n += c === 0
      ? 2
      : c < 0x80
      ? 1
      : c < 0x800 || (c >= 0xd800 && c < 0xe000)
      ? 2
      : 3;
  }
  return n;
}

/**
 * A key for the B+tree whose JavaScript (UTF-16) order is the UTF-8 byte
 * order of `id`, the order of storage keys: ids with characters at or above
 * U+D800 have them remapped so that surrogate pairs sort after U+FFFF.
 *
 * @param id A document id (well-formed UTF-16).
 * @returns The sort key.
 */
export function sortKey(id: string): string {
  if (!WIDE.test(id)) return id;
  let out = "";
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    out += String.fromCharCode(
      c < 0xd800 ? c : c < 0xe000 ? c + 0x2000 : c - 0x800,
    );
  }
  return out;
}
const WIDE = /[\ud800-\uffff]/;

/** A slot a count cannot skip reading: it has an expiry or tags. */
function marked(slot: DocSlot): boolean {
  return slot.expiresAt !== undefined || slot.tags !== undefined;
}

/**
 * One collection's documents, by id and in key order.
 *
 * The key order takes new documents lazily: `add` puts the slot in a
 * pending run (a `Map.set` and an array push per put, no tree insertion),
 * and the run is sorted and merged into the tree by the first reader that
 * needs the order ({@linkcode RecordTable.slots} at once, or
 * {@linkcode RecordTable.settle} in chunks between turns of the event
 * loop). A slot deleted or replaced while pending is dropped at the merge.
 *
 * A dense array holds every slot too ({@linkcode RecordTable.dense}), for
 * walks in no order (a count): an index loop over an array, no iterator.
 * A deleted slot leaves a hole that a later add fills; the holes are
 * squeezed out only while no walk holds the array
 * ({@linkcode RecordTable.pin}), so a walk that pauses never skips nor
 * repeats a slot that stays in the table meanwhile.
 */
export class RecordTable {
  readonly #byId = new Map<string, DocSlot>();
  #dense: (DocSlot | undefined)[] = [];
  /** Each dense slot's `doc`, at the same place (a count reads only it). */
  #docs: unknown[] = [];
  /** Slots with an expiry or tags (a count must then read the slots). */
  #marked = 0;
  /** Holes of `#dense`, filled by adds. */
  #free: number[] = [];
  /** Walks holding `#dense` (no squeezing while any does). */
  #pins = 0;
  readonly #order = new BTree<string, DocSlot>(compareStrings);
  /** Slots added since the last merge (some may be gone since). */
  #pending: DocSlot[] = [];

  #misses = false;

  /**
   * Whether a slot whose value only the storage holds was ever added (until
   * {@linkcode RecordTable.clear}): when not, every slot holds its record.
   */
  get mayMiss(): boolean {
    return this.#misses;
  }

  /** How many documents (expired or not) the table holds. */
  get size(): number {
    return this.#byId.size;
  }

  /**
   * The slot of a document.
   *
   * @param id The document's id.
   * @returns Its slot, or `undefined`.
   */
  get(id: string): DocSlot | undefined {
    return this.#byId.get(id);
  }

  /**
   * Adds a new slot (its id must be absent).
   *
   * @param slot The slot.
   */
  add(slot: DocSlot): void {
    if (slot.record === undefined) this.#misses = true;
    this.#byId.set(slot.id, slot);
    this.#pending.push(slot);
    const pos = this.#free.length > 0 ? this.#free.pop()! : this.#dense.length;
    this.#dense[pos] = slot;
    this.#docs[pos] = slot.doc;
    slot.pos = pos;
    if (marked(slot)) this.#marked++;
  }

  /**
   * Replaces a slot's record (an update: index cells keep pointing at the
   * slot).
   *
   * @param slot A slot of this table.
   * @param record The new record.
   */
  update(slot: DocSlot, record: StoredRecord): void {
    if (marked(slot)) this.#marked--;
    slot.set(record);
    if (marked(slot)) this.#marked++;
    if (slot.pos >= 0) this.#docs[slot.pos] = slot.doc;
  }

  /**
   * Whether every slot's record is in RAM with no expiry and no tags: a
   * count may then read {@linkcode RecordTable.docs} alone.
   */
  get plain(): boolean {
    return this.#marked === 0 && !this.#misses;
  }

  /** How many added slots wait to be merged into the key order. */
  get pending(): number {
    return this.#pending.length;
  }

  /**
   * Merges added slots into the key order: sorted, then inserted in order
   * (neighbouring leaves, warm in cache).
   *
   * @param limit Merge at most this many (default: all).
   * @returns How many still wait.
   */
  settle(limit: number = Infinity): number {
    const pending = this.#pending;
    const n = pending.length;
    if (n === 0) return 0;
    let run: DocSlot[];
    if (limit >= n) {
      run = pending;
      this.#pending = [];
    } else {
      run = pending.splice(n - limit, limit);
    }
    const byId = this.#byId;
    const keys: string[] = [];
    const slots: DocSlot[] = [];
    for (let i = 0; i < run.length; i++) {
      const slot = run[i]!;
      // Deleted, or deleted and added again, since: not this one.
      if (byId.get(slot.id) !== slot) continue;
      keys.push(sortKey(slot.id));
      slots.push(slot);
    }
    const order = keys.map((_, i) => i).sort((a, b) =>
      keys[a]! < keys[b]! ? -1 : 1
    );
    const tree = this.#order;
    for (let i = 0; i < order.length; i++) {
      const j = order[i]!;
      tree.set(keys[j]!, slots[j]!);
    }
    return this.#pending.length;
  }

  /**
   * Removes a document's slot.
   *
   * @param id The document's id.
   * @returns The slot removed, if any.
   */
  delete(id: string): DocSlot | undefined {
    const slot = this.#byId.get(id);
    if (slot === undefined) return undefined;
    this.#byId.delete(id);
    this.#order.delete(sortKey(id));
    this.#dense[slot.pos] = undefined;
    this.#docs[slot.pos] = undefined;
    this.#free.push(slot.pos);
    if (marked(slot)) this.#marked--;
    slot.pos = -1;
    this.#squeeze();
    return slot;
  }

  /** Removes every slot. */
  clear(): void {
    this.#misses = false;
    this.#byId.clear();
    this.#order.clear();
    this.#pending = [];
    // A walk holding the old array reads the new one from its next chunk.
    this.#dense = [];
    this.#docs = [];
    this.#free = [];
    this.#marked = 0;
  }

  /**
   * Every slot at its place, with holes (`undefined`) where slots went: for
   * index loops in no particular order. Read it again after a pause (a
   * `clear()` replaces it), and {@linkcode RecordTable.pin} it across
   * pauses.
   */
  get dense(): readonly (DocSlot | undefined)[] {
    return this.#dense;
  }

  /**
   * Each slot's `doc` at its place in {@linkcode RecordTable.dense}
   * (`undefined` at holes): while the table is
   * {@linkcode RecordTable.plain}, a count reads only these.
   */
  get docs(): readonly unknown[] {
    return this.#docs;
  }

  /**
   * Keeps every slot at its place in {@linkcode RecordTable.dense} until
   * the returned function is called (holes are then squeezed out if many).
   *
   * @returns The release (idempotent).
   */
  pin(): () => void {
    this.#pins++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#pins--;
      this.#squeeze();
    };
  }

  /** Squeezes out the holes when they are most of the array, unpinned. */
  #squeeze(): void {
    const free = this.#free.length;
    if (this.#pins > 0 || free < 1024 || free * 2 < this.#dense.length) return;
    const dense: DocSlot[] = [];
    const docs: unknown[] = [];
    for (const slot of this.#dense) {
      if (slot === undefined) continue;
      slot.pos = dense.length;
      dense.push(slot);
      docs.push(slot.doc);
    }
    this.#dense = dense;
    this.#docs = docs;
    this.#free = [];
  }

  /**
   * The slots in key order (reversed with `reverse`), after (before, when
   * reversed) the id `after` if given.
   *
   * @param reverse Highest id first.
   * @param after Start after this id.
   * @returns The slots, lazily.
   */
  slots(reverse: boolean, after?: string): RunIterator<DocSlot> {
    this.settle();
    const range: BTreeRange<string> = { reverse };
    if (after !== undefined) {
      if (reverse) range.lt = sortKey(after);
      else range.gt = sortKey(after);
    }
    return this.#order.values(range);
  }

  /**
   * Every slot, in no particular order (cheaper than {@linkcode slots}).
   *
   * @returns The slots.
   */
  all(): IterableIterator<DocSlot> {
    return this.#byId.values();
  }
}
