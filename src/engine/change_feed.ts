/**
 * Change events held back until their commit is durable, and handed out in
 * commit order.
 *
 * @module
 */

import type { Change } from "../types.ts";

/** The commit is not durable yet. */
const PENDING = 0;
/** The commit is durable: its changes may be told. */
const DONE = 1;
/** The storage took the commit back: its changes never happened. */
const FAILED = 2;

interface Held {
  readonly changes: readonly Change[];
  state: number;
}

/**
 * Tells listeners of the changes of each commit once the commit is durable
 * under the storage's durability (at once where the storage acknowledges at
 * apply, after its `durable` promise resolves where it gives one), never for
 * a commit that the storage took back (`durable` rejected), and always in
 * commit order: a commit's changes wait for every earlier commit's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChangeFeed } from "./change_feed.ts";
 * const seen: string[] = [];
 * const feed = new ChangeFeed((c) => seen.push(c.key!));
 * const { promise, reject } = Promise.withResolvers<void>();
 * feed.publish([{ type: "put", collection: "c", key: "lost" }], promise);
 * feed.publish([{ type: "put", collection: "c", key: "kept" }]);
 * assert.deepEqual(seen, []); // waits behind the earlier commit
 * reject(new Error("disk full"));
 * await new Promise((r) => setTimeout(r, 0));
 * assert.deepEqual(seen, ["kept"]);
 * ```
 */
export class ChangeFeed {
  readonly #emit: (change: Change) => void;
  /** Commits whose changes wait, oldest first. */
  #held: Held[] = [];

  /**
   * @param emit Called once per change, in commit order.
   */
  constructor(emit: (change: Change) => void) {
    this.#emit = emit;
  }

  /** Commits whose changes are not told yet. */
  get waiting(): number {
    return this.#held.length;
  }

  /**
   * Tells `changes` once `durable` resolves (at once when it is `undefined`
   * and nothing earlier waits); drops them if it rejects.
   *
   * @param changes The changes of one commit, in order.
   * @param durable The commit's `durable` promise, if the storage gave one.
   */
  publish(changes: readonly Change[], durable?: Promise<void>): void {
    if (changes.length === 0) return;
    if (durable === undefined && this.#held.length === 0) {
      for (const change of changes) this.#emit(change);
      return;
    }
    const held: Held = {
      changes,
      state: durable === undefined ? DONE : PENDING,
    };
    this.#held.push(held);
    if (durable === undefined) return this.#drain();
    durable.then(
      () => {
        held.state = DONE;
        this.#drain();
      },
      () => {
        held.state = FAILED;
        this.#drain();
      },
    );
  }

  #drain(): void {
    let i = 0;
    const held = this.#held;
    while (i < held.length && held[i]!.state !== PENDING) {
      const { changes, state } = held[i++]!;
      if (state === DONE) {
        for (const change of changes) this.#emit(change);
      }
    }
    if (i > 0) this.#held = held.slice(i);
  }
}
