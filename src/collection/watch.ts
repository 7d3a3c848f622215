/**
 * A collection's changes: `watch` (the changes made from now on, in
 * memory) and `changes` (the durable change feed, resumable from a
 * position). The `Collection` methods of these names call the functions
 * here; `Database.changes` is the feed over every collection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("k", 1);
 * const [change] = await Array.fromAsync(db.collection("default").changes({ live: false }));
 * assert.equal(change?.key, "k");
 * ```
 *
 * @module
 */

import type {
  Change,
  ChangesOptions,
  FeedChange,
  WatchOptions,
} from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import { checkChanges } from "../engine/feed.ts";
import type { CollectionCore } from "./core.ts";

/**
 * `Collection.watch`.
 *
 * @param c The collection.
 * @param options `signal`.
 * @returns The changes, as they happen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const seen: (string | undefined)[] = [];
 * const done = (async () => {
 *   for await (const change of db.watch()) {
 *     seen.push(change.key);
 *     break;
 *   }
 * })();
 * await new Promise((r) => setTimeout(r, 0)); // the loop has started
 * await db.put("k", 1);
 * await done;
 * assert.deepEqual(seen, ["k"]);
 * ```
 */
export function watch(
  c: CollectionCore,
  options: WatchOptions,
): AsyncIterable<Change> {
  const action = `Cannot watch '${c.name}'`;
  c.engine.assertOpen(action);
  checkOptions(options, OPTIONS.watch, action);
  return c.engine.changes(c.name, options.signal);
}

/**
 * `Collection.changes`.
 *
 * @param c The collection.
 * @param options `since`, `limit`, `signal`, `live`, `expiries`.
 * @returns The durable changes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c");
 * await c.put("a", 1);
 * assert.equal((await Array.fromAsync(c.changes({ live: false }))).length, 1);
 * ```
 */
export function changes<T>(
  c: CollectionCore,
  options: ChangesOptions,
): AsyncIterable<FeedChange<T>> {
  const action = `Cannot read the changes of '${c.name}'`;
  c.engine.assertOpen(action);
  checkOptions(options, OPTIONS.changes, action);
  const request = checkChanges(options, action, [c.name]);
  return c.engine.durableChanges<T>(request);
}
