/**
 * The stored form of the durable change feed: the counter and purge-mark
 * keys, the `["q", position]` keys of shared storages and their values, the
 * tombstones that carry a deletion's position, and the change kinds.
 * FORMAT.md gives the bytes; feed_index.ts assigns and indexes positions.
 *
 * @module
 */

import { decodeKey, encodeKey } from "../key_codec.ts";
import { encodeUtf8 } from "../bytes.ts";
import type { StorageEntry } from "../storage/contract.ts";

/**
 * The highest position assigned so far (at least): decimal ASCII. On a
 * shared storage every commit with changes checks and rewrites it; on a
 * local one it is written when a purge could remove the highest position.
 */
export const FEED_MARK: Uint8Array = encodeKey(["k", "feed"]);
/**
 * The highest positions whose delete (`d`) and expiry (`e`) markers were
 * purged: JSON `{"d":n,"e":n}`. A feed read from before them may miss
 * changes, so it is refused with a `FeedGapError`.
 */
export const FEED_GAP: Uint8Array = encodeKey(["k", "feedgap"]);
/** Key-space tag of the by-position keys of shared storages. */
export const BY_POSITION = "q";

/** Change kinds as stored: a put. */
export const PUT = 1;
/** A delete. */
export const DELETE = 0;
/** An expiry. */
export const EXPIRE = 2;

/**
 * The key of one change's by-position entry (shared storages).
 *
 * @param position The change's position.
 * @returns `["q", position]`, encoded.
 */
export function positionKey(position: number): Uint8Array {
  return encodeKey([BY_POSITION, position]);
}

/**
 * The value of a by-position entry (shared storages): JSON
 * `[collection, id, kind]`.
 *
 * @param collection The collection.
 * @param id The item's key.
 * @param kind {@linkcode PUT}, {@linkcode DELETE} or {@linkcode EXPIRE}.
 * @returns The bytes.
 */
export function positionValue(
  collection: string,
  id: string,
  kind: number,
): Uint8Array {
  return encodeUtf8(JSON.stringify([collection, id, kind]));
}

/** A decoded by-position entry. */
export interface PositionEntry {
  /** The position. */
  readonly position: number;
  /** The collection. */
  readonly collection: string;
  /** The item's key. */
  readonly id: string;
  /** {@linkcode PUT}, {@linkcode DELETE} or {@linkcode EXPIRE}. */
  readonly kind: number;
}

/**
 * Reads a by-position entry; `undefined` when it is not one.
 *
 * @param entry The storage entry under `["q", ...]`.
 * @returns The decoded entry.
 */
export function readPosition(entry: StorageEntry): PositionEntry | undefined {
  try {
    const position = decodeKey(entry.key)[1];
    const [collection, id, kind] = JSON.parse(
      new TextDecoder().decode(entry.value),
    );
    if (
      typeof position !== "number" || typeof collection !== "string" ||
      typeof id !== "string" || typeof kind !== "number"
    ) return undefined;
    return { position, collection, id, kind };
  } catch {
    return undefined;
  }
}

/** What a tombstone (or expiry marker) holds. */
export interface Tombstone {
  /** When the item was deleted or removed, epoch ms. */
  readonly at: number;
  /** The change's position; 0 for tombstones written before the feed. */
  readonly position: number;
  /** The deleted item's last version + 1 (the expired item's version). */
  readonly version: number;
  /** An expiry marker rather than a deletion. */
  readonly expired: boolean;
}

/**
 * The value of a tombstone `["t", collection, id]`: decimal ASCII `at`,
 * then ` position version`, then ` e` for an expiry marker. Tombstones
 * written before the feed hold `at` alone.
 *
 * @param at Epoch ms.
 * @param position The change's position.
 * @param version The version the change carries.
 * @param expired Whether it marks an expiry.
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTombstone, tombstoneValue } from "./feed_format.ts";
 * const bytes = tombstoneValue(1000, 7, 3, false);
 * assert.deepEqual(readTombstone(bytes), {
 *   at: 1000, position: 7, version: 3, expired: false,
 * });
 * ```
 */
export function tombstoneValue(
  at: number,
  position: number,
  version: number,
  expired: boolean,
): Uint8Array {
  return encodeUtf8(
    `${at} ${position} ${version}${expired ? " e" : ""}`,
  );
}

/**
 * Parses a tombstone's value (both forms).
 *
 * @param bytes The stored value.
 * @returns The tombstone; `at` is `NaN` when unreadable.
 */
export function readTombstone(bytes: Uint8Array): Tombstone {
  const text = new TextDecoder().decode(bytes);
  const parts = text.split(" ");
  if (parts.length === 1) {
    return { at: Number(text), position: 0, version: 0, expired: false };
  }
  return {
    at: Number(parts[0]),
    position: Number(parts[1]) || 0,
    version: Number(parts[2]) || 0,
    expired: parts[3] === "e",
  };
}

/**
 * Parses the stored purge marks.
 *
 * @param entry The entry under {@linkcode FEED_GAP}, or `null`.
 * @returns `{ d, e }`: 0 when nothing was purged.
 */
export function readGap(
  entry: StorageEntry | null,
): { d: number; e: number } {
  if (entry === null) return { d: 0, e: 0 };
  try {
    const { d, e } = JSON.parse(new TextDecoder().decode(entry.value));
    return { d: Number(d) || 0, e: Number(e) || 0 };
  } catch {
    // An unreadable mark: refuse every resumed read (the safe side).
    return { d: Infinity, e: Infinity };
  }
}

/**
 * Parses the stored high-water mark / counter.
 *
 * @param entry The entry under {@linkcode FEED_MARK}, or `null`.
 * @returns The position (0 when absent).
 */
export function readMark(entry: StorageEntry | null): number {
  if (entry === null) return 0;
  const n = Number(new TextDecoder().decode(entry.value));
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
