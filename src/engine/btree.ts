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

import {
  type Comparator,
  findLeaf,
  firstLeaf,
  Internal,
  lastLeaf,
  Leaf,
  lowerBound,
  sameKey,
  TreeCore,
} from "./btree_node.ts";
import { insert } from "./btree_insert.ts";
import { remove } from "./btree_delete.ts";
import {
  type BTreeRange,
  iterate,
  MODE_ENTRIES,
  MODE_KEYS,
  MODE_VALUES,
  type RunIterator,
} from "./btree_range.ts";
import { type BTreeShape, checkTree } from "./btree_check.ts";

export type { Comparator } from "./btree_node.ts";
export type { BTreeRange, RunIterator } from "./btree_range.ts";
export type { BTreeShape } from "./btree_check.ts";

/** Options for {@linkcode BTree}. */
export interface BTreeOptions {
  /** Maximum number of keys per node, at least 4. Defaults to 64. */
  order?: number;
}

// deno-lint-ignore no-explicit-any
let coreOf!: (tree: BTree<any, any>) => TreeCore<any, any>;

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
  readonly #t: TreeCore<K, V>;

  static {
    coreOf = (tree) => tree.#t;
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
    this.#t = new TreeCore<K, V>(compare, order);
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
    return this.#t.size;
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
    const t = this.#t;
    const leaf = findLeaf(t, key);
    const keys = leaf.keys;
    const i = lowerBound(keys, key, t.compare);
    if (i < keys.length && sameKey(t.compare, keys[i]!, key)) {
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
    const t = this.#t;
    const leaf = findLeaf(t, key);
    const keys = leaf.keys;
    const i = lowerBound(keys, key, t.compare);
    return i < keys.length && sameKey(t.compare, keys[i]!, key);
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
    const added = this.#put(key, value);
    this.#t.replaced = undefined;
    return added;
  }

  /** `set`, leaving what it overwrote in `replaced` (for `swap`). */
  #put(key: K, value: V): boolean {
    const t = this.#t;
    // A key past the largest (a log replayed in key order, ids that grow):
    // straight into the rightmost leaf while it has room, without a search.
    let node = t.root;
    for (let h = t.height; h > 0; h--) {
      const children = (node as Internal<K, V>).children;
      node = children[children.length - 1]!;
    }
    const keys = node.keys;
    if (
      keys.length > 0 && keys.length < t.order &&
      t.compare(keys[keys.length - 1]!, key) < 0
    ) {
      keys.push(key);
      (node as Leaf<K, V>).values.push(value);
      t.size++;
      t.mod.n++;
      return true;
    }
    const right = insert(t, t.root, t.height, key, value);
    if (right !== null) {
      t.root = new Internal<K, V>([t.splitKey!], [t.root, right]);
      t.height++;
    }
    t.splitKey = undefined;
    if (t.added) {
      t.size++;
      t.mod.n++;
      return true;
    }
    return false;
  }

  /**
   * Adds a key or overwrites its value, in one descent, and says what it
   * overwrote.
   *
   * @param key The key.
   * @param value The value.
   * @returns The value before, or `undefined` when the key was new (a
   *   stored `undefined` reads the same).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BTree } from "./btree.ts";
   *
   * const tree = new BTree<number, string>((a, b) => a - b);
   * assert.equal(tree.swap(1, "a"), undefined);
   * assert.equal(tree.swap(1, "b"), "a");
   * assert.equal(tree.get(1), "b");
   * ```
   */
  swap(key: K, value: V): V | undefined {
    const added = this.#put(key, value);
    const t = this.#t;
    const before = t.replaced;
    t.replaced = undefined;
    return added ? undefined : before;
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
    const t = this.#t;
    if (!remove(t, t.root, t.height, key)) return false;
    t.size--;
    t.mod.n++;
    if (t.height > 0 && t.root.keys.length === 0) {
      t.root = (t.root as Internal<K, V>).children[0]!;
      t.height--;
    }
    return true;
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
    const t = this.#t;
    t.root = new Leaf<K, V>([], []);
    t.height = 0;
    t.size = 0;
    t.mod.n++;
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
    const leaf = firstLeaf(this.#t);
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
    const leaf = lastLeaf(this.#t);
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
    return iterate<K, V, [K, V]>(this.#t, range, MODE_ENTRIES);
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
    return iterate<K, V, K>(this.#t, range, MODE_KEYS);
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
    return iterate<K, V, V>(this.#t, range, MODE_VALUES);
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
    return iterate<K, V, [K, V]>(this.#t, undefined, MODE_ENTRIES);
  }
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
  return checkTree(coreOf(tree) as TreeCore<K, V>);
}
