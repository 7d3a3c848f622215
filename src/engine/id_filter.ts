/**
 * A filter of item ids by a hash computed in JavaScript, for the change
 * feed's index: it answers "maybe" or "surely not", so that the index
 * looks an id up in its map only when the map may hold it. V8 hashes a
 * string the first time it meets it as a map key, and on a gateway that
 * first hashing of each id just read from the file cost ~1 µs; this hash
 * (FNV-1a of the UTF-16 code units) costs a few tens of nanoseconds.
 *
 * @module
 */

/** Bits per id the filter aims at (one hash: ~12% false "maybe"s). */
const BITS_PER_ID = 8;
/** The largest filter: 2^26 bits (8 MiB). */
const MAX_BITS = 2 ** 26;

/**
 * A random start for every hash of this process: ids come from devices
 * and requests, and a sender who could predict where they land could make
 * them all collide (a table probing 10,000 of them would take quadratic
 * time; a `Map`'s hash is seeded likewise).
 */
const SEED = crypto.getRandomValues(new Uint32Array(1))[0]!;

/**
 * FNV-1a of an id's UTF-16 code units, from a random start of this process
 * (see `SEED`) and its collection number.
 *
 * @param id The id.
 * @param n Its collection's number.
 * @returns An unsigned 32-bit hash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { idHash } from "./id_filter.ts";
 * assert.equal(idHash("a", 0), idHash("a", 0));
 * assert.notEqual(idHash("a", 0), idHash("a", 1));
 * ```
 */
export function idHash(id: string, n: number): number {
  let h = (0x811c9dc5 ^ SEED ^ Math.imul(n, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < id.length; i++) {
    h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/**
 * Ids added, by their {@linkcode idHash}: `has` is never `false` for an id
 * added (it may be `true` for others).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IdFilter } from "./id_filter.ts";
 * const filter = new IdFilter(10);
 * filter.add("sensor-1", 0);
 * assert(filter.has("sensor-1", 0));
 * ```
 */
export class IdFilter {
  readonly #bits: Int32Array;
  readonly #mask: number;
  #count = 0;

  /** @param expected How many ids it is sized for. */
  constructor(expected: number) {
    let bits = 1024;
    while (bits < expected * BITS_PER_ID && bits < MAX_BITS) bits *= 2;
    this.#bits = new Int32Array(bits >> 5);
    this.#mask = bits - 1;
  }

  /**
   * Adds an id.
   *
   * @param id The id.
   * @param n Its collection's number.
   */
  add(id: string, n: number): void {
    const h = idHash(id, n) & this.#mask;
    this.#bits[h >> 5]! |= 1 << (h & 31);
    this.#count++;
  }

  /**
   * Whether the id may have been added.
   *
   * @param id The id.
   * @param n Its collection's number.
   * @returns `false` only for an id never added.
   */
  has(id: string, n: number): boolean {
    const h = idHash(id, n) & this.#mask;
    return (this.#bits[h >> 5]! & (1 << (h & 31))) !== 0;
  }

  /** Whether it holds more ids than it was sized for (and could grow). */
  get full(): boolean {
    const bits = this.#mask + 1;
    return this.#count * BITS_PER_ID > bits && bits < MAX_BITS;
  }
}
