/**
 * The in-memory storage: a B+tree of byte keys in RAM. The default storage.
 *
 * @module
 */

import { BTree, type BTreeRange } from "./btree.ts";
import { compareBytes, prefixEnd } from "./bytes.ts";
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

interface Slot {
  value: Uint8Array;
  versionstamp: string;
}

function stamp(n: number): string {
  return n.toString(16).padStart(20, "0");
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
 * A {@linkcode Storage} that keeps everything in a B+tree in memory. Data is
 * lost when the process ends.
 *
 * Values passed to `commit` are kept as they are (not copied), and `get` and
 * `scan` hand out the stored buffers: neither side may modify them.
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
  #tree = new BTree<Uint8Array, Slot>(compareBytes);
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

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {ClosedError} After `close()`.
   */
  get(key: Uint8Array): Promise<StorageEntry | null> {
    try {
      this.#check("get");
    } catch (e) {
      return Promise.reject(e);
    }
    const slot = this.#tree.get(key);
    return Promise.resolve(
      slot === undefined
        ? null
        : { key, value: slot.value, versionstamp: slot.versionstamp },
    );
  }

  /**
   * Reads several keys.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   * @throws {ClosedError} After `close()`.
   */
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    try {
      this.#check("get");
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve(keys.map((key) => {
      const slot = this.#tree.get(key);
      return slot === undefined
        ? null
        : { key, value: slot.value, versionstamp: slot.versionstamp };
    }));
  }

  /**
   * Visits entries in key order. The tree is read in batches and re-seeked
   * after each, so writes during a scan are safe; a write is seen by the scan
   * if it lands in a batch not yet read.
   *
   * @param options Which keys to visit.
   * @returns The entries.
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
    let cursor: Uint8Array | undefined;
    while (left > 0) {
      this.#check("scan");
      const batch: StorageEntry[] = [];
      const range: BTreeRange<Uint8Array> = {};
      if (reverse) {
        range.reverse = true;
        if (lo !== undefined) range.gte = lo;
        const upper = cursor ?? hi;
        if (upper !== undefined) range.lt = upper;
      } else {
        if (cursor !== undefined) range.gt = cursor;
        else if (lo !== undefined) range.gte = lo;
        if (hi !== undefined) range.lt = hi;
      }
      for (const [key, slot] of this.#tree.entries(range)) {
        batch.push({ key, value: slot.value, versionstamp: slot.versionstamp });
        if (batch.length >= SCAN_BATCH || batch.length >= left) break;
      }
      if (batch.length === 0) return;
      cursor = batch[batch.length - 1]!.key;
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
    try {
      this.#check("commit");
    } catch (e) {
      return Promise.reject(e);
    }
    const tree = this.#tree;
    if (commit.checks !== undefined) {
      for (const check of commit.checks) {
        const slot = tree.get(check.key);
        const current = slot === undefined ? null : slot.versionstamp;
        if (current !== check.versionstamp) {
          return Promise.resolve({ ok: false });
        }
      }
    }
    const versionstamp = stamp(++this.#version);
    if (commit.sets !== undefined) {
      for (const set of commit.sets) {
        tree.set(set.key, { value: set.value, versionstamp });
      }
    }
    if (commit.deletes !== undefined) {
      for (const key of commit.deletes) tree.delete(key);
    }
    return Promise.resolve({ ok: true, versionstamp });
  }

  /** Drops everything. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#tree.clear();
    return Promise.resolve();
  }
}
