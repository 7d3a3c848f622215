/**
 * How long scans hold the event loop, and how they give it back, cheaply.
 *
 * A scan runs in synchronous chunks of at most {@linkcode CHUNK_MS}
 * milliseconds and then gives the event loop a turn with
 * {@linkcode nextTurn}: a macrotask, so timers, messages and other tasks
 * run, but one that is not clamped the way `setTimeout(0)` is (1–4 ms per
 * call; 2 ms measured here): a message to itself over a fresh
 * `MessageChannel`, whose ports are closed as soon as it arrives, so nothing
 * is left open to keep the process alive. At least every
 * {@linkcode IO_TURN_MS} ms the turn is one that lets the runtime poll
 * network I/O too ({@linkcode ioTurn}), and that waits for a timer when
 * timers have not run since the last such turn (`timersTurn`).
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
 * At least this often, ms, a turn also lets the runtime poll network I/O
 * ({@linkcode ioTurn}). In Deno, a chain of `MessageChannel` turns (or of
 * `setImmediate`) lets timers and messages run but not network I/O: an HTTP
 * server on the same loop answered 1 request during 300 ms of 4 ms chunks
 * joined by message turns, and 44 with an I/O turn after each chunk.
 */
export const IO_TURN_MS = 8;

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
    return timersTurn().then(() => {
      turnStart = ioTurnStart = performance.now();
    });
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

const EMPTY = new Uint8Array(0);

/**
 * A turn of the event loop in which the runtime also polls network I/O:
 * the digest of nothing, an asynchronous operation that Deno completes on
 * its worker threads and hands back through the event loop's poll, where
 * sockets are served too. About 0.06 ms here, against 2 ms for the
 * `setTimeout(0)` it falls back to where WebCrypto is missing (no
 * permission is needed, and Deno Deploy has it).
 *
 * @returns A promise that settles on a later turn, after an I/O poll.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ioTurn } from "./yield.ts";
 * let ran = false;
 * setTimeout(() => ran = true, 0);
 * for (let i = 0; i < 1000 && !ran; i++) await ioTurn();
 * assert(ran);
 * ```
 */
export function ioTurn(): Promise<void> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined) {
    try {
      return subtle.digest("SHA-256", EMPTY).then(() => {}, () => timerTurn());
    } catch {
      // fall through to the timer
    }
  }
  return timerTurn();
}

function timerTurn(): Promise<void> {
  return new Promise((resolve) => yieldHooks.setTimeout(resolve, 0));
}

/**
 * The timer function of the turns: the runtime's own, as it was when this
 * module loaded, so that fake timers installed later (a test's `FakeTime`)
 * cannot hold a scan forever. Tests may replace it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { yieldHooks } from "./yield.ts";
 * assert.equal(typeof yieldHooks.setTimeout, "function");
 * ```
 */
export const yieldHooks: {
  setTimeout: (fn: () => void, ms: number) => unknown;
} = {
  setTimeout: globalThis.setTimeout.bind(globalThis),
};

/**
 * The timer set at the last turn of {@linkcode timersTurn}, until it fires:
 * then `undefined`.
 */
let probe: Promise<void> | undefined;

/**
 * The turn a scan gives every {@linkcode IO_TURN_MS}: an {@linkcode ioTurn},
 * or, when timers have not run since the last one, a timer turn.
 *
 * Deno runs due timers when its event loop parks, and a chain of turns that
 * are ready at once (messages, a digest on a warm thread pool) may never
 * park it: measured here, once Node's `process.nextTick` or `setImmediate`
 * had been used in the process (NeDB does), or with a large heap, a
 * `setInterval(1)` did not fire at all during a 40 ms count of 1,000,000
 * documents made of 4 ms chunks. So each such turn sets a 0 ms timer; if it
 * has not fired by the next one, that turn waits for it (about 1-2 ms,
 * Deno's timer granularity), and every timer due runs first. Where timers
 * do run between turns, nothing waits for it.
 */
function timersTurn(): Promise<void> {
  const pending = probe;
  const turn = pending !== undefined ? pending : ioTurn();
  return turn.then(() => {
    const next: Promise<void> = new Promise((resolve) =>
      yieldHooks.setTimeout(() => {
        if (probe === next) probe = undefined;
        resolve();
      }, 0)
    );
    probe = next;
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
