/**
 * What `ingest` tells `relay` about the collections it writes, within one
 * process: their retention (`ttl` after relay) and how many readings
 * `onFull: "dropOldest"` removed.
 *
 * @module
 */

/** A collection written by `ingest`. */
export interface StreamInfo {
  /** Keep relayed readings this long after `receivedAt`, ms. */
  ttl: number | undefined;
  /** The TTL was already set at ingest (`expireUnrelayed`). */
  expireUnrelayed: boolean;
  /** Readings removed to make room (`onFull: "dropOldest"`). */
  dropped: number;
}

const streams = new WeakMap<object, Map<string, StreamInfo>>();

/**
 * The stream record of `db`'s `collection`, created on first use.
 *
 * @param db The database.
 * @param collection The collection's name.
 * @returns The record (shared, mutable).
 */
export function streamInfo(db: object, collection: string): StreamInfo {
  let byName = streams.get(db);
  if (byName === undefined) {
    byName = new Map();
    streams.set(db, byName);
  }
  let info = byName.get(collection);
  if (info === undefined) {
    info = { ttl: undefined, expireUnrelayed: false, dropped: 0 };
    byName.set(collection, info);
  }
  return info;
}

/**
 * Whether `ingest` writes `db`'s `collection` in this process.
 *
 * @param db The database.
 * @param collection The collection's name.
 * @returns The record, or `undefined`.
 */
export function knownStream(
  db: object,
  collection: string,
): StreamInfo | undefined {
  return streams.get(db)?.get(collection);
}
