/**
 * Secondary indexes and insertion order of a collection in the object tier:
 * one ordered tree per index, keyed by the index entry's key (as a binary
 * string, so trees order exactly as the storage would) and holding a
 * reference to the document's slot. An equality or range lookup walks only
 * the matching cells; a unique check is one lookup.
 *
 * Entries of non-unique indexes (and of the insertion order) reach their
 * tree lazily: `add` appends them to a pending run (no tree search), and
 * the first reader of the tree sorts and merges the run
 * ({@linkcode RamIndexes.tree} and {@linkcode RamIndexes.range} at once,
 * {@linkcode RamIndexes.settle} in chunks between turns of the event
 * loop). A removal merges its index's run first, so it always finds its
 * entry in the tree: inserts of new documents never search a tree, updates
 * pay what they paid before. Unique entries go to their tree at once: a
 * unique check reads it.
 *
 * @module
 */

import { BTree, type BTreeRange, type RunIterator } from "./btree.ts";
import { compareStrings } from "./btree_node.ts";
import { binaryBytes, binaryString } from "../bytes.ts";
import { type IndexEntry, TreeEntry } from "./indexes.ts";
import type { DocSlot } from "./record_table.ts";
import { indexEntryCost } from "./size_estimate.ts";
import { encodeKey } from "../key_codec.ts";
import { encodeIndexKeyBinary } from "../index_key_codec.ts";
import type { KeyRange } from "../query/planner.ts";

/** A range with nothing in it. */
function empty(): RunIterator<DocSlot> {
  return new BTree<string, DocSlot>(compareStrings).values();
}

/** Entries of one index waiting for its tree, in the order added. */
interface Pending {
  /** Their tree keys. */
  readonly tails: string[];
  /** Their documents. */
  readonly slots: DocSlot[];
  /** The first not yet merged (a chunked merge moves it). */
  start: number;
}

/**
 * The trees of one collection: by index name, `""` for insertion order.
 * A tree's keys leave out the prefix every key of the index shares, so
 * comparisons start where keys differ.
 */
export class RamIndexes {
  readonly #collection: string;
  readonly #volatile: boolean;
  readonly #trees = new Map<string, BTree<string, DocSlot>>();
  /**
   * Per index: entries not yet in its tree, in the order added, from
   * `start` on (a chunked merge moves `start` instead of shifting).
   */
  readonly #pending = new Map<string, Pending>();
  /** Pending entries, all indexes. */
  #waiting = 0;

  /**
   * @param collection The collection's name.
   * @param volatile Whether only RAM holds the entries (memory storage):
   *   their memory estimate, see `indexEntryCost`.
   */
  constructor(collection: string, volatile: boolean) {
    this.#collection = collection;
    this.#volatile = volatile;
  }

  /** The tree key of an entry: its key without the index's prefix. */
  #key(entry: IndexEntry): string {
    if (entry instanceof TreeEntry) return entry.tail;
    // A flat string (a slice would be compared through its parent).
    return binaryString(entry.key.subarray(this.#prefixOf(entry.index).length));
  }

  /**
   * The tree of an index, created empty when missing.
   *
   * @param name The index's name (`""`: insertion order).
   * @returns Its tree.
   */
  tree(name: string): BTree<string, DocSlot> {
    if (this.#waiting > 0) this.settle(name);
    return this.#tree(name);
  }

  /**
   * An index's tree if it has one, none made (a walk checks with it that
   * its index was not dropped or rebuilt while it paused).
   *
   * @param name The index's name.
   * @returns Its tree, or `undefined`.
   */
  treeIf(name: string): BTree<string, DocSlot> | undefined {
    return this.#trees.get(name);
  }

  #tree(name: string): BTree<string, DocSlot> {
    let tree = this.#trees.get(name);
    if (tree === undefined) {
      tree = new BTree<string, DocSlot>(compareStrings);
      this.#trees.set(name, tree);
    }
    return tree;
  }

  /**
   * Whether the tree of an index exists.
   *
   * @param name The index's name.
   * @returns `true` once built.
   */
  has(name: string): boolean {
    return this.#trees.has(name) || this.#pending.has(name);
  }

  /** How many entries wait to be merged into their trees. */
  get pending(): number {
    return this.#waiting;
  }

  /**
   * Merges pending entries into their trees: sorted, then inserted in
   * order.
   *
   * @param name Only this index's (default: every index's).
   * @param limit Merge at most this many (default: all).
   * @returns How many still wait (of that index, when named).
   */
  settle(name?: string, limit: number = Infinity): number {
    if (name === undefined) {
      let left = 0;
      for (const n of [...this.#pending.keys()]) {
        left += this.settle(n, limit);
      }
      return left;
    }
    const pending = this.#pending.get(name);
    if (pending === undefined) return 0;
    const { tails, slots, start } = pending;
    const end = Math.min(tails.length, start + limit);
    if (end === tails.length) this.#pending.delete(name);
    else pending.start = end;
    this.#waiting -= end - start;
    // Stable: entries with the same key keep the order they came in (the
    // oldest first: a later entry with the same key replaces it).
    const order: number[] = new Array(end - start);
    for (let i = start; i < end; i++) order[i - start] = i;
    order.sort((a, b) => {
      const x = tails[a]!, y = tails[b]!;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    const tree = this.#tree(name);
    for (let i = 0; i < order.length; i++) {
      const at = order[i]!;
      tree.set(tails[at]!, slots[at]!);
    }
    return tails.length - end;
  }

  /**
   * Forgets an index's tree.
   *
   * @param name The index's name.
   */
  drop(name: string): void {
    this.#trees.delete(name);
    const pending = this.#pending.get(name);
    if (pending !== undefined) {
      this.#waiting -= pending.tails.length - pending.start;
      this.#pending.delete(name);
    }
  }

  /**
   * The memory estimate of an index's entries (every tree's when omitted).
   *
   * @param name The index's name.
   * @returns Bytes.
   */
  cost(name?: string): number {
    this.settle(name);
    let bytes = 0;
    for (const [n, tree] of this.#trees) {
      if (name !== undefined && n !== name) continue;
      const prefix = this.#bytesOf(n).length;
      for (const tail of tree.keys()) {
        bytes += indexEntryCost(prefix + tail.length, this.#volatile);
      }
    }
    return bytes;
  }

  #prefixes = new Map<string, string>();
  #prefixBytes = new Map<string, Uint8Array>();

  #prefixOf(name: string): string {
    let prefix = this.#prefixes.get(name);
    if (prefix === undefined) {
      prefix = binaryString(this.#bytesOf(name));
      this.#prefixes.set(name, prefix);
    }
    return prefix;
  }

  #bytesOf(name: string): Uint8Array {
    let prefix = this.#prefixBytes.get(name);
    if (prefix === undefined) {
      prefix = name === ""
        ? encodeKey(["o", this.#collection])
        : encodeKey(["i", this.#collection, name]);
      this.#prefixBytes.set(name, prefix);
    }
    return prefix;
  }

  /** Forgets every tree. */
  clear(): void {
    this.#trees.clear();
    this.#pending.clear();
    this.#waiting = 0;
  }

  /**
   * Adds (or takes over) an entry.
   *
   * @param entry The entry.
   * @param slot The document it names.
   */
  add(entry: IndexEntry, slot: DocSlot): void {
    const tail = this.#key(entry);
    if (entry.unique) {
      this.#tree(entry.index).set(tail, slot);
      return;
    }
    const pending = this.#pending.get(entry.index);
    if (pending === undefined) {
      this.#pending.set(entry.index, {
        tails: [tail],
        slots: [slot],
        start: 0,
      });
    } else {
      pending.tails.push(tail);
      pending.slots.push(slot);
    }
    this.#waiting++;
  }

  /**
   * Removes an entry if it still names `slot` (a unique entry another
   * document took over stays).
   *
   * @param entry The entry.
   * @param slot The document that held it.
   * @returns Whether it was removed.
   */
  remove(entry: IndexEntry, slot: DocSlot): boolean {
    const id = this.#key(entry);
    // The entry may wait in the run: merged first, it is in the tree.
    if (this.#pending.has(entry.index)) this.settle(entry.index);
    const tree = this.#trees.get(entry.index);
    if (tree === undefined) return false;
    if (tree.get(id) !== slot) return false;
    return tree.delete(id);
  }

  /**
   * The document holding an entry's key (unique indexes).
   *
   * @param entry The entry.
   * @returns The holder, or `undefined`.
   */
  holder(entry: IndexEntry): DocSlot | undefined {
    if (this.#pending.has(entry.index)) this.settle(entry.index);
    return this.#trees.get(entry.index)?.get(this.#key(entry));
  }

  /**
   * The storage key of an index entry, from its tree key (for cursor
   * positions).
   *
   * @param name The index's name.
   * @param tail The tree key ({@linkcode RunIterator.fillKeyed} gives it).
   * @returns The entry's key.
   */
  keyOf(name: string, tail: string): Uint8Array {
    return binaryBytes(this.#bytesOf(name), tail);
  }

  /**
   * The documents of an index between two storage keys, in the index's
   * order (`fillKeyed` gives each one's tree key too).
   *
   * @param name The index's name.
   * @param start Lowest key (inclusive).
   * @param end Key at which to stop (exclusive), if any.
   * @param reverse Highest first.
   * @returns The slots, lazily.
   */
  range(
    name: string,
    start: Uint8Array,
    end: Uint8Array | undefined,
    reverse: boolean,
  ): RunIterator<DocSlot> {
    // Keys outside the index's prefix bound nothing, or everything.
    const prefix = this.#prefixOf(name);
    const cut = prefix.length;
    const range: BTreeRange<string> = { reverse };
    const lo = binaryString(start);
    if (lo.startsWith(prefix)) range.gte = binaryString(start.subarray(cut));
    else if (lo > prefix) return empty();
    if (end !== undefined) {
      const hi = binaryString(end);
      if (hi.startsWith(prefix)) range.lt = binaryString(end.subarray(cut));
      else if (hi <= prefix) return empty();
    }
    return this.tree(name).values(range);
  }

  /**
   * {@linkcode RamIndexes.range} of a planned range, bounded by tree keys
   * made straight from its tuples (no key bytes, no prefix): the walk of
   * one index range from its start, or from after (before, reversed) the
   * tree key `after`.
   *
   * @param name The index's name.
   * @param bounds The range's tree-key bounds ({@linkcode tailBounds}).
   * @param reverse Highest first.
   * @param after Resume past this tree key (a walk's `lastKey`).
   * @returns The slots, lazily.
   */
  rangeOf(
    name: string,
    bounds: TailBounds,
    reverse: boolean,
    after?: string,
  ): RunIterator<DocSlot> {
    if (bounds.empty) return empty();
    const range: BTreeRange<string> = { reverse };
    if (bounds.gte !== undefined) range.gte = bounds.gte;
    if (bounds.lt !== undefined) range.lt = bounds.lt;
    if (after !== undefined) {
      if (reverse) range.lt = after;
      else range.gt = after;
    }
    return this.tree(name).values(range);
  }
}

/**
 * The tree-key bounds of an index range (see {@linkcode tailBounds}):
 * `gte` inclusive, `lt` exclusive, either absent for no bound; `empty` when
 * no key of the index can be in it.
 */
export interface TailBounds {
  readonly gte: string | undefined;
  readonly lt: string | undefined;
  readonly empty: boolean;
}

/**
 * The bounds of an index range over the tree keys of {@linkcode RamIndexes}
 * (the index key after the index's prefix, one char per byte): the same
 * keys as the byte bounds of `rangeToBytes` (planner.ts) within the index.
 *
 * @param range The range, as tuples.
 * @returns Its bounds.
 * @throws {TypeError} When a bound is not made of index key parts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tailBounds } from "./ram_index.ts";
 * import { encodeIndexKeyBinary } from "../index_key_codec.ts";
 * const b = tailBounds({ start: [30], startInclusive: true, end: [30], endInclusive: true });
 * const key = encodeIndexKeyBinary([30, "id"]);
 * assert(b.gte! <= key && key < b.lt!);
 * assert(encodeIndexKeyBinary([31, "id"]) >= b.lt!);
 * ```
 */
export function tailBounds(range: KeyRange): TailBounds {
  const lo = encodeIndexKeyBinary(range.start);
  const hi = range.end === range.start ||
      (range.end.length === range.start.length &&
        range.end.every((v, i) => Object.is(v, range.start[i])))
    ? lo
    : encodeIndexKeyBinary(range.end);
  // Past every key that starts with the bound: its last byte that is not
  // 0xff, plus one; none (all 0xff, or empty) is past the whole index.
  const gte = range.startInclusive ? lo : stringEnd(lo);
  if (gte === undefined) return { gte: undefined, lt: undefined, empty: true };
  const lt = range.endInclusive ? stringEnd(hi) : hi;
  return { gte: gte === "" ? undefined : gte, lt, empty: false };
}

/** `prefixEnd` (bytes.ts) of a binary string (`undefined`: none). */
function stringEnd(s: string): string | undefined {
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c !== 0xff) return s.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}
