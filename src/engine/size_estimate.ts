/**
 * What a stored entry costs in memory, estimated from its bytes: the figure
 * `memoryLimit` is enforced on and `stats().bytes` reports.
 *
 * The in-memory storages keep, per key, the key bytes and a binary-string
 * copy of them, a tree cell, a slot, a hash-index entry and a B+tree leaf
 * position; per document also the encoded record (its view and bytes), its
 * versionstamp and the decoded record the engine hands down as the slot's
 * memo. The decoded record is estimated from the encoded JSON in one pass
 * (no parse, no allocation): objects, arrays, strings and non-small numbers
 * cost what V8 (64-bit, no pointer compression) spends on them. Measured on
 * Deno 2 (V8 15), a record estimated this way is within 30% of the heap plus
 * external memory that storing it really takes (tests/memory_limit_test.ts).
 *
 * Every figure is a pure function of the stored key and value, so adding an
 * entry's cost and later subtracting it (or recounting it on open) always
 * agree.
 *
 * @module
 */

/** Tree cell, slot, hash-index entry and B+tree position of one key. */
const ENTRY = 176;
/**
 * An index entry of the object tier that only RAM holds (memory storage):
 * its cell (document reference, key text) and B+tree position; the key's
 * bytes are made only when asked.
 */
const RAM_CELL = 100;
/** A string's header (map, hash, length). */
const STRING = 16;
/** A `Uint8Array` view on a shared slab (`allocBytes`). */
const VIEW = 104;
/** A `Uint8Array` with its own `ArrayBuffer`. */
const OWN_VIEW = 200;
/** Values whose UTF-8 encoding takes more than this get their own buffer. */
const SLAB_LIMIT = 2048;
/** A commit's versionstamp (20 characters), counted once per document. */
const VERSIONSTAMP = 40;
/** A boxed double (a number that is not a small integer). */
const HEAP_NUMBER = 16;
/** An array's object and its elements' header; 8 more per element. */
const ARRAY = 48;
/** The TTL schedule's entry for a document that expires. */
const TTL_ENTRY = 96;
/** Deepest nesting tracked (values nest at most 100 levels in a record). */
const MAX_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const PLUS = 0x2b;
const LOWER_X = 0x78;

const K_QUOTE = 1;
const K_COMMA = 2;
const K_OPEN = 3;
const K_CLOSE = 4;
const K_NUMBER = 5;

/** What each byte starts in JSON text (0: nothing to count). */
const KIND = new Uint8Array(256);
KIND[QUOTE] = K_QUOTE;
KIND[COMMA] = K_COMMA;
KIND[OPEN_OBJECT] = KIND[OPEN_ARRAY] = K_OPEN;
KIND[CLOSE_OBJECT] = KIND[CLOSE_ARRAY] = K_CLOSE;
KIND[MINUS] = K_NUMBER;
for (let b = ZERO; b <= NINE; b++) KIND[b] = K_NUMBER;

/** Bytes inside a number: 1 for digits and signs, 2 where it is a double. */
const NUMBER = new Uint8Array(256);
for (let b = ZERO; b <= NINE; b++) NUMBER[b] = 1;
NUMBER[MINUS] = NUMBER[PLUS] = 1;
NUMBER[DOT] = NUMBER[LOWER_E] = NUMBER[UPPER_E] = 2;

/** Commas seen at each open nesting level of the scan. */
const commas = new Int32Array(MAX_DEPTH + 1);

function round8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * An object with `fields` properties as a copy builds it (properties added
 * one by one to `{}`): four in the object, then a property array grown three
 * at a time, then (past 17) a hash table.
 */
function objectCost(fields: number): number {
  if (fields <= 4) return 56;
  if (fields <= 17) return 72 + 24 * Math.ceil((fields - 4) / 3);
  let capacity = 32;
  while (capacity < fields * 1.5) capacity *= 2;
  return 88 + 24 * capacity;
}

/**
 * The memory a key takes in the key table: its bytes (a view on a slab),
 * their binary-string copy (the tree's key) and the table's structures.
 *
 * @param keyBytes The key's length.
 * @returns Bytes.
 */
function keyCost(keyBytes: number): number {
  return ENTRY + VIEW + keyBytes + STRING + round8(keyBytes);
}

/**
 * The estimated memory of one index or insertion-order entry (its value is
 * the document's key, which it shares with the document).
 *
 * @param key The entry's key.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryCost } from "./size_estimate.ts";
 * assert(entryCost(new Uint8Array(20)) > 300);
 * ```
 */
export function entryCost(key: Uint8Array): number {
  return keyCost(key.length);
}

/**
 * The estimated memory of one index entry of the object tier: where the
 * storage keeps it too (`volatile` false: file storage), {@linkcode entryCost};
 * where only RAM holds it (memory storage), its cell and key text.
 *
 * @param length The entry's key length.
 * @param volatile Whether only RAM holds index entries.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryCost, indexEntryCost } from "./size_estimate.ts";
 * assert.equal(indexEntryCost(12, false), entryCost(new Uint8Array(12)));
 * assert(indexEntryCost(12, true) < indexEntryCost(12, false));
 * ```
 */
export function indexEntryCost(length: number, volatile: boolean): number {
  return volatile ? RAM_CELL + STRING + round8(length) : keyCost(length);
}

/**
 * The estimated memory of one stored document: its key, its encoded record
 * and the decoded record kept with it, and its TTL schedule entry if it
 * expires.
 *
 * @param key The document's key.
 * @param value The encoded record (JSON, see `encodeRecord`).
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordCost } from "./size_estimate.ts";
 * const key = new Uint8Array(24);
 * const small = new TextEncoder().encode('{"v":{"a":1},"c":1,"u":1,"n":1,"s":1}');
 * const large = new TextEncoder().encode(
 *   `{"v":{"a":"${"x".repeat(1000)}"},"c":1,"u":1,"n":1,"s":1}`,
 * );
 * assert(recordCost(key, large) > recordCost(key, small) + 1000);
 * ```
 */
export function recordCost(key: Uint8Array, value: Uint8Array): number {
  const view = value.length * 3 > SLAB_LIMIT ? OWN_VIEW : VIEW;
  return keyCost(key.length) + VERSIONSTAMP + view + value.length +
    decodedCost(value);
}

/**
 * The estimated memory of the value that JSON `bytes` decode to, as a deep
 * copy holds it, plus {@linkcode TTL_ENTRY} when `bytes` are a record
 * envelope with an expiry (`"x"` at the top level).
 *
 * Property names are not counted (they are shared), nor are small integers,
 * booleans and `null` (they live in their slot); every other number is a
 * boxed double, also inside arrays (V8 keeps unboxed double arrays only
 * while no array of the same allocation site ever held anything else).
 *
 * @param bytes UTF-8 JSON.
 * @returns Bytes.
 */
function decodedCost(bytes: Uint8Array): number {
  let cost = 0;
  let depth = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const kind = KIND[bytes[i]!]!;
    if (kind === 0) continue;
    if (kind === K_QUOTE) {
      const start = i + 1;
      let j = start;
      while (j < n) {
        const c = bytes[j]!;
        if (c === QUOTE) break;
        j += c === BACKSLASH ? 2 : 1;
      }
      if (bytes[j + 1] === COLON) {
        // A property name: shared, but the envelope's `x` is an expiry.
        if (depth === 1 && j === start + 1 && bytes[start] === LOWER_X) {
          cost += TTL_ENTRY;
        }
        i = j + 1;
      } else {
        cost += STRING + round8(j - start);
        i = j;
      }
    } else if (kind === K_COMMA) {
      if (depth <= MAX_DEPTH) commas[depth]!++;
    } else if (kind === K_OPEN) {
      depth++;
      if (depth <= MAX_DEPTH) commas[depth] = 0;
    } else if (kind === K_CLOSE) {
      const prev = bytes[i - 1]!;
      const count = KIND[prev] === K_OPEN
        ? 0
        : depth <= MAX_DEPTH
        ? commas[depth]! + 1
        : 1;
      cost += bytes[i] === CLOSE_OBJECT ? objectCost(count) : ARRAY + 8 * count;
      depth--;
    } else {
      // A number: small integers (up to nine digits) live in their slot.
      let j = i + 1;
      let double = false;
      for (; j < n; j++) {
        const c = NUMBER[bytes[j]!]!;
        if (c === 0) break;
        if (c === 2) double = true;
      }
      if (double || j - i > (bytes[i] === MINUS ? 10 : 9)) cost += HEAP_NUMBER;
      i = j - 1;
    }
  }
  return cost;
}

/** The share of V8's old-generation limit that `memoryLimit` may reach. */
const HEAP_SHARE = 0.75;
/**
 * What V8 (15) reserves of its heap size limit for the young generation
 * (three 32 MiB semi-spaces): long-lived data lives in the rest.
 */
const YOUNG_GENERATION = 96 * 1024 * 1024;

/**
 * The most a `memoryLimit` can usefully be: a share of V8's old-generation
 * limit (`--max-old-space-size`), past which the process would die of an
 * out-of-memory error before the estimate reached the limit.
 *
 * @returns Bytes, or `Infinity` where the runtime does not tell its limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heapCap } from "./size_estimate.ts";
 * assert(await heapCap() > 0);
 * ```
 */
export async function heapCap(): Promise<number> {
  try {
    const v8 = await import("node:v8");
    const limit = v8.getHeapStatistics().heap_size_limit;
    if (!(limit > 0)) return Infinity;
    const old = limit - Math.min(YOUNG_GENERATION, limit / 2);
    return Math.floor(old * HEAP_SHARE);
  } catch {
    return Infinity;
  }
}

/** The engine's slot of a document in the object tier (slot, map, tree). */
const TABLE_SLOT = 120;
/** A stored record object (eight fields) around the value. */
const RECORD = objectCost(8);
/** Worst-case JSON bytes of a number. */
const NUMBER_JSON = 24;

/** A `Uint8Array` and its `ArrayBuffer`, without the bytes. */
const TYPED_ARRAY = 160;
/** JSON bytes at most, of what the last {@linkcode valueCost} walked. */
let bound = 0;

/**
 * The estimated memory of a decoded value (as {@linkcode recordCost}
 * estimates it from JSON, but from the object: no bytes needed), and, as a
 * side result in `bound`, an upper bound of its JSON length.
 */
function valueCost(v: unknown, depth: number): number {
  switch (typeof v) {
    case "string":
      bound += 2 + 6 * v.length;
      return STRING + round8(v.length);
    case "number":
      bound += NUMBER_JSON;
      return Number.isInteger(v) && v < 1e9 && v > -1e9 ? 0 : HEAP_NUMBER;
    case "object":
      break;
    default:
      bound += 5;
      return 0;
  }
  if (v === null) {
    bound += 4;
    return 0;
  }
  if (depth > MAX_DEPTH) return 0;
  if (Array.isArray(v)) {
    const n = v.length;
    bound += 2 + n;
    let cost = ARRAY + 8 * n;
    for (let i = 0; i < n; i++) cost += valueCost(v[i], depth + 1);
    return cost;
  }
  if (v instanceof Date) {
    bound += 26;
    return 56;
  }
  if (v instanceof Uint8Array) {
    // Base64 text in JSON; in memory the view, its buffer and the bytes.
    bound += 2 + 4 * Math.ceil(v.length / 3);
    return TYPED_ARRAY + round8(v.length);
  }
  let fields = 0;
  let cost = 0;
  bound += 2;
  const o = v as Record<string, unknown>;
  for (const k in o) {
    fields++;
    bound += 4 + 6 * k.length;
    cost += valueCost(o[k], depth + 1);
  }
  return cost + objectCost(fields);
}

/** A record as {@linkcode recordBytes} and {@linkcode objectRecordCost} see it. */
interface RecordLike {
  readonly value: unknown;
  readonly tags: readonly string[] | undefined;
  readonly expiresAt: number | undefined;
  readonly dates: readonly unknown[] | undefined;
}

/**
 * The estimated memory of one document held as an object (the object tier
 * of the memory storage: no encoded bytes): its key, the record and its
 * value, the engine's slot, and its TTL schedule entry if it expires. A
 * pure function of the key's length and the record, so adding and later
 * subtracting it (or recounting it on open) agree.
 *
 * @param keyBytes The document key's length.
 * @param record The record.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { objectRecordCost } from "./size_estimate.ts";
 * const record = {
 *   value: { a: "x".repeat(1000) }, tags: undefined, expiresAt: undefined,
 *   dates: undefined,
 * };
 * assert(objectRecordCost(24, record) > 1000);
 * ```
 */
export function objectRecordCost(keyBytes: number, record: RecordLike): number {
  bound = 160; // the envelope: five numbers and field names
  let cost = keyCost(keyBytes) + VERSIONSTAMP + TABLE_SLOT + RECORD +
    valueCost(record.value, 0);
  if (record.tags !== undefined) cost += valueCost(record.tags, 0);
  if (record.dates !== undefined) cost += valueCost(record.dates, 0);
  if (record.expiresAt !== undefined) cost += TTL_ENTRY;
  if (record.dates !== undefined) bound = Infinity;
  return cost;
}

/**
 * {@linkcode recordBound} of the record the last
 * {@linkcode objectRecordCost} measured (no second walk).
 *
 * @returns Bytes at most.
 */
export function lastRecordBound(): number {
  return bound;
}

/**
 * The memory of a document whose encoded record a storage keeps (file
 * storage): {@linkcode recordCost} plus the engine's slot.
 *
 * @param key The document's key.
 * @param value The encoded record.
 * @returns Bytes.
 */
export function storedRecordCost(key: Uint8Array, value: Uint8Array): number {
  return recordCost(key, value) + TABLE_SLOT;
}

/** The file storage's key directory entry of one key (value on disk). */
const KEYDIR_ENTRY = 96;

/**
 * The estimated memory of one document on a storage that keeps only keys
 * in RAM (the file storage's key directory: the key's binary string, its
 * entry and tree position); its value stays on disk.
 *
 * @param keyBytes The key's length.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyDirCost, recordCost } from "./size_estimate.ts";
 * const key = new Uint8Array(20);
 * assert(keyDirCost(20) < recordCost(key, new Uint8Array(100)));
 * ```
 */
export function keyDirCost(keyBytes: number): number {
  return KEYDIR_ENTRY + 16 + STRING + round8(keyBytes);
}

/**
 * The estimated memory of one document of a file database: the object
 * tier's decoded record (as {@linkcode objectRecordCost}) and the key
 * directory's entry (its value stays on disk). A pure function of the key's
 * length and the record, so a write and a reopen count it alike.
 *
 * @param keyBytes The document key's length.
 * @param record The record.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileRecordCost, objectRecordCost } from "./size_estimate.ts";
 * const record = {
 *   value: { a: 1 }, tags: undefined, expiresAt: undefined, dates: undefined,
 * };
 * assert(fileRecordCost(20, record) > objectRecordCost(20, record));
 * ```
 */
export function fileRecordCost(keyBytes: number, record: RecordLike): number {
  return objectRecordCost(keyBytes, record) + KEYDIR_ENTRY;
}

/**
 * An upper bound of a record's encoded length, or `Infinity` where it is
 * not cheap to bound (dates): a record under `maxValueBytes` by this bound
 * needs no encoding to be checked.
 *
 * @param record The record.
 * @returns Bytes at most.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordBound } from "./size_estimate.ts";
 * const record = {
 *   value: { a: "x" }, tags: ["t"], expiresAt: undefined, dates: undefined,
 * };
 * assert(recordBound(record) >= '{"v":{"a":"x"},"t":["t"]}'.length);
 * ```
 */
export function recordBound(record: RecordLike): number {
  if (record.dates !== undefined) return Infinity;
  bound = 160; // the envelope: five numbers and field names
  valueCost(record.value, 0);
  if (record.tags !== undefined) valueCost(record.tags, 0);
  return bound;
}
