/**
 * The records of a format-3 file log (see FORMAT.md, "File log", "Records"):
 * a key, a flags byte, the metadata of a document record as varints, and the
 * value bytes. A value that is a record envelope written by the engine
 * (`{"v":...,"c":...}`, UTF-8 JSON) is stored as the JSON of `v` plus its
 * fields in binary, and rebuilt byte for byte when read; any other value
 * (index entries, tombstones, encrypted or compressed records) is stored as
 * it is.
 *
 * @module
 */

import { encodeUtf8, encodeUtf8Tail } from "../bytes.ts";
import {
  ID_PREFIX,
  idCut,
  idCutBytes,
  idJson,
  plainIdStart,
} from "./record_id.ts";

/** Flag: the value is a record envelope, stored as binary fields + `v`. */
export const REC_ENVELOPE = 1;
/** Flag: the envelope has `f` (change feed position). */
export const REC_FEED = 2;
/** Flag: the envelope has `t` (tags). */
export const REC_TAGS = 4;
/** Flag: the envelope has `x` (expiry). */
export const REC_EXPIRY = 8;
/** Flag: the envelope has `d` (paths of dates). */
export const REC_DATES = 16;
/**
 * Flag: `v` is an object whose first member is `"_id":` and the JSON of the
 * key's last part (a string), left out of the stored `v`.
 */
export const REC_ID = 32;
const KNOWN_FLAGS = 63;

/** A value split for storage: raw bytes, or an envelope's parts. */
export interface RecordParts {
  /** `0` (raw) or `REC_ENVELOPE` with the optional-field flags. */
  readonly flags: number;
  /** `c`: created at. */
  readonly c: number;
  /** `u`: updated at. */
  readonly u: number;
  /** `n`: version. */
  readonly n: number;
  /** `s`: insertion sequence. */
  readonly s: number;
  /** `f`: feed position (with `REC_FEED`). */
  readonly f: number;
  /** `x`: expiry (with `REC_EXPIRY`). */
  readonly x: number;
  /** The JSON of `t` (with `REC_TAGS`). */
  readonly tags: Uint8Array | undefined;
  /** The JSON of `d` (with `REC_DATES`). */
  readonly dates: Uint8Array | undefined;
  /** The raw value, or the JSON of `v` (empty when `text` holds it). */
  readonly value: Uint8Array;
  /**
   * Made for writing only ({@linkcode recordParts}): the JSON of `v` as
   * plain ASCII text, from `textFrom` on (after a `{` when `textFrom` is
   * above 0: the `_id` member left out), in place of `value`'s bytes.
   * `writeRecord` copies it into the frame: no bytes of its own.
   */
  readonly text?: string | undefined;
  /** Where `text`'s part starts (see `text`). */
  readonly textFrom?: number | undefined;
}

/** Bytes of the JSON of `v` a set's parts write. */
function valueLength(p: RecordParts): number {
  if (p.text === undefined) return p.value.length;
  const from = p.textFrom!;
  return from > 0 ? 1 + p.text.length - from : p.text.length;
}

/** Any character past ASCII. */
const NON_ASCII = /[\u0080-\uffff]/;

const NO_BYTES = new Uint8Array(0);

/** The metadata of an envelope the engine reads at open. */
export interface RecordMeta {
  /** Insertion sequence. */
  readonly seq: number;
  /** Expiry, if any. */
  readonly expiresAt: number | undefined;
  /** Change feed position (0 when absent). */
  readonly feed: number;
}

const PREFIX = [0x7b, 0x22, 0x76, 0x22, 0x3a]; // {"v":

/** The bytes a varint of `n` (a safe non-negative integer) takes. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * Writes `n` (a safe non-negative integer) as an LEB128 varint.
 *
 * @returns The offset after it.
 */
export function putVarint(out: Uint8Array, at: number, n: number): number {
  // Above 2^31 the bit operators would wrap: divide until below.
  while (n > 0x7fffffff) {
    out[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  while (n >= 128) {
    out[at++] = (n & 127) | 128;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** A cursor over bytes that reads varints and slices, or fails. */
export class Reader {
  /** The bytes. */
  readonly bytes: Uint8Array;
  /** The next byte to read. */
  at: number;
  /** Where reading must stop. */
  readonly end: number;

  /**
   * @param bytes The bytes.
   * @param at Where to start.
   * @param end Where to stop.
   */
  constructor(bytes: Uint8Array, at: number, end: number) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
  }

  /** A varint (at most 8 bytes, a safe integer), or -1 when malformed. */
  varint(): number {
    const bytes = this.bytes;
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= this.end) return -1;
      const b = bytes[this.at++]!;
      n += (b & 127) * mul;
      if ((b & 128) === 0) return Number.isSafeInteger(n) ? n : -1;
      mul *= 128;
    }
    return -1;
  }

  /** The offset of `n` bytes to take, or -1 when they run past the end. */
  skip(n: number): number {
    if (n < 0 || this.end - this.at < n) return -1;
    const at = this.at;
    this.at += n;
    return at;
  }
}

function zigzag(d: number): number {
  return d >= 0 ? 2 * d : -2 * d - 1;
}

function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function raw(value: Uint8Array): RecordParts {
  return {
    flags: 0,
    c: 0,
    u: 0,
    n: 0,
    s: 0,
    f: 0,
    x: 0,
    tags: undefined,
    dates: undefined,
    value,
  };
}

interface Fields {
  c: unknown;
  u: unknown;
  n: unknown;
  s: unknown;
  f: unknown;
  t: unknown;
  x: unknown;
  d: unknown;
}

const FIELD_NAMES = new Set(["v", "c", "u", "n", "s", "f", "t", "x", "d"]);

/** The fields of the envelope in `bytes`, parsed; `undefined` if not one. */
function parseFields(bytes: Uint8Array): Fields | undefined {
  let env: unknown;
  try {
    env = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    return undefined;
  }
  for (const name of Object.keys(env)) {
    if (!FIELD_NAMES.has(name)) return undefined;
  }
  const e = env as Record<string, unknown>;
  return { c: e.c, u: e.u, n: e.n, s: e.s, f: e.f, t: e.t, x: e.x, d: e.d };
}

/** The fields of a record the engine gave as `memo`. */
function memoFields(memo: unknown): Fields | undefined {
  if (typeof memo !== "object" || memo === null) return undefined;
  const m = memo as Record<string, unknown>;
  if (!("createdAt" in m) || !("value" in m)) return undefined;
  return {
    c: m.createdAt,
    u: m.updatedAt,
    n: m.version,
    s: m.seq,
    f: m.feed,
    t: m.tags,
    x: m.expiresAt,
    d: m.dates,
  };
}

/**
 * Splits a value for storage: an envelope into its parts when rebuilding
 * them gives the same bytes, anything else as raw bytes.
 *
 * @param value The value bytes.
 * @param memo The decoded record the engine passed with it, if any (saves
 *   parsing the JSON).
 * @returns The parts.
 */
export function splitValue(
  value: Uint8Array,
  memo?: unknown,
  key?: Uint8Array,
): RecordParts {
  const n = value.length;
  if (
    n < 8 || value[0] !== 0x7b || value[1] !== 0x22 || value[2] !== 0x76 ||
    value[3] !== 0x22 || value[4] !== 0x3a || value[n - 1] !== 0x7d
  ) return raw(value);
  const fields = memoFields(memo) ?? parseFields(value);
  if (fields === undefined) return raw(value);
  const { c, u, n: version, s, f, t, x, d } = fields;
  if (
    !isCount(c) || !isCount(u) || !isCount(version) || !isCount(s) ||
    !Number.isSafeInteger(zigzag(u - c))
  ) return raw(value);
  let flags = REC_ENVELOPE;
  if (f !== undefined) {
    if (!isCount(f) || !Number.isSafeInteger(zigzag(f - s))) return raw(value);
    flags |= REC_FEED;
  }
  if (x !== undefined) {
    if (!isCount(x)) return raw(value);
    flags |= REC_EXPIRY;
  }
  let tags: Uint8Array | undefined;
  if (t !== undefined) {
    tags = encodeUtf8(JSON.stringify(t));
    flags |= REC_TAGS;
  }
  let dates: Uint8Array | undefined;
  if (d !== undefined) {
    dates = encodeUtf8(JSON.stringify(d));
    flags |= REC_DATES;
  }
  const parts: RecordParts = {
    flags,
    c,
    u,
    n: version,
    s,
    f: f === undefined ? 0 : f as number,
    x: x === undefined ? 0 : x as number,
    tags,
    dates,
    value: value,
  };
  const size = suffixSize(parts);
  if (size + 6 > n || !suffixMatches(value, n - size, parts)) return raw(value);
  return withValue(parts, value.subarray(5, n - size), key);
}

/**
 * The parts of a document's record made from the record itself, without
 * its encoded envelope: exactly what {@linkcode splitValue} gives for
 * `encodeRecord(record)` and the same record, when the record holds no
 * dates or byte arrays (then `undefined`: the caller splits the bytes).
 * For sets the engine marks `lazy`, whose `memo` is their record.
 *
 * @param memo The record (a `StoredRecord`).
 * @param key The document's key.
 * @returns The parts, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   recordParts,
 *   recordSize,
 *   splitValue,
 *   writeRecord,
 * } from "./file_record.ts";
 * import { encodeRecord } from "../value_codec.ts";
 * const record = {
 *   value: { a: 1 }, tags: ["t"], expiresAt: undefined, createdAt: 5,
 *   updatedAt: 6, version: 1, seq: 1, feed: 3, dates: undefined,
 * };
 * const key = new Uint8Array([1, 2]);
 * const written = (p: NonNullable<ReturnType<typeof recordParts>>) => {
 *   const out = new Uint8Array(recordSize(key, p));
 *   writeRecord(out, 0, key, p);
 *   return out;
 * };
 * // The same bytes as the record's envelope, split:
 * assert.deepEqual(
 *   written(recordParts(record, key)!),
 *   written(splitValue(encodeRecord(record), record, key)),
 * );
 * ```
 */
export function recordParts(
  memo: unknown,
  key: Uint8Array,
): RecordParts | undefined {
  const fields = memoFields(memo);
  if (fields === undefined || fields.d !== undefined) return undefined;
  const { c, u, n: version, s, f, t, x } = fields;
  if (
    !isCount(c) || !isCount(u) || !isCount(version) || !isCount(s) ||
    !Number.isSafeInteger(zigzag(u - c))
  ) return undefined;
  let flags = REC_ENVELOPE;
  if (f !== undefined) {
    if (!isCount(f) || !Number.isSafeInteger(zigzag(f - s))) return undefined;
    flags |= REC_FEED;
  }
  if (x !== undefined) {
    if (!isCount(x)) return undefined;
    flags |= REC_EXPIRY;
  }
  let tags: Uint8Array | undefined;
  if (t !== undefined) {
    tags = encodeUtf8(JSON.stringify(t));
    flags |= REC_TAGS;
  }
  const value = (memo as { value: unknown }).value;
  const json = JSON.stringify(value);
  if (json === undefined) return undefined;
  const cut = idCut(json, value, key);
  // Plain ASCII (most documents): the text itself, its chars its bytes.
  const ascii = cut >= 0 && !NON_ASCII.test(json);
  // Else `{` and the text after the id, without concatenating that string.
  const v = ascii
    ? NO_BYTES
    : cut > 0
    ? encodeUtf8Tail(json, cut, 0x7b)
    : encodeUtf8(json);
  const parts: RecordParts = {
    flags: cut > 0 ? flags | REC_ID : flags,
    c,
    u,
    n: version,
    s,
    f: f === undefined ? 0 : f as number,
    x: x === undefined ? 0 : x as number,
    tags,
    dates: undefined,
    value: v,
    text: ascii ? json : undefined,
    textFrom: cut,
  };
  // Unsure from the text (an id with other than plain ASCII): the bytes.
  return cut < 0 ? withValue(parts, v, key) : parts;
}

/**
 * The parts with their value bytes `v`: a leading `"_id"` equal to the
 * key's id is left out (`REC_ID`).
 */
function withValue(
  parts: RecordParts,
  v: Uint8Array,
  key: Uint8Array | undefined,
): RecordParts {
  const cut = key === undefined ? 0 : idCutBytes(v, key);
  if (cut > 0) {
    // `{"_id":<id>,` or `{"_id":<id>` before `}`: keep `{` and the rest.
    const rest = new Uint8Array(v.length - cut + 1);
    rest[0] = 0x7b;
    rest.set(v.subarray(cut), 1);
    return { ...parts, flags: parts.flags | REC_ID, value: rest };
  }
  return parts.value === v ? parts : { ...parts, value: v };
}

function decimalSize(n: number): number {
  return String(n).length;
}

/** Bytes of `,"c":..}` after `v` when rebuilding an envelope. */
function suffixSize(p: RecordParts): number {
  let size = 5 + decimalSize(p.c) + 5 + decimalSize(p.u) + 5 +
    decimalSize(p.n) + 5 + decimalSize(p.s) + 1;
  if (p.flags & REC_FEED) size += 5 + decimalSize(p.f);
  if (p.flags & REC_TAGS) size += 5 + p.tags!.length;
  if (p.flags & REC_EXPIRY) size += 5 + decimalSize(p.x);
  if (p.flags & REC_DATES) size += 5 + p.dates!.length;
  return size;
}

/** Whether `bytes` hold, from `at` to their end, the suffix of `p`. */
function suffixMatches(bytes: Uint8Array, at: number, p: RecordParts): boolean {
  const ascii = (text: string): boolean => {
    for (let i = 0; i < text.length; i++) {
      if (bytes[at++] !== text.charCodeAt(i)) return false;
    }
    return true;
  };
  const raw = (b: Uint8Array): boolean => {
    for (let i = 0; i < b.length; i++) if (bytes[at++] !== b[i]) return false;
    return true;
  };
  return ascii(
    `,"c":${p.c},"u":${p.u},"n":${p.n},"s":${p.s}` +
      (p.flags & REC_FEED ? `,"f":${p.f}` : ""),
  ) &&
    (!(p.flags & REC_TAGS) || (ascii(',"t":') && raw(p.tags!))) &&
    (!(p.flags & REC_EXPIRY) || ascii(`,"x":${p.x}`)) &&
    (!(p.flags & REC_DATES) || (ascii(',"d":') && raw(p.dates!))) &&
    ascii("}") && at === bytes.length;
}

function putAscii(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

/**
 * The bytes a set takes in a format-3 payload.
 *
 * @param key The key.
 * @param p The value's parts.
 * @returns The size.
 */
export function recordSize(key: Uint8Array, p: RecordParts): number {
  const length = valueLength(p);
  let size = varintSize(key.length) + key.length + 1 + varintSize(length) +
    length;
  if (p.flags & REC_ENVELOPE) {
    size += varintSize(p.c) + varintSize(zigzag(p.u - p.c)) +
      varintSize(p.n) + varintSize(p.s);
    if (p.flags & REC_FEED) size += varintSize(zigzag(p.f - p.s));
    if (p.flags & REC_EXPIRY) size += varintSize(p.x);
    if (p.flags & REC_TAGS) {
      size += varintSize(p.tags!.length) + p.tags!.length;
    }
    if (p.flags & REC_DATES) {
      size += varintSize(p.dates!.length) + p.dates!.length;
    }
  }
  return size;
}

/**
 * Writes a set of a format-3 payload.
 *
 * @param out The payload buffer.
 * @param at Where the record starts.
 * @param key The key.
 * @param p The value's parts.
 * @returns The offset after it.
 */
export function writeRecord(
  out: Uint8Array,
  at: number,
  key: Uint8Array,
  p: RecordParts,
): number {
  at = putVarint(out, at, key.length);
  out.set(key, at);
  at += key.length;
  out[at++] = p.flags;
  if (p.flags & REC_ENVELOPE) {
    at = putVarint(out, at, p.c);
    at = putVarint(out, at, zigzag(p.u - p.c));
    at = putVarint(out, at, p.n);
    at = putVarint(out, at, p.s);
    if (p.flags & REC_FEED) at = putVarint(out, at, zigzag(p.f - p.s));
    if (p.flags & REC_EXPIRY) at = putVarint(out, at, p.x);
    if (p.flags & REC_TAGS) {
      at = putVarint(out, at, p.tags!.length);
      out.set(p.tags!, at);
      at += p.tags!.length;
    }
    if (p.flags & REC_DATES) {
      at = putVarint(out, at, p.dates!.length);
      out.set(p.dates!, at);
      at += p.dates!.length;
    }
  }
  if (p.text !== undefined) {
    at = putVarint(out, at, valueLength(p));
    const text = p.text;
    const from = p.textFrom!;
    if (from > 0) out[at++] = 0x7b;
    for (let i = from; i < text.length; i++) out[at++] = text.charCodeAt(i);
    return at;
  }
  at = putVarint(out, at, p.value.length);
  out.set(p.value, at);
  return at + p.value.length;
}

/**
 * A set read from a format-3 payload: where its parts are in the bytes.
 * Nothing is copied.
 */
export interface RecordView {
  /** Where the key starts. */
  readonly keyStart: number;
  /** Where the key ends. */
  readonly keyEnd: number;
  /** The parts (views of the bytes). */
  readonly parts: RecordParts;
  /** Where the record ends. */
  readonly end: number;
}

/**
 * Reads the set at `r.at`, advancing `r`.
 *
 * @param r The cursor (its bytes end where the payload ends).
 * @returns The set, or why it is malformed.
 */
export function readRecord(r: Reader): RecordView | string {
  const w = new RecordWalk();
  const problem = walkRecord(r, w);
  if (problem !== undefined) return problem;
  const bytes = r.bytes;
  return {
    keyStart: w.keyStart,
    keyEnd: w.keyEnd,
    parts: {
      flags: w.flags,
      c: w.c,
      u: w.u,
      n: w.n,
      s: w.s,
      f: w.f,
      x: w.x,
      tags: w.flags & REC_TAGS
        ? bytes.subarray(w.tagsStart, w.tagsEnd)
        : undefined,
      dates: w.flags & REC_DATES
        ? bytes.subarray(w.datesStart, w.datesEnd)
        : undefined,
      value: bytes.subarray(w.valueStart, w.end),
    },
    end: w.end,
  };
}

/** Where the parts of a record are (filled in by `walkRecord`, reused). */
export class RecordWalk {
  /** Where the key starts. */
  keyStart = 0;
  /** Where the key ends. */
  keyEnd = 0;
  /** The flags. */
  flags = 0;
  /** `c`. */
  c = 0;
  /** `u`. */
  u = 0;
  /** `n`. */
  n = 0;
  /** `s`. */
  s = 0;
  /** `f`. */
  f = 0;
  /** `x`. */
  x = 0;
  /** Where the JSON of `t` starts. */
  tagsStart = 0;
  /** Where it ends. */
  tagsEnd = 0;
  /** Where the JSON of `d` starts. */
  datesStart = 0;
  /** Where it ends. */
  datesEnd = 0;
  /** Where the value starts. */
  valueStart = 0;
  /** Where the record (and its value) ends. */
  end = 0;
}

/**
 * Reads the set at `r.at` into `w` without allocating, advancing `r`.
 *
 * @param r The cursor (its bytes end where the payload ends).
 * @param w Receives where the parts are.
 * @returns Why it is malformed, or `undefined`.
 */
export function walkRecord(r: Reader, w: RecordWalk): string | undefined {
  const keyLength = r.varint();
  const keyStart = keyLength < 0 ? -1 : r.skip(keyLength);
  if (keyStart < 0) return "a key runs past the frame";
  const keyEnd = keyStart + keyLength;
  const flagsAt = r.skip(1);
  if (flagsAt < 0) return "a record's flags run past the frame";
  const bytes = r.bytes;
  const flags = bytes[flagsAt]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    return `the record flags ${flags} are unknown`;
  }
  if (
    ((flags & REC_ENVELOPE) === 0 && flags !== 0) ||
    ((flags & REC_ID) !== 0 && (keyLength === 0 || bytes[keyEnd - 1] !== 0))
  ) {
    return `the record flags ${flags} are invalid`;
  }
  w.keyStart = keyStart;
  w.keyEnd = keyEnd;
  w.flags = flags;
  let c = 0, u = 0, n = 0, s = 0, f = 0, x = 0;
  if (flags & REC_ENVELOPE) {
    c = r.varint();
    const du = r.varint();
    n = r.varint();
    s = r.varint();
    const df = flags & REC_FEED ? r.varint() : 0;
    if (flags & REC_EXPIRY) x = r.varint();
    if (c < 0 || du < 0 || n < 0 || s < 0 || df < 0 || x < 0) {
      return "a record's fields are malformed";
    }
    u = c + unzigzag(du);
    f = s + unzigzag(df);
    if (!isCount(u) || !isCount(f)) return "a record's fields are malformed";
    if (flags & REC_TAGS) {
      const len = r.varint();
      const at = len < 0 ? -1 : r.skip(len);
      if (at < 0) return "a record's tags run past the frame";
      w.tagsStart = at;
      w.tagsEnd = at + len;
    }
    if (flags & REC_DATES) {
      const len = r.varint();
      const at = len < 0 ? -1 : r.skip(len);
      if (at < 0) return "a record's dates run past the frame";
      w.datesStart = at;
      w.datesEnd = at + len;
    }
  }
  w.c = c;
  w.u = u;
  w.n = n;
  w.s = s;
  w.f = f;
  w.x = x;
  const valueLength = r.varint();
  const valueStart = valueLength < 0 ? -1 : r.skip(valueLength);
  if (valueStart < 0) return "a value runs past the frame";
  w.valueStart = valueStart;
  w.end = r.at;
  return undefined;
}

/**
 * The value bytes the parts stand for: the raw value, or the envelope
 * rebuilt byte for byte.
 *
 * @param p The parts.
 * @param key The record's key (needed with `REC_ID`).
 * @returns The value (a view for raw values, else new bytes).
 * @throws {RangeError} With `REC_ID`, a key whose last part is no string.
 */
export function joinValue(p: RecordParts, key: Uint8Array): Uint8Array {
  if ((p.flags & REC_ENVELOPE) === 0) return p.value;
  const v = p.value;
  let vLength = v.length;
  let idStart = -1;
  let id: Uint8Array | undefined;
  let comma = 0;
  if (p.flags & REC_ID) {
    if (v[0] !== 0x7b || key[key.length - 1] !== 0) {
      throw new RangeError("a record's _id does not match its key");
    }
    idStart = plainIdStart(key);
    if (idStart < 0) {
      id = idJson(key);
      if (id === undefined) {
        throw new RangeError("a record's _id does not match its key");
      }
    }
    const idLength = id === undefined ? key.length - idStart + 1 : id.length;
    comma = v.length > 1 && v[1] !== 0x7d ? 1 : 0;
    vLength = v.length + 6 + idLength + comma;
  }
  const head = `,"c":${p.c},"u":${p.u},"n":${p.n},"s":${p.s}` +
    (p.flags & REC_FEED ? `,"f":${p.f}` : "");
  const expiry = p.flags & REC_EXPIRY ? `,"x":${p.x}` : "";
  const tags = p.flags & REC_TAGS ? p.tags! : undefined;
  const dates = p.flags & REC_DATES ? p.dates! : undefined;
  const out = new Uint8Array(
    5 + vLength + head.length + (tags === undefined ? 0 : 5 + tags.length) +
      expiry.length + (dates === undefined ? 0 : 5 + dates.length) + 1,
  );
  out.set(PREFIX, 0);
  let at = 5;
  if (p.flags & REC_ID) {
    out.set(ID_PREFIX, at);
    at += 7;
    if (id !== undefined) {
      out.set(id, at);
      at += id.length;
    } else {
      out[at++] = 0x22;
      out.set(key.subarray(idStart, key.length - 1), at);
      at += key.length - 1 - idStart;
      out[at++] = 0x22;
    }
    if (comma) out[at++] = 0x2c;
    out.set(v.subarray(1), at);
    at += v.length - 1;
  } else {
    out.set(v, at);
    at += v.length;
  }
  at = putAscii(out, at, head);
  if (tags !== undefined) {
    at = putAscii(out, at, ',"t":');
    out.set(tags, at);
    at += tags.length;
  }
  at = putAscii(out, at, expiry);
  if (dates !== undefined) {
    at = putAscii(out, at, ',"d":');
    out.set(dates, at);
    at += dates.length;
  }
  out[at] = 0x7d;
  return out;
}
