/**
 * The `_id` member a format-3 record leaves out of its stored value
 * (`REC_ID`, FORMAT.md "Records"): a document whose value starts with
 * `"_id"` equal to its key's id is stored without it, and the member is
 * rebuilt from the key when read. These functions find it, in the JSON text
 * (the write path) or in its bytes, and give the key's id as JSON.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import { decodeKey } from "../key_codec.ts";

/**
 * Where `json` (the JSON of `value`, stored under `key`) goes on once a
 * leading `"_id":<id>` equal to the key's id is left out (`REC_ID`), told
 * from the text: `0` when it does not start with `{"_id":`, `-1` when the
 * id is not plain ASCII or does not match (the bytes decide then, with
 * {@linkcode idCutBytes}), else the offset after the member (and its
 * comma). Cutting there gives the bytes `idCutBytes` gives, without
 * encoding the member first.
 *
 * @param json `JSON.stringify(value)`.
 * @param value The document.
 * @param key Its key.
 * @returns The offset, `0` or `-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { idCut } from "./record_id.ts";
 * import { encodeKey } from "../key_codec.ts";
 * const value = { _id: "a", n: 1 };
 * const json = JSON.stringify(value);
 * assert.equal(idCut(json, value, encodeKey(["d", "c", "a"])), 11);
 * assert.equal("{" + json.slice(11), '{"n":1}');
 * assert.equal(idCut('{"n":1}', { n: 1 }, encodeKey(["d", "c", "a"])), 0);
 * ```
 */
export function idCut(json: string, value: unknown, key: Uint8Array): number {
  if (!json.startsWith('{"_id":"')) return json.startsWith('{"_id":') ? -1 : 0;
  const id = (value as { _id?: unknown })._id;
  if (typeof id !== "string") return -1;
  const start = plainIdStart(key);
  const n = id.length;
  if (start < 0 || key.length - 1 - start !== n) return -1;
  for (let i = 0; i < n; i++) {
    const ch = id.charCodeAt(i);
    if (ch >= 0x80 || ch !== key[start + i]) return -1;
  }
  // A plain key part has no character JSON escapes: the text is the id.
  const end = 9 + n;
  if (json.charCodeAt(end - 1) !== 0x22 || !json.startsWith(id, 8)) return -1;
  const next = json.charCodeAt(end);
  if (next === 0x7d) return end;
  return next === 0x2c && json.charCodeAt(end + 1) !== 0x7d ? end + 1 : -1;
}

/**
 * The bytes of `{"_id":`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ID_PREFIX } from "./record_id.ts";
 * assert.equal(String.fromCharCode(...ID_PREFIX), '{"_id":');
 * ```
 */
export const ID_PREFIX: readonly number[] = [
  0x7b,
  0x22,
  0x5f,
  0x69,
  0x64,
  0x22,
  0x3a,
];

/**
 * Where the key's last part is when it is a string that JSON writes as it
 * is between quotes (no escapes in the key, no `"`, `\\` or control
 * characters): the common case, found without decoding the key. `-1` when
 * not (the caller then decodes the key).
 *
 * @param key An encoded key.
 * @returns The offset of the last part's first byte, or `-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plainIdStart } from "./record_id.ts";
 * import { encodeKey } from "../key_codec.ts";
 * const key = encodeKey(["d", "c", "ab"]);
 * assert.equal(plainIdStart(key), key.length - 3);
 * assert.equal(plainIdStart(encodeKey(["d", "c", 'q"'])), -1);
 * ```
 */
export function plainIdStart(key: Uint8Array): number {
  const n = key.length;
  let i = 0;
  let last = -1;
  while (i < n) {
    const tag = key[i]!;
    last = i;
    if (tag === 0x30 || tag === 0x60) {
      i++;
      while (i < n && key[i] !== 0) i++;
      if (i >= n) return -1;
      if (key[i + 1] === 0xff) return -1; // an escaped zero: decode
      i++;
    } else if (tag === 0x20 || tag === 0x80) i += 9;
    else if (tag === 0x10 || tag === 0x70 || tag === 0x71) i++;
    else return -1;
  }
  if (i !== n || last < 0 || key[last] !== 0x30) return -1;
  for (let j = last + 1; j < n - 1; j++) {
    const b = key[j]!;
    if (b < 0x20 || b === 0x22 || b === 0x5c) return -1;
  }
  return last + 1;
}

/**
 * The JSON of the key's last part when it is a string.
 *
 * @param key An encoded key.
 * @returns The UTF-8 JSON, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { idJson } from "./record_id.ts";
 * import { encodeKey } from "../key_codec.ts";
 * const json = idJson(encodeKey(["d", "c", "é"]));
 * assert.equal(new TextDecoder().decode(json), '"é"');
 * ```
 */
export function idJson(key: Uint8Array): Uint8Array | undefined {
  if (key[key.length - 1] !== 0) return undefined;
  const start = plainIdStart(key);
  if (start >= 0) {
    const out = new Uint8Array(key.length - start + 1);
    out[0] = 0x22;
    out.set(key.subarray(start, key.length - 1), 1);
    out[out.length - 1] = 0x22;
    return out;
  }
  let parts;
  try {
    parts = decodeKey(key);
  } catch {
    return undefined;
  }
  const last = parts[parts.length - 1];
  return typeof last === "string"
    ? encodeUtf8(JSON.stringify(last))
    : undefined;
}

/** Whether `v` starts with `{"_id":`. */
function mayHaveId(v: Uint8Array): boolean {
  if (v.length < 9) return false;
  for (let i = 0; i < 7; i++) if (v[i] !== ID_PREFIX[i]) return false;
  return true;
}

function startsWithId(v: Uint8Array, id: Uint8Array): boolean {
  if (v.length < 8 + id.length) return false;
  for (let i = 0; i < 7; i++) if (v[i] !== ID_PREFIX[i]) return false;
  for (let i = 0; i < id.length; i++) if (v[7 + i] !== id[i]) return false;
  const next = v[7 + id.length];
  // `{"_id":<id>,}` is not JSON, so `{}` stored always means `}` came next.
  return next === 0x7d || (next === 0x2c && v[8 + id.length] !== 0x7d);
}

/**
 * Where the stored value goes on once a leading `"_id":<id>` equal to the
 * key's id is left out, told from the value's bytes `v`: the offset after
 * the member (and its comma), or `0` when there is none to leave out.
 *
 * @param v The JSON bytes of the value.
 * @param key The document's key.
 * @returns The offset, or 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { idCutBytes } from "./record_id.ts";
 * import { encodeKey } from "../key_codec.ts";
 * const v = new TextEncoder().encode('{"_id":"a","n":1}');
 * assert.equal(idCutBytes(v, encodeKey(["d", "c", "a"])), 11);
 * assert.equal(idCutBytes(v, encodeKey(["d", "c", "b"])), 0);
 * ```
 */
export function idCutBytes(v: Uint8Array, key: Uint8Array): number {
  const id = mayHaveId(v) ? idJson(key) : undefined;
  if (id === undefined || !startsWithId(v, id)) return 0;
  return 7 + id.length + (v[7 + id.length] === 0x2c ? 1 : 0);
}
