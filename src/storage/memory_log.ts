/**
 * The write log of the memory storage: the commits not yet in its key
 * table, in commit order. A commit of the object tier only appends here (no
 * tree search, no hashing); the table is brought up to date by a fold,
 * all of it before a read, or in bounded slices between turns of the event
 * loop once deletes and byte sets (what can make logged steps dead) make
 * up much of the log, so that no single fold holds the loop for long.
 *
 * An object set written again while it waits in the log is logged once:
 * its `logged` note holds the version of its last commit while it waits
 * (positive), and minus that version once folded. The fold reads its
 * record as it is then, at its place in the log: the engine writes a set
 * object for one key only, and never again after that key was deleted, so
 * no later step of the log can touch its key before its last write.
 *
 * @module
 */

import type { KeyTable } from "../engine/key_table.ts";
import type { ObjectSet, StorageSet } from "./contract.ts";

/**
 * The versionstamp of a memory storage version: 20 hex digits.
 *
 * @param n The version.
 * @returns Its versionstamp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stamp } from "./memory_log.ts";
 * assert.equal(stamp(255), "000000000000000000ff");
 * ```
 */
export function stamp(n: number): string {
  return n.toString(16).padStart(20, "0");
}

/**
 * Commits waiting for a {@linkcode KeyTable}, folded into it in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyTable } from "../engine/key_table.ts";
 * import { WriteLog } from "./memory_log.ts";
 * const table = new KeyTable();
 * const log = new WriteLog(table);
 * const key = new Uint8Array([1]);
 * log.append([{ key, value: new Uint8Array([7]) }], undefined, 1);
 * assert.equal(table.get(key), undefined);
 * log.fold();
 * assert.equal(table.get(key)?.value[0], 7);
 * ```
 */
export class WriteLog {
  readonly #table: KeyTable;
  /** Two slots per step: the set (or a deleted key) and its version. */
  #log: (Uint8Array | ObjectSet | StorageSet | number)[] = [];
  /** The first step not yet folded (an index into `#log`). */
  #head = 0;
  /** Deletes and byte sets among the waiting steps. */
  #waste = 0;

  /**
   * @param table The table the log folds into.
   */
  constructor(table: KeyTable) {
    this.#table = table;
  }

  /** How many steps wait to be folded. */
  get pending(): number {
    return (this.#log.length - this.#head) / 2;
  }

  /** How many of the waiting steps are deletes and byte sets. */
  get waste(): number {
    return this.#waste;
  }

  /**
   * Logs a commit.
   *
   * @param sets Keys written, as bytes or objects.
   * @param deletes Keys deleted.
   * @param version The commit's version (greater than every logged one).
   */
  append(
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
          // Waiting in the log: the fold takes its latest record.
          if (at !== undefined && at > 0) continue;
        } else this.#waste++;
        log.push(set, version);
      }
    }
    if (deletes !== undefined) {
      for (let i = 0; i < deletes.length; i++) log.push(deletes[i]!, version);
      this.#waste += deletes.length;
    }
  }

  /**
   * Folds waiting steps into the table, oldest first.
   *
   * @param limit Fold at most this many steps (default: all).
   * @returns How many steps still wait.
   */
  fold(limit: number = Infinity): number {
    const log = this.#log;
    const table = this.#table;
    const end = Math.min(log.length, this.#head + 2 * limit);
    for (let i = this.#head; i < end; i += 2) {
      const step = log[i] as Uint8Array | ObjectSet | StorageSet;
      const version = log[i + 1] as number;
      if (step instanceof Uint8Array) {
        table.apply([], [step], stamp(version));
        this.#waste--;
      } else if ((step as ObjectSet).encode !== undefined) {
        const set = step as ObjectSet;
        const last = set.logged!;
        table.apply([set], [], stamp(last));
        set.logged = -last;
      } else {
        table.apply([step], [], stamp(version));
        this.#waste--;
      }
    }
    if (end === log.length) {
      this.#log = [];
      this.#head = 0;
      this.#waste = 0;
    } else if (end > 65_536 && end * 2 > log.length) {
      // Most of the array is folded: drop that part.
      this.#log = log.slice(end);
      this.#head = 0;
    } else {
      this.#head = end;
    }
    return this.pending;
  }

  /** Forgets every waiting step. */
  clear(): void {
    this.#log = [];
    this.#head = 0;
    this.#waste = 0;
  }
}
