/**
 * The index entries a collection's items produce: one insertion-order entry
 * per item (which serves `first`, `last` and time-frame reads) and one or more
 * per secondary index. Entries are written and deleted in the same atomic
 * commit as their item.
 *
 * Key layout (see FORMAT.md):
 *
 * - insertion order: `["o", collection, createdAt, seq, id]`
 * - secondary index: `["i", collection, index, ...values, id]`, or
 *   `["i", collection, index, ...values]` for a unique index, so that two
 *   items cannot hold one value even when several processes write at once.
 *
 * Every entry's value is the item's storage key (`["d", collection, id]`).
 *
 * @module
 */

import { binaryBytes, binaryString } from "../bytes.ts";
import {
  indexEntries,
  type IndexSpec,
  scalarTail,
  scalarValue,
} from "./index_keys.ts";
import { decodeKey, encodeKey, encodeKeyBinary } from "../key_codec.ts";
import { encodeIndexKeyBinary, type IndexKeyPart } from "../index_key_codec.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { Blinder } from "../crypto/blind_index.ts";

/** One index entry of one item. */
export interface IndexEntry {
  /** The storage key. */
  readonly key: Uint8Array;
  /** `key` as a binary string, for set arithmetic: see {@linkcode entryKeyId}. */
  id?: string;
  /** The index's name, or `""` for the insertion-order entry. */
  readonly index: string;
  /** Whether the key excludes the item id (unique index). */
  readonly unique: boolean;
  /** The indexed values. */
  readonly tuple: readonly IndexKeyPart[];
}

/**
 * An index entry made for the object tier: its key is held as a binary
 * string without the index's prefix (the RAM tree's key); the storage key's
 * bytes are made only when asked (a storage that keeps bytes, a cursor
 * position).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TreeEntry } from "./indexes.ts";
 * const e = new TreeEntry("i", false, [], new Uint8Array([1]), "\x01", "AB");
 * assert.deepEqual(e.key, new Uint8Array([1, 65, 66]));
 * assert.equal(e.id, "\x01AB");
 * ```
 */
export class TreeEntry implements IndexEntry {
  /** The index's name, or `""` for the insertion-order entry. */
  readonly index: string;
  /** Whether the key excludes the item id (unique index). */
  readonly unique: boolean;
  /** The indexed values. */
  readonly tuple: readonly IndexKeyPart[];
  /** The key after the index's prefix, one char per byte. */
  readonly tail: string;
  readonly #prefix: Uint8Array;
  readonly #text: string;
  #key: Uint8Array | undefined;

  /**
   * @param index The index's name.
   * @param unique Whether the key excludes the item id.
   * @param tuple The indexed values.
   * @param prefix The index's key prefix.
   * @param text The prefix as a binary string.
   * @param tail The rest of the key as a binary string.
   */
  constructor(
    index: string,
    unique: boolean,
    tuple: readonly IndexKeyPart[],
    prefix: Uint8Array,
    text: string,
    tail: string,
  ) {
    this.index = index;
    this.unique = unique;
    this.tuple = tuple;
    this.tail = tail;
    this.#prefix = prefix;
    this.#text = text;
  }

  /** The storage key (made on first use). */
  get key(): Uint8Array {
    return this.#key ??= binaryBytes(this.#prefix, this.tail);
  }

  /** The storage key as a binary string. */
  get id(): string {
    return this.#text + this.tail;
  }

  /** The storage key's length in bytes. */
  get length(): number {
    return this.#prefix.length + this.tail.length;
  }
}

/** Index definitions as stored in the collection's metadata. */
export interface StoredIndex extends IndexSpec {
  /** Whether some item produced several entries (arrays). */
  readonly multikey: boolean;
  /**
   * Set while the index is being built on a storage shared with other
   * processes: writers keep its entries, queries do not use it yet.
   */
  readonly building?: boolean;
}

const ORDER = "o";
const INDEX = "i";

/**
 * The secondary indexes of one collection, and the entries items produce.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CollectionIndexes } from "./indexes.ts";
 * const set = new CollectionIndexes("users");
 * set.add({ name: "city", fields: ["city"], unique: false, sparse: false, multikey: false });
 * const record = {
 *   value: { city: "NY" }, tags: undefined, expiresAt: undefined, createdAt: 1,
 *   updatedAt: 1, version: 1, seq: 1, dates: undefined,
 * };
 * assert.equal(set.entries("u1", record).length, 1);
 * set.ordered = true; // once first/last/between("_createdAt") ran
 * assert.equal(set.entries("u1", record).length, 2);
 * ```
 */
export class CollectionIndexes {
  readonly #collection: string;
  readonly #indexes = new Map<string, StoredIndex>();
  readonly #prefixes = new Map<string, Uint8Array>();
  readonly #texts = new Map<string, string>();
  readonly #orderPrefix: Uint8Array;
  readonly #orderText: string;
  /**
   * Whether the insertion-order entries exist. They are built on the first
   * `first`/`last`/`between("_createdAt")` of the collection, then kept.
   */
  ordered = false;
  /** The insertion-order entries are still being built (shared storage). */
  orderBuilding = false;

  /** Digests index values (blind indexes of an encrypted database). */
  readonly blinder: Blinder | undefined;

  /**
   * @param collection The collection's name.
   * @param blinder Makes index keys from digests of the values instead of
   *   the values (prepared ahead).
   */
  constructor(collection: string, blinder?: Blinder) {
    this.#collection = collection;
    this.#orderPrefix = encodeKey([ORDER, collection]);
    this.#orderText = binaryString(this.#orderPrefix);
    this.blinder = blinder;
  }

  /**
   * Computes ahead the digests the entries of these records need (blind
   * indexes only; otherwise nothing to do).
   *
   * @param records The records about to be indexed.
   * @param specs The indexes (default: all of them).
   * @returns When `entries` can be called for them.
   */
  async prepare(
    records: Iterable<StoredRecord>,
    specs: Iterable<StoredIndex> = this.#indexes.values(),
  ): Promise<void> {
    if (this.blinder === undefined) return;
    const parts: [readonly string[], IndexKeyPart[]][] = [];
    const list = [...specs];
    for (const record of records) {
      for (const spec of list) {
        try {
          for (const tuple of indexEntries(spec, record.value).tuples) {
            parts.push([spec.fields, tuple]);
          }
        } catch {
          // Unindexable items fail later, with the caller's message.
        }
      }
    }
    await this.blinder.prepare(this.#collection, parts);
  }

  /** The indexes, as the planner wants them. */
  get list(): StoredIndex[] {
    return [...this.#indexes.values()];
  }

  /**
   * Whether an index is unique: its values tie items to each other (one
   * write may free a value another takes).
   */
  get hasUnique(): boolean {
    for (const index of this.#indexes.values()) {
      if (index.unique === true) return true;
    }
    return false;
  }

  /** Whether the collection has secondary indexes. */
  get size(): number {
    return this.#indexes.size;
  }

  /**
   * The index called `name`.
   *
   * @param name The index's name.
   * @returns Its definition, or `undefined`.
   */
  get(name: string): StoredIndex | undefined {
    return this.#indexes.get(name);
  }

  /**
   * Adds (or replaces) an index definition.
   *
   * @param spec The definition.
   */
  add(spec: StoredIndex): void {
    this.#indexes.set(spec.name, spec);
    this.#prefixes.set(
      spec.name,
      encodeKey([INDEX, this.#collection, spec.name]),
    );
  }

  /**
   * Removes an index definition.
   *
   * @param name The index's name.
   * @returns Whether it existed.
   */
  remove(name: string): boolean {
    this.#prefixes.delete(name);
    this.#texts.delete(name);
    return this.#indexes.delete(name);
  }

  /** The key prefix of the insertion-order entries. */
  get orderPrefix(): Uint8Array {
    return this.#orderPrefix;
  }

  /**
   * The key prefix of an index's entries.
   *
   * @param name The index's name.
   * @returns The prefix.
   */
  prefix(name: string): Uint8Array {
    let prefix = this.#prefixes.get(name);
    if (prefix === undefined) {
      prefix = encodeKey([INDEX, this.#collection, name]);
      this.#prefixes.set(name, prefix);
    }
    return prefix;
  }

  /** The key prefix of every secondary index entry of the collection. */
  get indexesPrefix(): Uint8Array {
    return encodeKey([INDEX, this.#collection]);
  }

  /**
   * The entries of one index for one item.
   *
   * @param spec The index.
   * @param id The item's id.
   * @param record The item.
   * @returns The entries.
   * @throws {TypeError} When the item cannot be indexed (two array fields).
   */
  indexEntries(
    spec: StoredIndex,
    id: string,
    record: StoredRecord,
    multikey?: Set<string>,
  ): IndexEntry[] {
    const prefix = this.prefix(spec.name);
    let text = this.#texts.get(spec.name);
    if (text === undefined) {
      text = binaryString(prefix);
      this.#texts.set(spec.name, text);
    }
    const blinder = this.blinder;
    if (blinder === undefined) {
      // The common case: one entry, no tuples to build.
      const v = scalarValue(spec, record.value);
      if (v !== undefined) {
        const tail = scalarTail(spec, v, id);
        return [new TreeEntry(spec.name, spec.unique, [v], prefix, text, tail)];
      }
    }
    const out: IndexEntry[] = [];
    // No metadata: filters see only the document, so indexes must too.
    const made = indexEntries(spec, record.value);
    if (made.multikey && !spec.multikey) multikey?.add(spec.name);
    for (const tuple of made.tuples) {
      const keyed = blinder === undefined
        ? tuple
        : blinder.tuple(this.#collection, spec.fields, tuple);
      const tail = encodeIndexKeyBinary(spec.unique ? keyed : [...keyed, id]);
      out.push(
        new TreeEntry(spec.name, spec.unique, tuple, prefix, text, tail),
      );
    }
    return out;
  }

  /**
   * The insertion-order key of an item.
   *
   * @param id The item's id.
   * @param record The item.
   * @returns The key.
   */
  orderKey(id: string, record: StoredRecord): Uint8Array {
    return encodeKey([record.createdAt, record.seq, id], this.#orderPrefix);
  }

  /**
   * The insertion-order entry of an item.
   *
   * @param id The item's id.
   * @param record The item.
   * @returns The entry.
   */
  orderEntry(id: string, record: StoredRecord): TreeEntry {
    return new TreeEntry(
      "",
      false,
      [record.createdAt, record.seq],
      this.#orderPrefix,
      this.#orderText,
      encodeKeyBinary([record.createdAt, record.seq, id]),
    );
  }

  /**
   * Every entry an item produces: insertion order first (once built), then
   * each index.
   *
   * @param id The item's id.
   * @param record The item.
   * @param multikey Receives the names of indexes not yet marked multikey
   *   that this item makes multikey (an array on an indexed path).
   * @returns The entries.
   * @throws {TypeError} When the item cannot be indexed.
   */
  entries(
    id: string,
    record: StoredRecord,
    multikey?: Set<string>,
  ): IndexEntry[] {
    const out: IndexEntry[] = [];
    if (this.ordered) out.push(this.orderEntry(id, record));
    for (const spec of this.#indexes.values()) {
      const made = this.indexEntries(spec, id, record, multikey);
      for (let i = 0; i < made.length; i++) out.push(made[i]!);
    }
    return out;
  }
}

/**
 * The item id an index entry points to. An entry's value is the item's
 * storage key, `["d", collection, id]`, so reads fetch the item directly.
 *
 * @param value The entry's value.
 * @returns The id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryId } from "./indexes.ts";
 * import { encodeKey } from "@tether/db/storage";
 * assert.equal(entryId(encodeKey(["d", "users", "u1"])), "u1");
 * ```
 */
export function entryId(value: Uint8Array): string {
  return decodeKey(value)[2] as string;
}

/**
 * An entry's key as a binary string (computed once, on first need).
 *
 * @param entry The entry.
 * @returns The key's binary string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryKeyId } from "./indexes.ts";
 * const entry = { key: new Uint8Array([65]), index: "i", unique: false, tuple: [] };
 * assert.equal(entryKeyId(entry), "A");
 * ```
 */
export function entryKeyId(entry: IndexEntry): string {
  return entry.id ??= binaryString(entry.key);
}

/**
 * The length of an entry's storage key, without making the key.
 *
 * @param entry The entry.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryLength } from "./indexes.ts";
 * const entry = { key: new Uint8Array(3), index: "i", unique: false, tuple: [] };
 * assert.equal(entryLength(entry), 3);
 * ```
 */
export function entryLength(entry: IndexEntry): number {
  return entry instanceof TreeEntry ? entry.length : entry.key.length;
}

/**
 * Whether two entries of one collection have the same key.
 *
 * @param a An entry.
 * @param b Another.
 * @returns `true` when their keys are equal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sameEntry } from "./indexes.ts";
 * const a = { key: new Uint8Array([1]), index: "i", unique: false, tuple: [] };
 * assert(sameEntry(a, { ...a, key: new Uint8Array([1]) }));
 * ```
 */
export function sameEntry(a: IndexEntry, b: IndexEntry): boolean {
  if (a instanceof TreeEntry && b instanceof TreeEntry) {
    return a.index === b.index && a.tail === b.tail;
  }
  return entryKeyId(a) === entryKeyId(b);
}
