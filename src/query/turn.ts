/**
 * Giving the event loop a turn during long scans, cheaply.
 *
 * A scan runs in synchronous chunks of at most {@linkcode CHUNK_MS}
 * milliseconds and then gives the event loop a turn with
 * {@linkcode nextTurn}: a macrotask, so timers, I/O and other requests run,
 * but one that is not clamped the way a nested `setTimeout(0)` is (to 1–4 ms
 * per call): a message to itself over a fresh `MessageChannel`, whose ports
 * are closed as soon as it arrives, so nothing is left open to keep the
 * process alive. Where `MessageChannel` does not exist, `setTimeout(0)`.
 *
 * @module
 */

/** How long one synchronous chunk of a scan may hold the event loop, ms. */
export const CHUNK_MS = 4;

/**
 * How many items a chunk handles between two looks at the clock. Reading
 * the clock costs about as much as testing a small document.
 */
export const CHECK_EVERY = 64;

/**
 * Settles on a later turn of the event loop (a macrotask: timers and I/O
 * callbacks that are due run first), without the clamping of a nested
 * `setTimeout(0)`.
 *
 * @returns A promise that settles on a later turn.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextTurn } from "./turn.ts";
 * let ran = false;
 * setTimeout(() => ran = true, 0);
 * for (let i = 0; i < 100 && !ran; i++) await nextTurn();
 * assert(ran);
 * ```
 */
export function nextTurn(): Promise<void> {
  if (typeof MessageChannel !== "function") {
    return new Promise((resolve) => setTimeout(resolve, 0));
  }
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
    port2.close();
  });
}

/**
 * The time budget of one scan: call {@linkcode Budget.due} for every item;
 * when it says so, `await budget.pause()` before going on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Budget } from "./turn.ts";
 * const budget = new Budget();
 * let sum = 0;
 * for (let i = 0; i < 100_000; i++) {
 *   if (budget.due()) await budget.pause();
 *   sum += i;
 * }
 * assert(sum > 0);
 * ```
 */
export class Budget {
  #start: number = performance.now();
  #n = 0;
  readonly #signal: AbortSignal | undefined;
  readonly #ms: number;

  /**
   * @param signal Checked after each pause: an aborted scan stops there.
   * @param ms The chunk budget (default {@linkcode CHUNK_MS}).
   */
  constructor(signal?: AbortSignal, ms: number = CHUNK_MS) {
    this.#signal = signal;
    this.#ms = ms;
  }

  /**
   * Counts one item; every {@linkcode CHECK_EVERY} items, looks at the
   * clock.
   *
   * @returns `true` when the chunk has used its budget.
   */
  due(): boolean {
    if (++this.#n < CHECK_EVERY) return false;
    this.#n = 0;
    return performance.now() - this.#start >= this.#ms;
  }

  /**
   * Looks at the clock now (at a natural break, such as between pages).
   *
   * @returns `true` when the chunk has used its budget.
   */
  spent(): boolean {
    this.#n = 0;
    return performance.now() - this.#start >= this.#ms;
  }

  /**
   * Gives the event loop a turn and starts a new chunk.
   *
   * @returns A promise that settles on a later turn.
   * @throws The signal's reason, when it was aborted meanwhile.
   */
  async pause(): Promise<void> {
    await nextTurn();
    this.#signal?.throwIfAborted();
    this.#n = 0;
    this.#start = performance.now();
  }
}
