/**
 * A binary min-heap: the TTL schedule's order of expiry times
 * (ttl_schedule.ts).
 *
 * @module
 */

/**
 * A binary min-heap ordered by a strict "less than" predicate.
 *
 * `push` and `pop` take O(log n) comparisons, `peek` O(1), and
 * {@linkcode MinHeap.from} builds a heap from n items in O(n).
 *
 * @typeParam T The item type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MinHeap } from "./min_heap.ts";
 *
 * const heap = new MinHeap<number>((a, b) => a < b);
 * heap.push(3);
 * heap.push(1);
 * heap.push(2);
 * assert(heap.pop() === 1 && heap.pop() === 2 && heap.size === 1);
 * ```
 */
export class MinHeap<T> {
  #less: (a: T, b: T) => boolean;
  #items: T[] = [];

  /**
   * Creates an empty heap.
   *
   * @param less Whether `a` must come out before `b`; a strict weak order.
   * @throws {TypeError} If `less` is not a function.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const maxHeap = new MinHeap<number>((a, b) => a > b);
   * maxHeap.push(1);
   * maxHeap.push(5);
   * assert(maxHeap.peek() === 5);
   * ```
   */
  constructor(less: (a: T, b: T) => boolean) {
    if (typeof less !== "function") {
      throw new TypeError(
        `Cannot create a MinHeap: the ordering must be a function, got ${typeof less}`,
      );
    }
    this.#less = less;
  }

  /**
   * Builds a heap from items in O(n).
   *
   * @param items The items, in any order.
   * @param less Whether `a` must come out before `b`.
   * @returns A new heap holding the items.
   * @throws {TypeError} If `less` is not a function.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = MinHeap.from([5, 3, 8, 1], (a, b) => a < b);
   * assert(heap.size === 4 && heap.peek() === 1);
   * ```
   */
  static from<T>(
    items: Iterable<T>,
    less: (a: T, b: T) => boolean,
  ): MinHeap<T> {
    const heap = new MinHeap<T>(less);
    const array = Array.from(items);
    heap.#items = array;
    for (let i = (array.length >>> 1) - 1; i >= 0; i--) heap.#siftDown(i);
    return heap;
  }

  /**
   * The number of items.
   *
   * @returns The item count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = new MinHeap<number>((a, b) => a < b);
   * heap.push(1);
   * assert(heap.size === 1);
   * ```
   */
  get size(): number {
    return this.#items.length;
  }

  /**
   * Adds an item.
   *
   * @param item The item.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = new MinHeap<number>((a, b) => a < b);
   * heap.push(2);
   * heap.push(1);
   * assert(heap.peek() === 1);
   * ```
   */
  push(item: T): void {
    const items = this.#items;
    const less = this.#less;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      const p = items[parent]!;
      if (!less(item, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  /**
   * The least item, left in the heap.
   *
   * @returns The least item, or `undefined` when the heap is empty.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = new MinHeap<number>((a, b) => a < b);
   * assert(heap.peek() === undefined);
   * heap.push(4);
   * assert(heap.peek() === 4 && heap.size === 1);
   * ```
   */
  peek(): T | undefined {
    return this.#items[0];
  }

  /**
   * Removes and returns the least item.
   *
   * @returns The least item, or `undefined` when the heap is empty.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = MinHeap.from([2, 1], (a, b) => a < b);
   * assert(heap.pop() === 1 && heap.pop() === 2);
   * assert(heap.pop() === undefined);
   * ```
   */
  pop(): T | undefined {
    const items = this.#items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  /**
   * Removes every item.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = MinHeap.from([1, 2], (a, b) => a < b);
   * heap.clear();
   * assert(heap.size === 0);
   * ```
   */
  clear(): void {
    this.#items = [];
  }

  /**
   * Visits, in heap order (parents before children), every item for which
   * `within` holds, skipping whole subtrees where it does not. When `within`
   * is monotone with the heap order (true for a prefix of the order), this
   * costs O(k) for k items visited.
   *
   * @param within Whether an item (and so possibly its children) is wanted.
   * @param visit Called for each wanted item.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MinHeap } from "./min_heap.ts";
   *
   * const heap = MinHeap.from([5, 3, 8, 1], (a, b) => a < b);
   * let n = 0;
   * heap.visitWhile((x) => x <= 4, () => n++);
   * assert(n === 2);
   * ```
   */
  visitWhile(within: (item: T) => boolean, visit: (item: T) => void): void {
    const items = this.#items;
    if (items.length === 0) return;
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const item = items[i]!;
      if (!within(item)) continue;
      visit(item);
      const left = 2 * i + 1;
      if (left < items.length) stack.push(left);
      if (left + 1 < items.length) stack.push(left + 1);
    }
  }

  #siftDown(start: number): void {
    const items = this.#items;
    const less = this.#less;
    const n = items.length;
    const item = items[start]!;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && less(items[right]!, items[child]!)) child = right;
      const c = items[child]!;
      if (!less(c, item)) break;
      items[i] = c;
      i = child;
    }
    items[i] = item;
  }
}
