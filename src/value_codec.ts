/**
 * Validation, copying and (de)serialisation of stored values.
 *
 * Values are JSON-compatible: plain objects, arrays, strings, finite numbers,
 * booleans and `null`, plus `Date` and `Uint8Array`, which round-trip as
 * such (in JSON as ISO text and base64 text, their paths listed beside the
 * value). Anything else is a `TypeError` that names the path of the
 * offending part.
 *
 * @module
 */

import { base64ToBytes, bytesToBase64, encodeUtf8 } from "./bytes.ts";
import { IntegrityError } from "./errors.ts";
import { shapeCopy } from "./shape_copy.ts";

/** The deepest nesting accepted in a value. */
export const MAX_DEPTH = 100;

/**
 * A value after validation: a private deep copy and where its dates and
 * byte arrays are.
 */
export interface CheckedValue {
  /** A deep copy of the input, safe to keep. */
  readonly value: unknown;
  /**
   * Paths (as segment arrays) of every `Date` and `Uint8Array` inside the
   * value (the values JSON cannot hold as they are), in the order met.
   */
  readonly dates: readonly (readonly (string | number)[])[] | undefined;
}

/** Everything stored for one item: its value and metadata. */
export interface StoredRecord {
  /** The value (never handed out directly; callers get copies). */
  readonly value: unknown;
  /** Tags attached with `put(..., { tags })`. */
  readonly tags: readonly string[] | undefined;
  /** Epoch ms from which the item is invisible, or `undefined`. */
  readonly expiresAt: number | undefined;
  /** Epoch ms of the first write. */
  readonly createdAt: number;
  /** Epoch ms of the last write. */
  readonly updatedAt: number;
  /** 1 on the first write, incremented on every later one. */
  readonly version: number;
  /** Insertion sequence number within the collection (0 when unknown). */
  readonly seq: number;
  /**
   * The change feed position of the write that stored this record (absent
   * or 0 for records written before the feed existed).
   */
  readonly feed?: number | undefined;
  /** Paths of the `Date`s and `Uint8Array`s inside `value`. */
  readonly dates: readonly (readonly (string | number)[])[] | undefined;
}

function describe(path: readonly (string | number)[]): string {
  if (path.length === 0) return "the value";
  let out = "";
  for (const seg of path) {
    out += typeof seg === "number" ? `[${seg}]` : out === "" ? seg : `.${seg}`;
  }
  return `'${out}'`;
}

function typeName(v: unknown): string {
  if (typeof v !== "object" || v === null) return typeof v;
  const ctor = (v as { constructor?: { name?: string } }).constructor;
  return ctor?.name ?? "object";
}

/**
 * Sets an own, enumerable property, even one named `__proto__` (plain
 * assignment would change the prototype instead).
 *
 * @param target The object.
 * @param k The property name.
 * @param v The value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setOwn } from "./value_codec.ts";
 * const o: Record<string, unknown> = {};
 * setOwn(o, "__proto__", 1);
 * assert.equal(Object.keys(o)[0], "__proto__");
 * ```
 */
export function setOwn(
  target: Record<string, unknown>,
  k: string,
  v: unknown,
): void {
  if (k === "__proto__") {
    Object.defineProperty(target, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[k] = v;
  }
}

class Checker {
  path: (string | number)[] = [];
  ancestors: object[] = [];
  dates: (string | number)[][] | undefined;
  action: string;

  constructor(action: string) {
    this.action = action;
  }

  fail(problem: string): never {
    throw new TypeError(
      `${this.action}: ${problem} at ${describe(this.path)}`,
    );
  }

  copy(v: unknown): unknown {
    switch (typeof v) {
      case "string":
      case "boolean":
        return v;
      case "number":
        if (!Number.isFinite(v)) this.fail(`${v} is not JSON-compatible`);
        return v === 0 ? 0 : v; // -0 is stored as 0, on every storage (JSON has no -0)
      case "object":
        break;
      case "bigint":
        return this.fail("a bigint is not JSON-compatible");
      case "undefined":
        return this.fail("undefined is not JSON-compatible");
      default:
        return this.fail(`a ${typeof v} is not JSON-compatible`);
    }
    if (v === null) return null;
    if (v instanceof Date) {
      const t = v.getTime();
      if (Number.isNaN(t)) this.fail("an invalid Date is not storable");
      (this.dates ??= []).push(this.path.slice());
      return new Date(t);
    }
    if (v instanceof Uint8Array) {
      // A copy of just its bytes (a subarray's buffer is not kept; a
      // Buffer or other subclass becomes a plain Uint8Array).
      (this.dates ??= []).push(this.path.slice());
      return new Uint8Array(v);
    }
    if (this.ancestors.includes(v)) this.fail("a circular reference");
    if (this.ancestors.length >= MAX_DEPTH) {
      throw new RangeError(
        `${this.action}: nesting deeper than ${MAX_DEPTH} levels at ${
          describe(this.path)
        }`,
      );
    }
    this.ancestors.push(v);
    let out: unknown;
    if (Array.isArray(v)) {
      const n = v.length;
      const arr = new Array(n);
      for (let i = 0; i < n; i++) {
        this.path.push(i);
        if (!(i in v)) this.fail("an array hole is not JSON-compatible");
        arr[i] = this.copy(v[i]);
        this.path.pop();
      }
      out = arr;
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        this.fail(`a ${typeName(v)} is not a plain object`);
      }
      if (Object.getOwnPropertySymbols(v).length > 0) {
        this.fail("a symbol key is not JSON-compatible");
      }
      const obj: Record<string, unknown> = {};
      const src = v as Record<string, unknown>;
      for (const k in src) {
        if (!Object.hasOwn(src, k)) continue;
        const item = src[k];
        if (item === undefined) continue;
        this.path.push(k);
        setOwn(obj, k, this.copy(item));
        this.path.pop();
      }
      out = obj;
    }
    this.ancestors.pop();
    return out;
  }
}

/**
 * Validates a value and returns a private deep copy of it.
 *
 * Object properties whose value is `undefined` are left out, as
 * `JSON.stringify` does.
 *
 * @param value The caller's value.
 * @param action What is being attempted, for error messages.
 * @returns The copy and the paths of its dates and byte arrays.
 * @throws {TypeError} When a part of the value is not JSON-compatible
 *   (function, symbol, bigint, `NaN`, `Infinity`, `undefined` in an array, a
 *   class instance other than `Date` and `Uint8Array`, a cycle); the
 *   message names the path.
 * @throws {RangeError} When the value nests deeper than {@linkcode MAX_DEPTH}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkValue } from "./value_codec.ts";
 * const { value, dates } = checkValue({ at: new Date(0) }, "Cannot put 'a'");
 * assert((value as { at: Date }).at instanceof Date);
 * assert(dates?.length === 1);
 * ```
 */
export function checkValue(value: unknown, action: string): CheckedValue {
  // Fast path: plain JSON without dates. Anything else (dates, errors) takes
  // the slow path, which tracks paths for dates and error messages.
  const copy = fastCopy(value, 0);
  if (copy !== SLOW) return { value: copy, dates: undefined };
  const checker = new Checker(action);
  const checked = checker.copy(value);
  return { value: checked, dates: checker.dates };
}

/**
 * {@linkcode checkValue} of a document stored under `id`: the copy holds
 * `_id: id` first, then the document's other members (its own `_id`, which
 * the caller checked to be absent or `id`, is left out). One copy, where
 * `{ _id: id, ...rest }` then `checkValue` made three objects.
 *
 * @param doc A plain object (the caller checked its prototype).
 * @param id The document's id.
 * @param action What is being attempted, for error messages.
 * @returns The copy and the paths of its dates and byte arrays.
 * @throws {TypeError} As {@linkcode checkValue}.
 * @throws {RangeError} As {@linkcode checkValue}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDocument } from "./value_codec.ts";
 * const { value } = checkDocument({ a: 1, _id: "k" }, "k", "Cannot insert");
 * assert.deepEqual(Object.keys(value as object), ["_id", "a"]);
 * ```
 */
export function checkDocument(
  doc: object,
  id: string,
  action: string,
): CheckedValue {
  const copy = fastCopyDocument(doc as Record<string, unknown>, id);
  if (copy !== SLOW) return { value: copy, dates: undefined };
  // Dates, errors: the checked path, on the same members.
  const { _id: _, ...rest } = doc as Record<string, unknown>;
  return checkValue({ _id: id, ...rest }, action);
}

function fastCopyDocument(
  src: Record<string, unknown>,
  id: string,
): Record<string, unknown> | typeof SLOW {
  if (Object.getOwnPropertySymbols(src).length > 0) return SLOW;
  const out: Record<string, unknown> = { _id: id };
  for (const k in src) {
    if (k === "_id") continue;
    const item = src[k];
    if (item === undefined) {
      if (Object.hasOwn(src, k)) continue;
      return SLOW;
    }
    const c = fastCopy(item, 1);
    if (c === SLOW) return SLOW;
    if (k === "__proto__") setOwn(out, k, c);
    else out[k] = c;
  }
  return out;
}

const SLOW: unique symbol = Symbol("slow");

function fastCopy(v: unknown, depth: number): unknown {
  if (typeof v !== "object") {
    if (typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number" && v - v === 0) return v === 0 ? 0 : v; // no -0
    return SLOW;
  }
  if (v === null) return null;
  if (depth >= MAX_DEPTH) return SLOW;
  if (Array.isArray(v)) {
    const n = v.length;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const item = v[i];
      if (item === undefined) return SLOW;
      const c = fastCopy(item, depth + 1);
      if (c === SLOW) return SLOW;
      out[i] = c;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return SLOW;
  if (Object.getOwnPropertySymbols(v).length > 0) return SLOW;
  const out: Record<string, unknown> = {};
  const src = v as Record<string, unknown>;
  for (const k in src) {
    const item = src[k];
    if (item === undefined) {
      if (Object.hasOwn(src, k)) continue;
      return SLOW;
    }
    const c = fastCopy(item, depth + 1);
    if (c === SLOW) return SLOW;
    if (k === "__proto__") setOwn(out, k, c);
    else out[k] = c;
  }
  return out;
}

/**
 * Deep-copies a value that is already known to be valid (a stored value).
 *
 * @param v The value.
 * @returns A copy sharing nothing mutable with `v`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyValue } from "./value_codec.ts";
 * const a = { list: [1, 2] };
 * const b = copyValue(a) as typeof a;
 * b.list.push(3);
 * assert(a.list.length === 2);
 * ```
 */
export function copyValue(v: unknown): unknown {
  return copyAt(v, true, false);
}

/**
 * {@linkcode copyValue} for a copy expected to live on (the results of a
 * long `toArray()` past the first few thousand): the same copy, but V8 may
 * allocate it straight in the old generation (see shape_copy.ts).
 *
 * @param v The value.
 * @returns A copy sharing nothing mutable with `v`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyKept } from "./value_codec.ts";
 * const a = { n: 1 };
 * const b = copyKept(a);
 * assert(b !== a);
 * assert.deepEqual(b, a);
 * ```
 */
export function copyKept(v: unknown): unknown {
  return copyAt(v, true, true);
}

function copyAt(v: unknown, top: boolean, kept = false): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    const n = v.length;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const item = v[i];
      out[i] = typeof item === "object" && item !== null
        ? copyAt(item, false)
        : item;
    }
    return out;
  }
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Uint8Array) return v.slice();
  // A flat document of a shape seen before: its compiled copier.
  if (top) {
    const fast = shapeCopy(v as Record<string, unknown>, kept);
    if (fast !== null) return fast;
  }
  // A spread copies the own fields at once (V8 clones the object's shape:
  // about twice as fast as setting them one by one), writable even when
  // the stored value is frozen; then the nested objects are replaced by
  // copies. A stored value has only own, enumerable data fields.
  const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const k in out) {
    const item = out[k];
    if (typeof item !== "object" || item === null) continue;
    const c = copyAt(item, false);
    if (k === "__proto__") setOwn(out, k, c);
    else out[k] = c;
  }
  return out;
}
/**
 * A stored value as a frozen, shared object (`readonly` reads): frozen
 * deeply on first use, then handed out as it is. A value holding a `Date`
 * or a `Uint8Array` is copied instead (a frozen `Date` can still be changed
 * with `setTime`, and a byte array cannot be frozen).
 * Never mutated by the engine: updates store new values.
 *
 * @param v A stored value.
 * @returns The same value, deeply frozen, or a copy when it holds dates or
 *   byte arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shareValue } from "./value_codec.ts";
 * const stored = { list: [1, 2] };
 * const shared = shareValue(stored) as typeof stored;
 * assert(shared === stored && Object.isFrozen(shared.list));
 * ```
 */
export function shareValue(v: unknown): unknown {
  if (typeof v !== "object" || v === null || Object.isFrozen(v)) return v;
  return hasDate(v, 0) ? copyValue(v) : deepFreeze(v);
}

/** Whether `v` holds a `Date` or a `Uint8Array` (neither can be frozen). */
function hasDate(v: object, depth: number): boolean {
  if (v instanceof Date || v instanceof Uint8Array) return true;
  if (depth > MAX_DEPTH) return false;
  if (Array.isArray(v)) {
    for (const item of v) {
      if (
        typeof item === "object" && item !== null && hasDate(item, depth + 1)
      ) {
        return true;
      }
    }
    return false;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const item = o[k];
    if (typeof item === "object" && item !== null && hasDate(item, depth + 1)) {
      return true;
    }
  }
  return false;
}

function deepFreeze(v: object): object {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item === "object" && item !== null) deepFreeze(item);
    }
  } else {
    const o = v as Record<string, unknown>;
    for (const k in o) {
      const item = o[k];
      if (typeof item === "object" && item !== null) deepFreeze(item);
    }
  }
  return Object.freeze(v);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Serialises a record to bytes (UTF-8 JSON; see FORMAT.md).
 *
 * @param record The record.
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRecord, encodeRecord } from "./value_codec.ts";
 * const bytes = encodeRecord({
 *   value: { a: 1 }, tags: undefined, expiresAt: undefined,
 *   createdAt: 1, updatedAt: 1, version: 1, seq: 1, dates: undefined,
 * });
 * assert(decodeRecord(bytes, "read").version === 1);
 * ```
 */
export function encodeRecord(record: StoredRecord): Uint8Array {
  const typed = record.dates === undefined
    ? undefined
    : splitTyped(record.value, record.dates);
  let json = '{"v":' +
    (typed?.bytes === undefined
      ? JSON.stringify(record.value)
      : JSON.stringify(record.value, bytesAsBase64)) +
    ',"c":' + record.createdAt + ',"u":' + record.updatedAt + ',"n":' +
    record.version + ',"s":' + record.seq;
  if (record.feed !== undefined) json += ',"f":' + record.feed;
  if (record.tags !== undefined) json += ',"t":' + JSON.stringify(record.tags);
  if (record.expiresAt !== undefined) json += ',"x":' + record.expiresAt;
  if (typed?.dates !== undefined) json += ',"d":' + JSON.stringify(typed.dates);
  if (typed?.bytes !== undefined) json += ',"b":' + JSON.stringify(typed.bytes);
  return encodeUtf8(json + "}");
}

/** A `JSON.stringify` replacer writing byte arrays as base64 text. */
function bytesAsBase64(_key: string, v: unknown): unknown {
  return v instanceof Uint8Array ? bytesToBase64(v) : v;
}

type Path = readonly (string | number)[];

/**
 * The value at `path` inside `root`.
 *
 * @param root A value.
 * @param path Object keys and array indexes.
 * @returns What is there (`undefined` when the path does not resolve).
 */
function valueAt(root: unknown, path: Path): unknown {
  let at = root;
  for (const seg of path) {
    if (typeof at !== "object" || at === null) return undefined;
    at = (at as Record<string | number, unknown>)[seg];
  }
  return at;
}

/**
 * Splits a record's typed-value paths into those of its dates (`d`) and of
 * its byte arrays (`b`), as the JSON envelope lists them.
 *
 * @param value A record's value.
 * @param paths Its `dates` (every `Date` and `Uint8Array`).
 * @returns The two lists, each `undefined` when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitTyped } from "./value_codec.ts";
 * const value = { at: new Date(0), raw: new Uint8Array([1]) };
 * assert.deepEqual(splitTyped(value, [["at"], ["raw"]]), {
 *   dates: [["at"]], bytes: [["raw"]],
 * });
 * ```
 */
export function splitTyped(
  value: unknown,
  paths: readonly (readonly (string | number)[])[],
): {
  dates: (readonly (string | number)[])[] | undefined;
  bytes: (readonly (string | number)[])[] | undefined;
} {
  let dates: Path[] | undefined;
  let bytes: Path[] | undefined;
  for (const p of paths) {
    if (valueAt(value, p) instanceof Uint8Array) (bytes ??= []).push(p);
    else (dates ??= []).push(p);
  }
  return { dates, bytes };
}
function reviveDate(
  root: unknown,
  path: readonly (string | number)[],
): unknown {
  return revive(root, path, (text) => new Date(text));
}

/** Replaces the string at `path` by `make(string)`; returns the new root. */
function revive(
  root: unknown,
  path: readonly (string | number)[],
  make: (text: string) => unknown,
): unknown {
  if (path.length === 0) return make(root as string);
  let parent = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) {
    parent = parent[path[i]!] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1]!;
  const text = parent[last];
  if (typeof text !== "string") throw new TypeError("not a string");
  parent[last] = make(text);
  return root;
}

function reviveBytes(
  root: unknown,
  path: readonly (string | number)[],
): unknown {
  return revive(root, path, base64ToBytes);
}

/**
 * Turns the base64 strings at `paths` inside `value` (in place) into byte
 * arrays: what the `b` list of a record envelope or an NDJSON line names.
 *
 * @param value A parsed value.
 * @param paths Paths of base64 strings.
 * @returns The value (a new one when a path is empty).
 * @throws {TypeError} When a path does not lead to base64 text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reviveByteArrays } from "./value_codec.ts";
 * const v = reviveByteArrays({ raw: "AQID" }, [["raw"]]) as { raw: Uint8Array };
 * assert.deepEqual(v.raw, new Uint8Array([1, 2, 3]));
 * ```
 */
export function reviveByteArrays(
  value: unknown,
  paths: readonly (readonly (string | number)[])[],
): unknown {
  if (!Array.isArray(paths)) throw new TypeError("the paths are not a list");
  for (const p of paths) {
    if (!Array.isArray(p)) throw new TypeError("a path is not a list");
    try {
      value = reviveBytes(value, p);
    } catch (e) {
      throw new TypeError(
        `${JSON.stringify(p)} does not lead to base64 text`,
        { cause: e },
      );
    }
  }
  return value;
}

/**
 * Parses bytes written by {@linkcode encodeRecord}.
 *
 * @param bytes The stored bytes.
 * @param action What is being attempted, for error messages.
 * @returns The record.
 * @throws {IntegrityError} When the bytes are not a valid record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRecord } from "./value_codec.ts";
 * try {
 *   decodeRecord(new Uint8Array([1, 2, 3]), "Cannot get 'a'");
 * } catch (e) {
 *   assert((e as Error).name === "IntegrityError");
 * }
 * ```
 */
export function decodeRecord(bytes: Uint8Array, action: string): StoredRecord {
  let env: Record<string, unknown>;
  try {
    env = JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw new IntegrityError(`${action}: the stored record is not valid JSON`, {
      cause,
    });
  }
  return recordOf(env, action);
}

/**
 * The record of an already parsed envelope (see {@linkcode decodeRecord}).
 *
 * @param env The parsed JSON object.
 * @param action What is being attempted, for error messages.
 * @returns The record (its dates revived in place).
 * @throws {IntegrityError} When it is not a record envelope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordOf } from "./value_codec.ts";
 * assert.equal(recordOf({ v: 1, c: 1, u: 1, n: 2 }, "read").version, 2);
 * ```
 */
export function recordOf(
  env: Record<string, unknown>,
  action: string,
): StoredRecord {
  if (
    typeof env !== "object" || env === null || !("v" in env) ||
    typeof env.c !== "number" || typeof env.u !== "number" ||
    typeof env.n !== "number"
  ) {
    throw new IntegrityError(`${action}: the stored record has no envelope`);
  }
  let dates = env.d as (string | number)[][] | undefined;
  let value = env.v;
  if (dates !== undefined) {
    try {
      for (const p of dates) value = reviveDate(value, p);
    } catch (cause) {
      throw new IntegrityError(`${action}: the stored dates do not resolve`, {
        cause,
      });
    }
  }
  const bytes = env.b as (string | number)[][] | undefined;
  if (bytes !== undefined) {
    try {
      value = reviveByteArrays(value, bytes);
    } catch (cause) {
      throw new IntegrityError(
        `${action}: the stored byte arrays do not resolve`,
        { cause },
      );
    }
    dates = dates === undefined ? bytes : [...dates, ...bytes];
  }
  return {
    value,
    tags: env.t as string[] | undefined,
    expiresAt: env.x as number | undefined,
    createdAt: env.c,
    updatedAt: env.u,
    version: env.n,
    seq: typeof env.s === "number" ? env.s : 0,
    feed: typeof env.f === "number" ? env.f : 0,
    dates,
  };
}

/** Finds the last `,"<name>":` in `bytes` at or after `from`; -1 if absent. */
function lastField(bytes: Uint8Array, name: number, from: number): number {
  for (let i = bytes.length - 5; i >= from; i--) {
    if (
      bytes[i + 2] === name && bytes[i] === 0x2c && bytes[i + 1] === 0x22 &&
      bytes[i + 3] === 0x22 && bytes[i + 4] === 0x3a
    ) return i + 5;
  }
  return -1;
}

function numberAt(bytes: Uint8Array, at: number): number {
  let end = at;
  while (end < bytes.length && bytes[end] !== 0x2c && bytes[end] !== 0x7d) {
    end++;
  }
  let text = "";
  for (let i = at; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return text.length === 0 ? NaN : Number(text);
}

/**
 * Reads only a record's insertion sequence, feed position and expiry,
 * without parsing the value: what opening a database needs for each item.
 * The envelope's `s`, `f` and `x` come after the value, and `t` and `d`
 * after them hold only strings (whose quotes JSON escapes), so the last
 * `,"s":` is the envelope's.
 *
 * @param bytes Bytes written by {@linkcode encodeRecord}.
 * @returns `{ seq, expiresAt, feed }` (`feed` 0 when the record has no
 *   position), or `undefined` when the bytes do not look like a record (the
 *   caller then decodes them in full, which reports why).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRecord, recordMeta } from "./value_codec.ts";
 * const bytes = encodeRecord({
 *   value: { s: 9 }, tags: ["x"], expiresAt: 50, createdAt: 1,
 *   updatedAt: 1, version: 1, seq: 7, feed: 12, dates: undefined,
 * });
 * assert.deepEqual(recordMeta(bytes), { seq: 7, expiresAt: 50, feed: 12 });
 * ```
 */
export function recordMeta(
  bytes: Uint8Array,
): { seq: number; expiresAt: number | undefined; feed: number } | undefined {
  if (bytes[0] !== 0x7b || bytes[bytes.length - 1] !== 0x7d) return undefined;
  const s = lastField(bytes, 0x73, 1);
  if (s < 0) return undefined;
  const seq = numberAt(bytes, s);
  if (!Number.isFinite(seq)) return undefined;
  const f = lastField(bytes, 0x66, s);
  const feed = f < 0 ? 0 : numberAt(bytes, f);
  if (!Number.isFinite(feed)) return undefined;
  const x = lastField(bytes, 0x78, s);
  if (x < 0) return { seq, expiresAt: undefined, feed };
  const expiresAt = numberAt(bytes, x);
  return Number.isFinite(expiresAt) ? { seq, expiresAt, feed } : undefined;
}
