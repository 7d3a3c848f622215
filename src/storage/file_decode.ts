/**
 * Decoding a format-3 record envelope straight from its stored parts (the
 * JSON of `v`, its fields as varints): the record the engine would get by
 * rebuilding the envelope's JSON (`joinValue`) and parsing it
 * (`decodeRecord`), without making those bytes. Opening a database and
 * reading a value that is not in RAM go this way.
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import { recordOf, type StoredRecord } from "../value_codec.ts";
import { decodeKey } from "../key_codec.ts";
import {
  REC_DATES,
  REC_ENVELOPE,
  REC_EXPIRY,
  REC_FEED,
  REC_ID,
  REC_TAGS,
  type RecordParts,
} from "./file_record.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The JSON text of a key's last part (a string), for `REC_ID`. */
function idText(key: Uint8Array, action: string): string {
  if (key.length === 0 || key[key.length - 1] !== 0) {
    throw new IntegrityError(
      `${action}: a record's _id does not match its key`,
    );
  }
  let parts;
  try {
    parts = decodeKey(key);
  } catch (cause) {
    throw new IntegrityError(
      `${action}: a record's _id does not match its key`,
      { cause },
    );
  }
  const last = parts[parts.length - 1];
  if (typeof last !== "string") {
    throw new IntegrityError(
      `${action}: a record's _id does not match its key`,
    );
  }
  return JSON.stringify(last);
}

/**
 * The record of an envelope's parts: what `decodeRecord(joinValue(p, key))`
 * gives, made without the envelope's bytes.
 *
 * @param p The parts (`REC_ENVELOPE` set).
 * @param key The record's key (read with `REC_ID`).
 * @param id The key's last part, when the caller has it (else decoded from
 *   `key` when needed).
 * @param action For error messages.
 * @returns The record.
 * @throws {IntegrityError} When the parts do not make a record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordFromParts } from "./file_decode.ts";
 * import { REC_ENVELOPE } from "./file_record.ts";
 * const p = {
 *   flags: REC_ENVELOPE, c: 1, u: 2, n: 3, s: 4, f: 0, x: 0,
 *   tags: undefined, dates: undefined,
 *   value: new TextEncoder().encode('{"a":1}'),
 * };
 * const r = recordFromParts(p, new Uint8Array(), undefined, "read");
 * assert.deepEqual(r.value, { a: 1 });
 * assert.equal(r.version, 3);
 * ```
 */
export function recordFromParts(
  p: RecordParts,
  key: Uint8Array,
  id: string | undefined,
  action: string,
): StoredRecord {
  const flags = p.flags;
  if ((flags & REC_ENVELOPE) === 0) {
    throw new TypeError("recordFromParts: not a record envelope");
  }
  let env: Record<string, unknown>;
  try {
    let text = utf8.decode(p.value);
    if (flags & REC_ID) {
      if (text.charCodeAt(0) !== 0x7b) {
        throw new IntegrityError(
          `${action}: a record's _id does not match its key`,
        );
      }
      const head = id === undefined ? idText(key, action) : JSON.stringify(id);
      text = `{"_id":${head}${text.length > 1 && text[1] !== "}" ? "," : ""}${
        text.slice(1)
      }`;
    }
    env = {
      v: JSON.parse(text),
      c: p.c,
      u: p.u,
      n: p.n,
      s: p.s,
    };
    if (flags & REC_FEED) env.f = p.f;
    if (flags & REC_TAGS) env.t = JSON.parse(utf8.decode(p.tags!));
    if (flags & REC_EXPIRY) env.x = p.x;
    if (flags & REC_DATES) env.d = JSON.parse(utf8.decode(p.dates!));
  } catch (cause) {
    if (cause instanceof IntegrityError) throw cause;
    throw new IntegrityError(`${action}: the stored record is not valid JSON`, {
      cause,
    });
  }
  return recordOf(env, action);
}
