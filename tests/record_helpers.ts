/**
 * A stored record for tests of the object tier's tables (record_table.ts,
 * ram_index.ts): created and updated at time 1, version 1, no expiry.
 *
 * @module
 */

import type { StoredRecord } from "../src/value_codec.ts";

/** The prefix of the test tables' document keys. */
export const PREFIX: Uint8Array = new Uint8Array([1]);

/**
 * A record of `value`.
 *
 * @param value The document.
 * @param tags Its tags, if any (a slot with tags is "marked").
 * @returns The record.
 */
export function record(
  value: unknown,
  tags: string[] | undefined = undefined,
): StoredRecord {
  return {
    value,
    tags,
    expiresAt: undefined,
    createdAt: 1,
    updatedAt: 1,
    version: 1,
    seq: 1,
    dates: undefined,
  };
}
