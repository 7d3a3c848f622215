/**
 * Insertion into the B+tree: down to the leaf, then splitting each node
 * that overflows on the way back up. Plain functions over the tree's state
 * ({@linkcode TreeCore}); `BTree.set` (btree.ts) calls them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { insert } from "./btree_insert.ts";
 * import { TreeCore } from "./btree_node.ts";
 *
 * const t = new TreeCore<number, string>((a, b) => a - b, 4);
 * assert(insert(t, t.root, 0, 1, "one") === null && t.added);
 * ```
 *
 * @module
 */

import {
  insertAt,
  Internal,
  Leaf,
  lowerBound,
  type Node,
  sameKey,
  type TreeCore,
  upperBound,
} from "./btree_node.ts";

/**
 * Inserts into the subtree; returns the new right sibling if it split (its
 * separator in `t.splitKey`). Sets `t.added` to whether the key was new.
 */
export function insert<K, V>(
  t: TreeCore<K, V>,
  node: Node<K, V>,
  height: number,
  key: K,
  value: V,
): Node<K, V> | null {
  const compare = t.compare;
  if (height === 0) {
    const leaf = node as Leaf<K, V>;
    const keys = leaf.keys;
    const i = lowerBound(keys, key, compare);
    const same = i < keys.length && sameKey(compare, keys[i]!, key);
    if (same) {
      t.replaced = leaf.values[i];
      leaf.values[i] = value;
      t.added = false;
      return null;
    }
    insertAt(keys, i, key);
    insertAt(leaf.values, i, value);
    t.added = true;
    return keys.length > t.order ? splitLeaf(t, leaf) : null;
  }
  const inner = node as Internal<K, V>;
  const i = upperBound(inner.keys, key, compare);
  const right = insert(t, inner.children[i]!, height - 1, key, value);
  if (right === null) return null;
  insertAt(inner.keys, i, t.splitKey!);
  insertAt(inner.children, i + 1, right);
  return inner.keys.length > t.order ? splitInternal(t, inner) : null;
}

function splitLeaf<K, V>(t: TreeCore<K, V>, leaf: Leaf<K, V>): Leaf<K, V> {
  const { keys, values } = leaf;
  const mid = keys.length >>> 1;
  const right = new Leaf<K, V>(keys.slice(mid), values.slice(mid));
  // Both halves as arrays of their own size: shortening the full array
  // would leave the left half its spare capacity for good (V8 keeps it),
  // which doubled the memory of a tree filled in key order.
  leaf.keys = keys.slice(0, mid);
  leaf.values = values.slice(0, mid);
  right.next = leaf.next;
  right.prev = leaf;
  if (leaf.next !== null) leaf.next.prev = right;
  leaf.next = right;
  t.splitKey = right.keys[0];
  return right;
}

function splitInternal<K, V>(
  t: TreeCore<K, V>,
  node: Internal<K, V>,
): Internal<K, V> {
  const mid = node.keys.length >>> 1;
  const right = new Internal<K, V>(
    node.keys.slice(mid + 1),
    node.children.slice(mid + 1),
  );
  t.splitKey = node.keys[mid];
  node.keys = node.keys.slice(0, mid);
  node.children = node.children.slice(0, mid + 1);
  return right;
}
