/**
 * The B+tree's invariant checker, for tests: walks the whole tree and
 * checks the order of keys, the separators, the depth of the leaves, node
 * occupancy, the leaf chain and the size (`_checkInvariants` in btree.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTree } from "./btree_check.ts";
 * import { TreeCore } from "./btree_node.ts";
 *
 * const t = new TreeCore<number, number>((a, b) => a - b, 4);
 * assert(checkTree(t).leaves === 1);
 * ```
 *
 * @module
 */

import { Internal, Leaf, type Node, type TreeCore } from "./btree_node.ts";

/** Shape statistics returned by `_checkInvariants` (btree.ts). */
export interface BTreeShape {
  /** Internal levels above the leaves (0 when the root is a leaf). */
  height: number;
  /** Number of leaves. */
  leaves: number;
  /** Number of internal nodes. */
  internals: number;
}

/**
 * Checks the invariants of a tree's state (see `_checkInvariants` in
 * btree.ts, which calls this).
 *
 * @param t The tree's state.
 * @returns The tree's shape.
 * @throws {Error} On the first violated invariant.
 */
export function checkTree<K, V>(t: TreeCore<K, V>): BTreeShape {
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
