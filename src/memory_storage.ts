/**
 * The in-memory storage: a B+tree of byte keys in RAM. The default storage.
 *
 * @module
 */

import { BTree, type BTreeRange } from "./btree.ts";
import { binaryString, compareBytes, prefixEnd } from "./bytes.ts";
import { ClosedError } from "./errors.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
} from "./storage.ts";

/** Entries are collected this many at a time; the tree is re-seeked between. */
const SCAN_BATCH = 256;

/** One stored entry; replaced (never mutated) on every write of its key. */
interface Slot extends StorageEntry {
  readonly memo: unknown;
}

/** Where a key lives: the tree and the hash index share it. */
interface Cell {
  readonly key: Uint8Array;
  /** The key as a binary string (one char per byte): the tree's key. */
  readonly id: string;
  slot: Slot;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function stamp(n: number): string {
  return n.toString(16).padStart(20, "0");
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

function maxKey(a: Uint8Array | undefined, b: Uint8Array | undefined) {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareBytes(a, b) >= 0 ? a : b;
}

function minKey(a: Uint8Array | undefined, b: Uint8Array | undefined) {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareBytes(a, b) <= 0 ? a : b;
}

/**
 * A {@linkcode Storage} that keeps everything in memory: a B+tree orders the
 * keys for scans (as binary strings, which compare like the bytes), and a hash index answers point reads and version checks in
 * constant time. Data is lost when the process ends.
 *
 * Values passed to `commit` are kept as they are (not copied), and `get` and
 * `scan` hand out the stored entries: neither side may modify them. The
 * `memo` given with a set is kept and returned with the entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStorage } from "./memory_storage.ts";
 * const storage = new MemoryStorage();
 * const key = new Uint8Array([1]);
 * await storage.commit({ sets: [{ key, value: new Uint8Array([42]) }] });
 * assert((await storage.get(key))?.value[0] === 42);
 * await storage.close();
 * ```
 */
export class MemoryStorage implements Storage {
  #tree = new BTree<string, Cell>(compareStrings);
  #index = new Map<number, Cell | Cell[]>();
  #version = 0;
  #closed = false;

  /** Memory storage has no native expiry and a single writer. */
  readonly capabilities: StorageCapabilities = {
    nativeExpiry: false,
    shared: false,
  };

  #check(action: string): void {
    if (this.#closed) {
      throw new ClosedError(`Cannot ${action}: the memory storage is closed`);
    }
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

  #remove(key: Uint8Array, hash: number): void {
    const bucket = this.#index.get(hash);
    if (bucket === undefined) return;
    let cell: Cell;
    if (!Array.isArray(bucket)) {
      if (!sameBytes(bucket.key, key)) return;
      cell = bucket;
      this.#index.delete(hash);
    } else {
      const i = bucket.findIndex((c) => sameBytes(c.key, key));
      if (i < 0) return;
      cell = bucket[i]!;
      bucket.splice(i, 1);
      if (bucket.length === 1) this.#index.set(hash, bucket[0]!);
    }
    this.#tree.delete(cell.id);
  }

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {ClosedError} After `close()`.
   */
  get(key: Uint8Array): Promise<StorageEntry | null> {
    if (this.#closed) return Promise.reject(this.#closedError("get"));
    const cell = this.#find(key, hashBytes(key));
    return Promise.resolve(cell === undefined ? null : cell.slot);
  }

  /**
   * Reads several keys.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   * @throws {ClosedError} After `close()`.
   */
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    if (this.#closed) return Promise.reject(this.#closedError("get"));
    const out: (StorageEntry | null)[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const cell = this.#find(key, hashBytes(key));
      out[i] = cell === undefined ? null : cell.slot;
    }
    return Promise.resolve(out);
  }

  #closedError(action: string): ClosedError {
    return new ClosedError(`Cannot ${action}: the memory storage is closed`);
  }

  /**
   * Visits entries in key order. The tree is read in batches and re-seeked
   * after each, so writes during a scan are safe; a write is seen by the scan
   * if it lands in a batch not yet read.
   *
   * @param options Which keys to visit.
   * @returns The entries, in pages.
   * @throws {ClosedError} After `close()`.
   */
  async *scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    this.#check("scan");
    let lo = options.start;
    let hi = options.end;
    if (options.prefix !== undefined) {
      lo = maxKey(lo, options.prefix);
      hi = minKey(hi, prefixEnd(options.prefix));
    }
    const reverse = options.reverse === true;
    let left = options.limit ?? Infinity;
    const loId = lo === undefined ? undefined : binaryString(lo);
    const hiId = hi === undefined ? undefined : binaryString(hi);
    let cursor: string | undefined;
    while (left > 0) {
      this.#check("scan");
      const batch: StorageEntry[] = [];
      const range: BTreeRange<string> = {};
      if (reverse) {
        range.reverse = true;
        if (loId !== undefined) range.gte = loId;
        const upper = cursor ?? hiId;
        if (upper !== undefined) range.lt = upper;
      } else {
        if (cursor !== undefined) range.gt = cursor;
        else if (loId !== undefined) range.gte = loId;
        if (hiId !== undefined) range.lt = hiId;
      }
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

  /**
   * Applies an atomic commit.
   *
   * @param commit Checks, sets and deletes.
   * @returns `{ ok: false }` when a check fails, else the new versionstamp.
   * @throws {ClosedError} After `close()`.
   */
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    if (this.#closed) return Promise.reject(this.#closedError("commit"));
    if (commit.checks !== undefined) {
      for (const check of commit.checks) {
        const cell = this.#find(check.key, hashBytes(check.key));
        const current = cell === undefined ? null : cell.slot.versionstamp;
        if (current !== check.versionstamp) {
          return Promise.resolve({ ok: false });
        }
      }
    }
    const versionstamp = stamp(++this.#version);
    if (commit.sets !== undefined) {
      for (const set of commit.sets) {
        const hash = hashBytes(set.key);
        const cell = this.#find(set.key, hash);
        if (cell !== undefined) {
          cell.slot = {
            key: cell.key,
            value: set.value,
            versionstamp,
            memo: set.memo,
          };
        } else {
          const key = set.key;
          this.#insert({
            key,
            id: binaryString(key),
            slot: { key, value: set.value, versionstamp, memo: set.memo },
          }, hash);
        }
      }
    }
    if (commit.deletes !== undefined) {
      for (const key of commit.deletes) this.#remove(key, hashBytes(key));
    }
    return Promise.resolve({ ok: true, versionstamp });
  }

  /** Drops everything. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#tree.clear();
    this.#index.clear();
    return Promise.resolve();
  }
}
