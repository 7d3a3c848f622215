/**
 * How long scans hold the event loop, and how they give it back, cheaply.
 *
 * A scan runs in synchronous chunks of at most {@linkcode CHUNK_MS}
 * milliseconds and then gives the event loop a turn with
 * {@linkcode nextTurn}: a macrotask, so timers, messages and other tasks
 * run, but one that is not clamped the way `setTimeout(0)` is (to 1–4 ms
 * per call): a message to itself over a fresh `MessageChannel`, whose ports
 * are closed as soon as it arrives, so nothing is left open to keep the
 * process alive. At least every {@linkcode IO_TURN_MS} ms (and wherever
 * `MessageChannel` does not exist) the turn is a `setTimeout(0)` instead,
 * which lets the runtime poll network I/O.
 *
 * Every scan measures its chunk from the same mark, the moment the last of
 * these turns came back ({@linkcode turnDue}), so nested loops (the engine's
 * pages, the cursor's documents) and scans running side by side never hold
 * the loop longer between them.
 *
 * @module
 */

/** How long one synchronous chunk of a scan may hold the event loop, ms. */
export const CHUNK_MS = 4;

/**
 * At least this often, ms, a turn goes through a timer (`setTimeout(0)`)
 * rather than a message. In Deno, a chain of `MessageChannel` turns lets
 * timers and messages run but not network I/O: an HTTP server on the same
 * loop answered no request during a long scan that yielded only through
 * messages. A timer lets the runtime wait on its I/O, at the cost of the
 * timer's clamp (1 ms, and 2 ms or more on a busy machine: 5–15% of a
 * scan's time at 16 ms), so it is paid once per this many ms of work
 * instead of once per chunk. Timers and messages still run every
 * {@linkcode CHUNK_MS}; network I/O waits at most this long. (48 ms was
 * tried: a server on the same loop then answered no request during a
 * 200,000-document scan, so responsiveness wins over those percent.)
 */
export const IO_TURN_MS = 16;

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
 * import { nextTurn } from "./yield.ts";
 * let ran = false;
 * setTimeout(() => ran = true, 0);
 * for (let i = 0; i < 100 && !ran; i++) await nextTurn();
 * assert(ran);
 * ```
 */
export function nextTurn(): Promise<void> {
  if (
    typeof MessageChannel !== "function" ||
    performance.now() - ioTurnStart >= IO_TURN_MS
  ) {
    return new Promise((resolve) =>
      setTimeout(() => {
        turnStart = ioTurnStart = performance.now();
        resolve();
      }, 0)
    );
  }
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      turnStart = performance.now();
      resolve();
    };
    port2.postMessage(null);
    port2.close();
  });
}

/** When the last turn given by {@linkcode nextTurn} came back. */
let turnStart = performance.now();
/** When the last turn through a timer came back. */
let ioTurnStart = performance.now();

/**
 * Whether the current chunk of work has held the event loop for
 * {@linkcode CHUNK_MS} or more since a scan last gave it a turn.
 *
 * @param ms The budget (default {@linkcode CHUNK_MS}).
 * @returns `true` when it is time for {@linkcode nextTurn}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextTurn, turnDue } from "./yield.ts";
 * await nextTurn();
 * assert(!turnDue(60_000));
 * ```
 */
export function turnDue(ms: number = CHUNK_MS): boolean {
  return performance.now() - turnStart >= ms;
}

/**
 * Gives the event loop a turn (a macrotask, so timers and I/O run), without
 * the clamping of `setTimeout(0)`: the same as {@linkcode nextTurn}.
 *
 * @returns A promise that settles on a later turn.
 */
export function yieldToLoop(): Promise<void> {
  return nextTurn();
}

/**
 * A scan gives the event loop a turn after this many ms of work (kept for
 * callers that time themselves; {@linkcode turnDue} is the shared clock).
 */
export const SLICE_MS = CHUNK_MS;

/**
 * The time budget of one scan: call {@linkcode Budget.due} for every item;
 * when it says so, `await budget.pause()` before going on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Budget } from "./yield.ts";
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
    return turnDue(this.#ms);
  }

  /**
   * Looks at the clock now (at a natural break, such as between pages).
   *
   * @returns `true` when the chunk has used its budget.
   */
  spent(): boolean {
    this.#n = 0;
    return turnDue(this.#ms);
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
  }
}
