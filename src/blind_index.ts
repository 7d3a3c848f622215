/**
 * Blind index values: in an encrypted database, each value in an index key
 * is replaced by a keyed digest (HMAC-SHA256, first 16 bytes), so index keys
 * (visible keys on Deno KV, plain bytes in a file's log) reveal no document
 * content. Equal values still meet (equality and `$in` stay indexed); order
 * is lost (ranges and sorts on those fields scan instead).
 *
 * WebCrypto is asynchronous and index keys are built synchronously, so
 * digests are computed ahead (`prepare`) and looked up (`part`).
 *
 * @module
 */

import { binaryString } from "./bytes.ts";
import { encodeIndexKey, type IndexKeyPart } from "./key_codec.ts";

/** Digest bytes kept per value. */
export const BLIND_BYTES = 16;
/** Most digests remembered. */
const CACHE = 65_536;

/**
 * Keyed digests of index values, computed ahead and remembered.
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
 * await blinder.prepare(["NY", 42]);
 * assert.equal(blinder.part("NY").length, 16);
 * assert.deepEqual(blinder.part("NY"), blinder.part("NY"));
 * ```
 */
export class Blinder {
  readonly #digest: (data: readonly Uint8Array[]) => Promise<Uint8Array[]>;
  #cache = new Map<string, Uint8Array>();

  /**
   * @param digest Keyed digests of several byte strings (the storage's
   *   `blind`).
   */
  constructor(
    digest: (data: readonly Uint8Array[]) => Promise<Uint8Array[]>,
  ) {
    this.#digest = digest;
  }

  /**
   * Computes the digests of `parts` not yet known. Until the caller's next
   * `await`, `part` finds every one of them.
   *
   * @param parts Index values.
   * @returns When they are known.
   */
  async prepare(parts: Iterable<IndexKeyPart>): Promise<void> {
    const ids: string[] = [];
    const data: Uint8Array[] = [];
    const seen = new Set<string>();
    for (const part of parts) {
      const bytes = encodeIndexKey([part]);
      const id = binaryString(bytes);
      if (this.#cache.has(id) || seen.has(id)) continue;
      seen.add(id);
      ids.push(id);
      data.push(bytes);
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
   * @param part The value.
   * @returns Its digest.
   * @throws {Error} When it was not prepared (a bug).
   */
  part(part: IndexKeyPart): Uint8Array {
    const found = this.#cache.get(binaryString(encodeIndexKey([part])));
    if (found === undefined) {
      throw new Error("Blind index value used before it was prepared");
    }
    return found;
  }

  /**
   * The digests of a tuple's prepared values.
   *
   * @param tuple Index values.
   * @returns Their digests, as key parts.
   */
  tuple(tuple: readonly IndexKeyPart[]): IndexKeyPart[] {
    return tuple.map((p) => this.part(p));
  }
}
