/**
 * The clock the database reads.
 *
 * @module
 */

/**
 * Where the database reads the time, in epoch milliseconds. `Date` is one;
 * tests inject a fake one to make TTL deterministic.
 */
export interface Clock {
  /** The current time, epoch milliseconds. */
  now(): number;
}
