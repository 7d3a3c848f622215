/**
 * How long scans hold the event loop, and how they give it back.
 *
 * @module
 */

/** A scan gives the event loop a turn after this many ms of work. */
export const SLICE_MS = 8;

/**
 * Gives the event loop a turn (a macrotask, so timers and I/O run).
 *
 * @returns A promise that settles on a later turn.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
