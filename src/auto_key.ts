/**
 * Generated keys: unique, sortable by creation time, never colliding.
 *
 * A key is a 26-character ULID (Crockford base32: 10 characters of epoch
 * milliseconds, 16 of randomness). Within one millisecond, and when the clock
 * goes backwards, the random part is incremented instead of redrawn, so keys
 * from one generator are strictly increasing.
 *
 * @module
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const MAX_TIME = 2 ** 48 - 1;

/**
 * Makes strictly increasing, time-ordered keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyGenerator } from "./auto_key.ts";
 * const gen = new KeyGenerator({ now: () => 0 });
 * const a = gen.next();
 * const b = gen.next();
 * assert(a.length === 26 && a < b);
 * ```
 */
export class KeyGenerator {
  #clock: { now(): number };
  #lastTime = -1;
  #random = new Uint8Array(16); // one base32 digit (0..31) per byte
  #prefix = "";
  #prefixTime = -1;

  /**
   * Creates a generator.
   *
   * @param clock Where the time comes from (`Date` by default).
   */
  constructor(clock: { now(): number } = Date) {
    this.#clock = clock;
  }

  /**
   * Returns the next key.
   *
   * @returns A 26-character key greater than every earlier one.
   */
  next(): string {
    let time = Math.floor(this.#clock.now());
    if (!(time >= 0 && time <= MAX_TIME)) {
      throw new RangeError(
        `Cannot generate a key: the clock reads ${time}, outside 0..2^48-1`,
      );
    }
    const r = this.#random;
    if (time > this.#lastTime) {
      crypto.getRandomValues(r);
      for (let i = 0; i < 16; i++) r[i] = r[i]! & 31;
      r[0] = r[0]! & 15; // leave room to increment
      this.#lastTime = time;
    } else {
      time = this.#lastTime;
      let i = 15;
      while (i >= 0 && r[i] === 31) r[i--] = 0;
      if (i < 0) {
        // 2^79 keys in one millisecond: move to the next one.
        this.#lastTime = time + 1;
        return this.next();
      }
      r[i]!++;
    }
    if (time !== this.#prefixTime) {
      let prefix = "";
      for (let i = 9; i >= 0; i--) {
        prefix += ALPHABET[Math.floor(time / 32 ** i) % 32];
      }
      this.#prefix = prefix;
      this.#prefixTime = time;
    }
    let out = this.#prefix;
    for (let i = 0; i < 16; i++) out += ALPHABET[r[i]!];
    return out;
  }
}
