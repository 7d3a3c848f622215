/**
 * In-process `watch`: this engine's own changes, and on a shared storage
 * with `watch` the feed records of other processes.
 *
 * @module
 */

import { encodeKey } from "../key_codec.ts";
import type { Change } from "../types.ts";
import type { EngineCore } from "./state.ts";
import { META } from "./layout.ts";

/**
 * Follows the changes of one collection: this engine's own writes, and on
 * a shared storage with `watch` the feed records of other processes.
 *
 * @param collection Collection name.
 * @param signal Ends the iteration (at once when already aborted).
 * @returns The changes, in the order this process saw them.
 */
export async function* changes(
  s: EngineCore,
  collection: string,
  signal?: AbortSignal,
): AsyncGenerator<Change> {
  s.assertOpen(`Cannot watch '${collection}'`);
  // Ends quietly, as when the signal aborts later (and as `changes()`).
  if (signal?.aborted) return;
  const queue: Change[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  const stop = new AbortController();
  const finish = () => {
    done = true;
    stop.abort();
    wake?.();
  };
  const listener = (change: Change) => {
    if (change.collection !== collection) return;
    queue.push(change);
    wake?.();
  };
  s.listeners.add(listener);
  signal?.addEventListener("abort", finish, { once: true });
  s.onClose.push(finish);
  const storage = s.storage;
  let remote: Promise<void> | undefined;
  if (s.shared && storage.watch !== undefined) {
    const key = encodeKey([META, collection, "feed"]);
    remote = (async () => {
      let first = true;
      for await (const [entry] of storage.watch!([key], stop.signal)) {
        if (first) { // the current record, not a change
          first = false;
          continue;
        }
        if (entry === null || entry === undefined) continue;
        let record: { w: string; c: [string, number][] };
        try {
          record = JSON.parse(new TextDecoder().decode(entry.value));
        } catch {
          continue;
        }
        if (record.w === s.writer) continue;
        for (const [key, put] of record.c) {
          queue.push({
            type: put === 1 ? "put" : "delete",
            collection,
            key,
            remote: true,
          });
        }
        wake?.();
      }
    })().catch((e) => {
      if (!done) s.recordError(e);
    });
  }
  try {
    while (!done) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
        continue;
      }
      yield queue.shift()!;
    }
  } finally {
    s.listeners.delete(listener);
    s.onClose = s.onClose.filter((fn) => fn !== finish);
    signal?.removeEventListener("abort", finish);
    stop.abort();
    await remote;
  }
}
