/**
 * Deletion from the B+tree: down to the leaf, then refilling each node that
 * underflows on the way back up, by borrowing from a sibling or merging
 * with one, so the tree stays balanced and shrinks as it empties. Plain
 * functions over the tree's state ({@linkcode TreeCore}); `BTree.delete`
 * (btree.ts) calls them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { remove } from "./btree_delete.ts";
 * import { TreeCore } from "./btree_node.ts";
 *
 * const t = new TreeCore<number, string>((a, b) => a - b, 4);
 * t.root.keys.push(1);
 * (t.root as { values: string[] }).values.push("one");
 * assert(remove(t, t.root, 0, 1) && t.root.keys.length === 0);
 * ```
 *
 * @module
 */

import {
  insertAt,
  type Internal,
  type Leaf,
  lowerBound,
  type Node,
  removeAt,
  sameKey,
  type TreeCore,
  upperBound,
} from "./btree_node.ts";

/** Removes from the subtree; the caller fixes this node's underflow. */
export function remove<K, V>(
  t: TreeCore<K, V>,
  node: Node<K, V>,
  height: number,
  key: K,
): boolean {
  const compare = t.compare;
  if (height === 0) {
    const leaf = node as Leaf<K, V>;
    const keys = leaf.keys;
    const i = lowerBound(keys, key, compare);
    if (i === keys.length || !sameKey(compare, keys[i]!, key)) return false;
    removeAt(keys, i);
    removeAt(leaf.values, i);
    return true;
  }
  const inner = node as Internal<K, V>;
  const i = upperBound(inner.keys, key, compare);
  const child = inner.children[i]!;
  if (!remove(t, child, height - 1, key)) return false;
  if (child.keys.length < t.minKeys) {
    if (height === 1) fixLeaf(t, inner, i);
    else fixInternal(t, inner, i);
  }
  return true;
}

/** Refills the underfull leaf `parent.children[i]` from a sibling. */
function fixLeaf<K, V>(
  t: TreeCore<K, V>,
  parent: Internal<K, V>,
  i: number,
): void {
  const min = t.minKeys;
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
    mergeLeaves(parent, i - 1, left, child);
  } else if (right !== null) {
    mergeLeaves(parent, i, child, right);
  }
}

/** Moves `right` into `left`, its neighbour at `parent.children[i]`. */
function mergeLeaves<K, V>(
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
function fixInternal<K, V>(
  t: TreeCore<K, V>,
  parent: Internal<K, V>,
  i: number,
): void {
  const min = t.minKeys;
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
    mergeInternals(parent, i - 1, left, child);
  } else if (right !== null) {
    mergeInternals(parent, i, child, right);
  }
}

function mergeInternals<K, V>(
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
