/**
 * The engine's key layout: where documents, metadata, index entries and
 * tombstones live in the storage's ordered key space.
 *
 * - `["d", collection, id]`: a document's record.
 * - `["m", collection, "index", name]`: an index definition;
 *   `["m", collection, "order"]`, `["m", collection, "schema"]`,
 *   `["m", collection, "feed"]`: order marker, schema version, change feed.
 * - `["i", collection, index, ...values, id]`: secondary index entries,
 *   `["o", collection, ...]`: insertion-order entries (see indexes.ts).
 * - `["t", collection, id]`: tombstones of deleted documents.
 * - `["k", "tombstones"]`: the cut-off of the last tombstone purge.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import { encodeKey } from "../key_codec.ts";
import type { StoredRecord } from "../value_codec.ts";

/** Key-space tag of documents: `["d", collection, id]`. */
export const DOC = "d";
/** Key-space tag of metadata: `["m", collection, "index", name]`. */
export const META = "m";
/**
 * Key-space tag of tombstones: `["t", collection, id]`, the time a document
 * was deleted, kept `tombstoneRetention` ms for incremental backups.
 */
export const TOMB = "t";
/** Where the cut-off of the last tombstone purge is kept. */
export const PURGED: Uint8Array = encodeKey(["k", "tombstones"]);

/**
 * The smallest key greater than `key`.
 *
 * @param key A key.
 * @returns `key` followed by a zero byte.
 */
export function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/**
 * Whether a record has expired at `now`.
 *
 * @param record The record.
 * @param now Epoch ms.
 * @returns `true` once `now` reached its expiry.
 */
export function isExpired(record: StoredRecord, now: number): boolean {
  return record.expiresAt !== undefined && now >= record.expiresAt;
}

/**
 * The key of an index definition.
 *
 * @param collection Collection name.
 * @param name Index name.
 * @returns The encoded key.
 */
export function indexMetaKey(collection: string, name: string): Uint8Array {
  return encodeKey([META, collection, "index", name]);
}

/**
 * The key of a document's tombstone.
 *
 * @param collection Collection name.
 * @param id Document key.
 * @returns The encoded key.
 */
export function tombKey(collection: string, id: string): Uint8Array {
  return encodeKey([TOMB, collection, id]);
}

/**
 * The key of a collection's schema version (shared storages).
 *
 * @param collection Collection name.
 * @returns The encoded key.
 */
export function schemaKey(collection: string): Uint8Array {
  return encodeKey([META, collection, "schema"]);
}

/**
 * The set that records a schema change (an index or the insertion order
 * created or dropped), which fails every other writer's next commit once so
 * that it reloads the definitions.
 *
 * @param collection Collection name.
 * @param now Epoch ms.
 * @returns The set.
 */
export function schemaBump(
  collection: string,
  now: number,
): { key: Uint8Array; value: Uint8Array } {
  return { key: schemaKey(collection), value: encodeUtf8(String(now)) };
}
