/**
 * By-position blocks of shared storages (Deno KV): one key that stands for
 * the by-position entries of many puts of one commit, so that a bulk write
 * (`putBatch(..., { assumeNew: true })`) costs one KV mutation per document
 * instead of two. A block is keyed `["q", last, "b"]` by the last position
 * it holds, so a feed read from position `p` (a scan from `["q", p + 1]`)
 * meets every block holding a position after `p`; its value is JSON
 * `{"c": collection, "p": [positions], "i": [ids]}`, positions ascending.
 * The positions of one commit are taken together under the counter's check,
 * so no other by-position key lies between a block's first and last.
 *
 * @module
 */

import { decodeKey, encodeKey } from "../key_codec.ts";
import { encodeUtf8 } from "../bytes.ts";
import { IntegrityError } from "../errors.ts";
import type { StorageEntry, StorageSet } from "../storage/contract.ts";
import {
  BY_POSITION,
  type PositionEntry,
  PUT,
  readPosition,
} from "./feed_format.ts";

/** The tag that marks a block key (`["q", last, "b"]`). */
const BLOCK = "b";

/**
 * The set that writes a block of puts.
 *
 * @param collection The collection.
 * @param positions The puts' positions, ascending.
 * @param ids Their item keys.
 * @returns The set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blockSet, readPositions } from "./feed_block.ts";
 * const set = blockSet("readings", [7, 8], ["a", "b"]);
 * const out = readPositions({ ...set, versionstamp: "1" });
 * assert.deepEqual(out.map((e) => e.position), [7, 8]);
 * ```
 */
export function blockSet(
  collection: string,
  positions: readonly number[],
  ids: readonly string[],
): StorageSet {
  return {
    key: encodeKey([BY_POSITION, positions[positions.length - 1]!, BLOCK]),
    value: encodeUtf8(JSON.stringify({ c: collection, p: positions, i: ids })),
  };
}

/**
 * Reads a by-position entry or a block: the changes it stands for, in
 * position order; none when its key is not one of the feed's (not ours).
 *
 * @param entry A storage entry under `["q", ...]`.
 * @returns Its changes.
 * @throws {IntegrityError} When its key is a by-position key or a block's
 *   but its value does not read (written over by another program): `seq`
 *   is the position after which a reader may resume (the block's last).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPositions } from "./feed_block.ts";
 * import { positionKey, positionValue } from "./feed_format.ts";
 * const entry = { key: positionKey(3), value: positionValue("c", "k", 1), versionstamp: "1" };
 * assert.deepEqual(readPositions(entry), [{ position: 3, collection: "c", id: "k", kind: 1 }]);
 * assert.throws(
 *   () => readPositions({ ...entry, value: new Uint8Array([1]) }),
 *   (e: Error & { seq?: string }) => e.seq === "3",
 * );
 * ```
 */
export function readPositions(entry: StorageEntry): PositionEntry[] {
  let parts: unknown[];
  try {
    parts = decodeKey(entry.key);
  } catch {
    return [];
  }
  const position = parts[1];
  if (
    typeof position !== "number" ||
    !(parts.length === 2 || (parts.length === 3 && parts[2] === BLOCK))
  ) return [];
  if (parts.length === 2) {
    const single = readPosition(entry);
    if (single === undefined) throw damaged(position, false);
    return [single];
  }
  const out: PositionEntry[] = [];
  try {
    const { c, p, i } = JSON.parse(new TextDecoder().decode(entry.value));
    if (
      typeof c === "string" && Array.isArray(p) && Array.isArray(i) &&
      p.length === i.length && p[p.length - 1] === position
    ) {
      for (let k = 0; k < p.length; k++) {
        const at = p[k];
        const id = i[k];
        if (typeof at !== "number" || typeof id !== "string") break;
        out.push({ position: at, collection: c, id, kind: PUT });
      }
      if (out.length === p.length) return out;
    }
  } catch {
    // not JSON: reported below
  }
  throw damaged(position, true);
}

/** The error for a by-position entry that does not read. */
function damaged(position: number, block: boolean): IntegrityError {
  const what = block ? "block of puts ending" : "by-position entry";
  return new IntegrityError(
    `Cannot read the change feed: the ${what} at position ${position} is not in the feed's format (written over by another program?), so the change${
      block ? "s" : ""
    } it records cannot be read; resume after it with since: '${position}'`,
    { seq: String(position) },
  );
}
