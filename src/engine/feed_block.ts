/**
 * By-position blocks of shared storages (Deno KV): one key that stands for
 * the by-position entries of many puts of one commit, so that a bulk write
 * (`putBatch(..., { assumeNew: true })`) costs one KV mutation per document
 * instead of two. A block is keyed `["q", last, "b"]` by the last position
 * it holds, so a feed read from position `p` (a scan from `["q", p + 1]`)
 * meets every block holding a position after `p`; its value is JSON
 * `{"c": collection, "p": [positions], "i": [ids]}`, positions ascending,
 * or in the compact form (since 7 Dec 2026) `"f": first` for positions
 * that follow each other and `"x": [shared, suffix, ...]` for ids that
 * share their beginnings (each id is the previous one's first `shared`
 * UTF-16 units, then `suffix`): a relay's batch, written in key order, has
 * ids such as `esp32-7/0000000000001234`, and the block, kept for good,
 * shrinks from about 40 to under 10 bytes per item (the commit's time was
 * measured unchanged: storage, not speed). The positions of one commit are
 * taken together under the counter's check, so no other by-position key
 * lies between a block's first and last.
 *
 * @module
 */

import { decodeKey, encodeKey } from "../key_codec.ts";
import { encodeUtf8 } from "../bytes.ts";
import { IntegrityError } from "../errors.ts";
import { MAX_KEY_BYTES } from "../validate.ts";
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
  const last = positions[positions.length - 1]!;
  const first = positions[0]!;
  // Positions that follow each other (a commit's usually do): the first.
  const run = last - first === positions.length - 1;
  const shared = frontCoded(ids);
  const block: Record<string, unknown> = { c: collection };
  if (run) block.f = first;
  else block.p = positions;
  if (shared !== undefined) block.x = shared;
  else block.i = ids;
  return {
    key: encodeKey([BY_POSITION, last, BLOCK]),
    value: encodeUtf8(JSON.stringify(block)),
  };
}

/**
 * The ids as `[shared, suffix, ...]` (each id: the previous one's first
 * `shared` UTF-16 units, never half a surrogate pair, then `suffix`), or
 * `undefined` when that would not save bytes (each pair costs about two
 * bytes more than the id alone).
 */
function frontCoded(ids: readonly string[]): (number | string)[] | undefined {
  const out: (number | string)[] = new Array(ids.length * 2);
  let prev = "";
  let saved = 0;
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    const most = Math.min(id.length, prev.length);
    let n = 0;
    while (n < most && id.charCodeAt(n) === prev.charCodeAt(n)) n++;
    // Not between the halves of a surrogate pair.
    const before = n > 0 ? id.charCodeAt(n - 1) : 0;
    if (before >= 0xd800 && before <= 0xdbff) n--;
    out[2 * k] = n;
    out[2 * k + 1] = n === 0 ? id : id.slice(n);
    saved += n - String(n).length - 1;
    prev = id;
  }
  return saved > 0 ? out : undefined;
}

/**
 * The ids of a compact block's `x`, or `undefined` when it is not one:
 * pairs of a count (an integer from 0 to the previous id's length) and a
 * string, making ids no longer than a key can be.
 */
function expandIds(x: unknown): string[] | undefined {
  if (!Array.isArray(x) || x.length % 2 !== 0) return undefined;
  const ids = new Array<string>(x.length / 2);
  let prev = "";
  for (let k = 0; k < x.length; k += 2) {
    const n = x[k];
    const rest = x[k + 1];
    if (
      typeof n !== "number" || !Number.isInteger(n) || n < 0 ||
      n > prev.length || typeof rest !== "string"
    ) return undefined;
    prev = n === 0 ? rest : prev.slice(0, n) + rest;
    // No key is longer (in UTF-8 bytes, so in UTF-16 units): a block
    // written over cannot make 64 KiB stand for gigabytes of ids.
    if (prev.length > MAX_KEY_BYTES) return undefined;
    ids[k / 2] = prev;
  }
  return ids;
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
    const { c, p, i, f, x } = JSON.parse(new TextDecoder().decode(entry.value));
    const ids = i !== undefined ? i : expandIds(x);
    const count = Array.isArray(ids) ? ids.length : 0;
    // `f`: the positions from it, one per id.
    const positions = p !== undefined
      ? p
      : Number.isSafeInteger(f) && count > 0
      ? Array.from({ length: count }, (_, k) => f + k)
      : undefined;
    if (
      typeof c === "string" && Array.isArray(positions) &&
      Array.isArray(ids) && (p === undefined || f === undefined) &&
      (i === undefined || x === undefined) &&
      positions.length === ids.length &&
      positions[positions.length - 1] === position
    ) {
      for (let k = 0; k < positions.length; k++) {
        const at = positions[k];
        const id = ids[k];
        if (typeof at !== "number" || typeof id !== "string") break;
        out.push({ position: at, collection: c, id, kind: PUT });
      }
      if (out.length === positions.length) return out;
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
