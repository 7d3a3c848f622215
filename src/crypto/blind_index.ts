/**
 * Blind index values: in an encrypted database, each value in an index key
 * is replaced by a keyed digest (HMAC-SHA256, first 16 bytes), so index keys
 * (visible keys on Deno KV, plain bytes in a file's log) reveal no document
 * content. Equal values of one field still meet (equality and `$in` stay
 * indexed); order is lost (ranges and sorts on those fields scan instead).
 * Digests are bound to the collection and the field, so equal values in two
 * fields do not show as equal.
 *
 * WebCrypto is asynchronous and index keys are built synchronously, so
 * digests are computed ahead (`prepare`) and looked up (`part`).
 *
 * @module
 */

import { binaryString } from "../bytes.ts";
import { encodeIndexKey, type IndexKeyPart } from "../index_key_codec.ts";

/** Digest bytes kept per value. */
export const BLIND_BYTES = 16;
/** Most digests remembered. */
const CACHE = 65_536;
const encoder = new TextEncoder();

/**
 * The bytes a blind digest is computed over: the collection and the field
 * (each UTF-8, after its uint32 big-endian byte length), then the index-key
 * encoding of the value alone. So equal values in two fields or two
 * collections give different digests.
 *
 * @param collection The collection's name.
 * @param field The indexed field (its dot path).
 * @param value `encodeIndexKey([value])`.
 * @returns The digest input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blindInput, blindValue } from "./blind_index.ts";
 * const input = blindInput("c", "f", new Uint8Array([9]));
 * assert.deepEqual(input, new Uint8Array([0, 0, 0, 1, 99, 0, 0, 0, 1, 102, 9]));
 * assert.deepEqual(blindValue(input), new Uint8Array([9]));
 * ```
 */
export function blindInput(
  collection: string,
  field: string,
  value: Uint8Array,
): Uint8Array {
  const c = encoder.encode(collection);
  const f = encoder.encode(field);
  const out = new Uint8Array(8 + c.length + f.length + value.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, c.length);
  out.set(c, 4);
  view.setUint32(4 + c.length, f.length);
  out.set(f, 8 + c.length);
  out.set(value, 8 + c.length + f.length);
  return out;
}

/**
 * The value part of a {@linkcode blindInput}: what a database whose header
 * says blind scheme 1 (written before digests were bound) digests.
 *
 * @param input A digest input.
 * @returns Its value bytes.
 */
export function blindValue(input: Uint8Array): Uint8Array {
  const view = new DataView(input.buffer, input.byteOffset, input.length);
  const c = view.getUint32(0);
  const f = view.getUint32(4 + c);
  return input.subarray(8 + c + f);
}

/**
 * Keyed digests of index values, bound to their collection and field,
 * computed ahead and remembered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Blinder } from "./blind_index.ts";
 * const blinder = new Blinder((data) =>
 *   Promise.all(data.map(async (d) =>
 *     new Uint8Array(await crypto.subtle.digest("SHA-256", d as Uint8Array<ArrayBuffer>))
 *   ))
 * );
 * await blinder.prepare("c", [[["city", "zip"], ["NY", 42]], [["home"], ["NY"]]]);
 * const [city, zip] = blinder.tuple("c", ["city", "zip"], ["NY", 42]);
 * assert.equal((city as Uint8Array).length, 16);
 * assert.notDeepEqual(blinder.part("c", "city", "NY"), blinder.part("c", "home", "NY"));
 * ```
 */
export class Blinder {
  readonly #digest: (data: readonly Uint8Array[]) => Promise<Uint8Array[]>;
  #cache = new Map<string, Uint8Array>();

  /**
   * @param digest Keyed digests of several byte strings (the storage's
   *   `blind`), given {@linkcode blindInput}s.
   */
  constructor(
    digest: (data: readonly Uint8Array[]) => Promise<Uint8Array[]>,
  ) {
    this.#digest = digest;
  }

  /**
   * Computes the digests not yet known of index tuples of a collection. Until
   * the caller's next `await`, `part` and `tuple` find every one of them.
   *
   * @param collection The collection's name.
   * @param tuples Per tuple, the index's fields and the values (a prefix of
   *   the fields: value `i` belongs to field `i`).
   * @returns When they are known.
   */
  async prepare(
    collection: string,
    tuples: Iterable<
      readonly [readonly string[], readonly IndexKeyPart[]]
    >,
  ): Promise<void> {
    const ids: string[] = [];
    const data: Uint8Array[] = [];
    const seen = new Set<string>();
    for (const [fields, tuple] of tuples) {
      for (let i = 0; i < tuple.length; i++) {
        const bytes = blindInput(
          collection,
          fields[i] ?? "",
          encodeIndexKey([tuple[i]!]),
        );
        const id = binaryString(bytes);
        if (this.#cache.has(id) || seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
        data.push(bytes);
      }
    }
    if (data.length === 0) return;
    const digests = await this.#digest(data);
    // Added only now, after the last await, so nothing evicts them before
    // the caller uses them.
    if (this.#cache.size + ids.length > CACHE) this.#cache = new Map();
    for (let i = 0; i < ids.length; i++) {
      this.#cache.set(ids[i]!, digests[i]!.subarray(0, BLIND_BYTES));
    }
  }

  /**
   * The digest of a prepared value.
   *
   * @param collection The collection's name.
   * @param field The field.
   * @param part The value.
   * @returns Its digest.
   * @throws {Error} When it was not prepared (a bug).
   */
  part(collection: string, field: string, part: IndexKeyPart): Uint8Array {
    const found = this.#cache.get(
      binaryString(blindInput(collection, field, encodeIndexKey([part]))),
    );
    if (found === undefined) {
      throw new Error("Blind index value used before it was prepared");
    }
    return found;
  }

  /**
   * The digests of a tuple's prepared values.
   *
   * @param collection The collection's name.
   * @param fields The index's fields (value `i` belongs to field `i`).
   * @param tuple Index values.
   * @returns Their digests, as key parts.
   */
  tuple(
    collection: string,
    fields: readonly string[],
    tuple: readonly IndexKeyPart[],
  ): IndexKeyPart[] {
    return tuple.map((p, i) => this.part(collection, fields[i] ?? "", p));
  }
}
