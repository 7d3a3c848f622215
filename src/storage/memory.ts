/**
 * The in-memory storage: a B+tree of byte keys in RAM. The default storage.
 *
 * @module
 */

import { ClosedError } from "../errors.ts";
import { KeyTable } from "../engine/key_table.ts";
import { nextTurn } from "../engine/yield.ts";
import { stamp, WriteLog } from "./memory_log.ts";
import type {
  ObjectCommit,
  ObjectSet,
  ObjectTier,
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageSet,
} from "./contract.ts";

/** Deletes and byte sets logged before the log is folded in the background. */
const LOG_WASTE = 65_536;
/** Steps folded between two looks at the clock. */
const FOLD_SLICE = 512;
/** Longest a background fold holds the event loop at a stretch, ms. */
const FOLD_MS = 2;
/**
 * Steps a read folds at once; a longer log is folded a slice per turn of
 * the event loop before the read is answered.
 */
const FOLD_AT_ONCE = 4096;

/** A commit's result; the versionstamp string is made only when read. */
class Committed {
  readonly ok = true as const;
  readonly #version: number;
  constructor(version: number) {
    this.#version = version;
  }
  get versionstamp(): string {
    return stamp(this.#version);
  }
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
 * import { MemoryStorage } from "@tether/db/storage";
 * const storage = new MemoryStorage();
 * const key = new Uint8Array([1]);
 * await storage.commit({ sets: [{ key, value: new Uint8Array([42]) }] });
 * assert((await storage.get(key))?.value[0] === 42);
 * await storage.close();
 * ```
 */
export class MemoryStorage implements Storage {
  #table = new KeyTable();
  #version = 0;
  #closed = false;

  /** Memory storage has no native expiry and a single writer. */
  readonly capabilities: StorageCapabilities = {
    nativeExpiry: false,
    shared: false,
  };

  /**
   * The object tier: records are kept as the objects the engine gives, and
   * encoded only when a reader asks for an entry's `value`.
   */
  readonly objects: ObjectTier = {
    volatile: true,
    commit: (commit: ObjectCommit): StorageCommitResult => {
      if (this.#closed) throw this.#closedError("commit");
      const version = ++this.#version;
      this.#append(commit.sets, commit.deletes, version);
      return new Committed(version);
    },
  };

  /**
   * Writes not yet in the key table (see memory_log.ts): folded before any
   * read or checked commit (a long log a slice per turn of the event loop,
   * then the rest at once), and in the background, a slice per turn, once
   * deletes and byte sets are a quarter of it.
   */
  readonly #log = new WriteLog(this.#table);
  /** The background fold, while one runs. */
  #folding: Promise<void> | undefined;
  /** Background folds started. */
  #folds = 0;

  #append(
    sets: readonly (StorageSet | ObjectSet)[] | undefined,
    deletes: readonly Uint8Array[] | undefined,
    version: number,
  ): void {
    const log = this.#log;
    log.append(sets, deletes, version);
    if (
      this.#folding === undefined && log.waste > LOG_WASTE &&
      log.waste * 4 > log.pending
    ) {
      this.#folds++;
      this.#folding = this.#foldDownTo(0).finally(() => {
        this.#folding = undefined;
      });
    }
  }

  /**
   * Folds the log a slice per turn of the event loop (at most `FOLD_MS` at
   * a stretch) until at most `floor` steps wait (writes logged meanwhile are
   * folded too) or the storage is closed.
   */
  async #foldDownTo(floor: number): Promise<void> {
    while (!this.#closed && this.#log.pending > floor) {
      await nextTurn();
      const start = performance.now();
      while (
        !this.#closed && this.#log.fold(FOLD_SLICE) > floor &&
        performance.now() - start < FOLD_MS
      ) {
        // a slice at a time
      }
    }
  }

  #flush(): void {
    if (this.#log.pending > 0) this.#log.fold();
  }

  /**
   * Before a read: a long log folded down to what a read folds at once;
   * `undefined` when it is short already (the reader checks `closed`).
   */
  #catchUp(): Promise<void> | undefined {
    return this.#log.pending <= FOLD_AT_ONCE
      ? undefined
      : this.#foldDownTo(FOLD_AT_ONCE);
  }

  #alive = (): void => {
    if (this.#closed) throw this.#closedError("scan");
    this.#flush();
  };

  #closedError(action: string): ClosedError {
    return new ClosedError(`Cannot ${action}: the memory storage is closed`);
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
    const read = () => {
      if (this.#closed) throw this.#closedError("get");
      this.#flush();
      return this.#table.get(key) ?? null;
    };
    return this.#catchUp()?.then(read) ?? Promise.resolve(read());
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
    const read = () => {
      if (this.#closed) throw this.#closedError("get");
      this.#flush();
      return this.#table.getMany(keys);
    };
    return this.#catchUp()?.then(read) ?? Promise.resolve(read());
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
  scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    return this.#scan(options);
  }

  async *#scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    if (this.#closed) throw this.#closedError("scan");
    await this.#catchUp();
    yield* this.#table.scan(options, this.#alive);
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
    if (commit.checks === undefined || commit.checks.length === 0) {
      // Nothing to check: logged like the object tier's commits.
      const version = ++this.#version;
      this.#append(commit.sets, commit.deletes, version);
      return Promise.resolve({ ok: true, versionstamp: stamp(version) });
    }
    const checks = commit.checks;
    const apply = (): StorageCommitResult => {
      if (this.#closed) throw this.#closedError("commit");
      this.#flush();
      if (!this.#table.check(checks)) return { ok: false };
      const versionstamp = stamp(++this.#version);
      this.#table.apply(commit.sets ?? [], commit.deletes ?? [], versionstamp);
      return { ok: true, versionstamp };
    };
    return this.#catchUp()?.then(apply) ?? Promise.resolve(apply());
  }

  /**
   * Counters for `db.stats().storageStats`: the writes waiting in the log
   * to be folded into the key table (`loggedSteps`), and how many times a
   * log heavy with deletes and byte sets was folded in the background
   * (`backgroundFolds`).
   *
   * @returns The counters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStorage } from "@tether/db/storage";
   * const storage = new MemoryStorage();
   * await storage.commit({ sets: [{ key: new Uint8Array([1]), value: new Uint8Array([2]) }] });
   * assert.equal(storage.stats().loggedSteps, 1);
   * await storage.get(new Uint8Array([1])); // a read folds the log first
   * assert.equal(storage.stats().loggedSteps, 0);
   * ```
   */
  stats(): { loggedSteps: number; backgroundFolds: number } {
    return { loggedSteps: this.#log.pending, backgroundFolds: this.#folds };
  }

  /** Drops everything. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    // A background fold stops at its next turn.
    await this.#folding;
    this.#table.clear();
    this.#log.clear();
  }
}
