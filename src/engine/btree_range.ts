/**
 * Range scans of the B+tree: the bounds of a scan ({@linkcode BTreeRange}),
 * the seek of its first and last positions, and the iterator that walks
 * the linked leaves between them, one item at a time or in runs
 * ({@linkcode RunIterator.fill}). `BTree.entries`, `keys` and `values`
 * (btree.ts) return these iterators.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { iterate, MODE_KEYS } from "./btree_range.ts";
 * import { TreeCore } from "./btree_node.ts";
 *
 * const t = new TreeCore<number, string>((a, b) => a - b, 4);
 * t.root.keys.push(1, 2, 3);
 * assert([...iterate<number, string, number>(t, { gt: 1 }, MODE_KEYS)].join() === "2,3");
 * ```
 *
 * @module
 */

import {
  findLeaf,
  firstLeaf,
  lastLeaf,
  type Leaf,
  lowerBound,
  type ModCount,
  type TreeCore,
  upperBound,
} from "./btree_node.ts";

/**
 * Bounds and direction of a range scan. Every bound is optional and they
 * combine: when both `gt` and `gte` (or both `lt` and `lte`) are given, the
 * stricter one applies. Bounds that are `undefined` are ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTree, type BTreeRange } from "./btree.ts";
 *
 * const tree = new BTree<number, string>((a, b) => a - b);
 * for (let i = 0; i < 10; i++) tree.set(i, `v${i}`);
 * const range: BTreeRange<number> = { gt: 2, lte: 5, reverse: true };
 * assert([...tree.keys(range)].join() === "5,4,3");
 * ```
 */
export interface BTreeRange<K> {
  /** Only keys strictly greater than this. */
  gt?: K;
  /** Only keys greater than or equal to this. */
  gte?: K;
  /** Only keys strictly less than this. */
  lt?: K;
  /** Only keys less than or equal to this. */
  lte?: K;
  /** Iterate from the greatest key down instead of from the least key up. */
  reverse?: boolean;
}

/** Iterate `[key, value]` pairs. */
export const MODE_ENTRIES = 0;
/** Iterate keys. */
export const MODE_KEYS = 1;
/** Iterate values. */
export const MODE_VALUES = 2;

/**
 * An iterator over a range of a tree that can also hand out its items in
 * runs ({@linkcode RunIterator.fill}).
 */
export interface RunIterator<T> extends IterableIterator<T> {
  /**
   * Moves up to `max` of the next items into `out`.
   *
   * @param out Receives the items.
   * @param max Most items to move.
   * @param at Where in `out` the first goes (default: its end, so the items
   *   are appended; an array made with room for `max` fills without growing).
   * @returns How many were moved (fewer than `max` only at the end).
   */
  fill(out: T[], max: number, at?: number): number;
  /**
   * {@linkcode RunIterator.fill} that also moves each item's key into
   * `keys`, at the same positions (a values iterator hands out the key it
   * is at without a pair per item).
   *
   * @param out Receives the items.
   * @param keys Receives their keys.
   * @param max Most items to move.
   * @returns How many were moved (fewer than `max` only at the end).
   */
  fillKeyed(out: T[], keys: unknown[], max: number): number;
  /**
   * The key of the last item a `fill` or `fillKeyed` moved (`undefined`
   * before any): where a later walk resumes.
   */
  readonly lastKey: unknown;
  /**
   * Whether keys were added or deleted since the iterator was made (it then
   * throws rather than go on: walk again from where it stopped).
   */
  readonly stale: boolean;
}

/** Walks linked leaves from a start position to an end position, inclusive. */
class RangeIterator<K, V, T> implements RunIterator<T> {
  #leaf: Leaf<K, V> | null;
  #index: number;
  #endLeaf: Leaf<K, V> | null;
  #endIndex: number;
  #reverse: boolean;
  #mode: number;
  #mod: ModCount;
  #expected: number;
  #lastKey: K | undefined;

  constructor(
    leaf: Leaf<K, V> | null,
    index: number,
    endLeaf: Leaf<K, V> | null,
    endIndex: number,
    reverse: boolean,
    mode: number,
    mod: ModCount,
  ) {
    this.#leaf = leaf;
    this.#index = index;
    this.#endLeaf = endLeaf;
    this.#endIndex = endIndex;
    this.#reverse = reverse;
    this.#mode = mode;
    this.#mod = mod;
    this.#expected = mod.n;
  }

  next(): IteratorResult<T, undefined> {
    const leaf = this.#leaf;
    if (leaf === null) return { value: undefined, done: true };
    if (this.#mod.n !== this.#expected) {
      this.#leaf = null;
      throw new TypeError(
        "Cannot continue iterating the BTree: keys were added or deleted since the iterator was created",
      );
    }
    const i = this.#index;
    if (leaf === this.#endLeaf && i === this.#endIndex) {
      this.#leaf = null;
    } else if (this.#reverse) {
      if (i > 0) {
        this.#index = i - 1;
      } else {
        const prev = leaf.prev!;
        this.#leaf = prev;
        this.#index = prev.keys.length - 1;
      }
    } else if (i + 1 < leaf.keys.length) {
      this.#index = i + 1;
    } else {
      this.#leaf = leaf.next;
      this.#index = 0;
    }
    const mode = this.#mode;
    const value = mode === MODE_KEYS
      ? leaf.keys[i]
      : mode === MODE_VALUES
      ? leaf.values[i]
      : [leaf.keys[i], leaf.values[i]];
    return { value: value as T, done: false };
  }

  get lastKey(): K | undefined {
    return this.#lastKey;
  }

  get stale(): boolean {
    return this.#mod.n !== this.#expected;
  }

  /**
   * Moves up to `max` of the next items into `out` (walking the leaves
   * directly: no result object per item).
   *
   * @param out Receives the items.
   * @param max Most items to move.
   * @param at Where in `out` the first goes (default: its end).
   * @returns How many were moved (fewer than `max` only at the end).
   */
  fill(out: T[], max: number, at: number = out.length): number {
    return this.#fill(out, undefined, max, at);
  }

  /**
   * {@linkcode RunIterator.fillKeyed}: the items, and their keys into
   * `keys` at the same positions.
   *
   * @param out Receives the items.
   * @param keys Receives their keys.
   * @param max Most items to move.
   * @returns How many were moved.
   */
  fillKeyed(out: T[], keys: unknown[], max: number): number {
    return this.#fill(out, keys, max, out.length);
  }

  #fill(
    out: T[],
    keys: unknown[] | undefined,
    max: number,
    at: number,
  ): number {
    let leaf = this.#leaf;
    if (leaf === null || max <= 0) return 0;
    if (this.#mod.n !== this.#expected) {
      this.#leaf = null;
      throw new TypeError(
        "Cannot continue iterating the BTree: keys were added or deleted since the iterator was created",
      );
    }
    const mode = this.#mode;
    const endLeaf = this.#endLeaf;
    const endIndex = this.#endIndex;
    let i = this.#index;
    let n = 0;
    if (this.#reverse) {
      while (n < max) {
        const src = mode === MODE_KEYS ? leaf.keys : leaf.values;
        const stop = leaf === endLeaf ? endIndex : 0;
        const until = Math.max(stop, i - (max - n) + 1);
        for (let j = i; j >= until; j--) {
          if (keys !== undefined) keys[at] = leaf.keys[j];
          out[at++] = (mode === MODE_ENTRIES
            ? [leaf.keys[j], leaf.values[j]]
            : src[j]) as T;
        }
        n += i - until + 1;
        this.#lastKey = leaf.keys[until];
        if (until === stop && leaf === endLeaf) {
          this.#leaf = null;
          return n;
        }
        if (until > 0) {
          i = until - 1;
          continue;
        }
        leaf = leaf.prev!;
        i = leaf.keys.length - 1;
      }
    } else {
      while (n < max) {
        const src = mode === MODE_KEYS ? leaf.keys : leaf.values;
        const last = leaf === endLeaf ? endIndex : leaf.keys.length - 1;
        const until = Math.min(last, i + (max - n) - 1);
        for (let j = i; j <= until; j++) {
          if (keys !== undefined) keys[at] = leaf.keys[j];
          out[at++] = (mode === MODE_ENTRIES
            ? [leaf.keys[j], leaf.values[j]]
            : src[j]) as T;
        }
        n += until - i + 1;
        this.#lastKey = leaf.keys[until];
        if (until === last && leaf === endLeaf) {
          this.#leaf = null;
          return n;
        }
        if (until < leaf.keys.length - 1) {
          i = until + 1;
          continue;
        }
        leaf = leaf.next!;
        i = 0;
      }
    }
    this.#leaf = leaf;
    this.#index = i;
    return n;
  }

  return(): IteratorResult<T, undefined> {
    this.#leaf = null;
    return { value: undefined, done: true };
  }

  [Symbol.iterator](): this {
    return this;
  }
}

/**
 * A range iterator over the tree (`mode`: entries, keys or values), its
 * start and end found in O(log n).
 */
export function iterate<K, V, T>(
  t: TreeCore<K, V>,
  range: BTreeRange<K> | undefined,
  mode: number,
): RunIterator<T> {
  const compare = t.compare;
  let lo: K | undefined;
  let loInclusive = false;
  let hasLo = false;
  let hi: K | undefined;
  let hiInclusive = false;
  let hasHi = false;
  let reverse = false;
  if (range !== undefined) {
    if (range.gte !== undefined) {
      lo = range.gte;
      loInclusive = true;
      hasLo = true;
    }
    if (range.gt !== undefined && (!hasLo || compare(range.gt, lo!) >= 0)) {
      lo = range.gt;
      loInclusive = false;
      hasLo = true;
    }
    if (range.lte !== undefined) {
      hi = range.lte;
      hiInclusive = true;
      hasHi = true;
    }
    if (range.lt !== undefined && (!hasHi || compare(range.lt, hi!) <= 0)) {
      hi = range.lt;
      hiInclusive = false;
      hasHi = true;
    }
    reverse = range.reverse === true;
  }

  // Position of the least key satisfying the lower bound.
  let loLeaf: Leaf<K, V> | null;
  let loIndex: number;
  if (hasLo) {
    loLeaf = findLeaf(t, lo!);
    loIndex = loInclusive
      ? lowerBound(loLeaf.keys, lo!, compare)
      : upperBound(loLeaf.keys, lo!, compare);
    if (loIndex === loLeaf.keys.length) {
      loLeaf = loLeaf.next;
      loIndex = 0;
    }
  } else {
    loLeaf = firstLeaf(t);
    loIndex = 0;
    if (loLeaf.keys.length === 0) loLeaf = null;
  }

  // Position of the greatest key satisfying the upper bound.
  let hiLeaf: Leaf<K, V> | null;
  let hiIndex: number;
  if (hasHi) {
    hiLeaf = findLeaf(t, hi!);
    hiIndex = (hiInclusive
      ? upperBound(hiLeaf.keys, hi!, compare)
      : lowerBound(hiLeaf.keys, hi!, compare)) - 1;
    if (hiIndex < 0) {
      hiLeaf = hiLeaf.prev;
      hiIndex = hiLeaf === null ? 0 : hiLeaf.keys.length - 1;
    }
  } else {
    hiLeaf = lastLeaf(t);
    hiIndex = hiLeaf.keys.length - 1;
    if (hiIndex < 0) hiLeaf = null;
  }

  // Empty unless the least key in the lower bound also meets the upper one.
  if (loLeaf !== null && hiLeaf !== null) {
    if (hasHi) {
      const c = compare(loLeaf.keys[loIndex]!, hi!);
      if (hiInclusive ? c > 0 : c >= 0) loLeaf = hiLeaf = null;
    }
  } else {
    loLeaf = hiLeaf = null;
  }

  return reverse
    ? new RangeIterator<K, V, T>(
      hiLeaf,
      hiIndex,
      loLeaf,
      loIndex,
      true,
      mode,
      t.mod,
    )
    : new RangeIterator<K, V, T>(
      loLeaf,
      loIndex,
      hiLeaf,
      hiIndex,
      false,
      mode,
      t.mod,
    );
}
