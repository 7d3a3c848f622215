/**
 * Query cursors: lazy, re-runnable async iterables over matching items.
 *
 * @module
 */

import type { Engine } from "./engine.ts";
import type { Plan } from "./planner.ts";
import type { Filter, Predicate } from "./query/compile.ts";
import { compileProjection, type Projection } from "./query/projection.ts";
import { compileSort, type SortSpec } from "./query/sort.ts";
import type { StorageEntry } from "./storage.ts";
import type { Entry } from "./types.ts";
import { copyValue, type StoredRecord } from "./value_codec.ts";

/** Everything a cursor needs to run its query. */
interface CursorPlan {
  readonly engine: Engine;
  readonly collection: string;
  readonly filter: Filter;
  readonly predicate: Predicate;
  readonly sort: SortSpec | undefined;
  readonly projection: Projection | undefined;
  readonly limit: number;
  readonly skip: number;
  readonly signal: AbortSignal | undefined;
  /** Which documents to visit instead of planning (first, last, between). */
  readonly source?: (
    signal: AbortSignal | undefined,
  ) => AsyncIterable<readonly StorageEntry[]>;
  /** How `source` visits, for `explain()`. */
  readonly sourceDescription?: string;
}

interface Hit {
  readonly entry: StorageEntry;
  readonly record: StoredRecord;
}

/** What `explain()` reports about one run of a query. */
export interface Explanation {
  /** `"index"` when an index narrowed the scan, else `"scan"`. */
  readonly kind: "scan" | "index" | "order";
  /** The index used, if any. */
  readonly index: string | undefined;
  /** The plan in words: index, ranges, direction. */
  readonly description: string;
  /** Whether the index gave the requested order (no in-memory sort). */
  readonly sortCovered: boolean;
  /** Index entries read. */
  readonly keysExamined: number;
  /** Documents read. */
  readonly docsExamined: number;
  /** Documents returned. */
  readonly returned: number;
}

let create: <T>(plan: CursorPlan) => Cursor<T>;

/**
 * The result of `find()`: an async iterable of matching values (copies).
 *
 * Nothing runs until it is iterated, and each iteration runs the query anew
 * (planned against the collection's indexes at that moment). Long scans give
 * the event loop a turn every few milliseconds; `break` stops the scan and
 * releases it; an aborted `signal` rejects the iteration with the signal's
 * reason.
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

  #choose(): Plan | undefined {
    const { engine, collection, filter, sort, source } = this.#plan;
    return source === undefined
      ? engine.plan(collection, filter, sort)
      : undefined;
  }

  async *#hits(
    stats: { keys: number; docs: number } = { keys: 0, docs: 0 },
    plan: Plan | undefined = this.#choose(),
  ): AsyncGenerator<readonly Hit[]> {
    const { engine, collection, predicate, signal, sort, source } = this.#plan;
    let skip = this.#plan.skip;
    let left = this.#plan.limit;
    engine.countQuery();
    if (left <= 0) return;
    const action = `Cannot query '${collection}'`;
    const pages = source !== undefined
      ? source(signal)
      : plan === undefined || plan.kind === "scan"
      ? engine.pages(collection, { signal })
      : engine.indexPages(collection, plan, { signal, examined: stats });
    const sorted = sort !== undefined &&
      (source !== undefined || plan === undefined || !plan.sortCovered);
    const all: Hit[] = [];
    for await (const page of pages) {
      const now = engine.now();
      stats.docs += page.length;
      const out: Hit[] = [];
      for (const entry of page) {
        const record = engine.visible(entry, now, action);
        if (record === undefined || !predicate(record.value, record.tags)) {
          continue;
        }
        if (sorted) {
          all.push({ entry, record });
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
    if (sorted) {
      const compare = compileSort(sort!);
      all.sort((a, b) => compare(a.record.value, b.record.value));
      const end = left === Infinity ? all.length : skip + left;
      const out = all.slice(skip, end);
      if (out.length > 0) yield out;
    }
  }

  #shape(): (value: unknown) => unknown {
    const { projection } = this.#plan;
    if (projection === undefined) return copyValue;
    const project = compileProjection(projection);
    return (value) => copyValue(project(value));
  }

  /**
   * Iterates the matching values.
   *
   * @returns An async iterator of value copies.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    const shape = this.#shape();
    for await (const hits of this.#hits()) {
      for (const hit of hits) yield shape(hit.record.value) as T;
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
    const shape = this.#shape();
    for await (const hits of this.#hits()) {
      for (const hit of hits) {
        yield toEntry<T>(engine.idOf(hit.entry), hit.record, shape);
      }
    }
  }

  /**
   * Collects every matching value.
   *
   * @returns The values, in the requested order (key order by default).
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
    const shape = this.#shape();
    for await (const hits of this.#hits()) {
      for (const hit of hits) out.push(shape(hit.record.value) as T);
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

  /**
   * Runs the query and reports how: the plan (index or scan, ranges,
   * direction) and how many index entries and documents it read to return
   * how many results.
   *
   * @returns The explanation.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * await using db = await open();
   * const users = db.collection("users");
   * await users.createIndex("age");
   * await users.insertMany([{ age: 20 }, { age: 30 }, { age: 40 }]);
   * const plan = await users.find({ age: { $gte: 30 } }).explain();
   * assert.equal(plan.index, "age_1");
   * assert.equal(plan.docsExamined, 2);
   * assert.equal(plan.returned, 2);
   * ```
   */
  async explain(): Promise<Explanation> {
    const stats = { keys: 0, docs: 0 };
    const plan = this.#choose();
    let returned = 0;
    for await (const hits of this.#hits(stats, plan)) returned += hits.length;
    const { sourceDescription, sort } = this.#plan;
    if (plan === undefined) {
      return {
        kind: "order",
        index: undefined,
        description: sourceDescription ?? "insertion order",
        sortCovered: sort === undefined,
        keysExamined: stats.keys,
        docsExamined: stats.docs,
        returned,
      };
    }
    return {
      kind: plan.kind,
      index: plan.index,
      description: plan.description,
      sortCovered: sort === undefined || plan.sortCovered,
      keysExamined: stats.keys,
      docsExamined: stats.docs,
      returned,
    };
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
 * @param shape Copies (and projects) the value.
 * @returns An entry with a copy of the value.
 */
export function toEntry<T>(
  key: string,
  record: StoredRecord,
  shape: (value: unknown) => unknown = copyValue,
): Entry<T> {
  return {
    key,
    value: shape(record.value) as T,
    tags: record.tags === undefined ? [] : [...record.tags],
    expiresAt: record.expiresAt,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    version: record.version,
  };
}
