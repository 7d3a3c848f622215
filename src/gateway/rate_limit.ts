/**
 * A token bucket per device: `perSecond` tokens flow in, up to `burst`; a
 * request takes one token per reading.
 *
 * @module
 */

/** Where the rate limiter reads the time, epoch ms (tests inject one). */
export interface RateClock {
  /** The current time, ms. */
  now(): number;
}

/** Options of the per-device rate limit. */
export interface RateLimitOptions {
  /** Readings per second allowed on average. */
  readonly perSecond: number;
  /**
   * How many readings may come at once (the bucket's size). Default
   * `perSecond * 10`, at least 1.
   */
  readonly burst?: number;
}

/**
 * Token buckets by name. A request is admitted while its bucket holds at
 * least one token; admitting it takes as many tokens as it carries readings,
 * which may leave the bucket below zero (a batch bigger than the burst is not
 * refused forever, it only makes the device wait longer after).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateLimiter } from "./rate_limit.ts";
 * let now = 0;
 * const limiter = new RateLimiter({ perSecond: 1, burst: 2 }, { now: () => now });
 * assert.equal(limiter.wait("d"), 0);
 * limiter.take("d", 3); // bucket at -1
 * assert.equal(limiter.wait("d"), 2000);
 * now = 2000;
 * assert.equal(limiter.wait("d"), 0);
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: RateClock;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * @param options Rate and burst.
   * @param clock The time source. Default `Date`.
   * @throws {RangeError} When the rate or burst is not a positive number.
   */
  constructor(options: RateLimitOptions, clock: RateClock = Date) {
    const { perSecond, burst = Math.max(1, perSecond * 10) } = options;
    if (
      !(typeof perSecond === "number" && perSecond > 0 && perSecond < Infinity)
    ) {
      throw new RangeError(
        `Cannot set the rate limit: perSecond must be a positive number, got ${perSecond}`,
      );
    }
    if (!(typeof burst === "number" && burst >= 1 && burst < Infinity)) {
      throw new RangeError(
        `Cannot set the rate limit: burst must be a number from 1, got ${burst}`,
      );
    }
    this.#rate = perSecond / 1000;
    this.#burst = burst;
    this.#clock = clock;
  }

  #bucket(name: string): { tokens: number; at: number } {
    const now = this.#clock.now();
    let bucket = this.#buckets.get(name);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(name, bucket);
    } else if (now > bucket.at) {
      bucket.tokens = Math.min(
        this.#burst,
        bucket.tokens + (now - bucket.at) * this.#rate,
      );
      bucket.at = now;
    }
    return bucket;
  }

  /**
   * How long `name` must wait before a request is admitted.
   *
   * @param name The device.
   * @returns 0 when admitted now, else milliseconds.
   */
  wait(name: string): number {
    const bucket = this.#bucket(name);
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / this.#rate);
  }

  /**
   * Takes `count` tokens from `name`'s bucket.
   *
   * @param name The device.
   * @param count How many readings were admitted.
   */
  take(name: string, count: number): void {
    this.#bucket(name).tokens -= count;
  }
}
