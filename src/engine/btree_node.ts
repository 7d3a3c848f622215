/**
 * The B+tree's nodes and its shared state: leaves (keys and values, linked
 * both ways), internal nodes (separator keys and children), the binary
 * searches within a node, and the descents from the root to a leaf. The
 * other `btree_*.ts` files are plain functions over these; `BTree`
 * (btree.ts) is the ordered map made of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLeaf, type Leaf, TreeCore } from "./btree_node.ts";
 *
 * const t = new TreeCore<number, string>((a, b) => a - b, 4);
 * const root = t.root as Leaf<number, string>;
 * root.keys.push(1);
 * root.values.push("one");
 * assert(findLeaf(t, 1).values[0] === "one");
 * ```
 *
 * @module
 */

/**
 * Orders two keys: negative when `a` sorts before `b`, zero when they are the
 * same key, positive when `a` sorts after `b`. It must be a consistent total
 * order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Comparator } from "./btree.ts";
 *
 * const byNumber: Comparator<number> = (a, b) => a - b;
 * assert(byNumber(1, 2) < 0);
 * ```
 */
export type Comparator<K> = (a: K, b: K) => number;

/** A leaf: keys and their values, linked to its neighbours. */
export class Leaf<K, V> {
  keys: K[];
  values: V[];
  next: Leaf<K, V> | null = null;
  prev: Leaf<K, V> | null = null;
  constructor(keys: K[], values: V[]) {
    this.keys = keys;
    this.values = values;
  }
}

/** An internal node: separator keys and children. */
export class Internal<K, V> {
  /** `keys[i]` separates `children[i]` (keys < it) from `children[i + 1]`. */
  keys: K[];
  children: Node<K, V>[];
  constructor(keys: K[], children: Node<K, V>[]) {
    this.keys = keys;
    this.children = children;
  }
}

/** A node of either kind. */
export type Node<K, V> = Leaf<K, V> | Internal<K, V>;

/** Counts structural modifications so iterators can detect them. */
export class ModCount {
  n = 0;
}

/** A tree's state, shared by the `btree_*.ts` functions (internal). */
export class TreeCore<K, V> {
  readonly compare: Comparator<K>;
  readonly order: number;
  readonly minKeys: number;
  root: Node<K, V> = new Leaf<K, V>([], []);
  /** Number of internal levels above the leaves; 0 when the root is a leaf. */
  height = 0;
  size = 0;
  readonly mod: ModCount = new ModCount();
  /** Out-parameters of `insert`, to avoid allocating a result object. */
  added = false;
  /** What the last `insert` overwrote (`undefined`: the key was new). */
  replaced: V | undefined = undefined;
  splitKey: K | undefined = undefined;

  /**
   * @param compare Total order of the keys (checked by `BTree`).
   * @param order Maximum number of keys per node (checked by `BTree`).
   */
  constructor(compare: Comparator<K>, order: number) {
    this.compare = compare;
    this.order = order;
    this.minKeys = order >>> 1;
  }
}

/**
 * The order of strings by UTF-16 code units (the object tier's trees).
 *
 * @param a A string.
 * @param b Another.
 * @returns Negative, zero or positive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareStrings } from "./btree_node.ts";
 * assert(compareStrings("a", "b") < 0);
 * ```
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether two keys are equal in a tree's order (strings by `===`).
 *
 * @param compare The tree's order.
 * @param a A key.
 * @param b Another.
 * @returns `true` when equal.
 */
export function sameKey<K>(compare: Comparator<K>, a: K, b: K): boolean {
  return compare === (compareStrings as Comparator<unknown>)
    ? a === b
    : compare(a, b) === 0;
}

/** Index of the first key `>= key` (or `keys.length`). */
export function lowerBound<K>(
  keys: K[],
  key: K,
  compare: Comparator<K>,
): number {
  let lo = 0;
  let hi = keys.length;
  // String keys (the object tier's trees) compare inline: a comparator
  // shared by trees of several key types is a call V8 cannot inline.
  if (compare === (compareStrings as Comparator<unknown>)) {
    const k = key as string;
    const ks = keys as string[];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ks[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first key `> key` (or `keys.length`). */
export function upperBound<K>(
  keys: K[],
  key: K,
  compare: Comparator<K>,
): number {
  let lo = 0;
  let hi = keys.length;
  if (compare === (compareStrings as Comparator<unknown>)) {
    const k = key as string;
    const ks = keys as string[];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ks[mid]! <= k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keys[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts without allocating (unlike `splice`). */
export function insertAt<T>(array: T[], index: number, item: T): void {
  for (let j = array.length; j > index; j--) array[j] = array[j - 1]!;
  array[index] = item;
}

/** Removes without allocating (unlike `splice`). */
export function removeAt<T>(array: T[], index: number): void {
  const last = array.length - 1;
  for (let j = index; j < last; j++) array[j] = array[j + 1]!;
  array.length = last;
}

/** The leaf where `key` is or would be. */
export function findLeaf<K, V>(t: TreeCore<K, V>, key: K): Leaf<K, V> {
  const compare = t.compare;
  let node = t.root;
  for (let h = t.height; h > 0; h--) {
    const inner = node as Internal<K, V>;
    node = inner.children[upperBound(inner.keys, key, compare)]!;
  }
  return node as Leaf<K, V>;
}

/** The leaf of the least keys. */
export function firstLeaf<K, V>(t: TreeCore<K, V>): Leaf<K, V> {
  let node = t.root;
  for (let h = t.height; h > 0; h--) {
    node = (node as Internal<K, V>).children[0]!;
  }
  return node as Leaf<K, V>;
}

/** The leaf of the greatest keys. */
export function lastLeaf<K, V>(t: TreeCore<K, V>): Leaf<K, V> {
  let node = t.root;
  for (let h = t.height; h > 0; h--) {
    const children = (node as Internal<K, V>).children;
    node = children[children.length - 1]!;
  }
  return node as Leaf<K, V>;
}
