/**
 * Strings to small integers, in a table probed by a hash computed in
 * JavaScript (FNV-1a, see engine/id_filter.ts), for batches of keys that
 * have just been made or parsed: V8 hashes a string the first time it is
 * used as a `Map` key, and that first hashing of a key just read from a
 * file or a request body measured ~1 µs a key on this project's machines,
 * where this table costs a few tens of nanoseconds.
 *
 * @module
 */

import { idHash } from "./engine/id_filter.ts";

/**
 * A fixed-capacity table of strings to indexes (for instance, into the
 * array the strings come from).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StringIndex } from "./string_index.ts";
 * const keys = ["a/1", "b/1", "a/1"];
 * const table = new StringIndex(keys.length);
 * assert.deepEqual(keys.map((k, i) => table.put(k, i)), [-1, -1, 0]);
 * assert.equal(table.get("a/1"), 2);
 * assert.equal(table.get("c/1"), -1);
 * ```
 */
export class StringIndex {
  /** Slot -> number of the entry there + 1 (0: empty). */
  readonly #slots: Int32Array;
  readonly #mask: number;
  readonly #keys: string[] = [];
  readonly #hashes: number[] = [];
  readonly #values: number[] = [];
  readonly #capacity: number;

  /** @param capacity The most distinct strings it will hold. */
  constructor(capacity: number) {
    let size = 2;
    while (size < 2 * capacity) size *= 2;
    this.#slots = new Int32Array(size);
    this.#mask = size - 1;
    this.#capacity = capacity;
  }

  /** The slot of `key` (where it is, or the empty one it would take). */
  #slot(key: string, h: number): number {
    const slots = this.#slots;
    for (let s = h & this.#mask;; s = (s + 1) & this.#mask) {
      const e = slots[s]! - 1;
      if (e < 0 || (this.#hashes[e] === h && this.#keys[e] === key)) return s;
    }
  }

  /**
   * The index of a string.
   *
   * @param key The string.
   * @returns Its index, or -1 when it is not in the table.
   */
  get(key: string): number {
    const e = this.#slots[this.#slot(key, idHash(key, 0))]! - 1;
    return e < 0 ? -1 : this.#values[e]!;
  }

  /**
   * Sets a string's index.
   *
   * @param key The string.
   * @param value Its index.
   * @returns Its index before, or -1 when it was not in the table.
   * @throws {RangeError} When the table holds `capacity` strings already.
   */
  put(key: string, value: number): number {
    const h = idHash(key, 0);
    const s = this.#slot(key, h);
    const e = this.#slots[s]! - 1;
    if (e >= 0) {
      const was = this.#values[e]!;
      this.#values[e] = value;
      return was;
    }
    if (this.#keys.length >= this.#capacity) {
      throw new RangeError(
        `Cannot add to a string index: it holds its capacity, ${this.#capacity}`,
      );
    }
    this.#keys.push(key);
    this.#hashes.push(h);
    this.#values.push(value);
    this.#slots[s] = this.#keys.length;
    return -1;
  }
}
