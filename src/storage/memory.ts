/**
 * The in-memory storage: a B+tree of byte keys in RAM. The default storage.
 *
 * @module
 */

import { ClosedError } from "../errors.ts";
import { KeyTable } from "../engine/key_table.ts";
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

/** Deletes and byte sets logged before the log may be folded. */
const LOG_WASTE = 65_536;

function stamp(n: number): string {
  return n.toString(16).padStart(20, "0");
}

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
   * Writes not yet in the key table, in commit order, two slots each (the
   * set, or the key of a delete; the version): applied before any read or
   * checked commit, or once deletes and byte sets (what can make earlier
   * steps dead) are a quarter of it. An object set written again while
   * logged is not logged twice: its `logged` note keeps the version of its
   * last commit, and the fold reads its record as it is then.
   */
  #log: (Uint8Array | ObjectSet | StorageSet | number)[] = [];
  /** Deletes and byte sets in the log. */
  #waste = 0;
  /** The version up to which the log was folded. */
  #folded = 0;

  #append(
    sets: readonly (StorageSet | ObjectSet)[] | undefined,
    deletes: readonly Uint8Array[] | undefined,
    version: number,
  ): void {
    const log = this.#log;
    if (sets !== undefined) {
      for (let i = 0; i < sets.length; i++) {
        const set = sets[i]! as ObjectSet;
        // An object set (a property load: cheaper than `in`).
        if (set.encode !== undefined) {
          const at = set.logged;
          set.logged = version;
          // Already in the log: the fold takes its latest record.
          if (at !== undefined && at > this.#folded) continue;
        } else this.#waste++;
        log.push(set, version);
      }
    }
    if (deletes !== undefined) {
      for (let i = 0; i < deletes.length; i++) log.push(deletes[i]!, version);
      this.#waste += deletes.length;
    }
    if (this.#waste > LOG_WASTE && this.#waste * 4 > log.length) {
      this.#flush();
    }
  }

  #flush(): void {
    const log = this.#log;
    this.#folded = this.#version;
    this.#waste = 0;
    if (log.length === 0) return;
    this.#log = [];
    for (let i = 0; i < log.length; i += 2) {
      const step = log[i] as Uint8Array | ObjectSet | StorageSet;
      if (step instanceof Uint8Array) {
        this.#table.apply([], [step], stamp(log[i + 1] as number));
      } else {
        const logged = "encode" in step ? step.logged : undefined;
        this.#table.apply(
          [step],
          [],
          stamp(logged ?? (log[i + 1] as number)),
        );
      }
    }
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
    this.#flush();
    return Promise.resolve(this.#table.get(key) ?? null);
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
    this.#flush();
    return Promise.resolve(this.#table.getMany(keys));
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
    return this.#table.scan(options, this.#alive);
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
    this.#flush();
    if (!this.#table.check(commit.checks)) {
      return Promise.resolve({ ok: false });
    }
    const versionstamp = stamp(++this.#version);
    this.#table.apply(commit.sets ?? [], commit.deletes ?? [], versionstamp);
    return Promise.resolve({ ok: true, versionstamp });
  }

  /** Drops everything. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#table.clear();
    this.#log = [];
    return Promise.resolve();
  }
}
