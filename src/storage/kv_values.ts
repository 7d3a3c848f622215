/**
 * How the Deno KV storage keeps document records as KV's own structured
 * values (KV layout 2) instead of JSON bytes, and a bound of their
 * serialised size, so that a record goes in one KV value when it fits and
 * is split as bytes only when it does not.
 *
 * A native record is the array
 * `[2, value, createdAt, updatedAt, version, seq, feed, tags, expiresAt, paths]`
 * that KV serialises with V8's serializer: `Date`s and `Uint8Array`s inside
 * `value` stay what they are, `paths` lists where they are (the record's
 * `dates`), absent fields are `null` (so the array stays dense).
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import type { StoredRecord } from "../value_codec.ts";
import { encodeRecord } from "../value_codec.ts";
import type { StorageEntry } from "./contract.ts";

/** The first element of a native record: the KV layout that wrote it. */
export const NATIVE_RECORD = 2;

/** Deno KV's largest value, in serialised bytes. */
export const KV_VALUE = 65_536;

/**
 * JSON bytes under which a record's serialised form surely fits one KV
 * value: V8's serializer takes at most 4.5 bytes per JSON byte (a `-0`
 * array element, `0,` in JSON, is a 9-byte double) plus a few bytes of
 * header, so most records need no measuring.
 */
const SURELY_FITS = Math.floor((KV_VALUE - 64) / 4.5);

/**
 * The native form of a record.
 *
 * @param record The record.
 * @returns The array KV stores.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromNative, toNative } from "./kv_values.ts";
 * const record = {
 *   value: { at: new Date(5) }, tags: undefined, expiresAt: undefined,
 *   createdAt: 1, updatedAt: 2, version: 3, seq: 4, feed: 9,
 *   dates: [["at"]],
 * };
 * const back = fromNative(structuredClone(toNative(record)))!;
 * assert.deepEqual(back, record);
 * ```
 */
export function toNative(record: StoredRecord): unknown[] {
  return [
    NATIVE_RECORD,
    record.value,
    record.createdAt,
    record.updatedAt,
    record.version,
    record.seq,
    record.feed ?? null,
    record.tags ?? null,
    record.expiresAt ?? null,
    record.dates ?? null,
  ];
}

/**
 * The record of a native KV value, or `undefined` when the value is not
 * one (bytes of KV layout 1, a split value's marker, something else).
 *
 * @param value A value read from KV.
 * @returns The record.
 */
export function fromNative(value: unknown): StoredRecord | undefined {
  if (!Array.isArray(value) || value[0] !== NATIVE_RECORD) return undefined;
  const [, v, c, u, n, s, f, t, x, d] = value;
  if (
    typeof c !== "number" || typeof u !== "number" || typeof n !== "number" ||
    typeof s !== "number"
  ) {
    return undefined;
  }
  return {
    value: v,
    tags: Array.isArray(t) ? t : undefined,
    expiresAt: typeof x === "number" ? x : undefined,
    createdAt: c,
    updatedAt: u,
    version: n,
    seq: s,
    feed: typeof f === "number" ? f : 0,
    dates: Array.isArray(d) ? d : undefined,
  };
}

/**
 * An entry whose KV value is neither bytes nor a record of ours (another
 * program wrote under the database's prefix): reading its `value` throws
 * an `IntegrityError`, so a read of that item fails and `verify()` reports
 * it, while a scan that only passes it goes on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IntegrityError } from "../errors.ts";
 * import { ForeignEntry } from "./kv_values.ts";
 * const entry = new ForeignEntry(new Uint8Array([1]), "00", "number");
 * assert.throws(() => entry.value, IntegrityError);
 * ```
 */
export class ForeignEntry implements StorageEntry {
  /** The key. */
  readonly key: Uint8Array;
  /** The versionstamp. */
  readonly versionstamp: string;
  readonly #type: string;

  /**
   * @param key The key.
   * @param versionstamp Its versionstamp.
   * @param type The JavaScript type of the value found.
   */
  constructor(key: Uint8Array, versionstamp: string, type: string) {
    this.key = key;
    this.versionstamp = versionstamp;
    this.#type = type;
  }

  /** Throws: there are no bytes of ours to give. */
  get value(): Uint8Array {
    throw new IntegrityError(
      `Cannot read a key from Deno KV: the value under the database prefix is neither bytes nor a record (${this.#type}); another program wrote there`,
    );
  }
}

/**
 * A document entry read as a native record: the record is the entry's
 * `memo`, and its JSON bytes are made only when someone asks for `value`
 * (an export, a verification, a measurement).
 */
export class NativeEntry implements StorageEntry {
  /** The key. */
  readonly key: Uint8Array;
  /** The versionstamp. */
  readonly versionstamp: string;
  /** The record. */
  readonly memo: StoredRecord;
  #value: Uint8Array | undefined;

  /**
   * An entry of a record read from KV.
   *
   * @param key The key.
   * @param versionstamp Its versionstamp.
   * @param memo The record.
   */
  constructor(key: Uint8Array, versionstamp: string, memo: StoredRecord) {
    this.key = key;
    this.versionstamp = versionstamp;
    this.memo = memo;
  }

  /** The record's bytes (the envelope of FORMAT.md), made once. */
  get value(): Uint8Array {
    return this.#value ??= encodeRecord(this.memo);
  }
}

/**
 * Whether a record goes into one KV value in its native form, judged from
 * its JSON length and, when that is not enough, from an upper bound of its
 * serialised size.
 *
 * @param native The native form ({@linkcode toNative}).
 * @param jsonBytes The length of the record's JSON envelope.
 * @returns `true` when it surely fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitsOneValue } from "./kv_values.ts";
 * assert(fitsOneValue([2, { a: 1 }], 20));
 * assert(!fitsOneValue([2, "x".repeat(70_000)], 70_010));
 * ```
 */
export function fitsOneValue(native: unknown, jsonBytes: number): boolean {
  if (jsonBytes <= SURELY_FITS) return true;
  return serializedBound(native, 0) + 8 <= KV_VALUE;
}

/** Bytes of a varint holding `n` (a non-negative integer). */
function varint(n: number): number {
  let bytes = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

/** Characters outside Latin-1 make V8 write a string as UTF-16. */
const WIDE = /[\u0100-\uffff]/; // any UTF-16 unit above 0xff

function stringBound(s: string): number {
  if (WIDE.test(s)) return 2 + varint(2 * s.length) + 2 * s.length;
  return 1 + varint(s.length) + s.length;
}

/**
 * An upper bound of the bytes V8's serializer writes for `v` (format 15:
 * a tag byte per value, varint lengths, one- or two-byte strings, doubles
 * in 8 bytes, array buffers whole).
 */
export function serializedBound(v: unknown, depth: number): number {
  switch (typeof v) {
    case "string":
      return stringBound(v);
    case "number":
      // A small integer is a zigzag varint; anything else a double.
      return Number.isInteger(v) && Math.abs(v) < 2 ** 30 && !Object.is(v, -0)
        ? 1 + varint(Math.abs(v) * 2 + 1)
        : 9;
    case "boolean":
    case "undefined":
      return 1;
    case "object":
      break;
    default:
      return Infinity;
  }
  if (v === null) return 1;
  if (depth > 200) return Infinity;
  if (v instanceof Date) return 9;
  if (v instanceof Uint8Array) {
    const whole = v.buffer.byteLength;
    return 1 + varint(whole) + whole + 2 + 3 * 5;
  }
  if (Array.isArray(v)) {
    let n = 1 + varint(v.length) + 1 + 1 + varint(v.length);
    for (const item of v) {
      // An array holding a double is written as doubles throughout; one
      // holding `undefined` as a sparse array, index by index.
      if (typeof item === "number") n += 9;
      else if (item === undefined) n += 1 + 6;
      else n += serializedBound(item, depth + 1);
    }
    return n;
  }
  let n = 2;
  let fields = 0;
  const o = v as Record<string, unknown>;
  for (const k in o) {
    fields++;
    n += stringBound(k) + serializedBound(o[k], depth + 1);
  }
  return n + varint(fields);
}
