/**
 * The schedule of keys that expire: a binary min-heap (min_heap.ts) and,
 * on top of it, a map of live expiry times whose heap entries are
 * invalidated lazily.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TtlSchedule } from "./ttl_schedule.ts";
 *
 * const schedule = new TtlSchedule<string>();
 * schedule.set("session:a", 1_000);
 * schedule.set("session:b", 2_000);
 * const expired = schedule.popExpired(1_500);
 * assert(expired.length === 1 && expired[0]!.key === "session:a");
 * ```
 *
 * @module
 */

import { MinHeap } from "./min_heap.ts";

/**
 * A key and the time it expires.
 *
 * @typeParam K The key type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Expiry } from "./ttl_schedule.ts";
 *
 * const expiry: Expiry<string> = { key: "a", expiresAt: Date.now() + 1_000 };
 * assert(expiry.expiresAt > 0);
 * ```
 */
export interface Expiry<K> {
  /** The key. */
  readonly key: K;
  /** When it expires, in epoch milliseconds. */
  readonly expiresAt: number;
}

function earlier<K>(a: Expiry<K>, b: Expiry<K>): boolean {
  return a.expiresAt < b.expiresAt;
}

/**
 * Keys with an expiry time in epoch milliseconds, popped in expiry order.
 *
 * Rescheduling or cancelling a key leaves its old heap entry in place; stale
 * entries are skipped when they reach the top of the heap, and the heap is
 * rebuilt in O(n) from the live entries once stale ones outnumber them
 * (`heapSize > 2 * size + 32`), so memory stays proportional to `size`.
 *
 * The {@linkcode Expiry} objects handed out are the schedule's own records:
 * treat them as read-only.
 *
 * @typeParam K The key type, compared like `Map` keys (SameValueZero).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TtlSchedule } from "./ttl_schedule.ts";
 *
 * const schedule = new TtlSchedule<number>();
 * schedule.set(1, 100);
 * schedule.set(2, 50);
 * schedule.set(1, 10); // reschedule
 * schedule.delete(2); // cancel
 * const due = schedule.popExpired(100);
 * assert(due.length === 1 && due[0]!.key === 1 && due[0]!.expiresAt === 10);
 * assert(schedule.size === 0);
 * ```
 */
export class TtlSchedule<K> {
  /** The live entry of each key; a heap entry is stale unless it is here. */
  #live = new Map<K, Expiry<K>>();
  #heap = new MinHeap<Expiry<K>>(earlier);

  /**
   * Schedules a key, or reschedules it if it is already scheduled.
   *
   * @param key The key.
   * @param expiresAt When it expires, in epoch milliseconds.
   * @throws {RangeError} If `expiresAt` is not a finite number.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.set("a", 7);
   * assert(schedule.get("a") === 7 && schedule.size === 1);
   * ```
   */
  set(key: K, expiresAt: number): void {
    if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
      throw new RangeError(
        `Cannot schedule a key: expiresAt must be a finite number of epoch milliseconds, got ${
          String(expiresAt)
        }`,
      );
    }
    const current = this.#live.get(key);
    if (current !== undefined && current.expiresAt === expiresAt) return;
    const entry: Expiry<K> = { key, expiresAt };
    this.#live.set(key, entry);
    this.#heap.push(entry);
    this.#compact();
  }

  /**
   * Cancels a key's expiry.
   *
   * @param key The key.
   * @returns `true` if the key was scheduled.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * assert(schedule.delete("a") === true);
   * assert(schedule.delete("a") === false);
   * assert(schedule.popExpired(10).length === 0);
   * ```
   */
  delete(key: K): boolean {
    if (!this.#live.delete(key)) return false;
    this.#compact();
    return true;
  }

  /**
   * The current expiry time of a key.
   *
   * @param key The key.
   * @returns Its expiry in epoch milliseconds, or `undefined` if unscheduled.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * assert(schedule.get("a") === 5 && schedule.get("b") === undefined);
   * ```
   */
  get(key: K): number | undefined {
    return this.#live.get(key)?.expiresAt;
  }

  /**
   * Whether a key is scheduled.
   *
   * @param key The key.
   * @returns `true` if the key has an expiry.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * assert(schedule.has("a") && !schedule.has("b"));
   * ```
   */
  has(key: K): boolean {
    return this.#live.has(key);
  }

  /**
   * The number of scheduled keys.
   *
   * @returns The live key count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.set("a", 6);
   * assert(schedule.size === 1);
   * ```
   */
  get size(): number {
    return this.#live.size;
  }

  /**
   * The number of heap entries, stale ones included; after every call it is
   * at most `2 * size + 32`.
   *
   * @returns The heap entry count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.set("a", 6);
   * assert(schedule.heapSize === 2 && schedule.size === 1);
   * ```
   */
  get heapSize(): number {
    return this.#heap.size;
  }

  /**
   * The earliest live expiry, left scheduled. Stale heap entries met on the
   * way are dropped.
   *
   * @returns The earliest expiry, or `undefined` when nothing is scheduled.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.set("b", 3);
   * schedule.delete("b");
   * assert(schedule.peek()?.key === "a" && schedule.size === 1);
   * ```
   */
  peek(): Expiry<K> | undefined {
    const heap = this.#heap;
    const live = this.#live;
    for (;;) {
      const top = heap.peek();
      if (top === undefined || live.get(top.key) === top) return top;
      heap.pop();
    }
  }

  /**
   * Removes and returns the keys that have expired by `now`, earliest first.
   * Costs O(k log n) for k returned keys (plus any stale entries skipped).
   *
   * @param now The current time, in epoch milliseconds; keys with
   * `expiresAt <= now` have expired.
   * @param limit The most keys to return. Defaults to `Infinity`.
   * @returns The expired entries, in non-decreasing `expiresAt` order.
   * @throws {RangeError} If `now` is NaN, or `limit` is not a non-negative
   * integer or `Infinity`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 1);
   * schedule.set("b", 2);
   * schedule.set("c", 3);
   * const due = schedule.popExpired(2, 1);
   * assert(due.length === 1 && due[0]!.key === "a");
   * assert(schedule.popExpired(2).map((e) => e.key).join() === "b");
   * assert(schedule.size === 1);
   * ```
   */
  popExpired(now: number, limit: number = Infinity): Expiry<K>[] {
    if (typeof now !== "number" || Number.isNaN(now)) {
      throw new RangeError(
        `Cannot pop expired keys: now must be a number of epoch milliseconds, got ${
          String(now)
        }`,
      );
    }
    if (
      typeof limit !== "number" ||
      !(limit === Infinity || (Number.isInteger(limit) && limit >= 0))
    ) {
      throw new RangeError(
        `Cannot pop expired keys: limit must be a non-negative integer or Infinity, got ${
          String(limit)
        }`,
      );
    }
    const heap = this.#heap;
    const live = this.#live;
    const expired: Expiry<K>[] = [];
    while (expired.length < limit) {
      const top = heap.peek();
      if (top === undefined) break;
      if (live.get(top.key) !== top) {
        heap.pop();
        continue;
      }
      if (top.expiresAt > now) break;
      heap.pop();
      live.delete(top.key);
      expired.push(top);
    }
    this.#compact();
    return expired;
  }

  /**
   * Counts the live keys that have expired by `now`, without removing them.
   * Costs O(k) for the k heap entries (live or stale) due by `now`.
   *
   * @param now The current time, in epoch milliseconds.
   * @returns How many live keys have `expiresAt <= now`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 1);
   * schedule.set("b", 5);
   * schedule.set("a", 2);
   * assert(schedule.countExpired(2) === 1 && schedule.size === 2);
   * ```
   */
  countExpired(now: number): number {
    if (this.#live.size === 0) return 0;
    const live = this.#live;
    let n = 0;
    this.#heap.visitWhile(
      (e) => e.expiresAt <= now,
      (e) => {
        if (live.get(e.key) === e) n++;
      },
    );
    return n;
  }

  /**
   * Cancels every expiry.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.clear();
   * assert(schedule.size === 0 && schedule.heapSize === 0);
   * ```
   */
  clear(): void {
    this.#live.clear();
    this.#heap.clear();
  }

  /**
   * Iterates the live expiries, in no particular order.
   *
   * @returns An iterator of the scheduled entries.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { TtlSchedule } from "./ttl_schedule.ts";
   *
   * const schedule = new TtlSchedule<string>();
   * schedule.set("a", 5);
   * schedule.set("b", 3);
   * const keys = [...schedule].map((e) => e.key).sort();
   * assert(keys.join() === "a,b");
   * ```
   */
  [Symbol.iterator](): IterableIterator<Expiry<K>> {
    return this.#live.values();
  }

  /** Rebuilds the heap from the live entries once stale entries dominate. */
  #compact(): void {
    if (this.#heap.size > 2 * this.#live.size + 32) {
      this.#heap = MinHeap.from(this.#live.values(), earlier);
    }
  }
}
