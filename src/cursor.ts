/**
 * Query cursors: lazy, re-runnable async iterables over matching items.
 *
 * @module
 */

import type { Engine } from "./engine.ts";
import type { Predicate } from "./query/compile.ts";
import type { StorageEntry } from "./storage.ts";
import type { Entry } from "./types.ts";
import { copyValue, type StoredRecord } from "./value_codec.ts";

/** Everything a cursor needs to run its query. */
interface CursorPlan {
  readonly engine: Engine;
  readonly collection: string;
  readonly predicate: Predicate;
  readonly limit: number;
  readonly skip: number;
  readonly signal: AbortSignal | undefined;
}

interface Hit {
  readonly entry: StorageEntry;
  readonly record: StoredRecord;
}

let create: <T>(plan: CursorPlan) => Cursor<T>;

/**
 * The result of `find()`: an async iterable of matching values (copies).
 *
 * Nothing runs until it is iterated, and each iteration runs the query anew.
 * Long scans give the event loop a turn every few milliseconds; `break` stops
 * the scan and releases it; an aborted `signal` rejects the iteration with the
 * signal's reason.
 *
 * @typeParam T The values' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * await using db = await open();
 * await db.put("a", { n: 1 });
 * await db.put("b", { n: 2 });
 * for await (const value of db.find({ n: { $gt: 1 } })) {
 *   assert((value as { n: number }).n === 2);
 * }
 * ```
 */
export class Cursor<T> implements AsyncIterable<T> {
  readonly #plan: CursorPlan;

  static {
    create = <T>(plan: CursorPlan) => new Cursor<T>(plan);
  }

  private constructor(plan: CursorPlan) {
    this.#plan = plan;
  }

  async *#hits(): AsyncGenerator<readonly Hit[]> {
    const { engine, collection, predicate, signal } = this.#plan;
    let skip = this.#plan.skip;
    let left = this.#plan.limit;
    engine.countQuery();
    if (left <= 0) return;
    const action = `Cannot query '${collection}'`;
    for await (const page of engine.pages(collection, { signal })) {
      const now = engine.now();
      const out: Hit[] = [];
      for (const entry of page) {
        const record = engine.visible(entry, now, action);
        if (record === undefined || !predicate(record.value, record.tags)) {
          continue;
        }
        if (skip > 0) {
          skip--;
          continue;
        }
        out.push({ entry, record });
        if (--left === 0) break;
      }
      if (out.length > 0) yield out;
      if (left === 0) return;
    }
  }

  /**
   * Iterates the matching values.
   *
   * @returns An async iterator of value copies.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const hits of this.#hits()) {
      for (const hit of hits) yield copyValue(hit.record.value) as T;
    }
  }

  /**
   * Iterates the matching items with their keys and metadata.
   *
   * @returns An async iterable of entries.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.put("a", { n: 1 }, { tags: ["x"] });
   * for await (const entry of db.find({ tags: "x" }).entries()) {
   *   assert(entry.key === "a" && entry.version === 1);
   * }
   * ```
   */
  async *entries(): AsyncIterable<Entry<T>> {
    const { engine } = this.#plan;
    for await (const hits of this.#hits()) {
      for (const hit of hits) {
        yield toEntry<T>(engine.idOf(hit.entry), hit.record);
      }
    }
  }

  /**
   * Collects every matching value.
   *
   * @returns The values, in key order.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }, { n: 3 }]);
   * const values = await db.find({}, { skip: 1, limit: 1 }).toArray();
   * assert(values.length === 1);
   * ```
   */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const hits of this.#hits()) {
      for (const hit of hits) out.push(copyValue(hit.record.value) as T);
    }
    return out;
  }

  /**
   * Counts the matching items (after `skip` and `limit`) without copying
   * them.
   *
   * @returns The count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }]);
   * assert(await db.find({ n: 2 }).count() === 1);
   * ```
   */
  async count(): Promise<number> {
    let n = 0;
    for await (const hits of this.#hits()) n += hits.length;
    return n;
  }
}

/**
 * Builds a cursor (internal).
 *
 * @param plan What to run.
 * @returns The cursor.
 */
export function createCursor<T>(plan: CursorPlan): Cursor<T> {
  return create<T>(plan);
}

/**
 * Builds the public entry of a record (internal).
 *
 * @param key The item's key.
 * @param record The stored record.
 * @returns An entry with a copy of the value.
 */
export function toEntry<T>(key: string, record: StoredRecord): Entry<T> {
  return {
    key,
    value: copyValue(record.value) as T,
    tags: record.tags === undefined ? [] : [...record.tags],
    expiresAt: record.expiresAt,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    version: record.version,
  };
}
