/**
 * Retry timing for the relay: capped exponential backoff with jitter, and
 * a sleep that an abort ends.
 *
 * @module
 */

/** Retry timing: exponential backoff with jitter, capped. */
export interface RetryOptions {
  /** The first delay, ms. Default `1_000`. */
  readonly initial?: number;
  /** The longest delay, ms. Default `60_000`. */
  readonly max?: number;
  /** The growth per attempt. Default `2`. */
  readonly factor?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first): the capped
 * exponential `min(max, initial * factor^attempt)`, half of it fixed and
 * half random ("equal jitter"), so retries of many gateways spread out but
 * never come sooner than half the schedule.
 *
 * @param attempt How many attempts failed before, minus one.
 * @param options Initial, max, factor.
 * @param random A number in [0, 1).
 * @returns Milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoff } from "./retry.ts";
 * assert.equal(backoff(0, { initial: 100, max: 1000 }, 0), 50);
 * assert.equal(backoff(10, { initial: 100, max: 1000 }, 0.999999), 999.9995);
 * ```
 */
export function backoff(
  attempt: number,
  options: RetryOptions,
  random: number,
): number {
  const { initial = 1_000, max = 60_000, factor = 2 } = options;
  const d = Math.min(max, initial * factor ** Math.min(attempt, 64));
  return d / 2 + random * d / 2;
}

/**
 * Waits `ms` on an unref'd timer (it never keeps the process alive), or
 * until `signal` aborts.
 *
 * @param ms How long.
 * @param signal Ends the wait early.
 * @returns When done.
 */
export function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    Deno.unrefTimer(timer);
    signal.addEventListener("abort", done, { once: true });
  });
}
