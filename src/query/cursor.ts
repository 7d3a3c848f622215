/**
 * Query cursors: lazy, re-runnable async iterables over matching items.
 *
 * @module
 */

import { base64ToBytes, bytesToBase64, compareBytes } from "../bytes.ts";
import { compareStrings } from "../key_codec.ts";
import type { Engine } from "../engine/engine.ts";
import type { DocPage } from "../engine/engine.ts";
import type { Plan } from "./planner.ts";
import { type Filter, type Predicate, resolvePredicate } from "./compile.ts";
import { compileProjection, type Projection } from "./projection.ts";
import { compileSort, type SortSpec, tieDirection } from "./sort.ts";
import { Budget } from "../engine/yield.ts";
import {
  type Hit,
  runDone,
  type RunState,
  scanPage,
  type Sink,
} from "./scan_page.ts";
import type { Entry } from "../types.ts";
import {
  copyKept,
  copyValue,
  shareValue,
  type StoredRecord,
} from "../value_codec.ts";
import { DocSlot } from "../engine/record_table.ts";
import type { IndexWalk } from "../engine/read.ts";
import { runIndex } from "./index_run.ts";
import { Buffered, Values } from "./cursor_values.ts";
import { describe } from "./types.ts";

/** Everything a cursor needs to run its query (internal). */
export interface CursorPlan {
  readonly engine: Engine;
  readonly collection: string;
  readonly filter: Filter;
  readonly predicate: Predicate;
  readonly sort: SortSpec | undefined;
  readonly projection: Projection | undefined;
  readonly limit: number;
  readonly skip: number;
  readonly signal: AbortSignal | undefined;
  /** A position from `page()`: resume after it. */
  readonly after?: string | undefined;
  /** Results are the stored values, frozen and shared (not copies). */
  readonly readonly?: boolean;
  /** Which documents to visit instead of planning (first, last, between). */
  readonly source?: (
    signal: AbortSignal | undefined,
  ) => AsyncIterable<DocPage>;
  /** How `source` visits, for `explain()`. */
  readonly sourceDescription?: string;
}

/** Where a paginated query stopped. */
type Position =
  | { readonly p: string; readonly r: number; readonly k: string }
  | { readonly o: number };

function encodePosition(position: Position): string {
  return btoa(JSON.stringify(position)).replaceAll("+", "-").replaceAll(
    "/",
    "_",
  ).replace(/=+$/, "");
}

function decodePosition(token: string, action: string): Position {
  if (typeof token !== "string") {
    throw new TypeError(
      `${action}: after must be a position from page(), got ${describe(token)}`,
    );
  }
  try {
    const json = atob(token.replaceAll("-", "+").replaceAll("_", "/"));
    const position = JSON.parse(json);
    // page() hands positions to clients, who may send back anything: every
    // number a whole one from 0, the key valid base64.
    // Only the fields checked are kept: a token with both forms (a forged
    // `o` beside a valid `p`) must not pass on the unchecked one.
    const whole = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    if (typeof position === "object" && position !== null) {
      if (whole(position.o)) return { o: position.o };
      if (
        typeof position.p === "string" && whole(position.r) &&
        typeof position.k === "string" && atob(position.k) !== undefined
      ) {
        return { p: position.p, r: position.r, k: position.k };
      }
    }
  } catch {
    // reported below
  }
  throw new TypeError(`${action}: '${token}' is not a cursor position`);
}

function planTag(plan: Plan | undefined): string {
  return plan === undefined
    ? "source"
    : plan.kind === "scan"
    ? "scan"
    : `${plan.index}:${plan.reverse ? "desc" : "asc"}:${plan.ranges.length}`;
}

/** One page of results and where the next page starts. */
export interface Page<T> {
  /** The values of this page. */
  readonly items: T[];
  /** Pass as `find(filter, { after })` for the next page; absent at the end. */
  readonly next: string | undefined;
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

/**
 * Internal seams of the cursor, for tests: `copy` makes the copy of a stored
 * value that a result hands out, `copyKept` the same for the results of a
 * long `toArray()` (a spy can check that `count()` and `explain()` never
 * copy a document).
 */
export const cursorHooks: {
  copy: (value: unknown) => unknown;
  copyKept: (value: unknown) => unknown;
} = {
  copy: copyValue,
  copyKept,
};

/**
 * Results of a `toArray()` copied as short-lived objects before the rest
 * are copied as kept ones (see shape_copy.ts): a small result dies young
 * with its array, a long one goes to the old generation.
 */
const KEPT_AFTER = 2048;

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
 * import { open } from "@tether/db";
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

  async #choose(): Promise<{ plan: Plan | undefined }> {
    const { engine, collection, filter, sort, source } = this.#plan;
    if (source !== undefined) return { plan: undefined };
    // Another process may have changed the indexes of a shared storage.
    await engine.sync(collection);
    return { plan: engine.plan(collection, filter, sort) };
  }

  /**
   * Runs the query: visits the planned documents in synchronous chunks of at
   * most 4 ms (a {@linkcode Budget}: the clock is read every few documents)
   * and gives the event loop a turn between chunks. Each result goes to `sink`
   * as the stored record (never copied here); with no sink, results are
   * only counted in `tally` (nothing is kept, not even for a sort).
   *
   * The generator yields (nothing) when the sink holds results, so an
   * iterating consumer can take them; `toArray()` and `count()` drive it to
   * the end.
   *
   * @param sink Receives each result, or `undefined` to count only.
   * @param tally Counts the results.
   * @param stats Counts the index entries and documents read.
   * @param chosen The plan, when already chosen.
   * @param asFind With no sink, read as many documents as `find` would (for
   *   `explain()`): a sort reads every match, and no early stop at the limit.
   */
  async *#run(
    sink: Sink | undefined,
    tally: { n: number },
    stats: { keys: number; docs: number } = { keys: 0, docs: 0 },
    chosen?: { plan: Plan | undefined },
    asFind = false,
  ): AsyncGenerator<void> {
    const { plan } = chosen ?? await this.#choose();
    const { engine, collection, predicate, signal, sort, source } = this.#plan;
    const action = `Cannot query '${collection}'`;
    let skip = this.#plan.skip;
    const left = this.#plan.limit;
    const sorted = sort !== undefined &&
      (source !== undefined || plan === undefined || !plan.sortCovered);
    let resume: { range: number; key: Uint8Array } | undefined;
    if (this.#plan.after !== undefined) {
      const at = decodePosition(this.#plan.after, action);
      // `skip` counts from the start of the results, not from a position.
      skip = 0;
      if ("o" in at) {
        if (!sorted) {
          throw new TypeError(
            `${action}: the position belongs to another query plan`,
          );
        }
        skip = at.o;
      } else {
        if (
          sorted || at.p !== planTag(plan) ||
          (plan?.kind === "index" && at.r >= plan.ranges.length)
        ) {
          throw new TypeError(
            `${action}: the position belongs to another query plan`,
          );
        }
        resume = { range: at.r, key: base64ToBytes(at.k) };
      }
    }
    engine.countQuery();
    engine.assertOpen(action); // even for a read of nothing
    if (left <= 0) return;
    const budget = new Budget(signal);
    const pages: AsyncIterable<DocPage> = source !== undefined
      ? source(signal)
      : plan === undefined || plan.kind === "scan"
      ? engine.pages(collection, { signal, after: resume?.key })
      : engine.indexPages(collection, plan, {
        signal,
        examined: stats,
        after: resume,
        positions: sink?.positions,
      });
    const keep = left === Infinity ? Infinity : skip + left;
    // Counting a sorted query: the order does not change how many.
    const counting = sink === undefined;
    const inMemory = sorted && !counting;
    // In-memory sort: with a limit, keep only the best skip + limit hits.
    const compare = inMemory ? compileSort(sort!) : undefined;
    const tieDir = inMemory ? tieDirection(sort!) : 1;
    const r: RunState = {
      budget,
      visible: (entry, now, why) => engine.visible(entry, now, why),
      action,
      // Even an exact index plan's pages are filtered: a document is read
      // after its index entry (an await, or a page handed on, between
      // them), and a write in between may have moved it out of the range.
      // Only the synchronous index run (`runIndex`) reads both at once.
      predicate: resolvePredicate(predicate),
      counting,
      // A count stops at skip + limit matches; explain reads what find reads.
      stopAt: counting && sorted && asFind ? Infinity : keep,
      inMemory,
      keep,
      all: [],
      // Values without `_id` tie by key, as `compileSort` ties by `_id`.
      order: (a, b) =>
        compare!(a.record.value, b.record.value) || tieDir * byKey(a, b),
      sink,
      tally,
      skip,
      left,
      matched: 0,
    };
    pages: for await (const page of pages) {
      if (budget.spent()) await budget.pause();
      const now = engine.now();
      stats.docs += page.length;
      // Documents are read synchronously (scanPage); the loop only waits
      // when the chunk's budget is spent.
      for (let i = 0; i < page.length;) {
        i = scanPage(r, page, i, now);
        if (runDone(r)) {
          if (counting) break pages;
          break;
        }
        if (i < page.length) await budget.pause();
      }
      if (sink?.pending === true) yield;
      if (!counting && r.left === 0) return;
    }
    if (counting) {
      tally.n += Math.max(0, Math.min(r.matched, keep) - r.skip);
      return;
    }
    if (inMemory) {
      // Ties keep key order (a stable sort), so pages never overlap.
      const { all, order } = r;
      if (keep === Infinity) all.sort(order);
      const end = Math.min(all.length, keep);
      for (let i = r.skip; i < end; i++) {
        if (budget.due()) {
          if (sink!.pending) yield;
          await budget.pause();
        }
        const hit = all[i]!;
        tally.n++;
        sink!.add(hit.record, hit.entry, hit.source, hit.range);
      }
    }
  }

  #shape(): (value: unknown) => unknown {
    const { projection } = this.#plan;
    const copy = cursorHooks.copy;
    if (projection === undefined) {
      return this.#plan.readonly === true ? shareValue : copy;
    }
    const project = compileProjection(projection, this.#plan.filter);
    return (value) => copy(project(value));
  }

  /**
   * Iterates the matching values.
   *
   * @returns An async iterator of value copies.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return new Values<T>(
      () => this.#shape(),
      (sink) => this.#run(sink, { n: 0 }),
    );
  }

  /**
   * Iterates the matching values a batch at a time, as the scan produces
   * them (copies, or shared values with `readonly`): for consumers that
   * process each value synchronously, such as `aggregate`, without an
   * await per value.
   *
   * @returns An async iterable of non-empty arrays of values.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }]);
   * let n = 0;
   * for await (const batch of db.find({}).batches()) n += batch.length;
   * assert.equal(n, 2);
   * ```
   */
  async *batches(): AsyncIterable<T[]> {
    const shape = this.#shape();
    const sink = new Buffered();
    for await (const _ of this.#run(sink, { n: 0 })) {
      const records = sink.take();
      if (records.length > 0) {
        yield records.map((record) => shape(record.value) as T);
      }
    }
    const records = sink.take();
    if (records.length > 0) yield records.map((r) => shape(r.value) as T);
  }

  /**
   * Iterates the matching items with their keys and metadata.
   *
   * @returns An async iterable of entries.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
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
    const sink = new Buffered(true);
    for await (const _ of this.#run(sink, { n: 0 })) {
      for (const [record, entry] of sink.takeEntries()) {
        yield toEntry<T>(engine.idOf(entry), record, shape);
      }
    }
    for (const [record, entry] of sink.takeEntries()) {
      yield toEntry<T>(engine.idOf(entry), record, shape);
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
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }, { n: 3 }]);
   * const values = await db.find({}, { skip: 1, limit: 1 }).toArray();
   * assert(values.length === 1);
   * ```
   */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    const shape = this.#shape();
    const { copy, copyKept } = cursorHooks;
    // Copies are made inside the scan's chunks, so they count against the
    // chunk budget like the rest of the work.
    // A shared value of the object tier is frozen once and then handed out
    // as it is (the slot remembers; its record may have changed since the
    // hit was taken, in a sorted run: then the hit's value is shared). The
    // records are compared, not their values: that reads only the slot.
    const keep = (value: unknown) => {
      out.push(
        (out.length < KEPT_AFTER ? copy(value) : copyKept(value)) as T,
      );
    };
    const sink: Sink = this.#plan.readonly === true &&
        this.#plan.projection === undefined
      ? {
        pending: false,
        addSlot: (slot) => {
          out.push(slot.shared() as T);
        },
        add: (record, entry) => {
          out.push(
            (entry instanceof DocSlot && entry.record === record
              ? entry.shared()
              : shareValue(record.value)) as T,
          );
        },
      }
      : this.#plan.projection === undefined
      ? {
        pending: false,
        addSlot: (slot) => keep(slot.doc),
        add: (record) => keep(record.value),
      }
      : {
        pending: false,
        add: (record) => {
          out.push(shape(record.value) as T);
        },
      };
    const chosen = await this.#choose();
    const walk = await this.#indexWalk(chosen.plan);
    if (walk !== undefined) {
      const { engine, collection, skip, limit, signal } = this.#plan;
      await runIndex({
        engine,
        walk,
        action: `Cannot query '${collection}'`,
        skip,
        limit,
        signal,
      }, sink);
      return out;
    }
    for await (const _ of this.#run(sink, { n: 0 }, undefined, chosen)) {
      // drained by the sink
    }
    return out;
  }

  /**
   * The synchronous walk of an exact index plan (see `runIndex`), when
   * the query is only that: no position to resume at, no other source, an
   * order (if any) that the index gives.
   */
  #indexWalk(plan: Plan | undefined): Promise<IndexWalk | undefined> {
    const { engine, collection, after, source, sort } = this.#plan;
    if (
      plan === undefined || plan.kind !== "index" || !plan.exact ||
      after !== undefined || source !== undefined ||
      (sort !== undefined && !plan.sortCovered)
    ) {
      return Promise.resolve(undefined);
    }
    return engine.indexWalk(collection, plan);
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
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([{ n: 1 }, { n: 2 }]);
   * assert(await db.find({ n: 2 }).count() === 1);
   * ```
   */
  async count(): Promise<number> {
    const chosen = await this.#choose();
    const counted = await this.#countByIndex(undefined, chosen);
    if (counted !== undefined) return counted;
    const {
      engine,
      collection,
      predicate,
      signal,
      source,
      after,
      skip,
      limit,
    } = this.#plan;
    if (
      source === undefined && after === undefined &&
      (chosen.plan === undefined || chosen.plan.kind === "scan")
    ) {
      // A full scan in no particular order, straight over the records.
      const n = limit <= 0 ? 0 : await engine.countLocal(
        collection,
        resolvePredicate(predicate),
        skip + limit,
        signal,
      );
      if (n !== undefined) {
        engine.countQuery();
        return Math.max(0, Math.min(n - skip, limit));
      }
    }
    // No sink: matches are counted, never copied or kept.
    const tally = { n: 0 };
    for await (const _ of this.#run(undefined, tally, undefined, chosen)) {
      // nothing to take
    }
    return tally.n;
  }

  async #countByIndex(
    examined?: { keys: number },
    chosen?: { plan: Plan | undefined },
  ): Promise<number | undefined> {
    const { plan } = chosen ?? await this.#choose();
    const { engine, collection, source, after, skip, limit } = this.#plan;
    if (source !== undefined || after !== undefined || plan === undefined) {
      return undefined;
    }
    const n = await engine.countByIndex(collection, plan, examined);
    if (n === undefined) return undefined;
    engine.countQuery();
    return Math.max(0, Math.min(n - skip, limit));
  }

  /**
   * Reads one page: up to `size` values and a position to pass as
   * `find(filter, { after })` (with the same filter and options) for the
   * next one. Positions are strings, so an edge function can hand them to its
   * client. For orders served by the key or an index the position is a key,
   * so writes between pages never repeat or skip an item that stays in
   * place; for orders sorted in memory it is an offset.
   *
   * @param size Most values on the page (at least 1).
   * @returns The values and the next position (absent on the last page).
   * @throws {RangeError} When `size` is not a whole number of at least 1.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.putBatch([1, 2, 3, 4, 5]);
   * const first = await db.find({}).page(2);
   * const second = await db.find({}, { after: first.next }).page(2);
   * assert.deepEqual([...first.items, ...second.items], [1, 2, 3, 4]);
   * ```
   */
  async page(size: number): Promise<Page<T>> {
    if (!(Number.isInteger(size) && size >= 1)) {
      throw new (typeof size === "number" ? RangeError : TypeError)(
        `Cannot read a page of '${this.#plan.collection}': size must be a whole number of at least 1, got ${
          describe(size)
        }`,
      );
    }
    const chosen = await this.#choose();
    const { plan } = chosen;
    const shape = this.#shape();
    const limited = createCursor<T>({
      ...this.#plan,
      limit: Math.min(this.#plan.limit, size + 1),
    });
    const hits: Hit[] = [];
    const sink: Sink = {
      pending: false,
      positions: true,
      add: (record, entry, source, range) => {
        hits.push({ entry, record, source, range });
      },
    };
    for await (const _ of limited.#run(sink, { n: 0 }, undefined, chosen)) {
      // drained by the sink
    }
    const more = hits.length > size;
    const items = hits.slice(0, size);
    const items_ = items.map((hit) => shape(hit.record.value) as T);
    if (!more || items.length === 0) return { items: items_, next: undefined };
    const { sort, source } = this.#plan;
    const sorted = sort !== undefined &&
      (source !== undefined || plan === undefined || !plan.sortCovered);
    let next: Position;
    if (sorted) {
      const start = this.#plan.after === undefined
        ? this.#plan.skip
        : (decodePosition(this.#plan.after, "Cannot page") as { o?: number })
          .o ?? 0;
      next = { o: start + items.length };
    } else {
      const last = items[items.length - 1]!;
      const k = bytesToBase64((last.source ?? last.entry).key);
      next = { p: planTag(plan), r: last.range, k };
    }
    return { items: items_, next: encodePosition(next) };
  }

  /**
   * Runs the query and reports how: the plan (index or scan, ranges,
   * direction) and how many index entries and documents it read to return
   * how many results.
   *
   * @param mode `"count"` explains `count()`, which can answer from an exact
   *   index plan without reading documents.
   * @returns The explanation.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
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
  async explain(mode: "find" | "count" = "find"): Promise<Explanation> {
    const stats = { keys: 0, docs: 0 };
    const chosen = await this.#choose();
    const { plan } = chosen;
    let returned = 0;
    const counted = mode === "count"
      ? await this.#countByIndex(stats, chosen)
      : undefined;
    if (counted !== undefined) {
      returned = counted;
    } else {
      // Counts what find would return, reading what find would read,
      // without copying or keeping a document.
      const tally = { n: 0 };
      for await (const _ of this.#run(undefined, tally, stats, chosen, true)) {
        // nothing to take
      }
      returned = tally.n;
    }
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

/** Orders two hits of one collection by their items' keys. */
function byKey(a: Hit, b: Hit): number {
  const x = a.entry;
  const y = b.entry;
  if (x instanceof DocSlot && y instanceof DocSlot) {
    return compareStrings(x.id, y.id);
  }
  return compareBytes(x.key, y.key);
}
