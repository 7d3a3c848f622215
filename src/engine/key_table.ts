/**
 * The in-memory ordered key table behind the memory and file storages: a
 * B+tree of byte keys for scans plus a hash index for point reads, with
 * synchronous checks and writes and an undo log to take writes back.
 *
 * @module
 */

import { pageRange, scanBounds } from "./scan_range.ts";
import { BTree } from "./btree.ts";
import { binaryString } from "../bytes.ts";
import type {
  ObjectSet,
  ScanOptions,
  StorageCheck,
  StorageEntry,
} from "../storage/contract.ts";

/** Entries are collected this many at a time; the tree is re-seeked between. */
const SCAN_BATCH = 256;

/** One stored entry; replaced (never mutated) on every write of its key. */
export interface Slot extends StorageEntry {
  /** The decoded companion of the value, if the writer gave one. */
  readonly memo: unknown;
}

/** Where a key lives: the tree and the hash index share it. */
interface Cell {
  readonly key: Uint8Array;
  /** The key as a binary string (one char per byte): the tree's key. */
  readonly id: string;
  slot: Slot;
}

/** What a write replaced: the key and its previous slot (`undefined`: absent). */
export interface Undo {
  /** The key written or deleted. */
  readonly key: Uint8Array;
  /** The slot before the write, or `undefined` when the key was absent. */
  readonly before: Slot | undefined;
}

/** A key to write, as the table takes it. */
export interface TableSet {
  /** The key. */
  readonly key: Uint8Array;
  /** The value. */
  readonly value: Uint8Array;
  /** The decoded companion, kept with the value. */
  readonly memo?: unknown;
}

/** A slot of the object tier: bytes made on first read of `value`. */
class ObjectSlot implements Slot {
  readonly key: Uint8Array;
  readonly memo: unknown;
  readonly versionstamp: string;
  readonly #encode: (memo: unknown) => Uint8Array;
  #value: Uint8Array | undefined;

  constructor(set: ObjectSet, versionstamp: string) {
    this.key = set.key;
    this.memo = set.memo;
    this.#encode = set.encode;
    this.versionstamp = versionstamp;
  }

  get value(): Uint8Array {
    return this.#value ??= this.#encode(this.memo);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** FNV-1a over the bytes: the hash index's bucket. */
function hashBytes(key: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key[i]!, 0x01000193);
  }
  return h;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Ordered byte keys in memory. Every method but `scan` is synchronous, so a
 * storage can check and apply a commit with no `await` in between.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyTable, type Undo } from "./key_table.ts";
 * const table = new KeyTable();
 * const key = new Uint8Array([1]);
 * const undo: Undo[] = [];
 * table.apply([{ key, value: new Uint8Array([2]) }], [], "1", undo);
 * assert(table.get(key)?.value[0] === 2);
 * table.revert(undo);
 * assert(table.get(key) === undefined);
 * ```
 */
export class KeyTable {
  #tree = new BTree<string, Cell>(compareStrings);
  #index = new Map<number, Cell | Cell[]>();

  /** How many keys the table holds. */
  get size(): number {
    return this.#tree.size;
  }

  #find(key: Uint8Array, hash: number): Cell | undefined {
    const bucket = this.#index.get(hash);
    if (bucket === undefined) return undefined;
    if (!Array.isArray(bucket)) {
      return sameBytes(bucket.key, key) ? bucket : undefined;
    }
    for (const cell of bucket) if (sameBytes(cell.key, key)) return cell;
    return undefined;
  }

  #insert(cell: Cell, hash: number): void {
    const bucket = this.#index.get(hash);
    if (bucket === undefined) this.#index.set(hash, cell);
    else if (Array.isArray(bucket)) bucket.push(cell);
    else this.#index.set(hash, [bucket, cell]);
    this.#tree.set(cell.id, cell);
  }

  #remove(key: Uint8Array, hash: number): Cell | undefined {
    const bucket = this.#index.get(hash);
    if (bucket === undefined) return undefined;
    let cell: Cell;
    if (!Array.isArray(bucket)) {
      if (!sameBytes(bucket.key, key)) return undefined;
      cell = bucket;
      this.#index.delete(hash);
    } else {
      const i = bucket.findIndex((c) => sameBytes(c.key, key));
      if (i < 0) return undefined;
      cell = bucket[i]!;
      bucket.splice(i, 1);
      if (bucket.length === 1) this.#index.set(hash, bucket[0]!);
    }
    this.#tree.delete(cell.id);
    return cell;
  }

  #put(key: Uint8Array, slot: Slot): Slot | undefined {
    const hash = hashBytes(key);
    const cell = this.#find(key, hash);
    if (cell !== undefined) {
      const before = cell.slot;
      cell.slot = slot;
      return before;
    }
    this.#insert({ key: slot.key, id: binaryString(key), slot }, hash);
    return undefined;
  }

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns Its slot, or `undefined`.
   */
  get(key: Uint8Array): Slot | undefined {
    return this.#find(key, hashBytes(key))?.slot;
  }

  /**
   * Reads several keys.
   *
   * @param keys The keys.
   * @returns A slot or `null` per key, in order.
   */
  getMany(keys: readonly Uint8Array[]): (StorageEntry | null)[] {
    const out: (StorageEntry | null)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      out[i] = this.#find(keys[i]!, hashBytes(keys[i]!))?.slot ?? null;
    }
    return out;
  }

  /**
   * Whether every check holds (a key's versionstamp, or its absence).
   *
   * @param checks The checks.
   * @returns `true` when all pass.
   */
  check(checks: readonly StorageCheck[] | undefined): boolean {
    if (checks === undefined) return true;
    for (const check of checks) {
      const current = this.get(check.key)?.versionstamp ?? null;
      if (current !== check.versionstamp) return false;
    }
    return true;
  }

  /**
   * Writes and deletes keys; every written key gets `versionstamp`.
   *
   * @param sets Keys to write (values kept as they are, not copied).
   * @param deletes Keys to delete.
   * @param versionstamp The written keys' new versionstamp.
   * @param undo When given, receives what to pass to `revert` to take the
   *   writes back.
   */
  apply(
    sets: readonly (TableSet | ObjectSet)[],
    deletes: readonly Uint8Array[],
    versionstamp: string,
    undo?: Undo[],
  ): void {
    for (const set of sets) {
      const before = this.#put(
        set.key,
        "encode" in set ? new ObjectSlot(set, versionstamp) : {
          key: set.key,
          value: set.value,
          versionstamp,
          memo: set.memo,
        },
      );
      undo?.push({ key: set.key, before });
    }
    for (const key of deletes) {
      const cell = this.#remove(key, hashBytes(key));
      if (cell !== undefined) undo?.push({ key, before: cell.slot });
    }
  }

  /**
   * Takes writes back, newest first.
   *
   * @param undo What `apply` returned (several, concatenated in apply order).
   */
  revert(undo: readonly Undo[]): void {
    for (let i = undo.length - 1; i >= 0; i--) {
      const { key, before } = undo[i]!;
      if (before === undefined) this.#remove(key, hashBytes(key));
      else this.#put(key, before);
    }
  }

  /**
   * Every slot in key order (synchronous; no writes while it runs).
   *
   * @returns The slots.
   */
  *slots(): IterableIterator<Slot> {
    for (const cell of this.#tree.values()) yield cell.slot;
  }

  /**
   * Visits slots in key order, in pages, re-seeking the tree between pages so
   * that writes during the scan are safe.
   *
   * @param options Which keys.
   * @param alive Called before each page; throws to stop (closed storage).
   * @returns The pages.
   */
  async *scan(
    options: ScanOptions,
    alive: () => void,
  ): AsyncIterable<readonly StorageEntry[]> {
    alive();
    const bounds = scanBounds(options);
    let left = bounds.limit;
    let cursor: string | undefined;
    while (left > 0) {
      alive();
      const batch: StorageEntry[] = [];
      const range = pageRange(bounds, cursor);
      let last: Cell | undefined;
      for (const cell of this.#tree.values(range)) {
        batch.push(cell.slot);
        last = cell;
        if (batch.length >= SCAN_BATCH || batch.length >= left) break;
      }
      if (last === undefined) return;
      cursor = last.id;
      const full = batch.length >= SCAN_BATCH;
      left -= batch.length;
      yield batch;
      if (!full) return;
    }
  }

  /** Drops every key. */
  clear(): void {
    this.#tree.clear();
    this.#index.clear();
  }
}
