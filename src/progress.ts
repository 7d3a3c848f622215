/**
 * Progress of a long operation (`verify`, `compact`, `repair`), reported
 * to the caller's `onProgress(done, total)`: the total is known from the
 * first call on, `done` never decreases and never passes `total`, and the
 * last call of an operation that succeeds has `done === total`. A total
 * that is an estimate is kept to: `done` stops at it when the estimate was
 * low, and jumps to it at the end when it was high.
 *
 * @module
 */

import { describeType } from "./validate.ts";

/**
 * Called as a long operation proceeds: how much is done, of how much.
 *
 * @param done How much is done (never decreasing, never above `total`).
 * @param total How much there is in all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open, type ProgressCallback } from "@tether/db";
 * await using db = await open();
 * await db.put("k", 1);
 * let percent = 0;
 * const onProgress: ProgressCallback = (done, total) =>
 *   percent = total === 0 ? 100 : Math.floor(100 * done / total);
 * await db.verify({ onProgress });
 * assert.equal(percent, 100);
 * ```
 */
export type ProgressCallback = (done: number, total: number) => void;

/**
 * Checks an `onProgress` option.
 *
 * @param value The option.
 * @param action What is being attempted, e.g. `"Cannot verify"`.
 * @returns The callback, or `undefined` when none was given.
 * @throws {TypeError} When it is given and not a function.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkProgress } from "./progress.ts";
 * assert.equal(checkProgress(undefined, "Cannot verify"), undefined);
 * assert.throws(() => checkProgress(5, "Cannot verify"), {
 *   name: "TypeError",
 *   message: "Cannot verify: onProgress must be a function, got number 5",
 * });
 * ```
 */
export function checkProgress(
  value: unknown,
  action: string,
): ProgressCallback | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new TypeError(
      `${action}: onProgress must be a function, got ${describeType(value)}`,
    );
  }
  return value as ProgressCallback;
}

/**
 * Reports one operation's progress to a callback (or to nobody), keeping
 * `done` monotone and within the total, and skipping repeated calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressReport } from "./progress.ts";
 * const calls: [number, number][] = [];
 * const progress = new ProgressReport((d, t) => calls.push([d, t]), 10);
 * progress.report(4);
 * progress.report(3); // never backwards
 * progress.report(12); // never past the total
 * progress.finish();
 * assert.deepEqual(calls, [[4, 10], [10, 10]]);
 * ```
 */
export class ProgressReport {
  readonly #callback: ProgressCallback | undefined;
  #total: number;
  #done = 0;
  /** The last call made, as `done/total`. */
  #last: string | undefined;

  /**
   * @param callback The caller's `onProgress` (none: nothing is reported).
   * @param total How much there is in all (an estimate), when known.
   */
  constructor(callback: ProgressCallback | undefined, total = 0) {
    this.#callback = callback;
    this.#total = Math.max(0, total);
  }

  /** Whether anybody listens (work done only for the report can be skipped). */
  get wanted(): boolean {
    return this.#callback !== undefined;
  }

  /** How much there is in all, as reported. */
  get total(): number {
    return this.#total;
  }

  /**
   * Changes the total (never below what is done).
   *
   * @param total How much there is in all.
   */
  resize(total: number): void {
    this.#total = Math.max(this.#done, total);
  }

  /**
   * Reports how much is done (clamped to what was reported before and to
   * the total).
   *
   * @param done How much is done.
   */
  report(done: number): void {
    this.#done = Math.min(this.#total, Math.max(this.#done, done));
    this.#call();
  }

  /** Reports the end: `done === total`. */
  finish(): void {
    this.#done = this.#total;
    this.#call();
  }

  #call(): void {
    if (this.#callback === undefined) return;
    const now = `${this.#done}/${this.#total}`;
    if (now === this.#last) return;
    this.#last = now;
    this.#callback(this.#done, this.#total);
  }
}
