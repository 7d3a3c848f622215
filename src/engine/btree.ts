/**
 * An in-memory B+tree ordered map with range iteration.
 *
 * Values live only in the leaves, leaves are linked both ways so a range scan
 * walks them without going back up the tree, internal nodes hold separator
 * keys only, and deletes borrow from or merge with a sibling so the tree stays
 * balanced and shrinks as it empties.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTree } from "./btree.ts";
 *
 * const tree = new BTree<string, number>((a, b) => a < b ? -1 : a > b ? 1 : 0);
 * tree.set("b", 2);
 * tree.set("a", 1);
 * tree.set("c", 3);
 * assert([...tree.keys({ gte: "b" })].join() === "b,c");
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

/** Options for {@linkcode BTree}. */
export interface BTreeOptions {
  /** Maximum number of keys per node, at least 4. Defaults to 64. */
  order?: number;
}

class Leaf<K, V> {
  keys: K[];
  values: V[];
  next: Leaf<K, V> | null = null;
  prev: Leaf<K, V> | null = null;
  constructor(keys: K[], values: V[]) {
    this.keys = keys;
    this.values = values;
  }
}

class Internal<K, V> {
  /** `keys[i]` separates `children[i]` (keys < it) from `children[i + 1]`. */
  keys: K[];
  children: Node<K, V>[];
  constructor(keys: K[], children: Node<K, V>[]) {
    this.keys = keys;
    this.children = children;
  }
}

type Node<K, V> = Leaf<K, V> | Internal<K, V>;

/** Counts structural modifications so iterators can detect them. */
class ModCount {
  n = 0;
}

/** Index of the first key `>= key` (or `keys.length`). */
function lowerBound<K>(keys: K[], key: K, compare: Comparator<K>): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first key `> key` (or `keys.length`). */
function upperBound<K>(keys: K[], key: K, compare: Comparator<K>): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keys[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts without allocating (unlike `splice`). */
function insertAt<T>(array: T[], index: number, item: T): void {
  for (let j = array.length; j > index; j--) array[j] = array[j - 1]!;
  array[index] = item;
}

/** Removes without allocating (unlike `splice`). */
function removeAt<T>(array: T[], index: number): void {
  const last = array.length - 1;
  for (let j = index; j < last; j++) array[j] = array[j + 1]!;
  array.length = last;
}

const MODE_ENTRIES = 0;
const MODE_KEYS = 1;
const MODE_VALUES = 2;

/** Walks linked leaves from a start position to an end position, inclusive. */
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
   * @returns How many were moved (fewer than `max` only at the end).
   */
  fill(out: T[], max: number): number;
  /**
   * Whether keys were added or deleted since the iterator was made (it then
   * throws rather than go on: walk again from where it stopped).
   */
  readonly stale: boolean;
}

class RangeIterator<K, V, T> implements RunIterator<T> {
  #leaf: Leaf<K, V> | null;
  #index: number;
  #endLeaf: Leaf<K, V> | null;
  #endIndex: number;
  #reverse: boolean;
  #mode: number;
  #mod: ModCount;
  #expected: number;

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

  get stale(): boolean {
    return this.#mod.n !== this.#expected;
  }

  /**
   * Moves up to `max` of the next items into `out` (walking the leaves
   * directly: no result object per item).
   *
   * @param out Receives the items.
   * @param max Most items to move.
   * @returns How many were moved (fewer than `max` only at the end).
   */
  fill(out: T[], max: number): number {
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
          out.push(
            (mode === MODE_ENTRIES
              ? [leaf.keys[j], leaf.values[j]]
              : src[j]) as T,
          );
        }
        n += i - until + 1;
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
          out.push(
            (mode === MODE_ENTRIES
              ? [leaf.keys[j], leaf.values[j]]
              : src[j]) as T,
          );
        }
        n += until - i + 1;
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

/** Internal view of a tree for the invariant checker. */
interface TreeInternals<K, V> {
  root: Node<K, V>;
  height: number;
  size: number;
  order: number;
  minKeys: number;
  compare: Comparator<K>;
}

// deno-lint-ignore no-explicit-any
let internalsOf!: (tree: BTree<any, any>) => TreeInternals<any, any>;

/**
 * An ordered map backed by a B+tree, ordered by a comparator.
 *
 * `get`, `has`, `set` and `delete` take O(log n) comparisons; a range scan
 * seeks its start in O(log n) and then walks the linked leaves.
 *
 * Iterators are valid only while the tree is not structurally modified:
 * adding a key, deleting a key or clearing the tree makes every existing
 * iterator throw a `TypeError` on its next step (overwriting the value of an
 * existing key does not). To resume a scan after modifying the tree, start a
 * new one with `gt` set to the last key seen.
 *
 * @typeParam K The key type.
 * @typeParam V The value type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTree } from "./btree.ts";
 *
 * const tree = new BTree<number, string>((a, b) => a - b, { order: 4 });
 * for (let i = 0; i < 100; i++) tree.set(i, String(i));
 * assert(tree.size === 100);
 * assert(tree.get(42) === "42");
 * assert(tree.delete(42) && !tree.has(42));
 * assert([...tree.keys({ gte: 40, lt: 45 })].join() === "40,41,43,44");
 * assert(tree.last()?.[0] === 99);
 * ```
 */
export class BTree<K, V> {
  #compare: Comparator<K>;
  #order: number;
  #minKeys: number;
  #root: Node<K, V> = new Leaf<K, V>([], []);
  /** Number of internal levels above the leaves; 0 when the root is a leaf. */
  #height = 0;
  #size = 0;
  #mod = new ModCount();
  /** Out-parameters of `#insert`, to avoid allocating a result object. */
  #added = false;
  #splitKey: K | undefined = undefined;

  static {
    internalsOf = (tree) => ({
      root: tree.#root,
      height: tree.#height,
      size: tree.#size,
      order: tree.#order,
      minKeys: tree.#minKeys,
      compare: tree.#compare,
    });
  }

  /**
   * Creates an empty tree.
   *
   * @param compare Total order of the keys.
   * @param options Node size.
   * @throws {TypeError} If `compare` is not a function.
   * @throws {RangeError} If `options.order` is not an integer of at least 4.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<string, boolean>(
   *   (a, b) => a < b ? -1 : a > b ? 1 : 0,
   *   { order: 32 },
   * );
   * assert(tree.size === 0);
   * ```
   */
  constructor(compare: Comparator<K>, options?: BTreeOptions) {
    if (typeof compare !== "function") {
      throw new TypeError(
        `Cannot create a BTree: the comparator must be a function, got ${typeof compare}`,
      );
    }
    const order = options?.order ?? 64;
    if (!Number.isInteger(order) || order < 4) {
      throw new RangeError(
        `Cannot create a BTree: order must be an integer of at least 4, got ${order}`,
      );
    }
    this.#compare = compare;
    this.#order = order;
    this.#minKeys = order >>> 1;
  }

  /**
   * The number of keys in the tree.
   *
   * @returns The key count.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, number>((a, b) => a - b);
   * tree.set(1, 1);
   * tree.set(1, 2);
   * assert(tree.size === 1);
   * ```
   */
  get size(): number {
    return this.#size;
  }

  /** The leaf where `key` is or would be. */
  #findLeaf(key: K): Leaf<K, V> {
    const compare = this.#compare;
    let node = this.#root;
    for (let h = this.#height; h > 0; h--) {
      const inner = node as Internal<K, V>;
      node = inner.children[upperBound(inner.keys, key, compare)]!;
    }
    return node as Leaf<K, V>;
  }

  /**
   * Looks up the value of a key.
   *
   * @param key The key.
   * @returns The value, or `undefined` when the key is absent.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * tree.set(7, "seven");
   * assert(tree.get(7) === "seven");
   * assert(tree.get(8) === undefined);
   * ```
   */
  get(key: K): V | undefined {
    const leaf = this.#findLeaf(key);
    const keys = leaf.keys;
    const i = lowerBound(keys, key, this.#compare);
    if (i < keys.length && this.#compare(keys[i]!, key) === 0) {
      return leaf.values[i];
    }
    return undefined;
  }

  /**
   * Whether a key is in the tree.
   *
   * @param key The key.
   * @returns `true` when the key is present.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, undefined>((a, b) => a - b);
   * tree.set(1, undefined);
   * assert(tree.has(1) && !tree.has(2));
   * ```
   */
  has(key: K): boolean {
    const leaf = this.#findLeaf(key);
    const keys = leaf.keys;
    const i = lowerBound(keys, key, this.#compare);
    return i < keys.length && this.#compare(keys[i]!, key) === 0;
  }

  /**
   * Adds a key or overwrites its value.
   *
   * @param key The key.
   * @param value The value.
   * @returns `true` if the key was new, `false` if its value was overwritten.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * assert(tree.set(1, "a") === true);
   * assert(tree.set(1, "b") === false);
   * assert(tree.get(1) === "b");
   * ```
   */
  set(key: K, value: V): boolean {
    const right = this.#insert(this.#root, this.#height, key, value);
    if (right !== null) {
      this.#root = new Internal<K, V>([this.#splitKey!], [this.#root, right]);
      this.#height++;
    }
    this.#splitKey = undefined;
    if (this.#added) {
      this.#size++;
      this.#mod.n++;
      return true;
    }
    return false;
  }

  /** Inserts into the subtree; returns the new right sibling if it split. */
  #insert(
    node: Node<K, V>,
    height: number,
    key: K,
    value: V,
  ): Node<K, V> | null {
    const compare = this.#compare;
    if (height === 0) {
      const leaf = node as Leaf<K, V>;
      const keys = leaf.keys;
      const i = lowerBound(keys, key, compare);
      if (i < keys.length && compare(keys[i]!, key) === 0) {
        leaf.values[i] = value;
        this.#added = false;
        return null;
      }
      insertAt(keys, i, key);
      insertAt(leaf.values, i, value);
      this.#added = true;
      return keys.length > this.#order ? this.#splitLeaf(leaf) : null;
    }
    const inner = node as Internal<K, V>;
    const i = upperBound(inner.keys, key, compare);
    const right = this.#insert(inner.children[i]!, height - 1, key, value);
    if (right === null) return null;
    insertAt(inner.keys, i, this.#splitKey!);
    insertAt(inner.children, i + 1, right);
    return inner.keys.length > this.#order ? this.#splitInternal(inner) : null;
  }

  #splitLeaf(leaf: Leaf<K, V>): Leaf<K, V> {
    const mid = leaf.keys.length >>> 1;
    const right = new Leaf<K, V>(leaf.keys.slice(mid), leaf.values.slice(mid));
    leaf.keys.length = mid;
    leaf.values.length = mid;
    right.next = leaf.next;
    right.prev = leaf;
    if (leaf.next !== null) leaf.next.prev = right;
    leaf.next = right;
    this.#splitKey = right.keys[0];
    return right;
  }

  #splitInternal(node: Internal<K, V>): Internal<K, V> {
    const mid = node.keys.length >>> 1;
    const right = new Internal<K, V>(
      node.keys.slice(mid + 1),
      node.children.slice(mid + 1),
    );
    this.#splitKey = node.keys[mid];
    node.keys.length = mid;
    node.children.length = mid + 1;
    return right;
  }

  /**
   * Removes a key.
   *
   * @param key The key.
   * @returns `true` if the key existed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, number>((a, b) => a - b);
   * tree.set(1, 1);
   * assert(tree.delete(1) === true);
   * assert(tree.delete(1) === false);
   * ```
   */
  delete(key: K): boolean {
    if (!this.#remove(this.#root, this.#height, key)) return false;
    this.#size--;
    this.#mod.n++;
    if (this.#height > 0 && this.#root.keys.length === 0) {
      this.#root = (this.#root as Internal<K, V>).children[0]!;
      this.#height--;
    }
    return true;
  }

  /** Removes from the subtree; the caller fixes this node's underflow. */
  #remove(node: Node<K, V>, height: number, key: K): boolean {
    const compare = this.#compare;
    if (height === 0) {
      const leaf = node as Leaf<K, V>;
      const keys = leaf.keys;
      const i = lowerBound(keys, key, compare);
      if (i === keys.length || compare(keys[i]!, key) !== 0) return false;
      removeAt(keys, i);
      removeAt(leaf.values, i);
      return true;
    }
    const inner = node as Internal<K, V>;
    const i = upperBound(inner.keys, key, compare);
    const child = inner.children[i]!;
    if (!this.#remove(child, height - 1, key)) return false;
    if (child.keys.length < this.#minKeys) {
      if (height === 1) this.#fixLeaf(inner, i);
      else this.#fixInternal(inner, i);
    }
    return true;
  }

  /** Refills the underfull leaf `parent.children[i]` from a sibling. */
  #fixLeaf(parent: Internal<K, V>, i: number): void {
    const min = this.#minKeys;
    const children = parent.children as Leaf<K, V>[];
    const child = children[i]!;
    const left = i > 0 ? children[i - 1]! : null;
    const right = i + 1 < children.length ? children[i + 1]! : null;
    if (left !== null && left.keys.length > min) {
      insertAt(child.keys, 0, left.keys.pop()!);
      insertAt(child.values, 0, left.values.pop()!);
      parent.keys[i - 1] = child.keys[0]!;
    } else if (right !== null && right.keys.length > min) {
      child.keys.push(right.keys[0]!);
      child.values.push(right.values[0]!);
      removeAt(right.keys, 0);
      removeAt(right.values, 0);
      parent.keys[i] = right.keys[0]!;
    } else if (left !== null) {
      this.#mergeLeaves(parent, i - 1, left, child);
    } else if (right !== null) {
      this.#mergeLeaves(parent, i, child, right);
    }
  }

  /** Moves `right` into `left`, its neighbour at `parent.children[i]`. */
  #mergeLeaves(
    parent: Internal<K, V>,
    i: number,
    left: Leaf<K, V>,
    right: Leaf<K, V>,
  ): void {
    const keys = right.keys;
    const values = right.values;
    for (let j = 0; j < keys.length; j++) {
      left.keys.push(keys[j]!);
      left.values.push(values[j]!);
    }
    left.next = right.next;
    if (right.next !== null) right.next.prev = left;
    right.next = null;
    right.prev = null;
    removeAt(parent.keys, i);
    removeAt(parent.children, i + 1);
  }

  /** Refills the underfull internal node `parent.children[i]`. */
  #fixInternal(parent: Internal<K, V>, i: number): void {
    const min = this.#minKeys;
    const children = parent.children as Internal<K, V>[];
    const child = children[i]!;
    const left = i > 0 ? children[i - 1]! : null;
    const right = i + 1 < children.length ? children[i + 1]! : null;
    if (left !== null && left.keys.length > min) {
      insertAt(child.keys, 0, parent.keys[i - 1]!);
      insertAt(child.children, 0, left.children.pop()!);
      parent.keys[i - 1] = left.keys.pop()!;
    } else if (right !== null && right.keys.length > min) {
      child.keys.push(parent.keys[i]!);
      child.children.push(right.children[0]!);
      parent.keys[i] = right.keys[0]!;
      removeAt(right.keys, 0);
      removeAt(right.children, 0);
    } else if (left !== null) {
      this.#mergeInternals(parent, i - 1, left, child);
    } else if (right !== null) {
      this.#mergeInternals(parent, i, child, right);
    }
  }

  #mergeInternals(
    parent: Internal<K, V>,
    i: number,
    left: Internal<K, V>,
    right: Internal<K, V>,
  ): void {
    left.keys.push(parent.keys[i]!);
    for (let j = 0; j < right.keys.length; j++) left.keys.push(right.keys[j]!);
    for (let j = 0; j < right.children.length; j++) {
      left.children.push(right.children[j]!);
    }
    removeAt(parent.keys, i);
    removeAt(parent.children, i + 1);
  }

  /**
   * Removes every key.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, number>((a, b) => a - b);
   * tree.set(1, 1);
   * tree.clear();
   * assert(tree.size === 0 && tree.first() === undefined);
   * ```
   */
  clear(): void {
    this.#root = new Leaf<K, V>([], []);
    this.#height = 0;
    this.#size = 0;
    this.#mod.n++;
  }

  #firstLeaf(): Leaf<K, V> {
    let node = this.#root;
    for (let h = this.#height; h > 0; h--) {
      node = (node as Internal<K, V>).children[0]!;
    }
    return node as Leaf<K, V>;
  }

  #lastLeaf(): Leaf<K, V> {
    let node = this.#root;
    for (let h = this.#height; h > 0; h--) {
      const children = (node as Internal<K, V>).children;
      node = children[children.length - 1]!;
    }
    return node as Leaf<K, V>;
  }

  /**
   * The entry with the least key.
   *
   * @returns The `[key, value]` pair, or `undefined` when the tree is empty.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * tree.set(2, "b");
   * tree.set(1, "a");
   * assert(tree.first()?.[1] === "a");
   * ```
   */
  first(): [K, V] | undefined {
    const leaf = this.#firstLeaf();
    if (leaf.keys.length === 0) return undefined;
    return [leaf.keys[0]!, leaf.values[0]!];
  }

  /**
   * The entry with the greatest key.
   *
   * @returns The `[key, value]` pair, or `undefined` when the tree is empty.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * tree.set(2, "b");
   * tree.set(1, "a");
   * assert(tree.last()?.[1] === "b");
   * ```
   */
  last(): [K, V] | undefined {
    const leaf = this.#lastLeaf();
    const n = leaf.keys.length;
    if (n === 0) return undefined;
    return [leaf.keys[n - 1]!, leaf.values[n - 1]!];
  }

  /**
   * Iterates the entries in key order, optionally within bounds and/or in
   * reverse. The start is found in O(log n). Throws on the next step once
   * keys are added or deleted (see the class documentation).
   *
   * @param range Bounds and direction.
   * @returns An iterator of `[key, value]` pairs.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * for (let i = 1; i <= 5; i++) tree.set(i, `v${i}`);
   * const got = [...tree.entries({ gte: 2, lt: 4, reverse: true })];
   * assert(JSON.stringify(got) === '[[3,"v3"],[2,"v2"]]');
   * ```
   */
  entries(range?: BTreeRange<K>): RunIterator<[K, V]> {
    return this.#iterate<[K, V]>(range, MODE_ENTRIES);
  }

  /**
   * Iterates the keys in order; same bounds and rules as
   * {@linkcode BTree.prototype.entries}.
   *
   * @param range Bounds and direction.
   * @returns An iterator of keys.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * for (let i = 1; i <= 5; i++) tree.set(i, `v${i}`);
   * assert([...tree.keys({ gt: 3 })].join() === "4,5");
   * ```
   */
  keys(range?: BTreeRange<K>): RunIterator<K> {
    return this.#iterate<K>(range, MODE_KEYS);
  }

  /**
   * Iterates the values in key order; same bounds and rules as
   * {@linkcode BTree.prototype.entries}.
   *
   * @param range Bounds and direction.
   * @returns An iterator of values.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * for (let i = 1; i <= 5; i++) tree.set(i, `v${i}`);
   * assert([...tree.values({ lte: 2 })].join() === "v1,v2");
   * ```
   */
  values(range?: BTreeRange<K>): RunIterator<V> {
    return this.#iterate<V>(range, MODE_VALUES);
  }

  /**
   * Iterates all entries in key order, like {@linkcode BTree.prototype.entries}.
   *
   * @returns An iterator of `[key, value]` pairs.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * tree.set(2, "b");
   * tree.set(1, "a");
   * assert(JSON.stringify([...tree]) === '[[1,"a"],[2,"b"]]');
   * ```
   */
  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#iterate<[K, V]>(undefined, MODE_ENTRIES);
  }

  #iterate<T>(
    range: BTreeRange<K> | undefined,
    mode: number,
  ): RangeIterator<K, V, T> {
    const compare = this.#compare;
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
      loLeaf = this.#findLeaf(lo!);
      loIndex = loInclusive
        ? lowerBound(loLeaf.keys, lo!, compare)
        : upperBound(loLeaf.keys, lo!, compare);
      if (loIndex === loLeaf.keys.length) {
        loLeaf = loLeaf.next;
        loIndex = 0;
      }
    } else {
      loLeaf = this.#firstLeaf();
      loIndex = 0;
      if (loLeaf.keys.length === 0) loLeaf = null;
    }

    // Position of the greatest key satisfying the upper bound.
    let hiLeaf: Leaf<K, V> | null;
    let hiIndex: number;
    if (hasHi) {
      hiLeaf = this.#findLeaf(hi!);
      hiIndex = (hiInclusive
        ? upperBound(hiLeaf.keys, hi!, compare)
        : lowerBound(hiLeaf.keys, hi!, compare)) - 1;
      if (hiIndex < 0) {
        hiLeaf = hiLeaf.prev;
        hiIndex = hiLeaf === null ? 0 : hiLeaf.keys.length - 1;
      }
    } else {
      hiLeaf = this.#lastLeaf();
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
        this.#mod,
      )
      : new RangeIterator<K, V, T>(
        loLeaf,
        loIndex,
        hiLeaf,
        hiIndex,
        false,
        mode,
        this.#mod,
      );
  }
}

/** Shape statistics returned by {@linkcode _checkInvariants}. */
export interface BTreeShape {
  /** Internal levels above the leaves (0 when the root is a leaf). */
  height: number;
  /** Number of leaves. */
  leaves: number;
  /** Number of internal nodes. */
  internals: number;
}

/**
 * **Test-only; not part of the public API.** Walks the whole tree and checks
 * the B+tree invariants: keys sorted within and across nodes, separators
 * bounding their subtrees, every leaf at the same depth, node occupancy
 * between the minimum and the order (the root excepted), the leaf chain
 * linked both ways in key order, and the size matching the key count.
 *
 * @param tree The tree to check.
 * @returns The tree's shape.
 * @throws {Error} On the first violated invariant.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { _checkInvariants, BTree } from "./btree.ts";
 *
 * const tree = new BTree<number, number>((a, b) => a - b, { order: 4 });
 * for (let i = 0; i < 100; i++) tree.set(i, i);
 * for (let i = 0; i < 100; i++) tree.delete(i);
 * assert(_checkInvariants(tree).leaves === 1);
 * ```
 */
export function _checkInvariants<K, V>(tree: BTree<K, V>): BTreeShape {
  const t = internalsOf(tree) as TreeInternals<K, V>;
  const { compare, order, minKeys } = t;
  const shape: BTreeShape = { height: t.height, leaves: 0, internals: 0 };
  const leaves: Leaf<K, V>[] = [];
  const fail = (message: string): never => {
    throw new Error(`BTree invariant violated: ${message}`);
  };
  const walk = (
    node: Node<K, V>,
    height: number,
    lo: K | undefined,
    hasLo: boolean,
    hi: K | undefined,
    hasHi: boolean,
    isRoot: boolean,
  ): void => {
    const keys = node.keys;
    if (keys.length > order) {
      fail(`node has ${keys.length} keys > order ${order}`);
    }
    if (!isRoot && keys.length < minKeys) {
      fail(`non-root node has ${keys.length} keys < minimum ${minKeys}`);
    }
    for (let i = 1; i < keys.length; i++) {
      if (compare(keys[i - 1]!, keys[i]!) >= 0) {
        fail("keys not strictly sorted");
      }
    }
    for (const k of keys) {
      if (hasLo && compare(k, lo!) < 0) fail("key below its separator");
      if (hasHi && compare(k, hi!) >= 0) fail("key not below its separator");
    }
    if (height === 0) {
      if (!(node instanceof Leaf)) return fail("non-leaf at leaf depth");
      if (node.values.length !== keys.length) fail("values/keys length differ");
      shape.leaves++;
      leaves.push(node);
      return;
    }
    if (!(node instanceof Internal)) return fail("leaf above leaf depth");
    shape.internals++;
    if (keys.length === 0) fail("internal node without keys");
    if (node.children.length !== keys.length + 1) fail("children != keys + 1");
    for (let i = 0; i < node.children.length; i++) {
      walk(
        node.children[i]!,
        height - 1,
        i === 0 ? lo : keys[i - 1],
        i === 0 ? hasLo : true,
        i === keys.length ? hi : keys[i],
        i === keys.length ? hasHi : true,
        false,
      );
    }
  };
  walk(t.root, t.height, undefined, false, undefined, false, true);
  let count = 0;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]!;
    count += leaf.keys.length;
    if (leaf.prev !== (i === 0 ? null : leaves[i - 1])) fail("bad prev link");
    if (leaf.next !== (i === leaves.length - 1 ? null : leaves[i + 1])) {
      fail("bad next link");
    }
  }
  if (count !== t.size) fail(`size ${t.size} but ${count} keys`);
  return shape;
}
