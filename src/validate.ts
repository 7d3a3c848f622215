/**
 * Argument checks shared by the public classes. Caller mistakes are
 * `TypeError`s and `RangeError`s whose messages say the action and the state.
 *
 * @module
 */

import type { Storage } from "./storage/contract.ts";

/** The longest key accepted, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

const encoder = new TextEncoder();

/**
 * Checks an item key.
 *
 * @param key The key.
 * @param action What is being attempted.
 * @throws {TypeError} When it is not a non-empty string, or has a lone
 *   surrogate.
 * @throws {RangeError} When it is longer than {@linkcode MAX_KEY_BYTES}.
 *
 * @example
 * ```ts
 * import { checkKey } from "./validate.ts";
 * checkKey("user1", "Cannot get");
 * ```
 */
export function checkKey(key: unknown, action: string): asserts key is string {
  if (typeof key !== "string") {
    throw new TypeError(
      `${action}: the key must be a string, got ${describeType(key)}`,
    );
  }
  if (key.length === 0) {
    throw new TypeError(`${action}: the key must not be empty`);
  }
  // Every storage keeps keys as UTF-8 (a one-byte string is always
  // well-formed: V8 answers at once).
  if (!key.isWellFormed()) {
    throw new TypeError(
      `${action}: the key has a lone surrogate (not valid UTF-16, so not storable as UTF-8)`,
    );
  }
  if (key.length * 3 > MAX_KEY_BYTES) {
    const bytes = encoder.encode(key).length;
    if (bytes > MAX_KEY_BYTES) {
      throw new RangeError(
        `${action}: the key is ${bytes} bytes, over the ${MAX_KEY_BYTES}-byte limit`,
      );
    }
  }
}

/** The longest TTL accepted: 100 years of 365.25 days, in milliseconds. */
export const MAX_TTL = 3_155_760_000_000;

/**
 * Checks a TTL in milliseconds.
 *
 * @param ttl The TTL, or `undefined` for none.
 * @param action What is being attempted.
 * @returns The TTL.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not above 0 and at most
 *   {@linkcode MAX_TTL} (NaN, negative, zero, Infinity, `1e300`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTtl } from "./validate.ts";
 * assert(checkTtl(60_000, "Cannot put") === 60_000);
 * ```
 */
export function checkTtl(ttl: unknown, action: string): number | undefined {
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "number") {
    throw new TypeError(
      `${action}: ttl must be a number of milliseconds, got ${
        describeType(ttl)
      }`,
    );
  }
  if (!(ttl > 0 && ttl <= MAX_TTL)) {
    throw new RangeError(
      `${action}: ttl must be milliseconds above 0 and at most ${MAX_TTL} (100 years), got ${ttl} (omit it for no expiry)`,
    );
  }
  return ttl;
}

/**
 * Checks an `expectedVersion` option: versions are whole numbers from 1.
 *
 * @param version The option, or `undefined`.
 * @param action What is being attempted.
 * @returns The version.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not a safe integer of at least 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkVersion } from "./validate.ts";
 * assert.equal(checkVersion(3, "Cannot update"), 3);
 * assert.throws(() => checkVersion(1.5, "Cannot update"), RangeError);
 * ```
 */
export function checkVersion(
  version: unknown,
  action: string,
): number | undefined {
  if (version === undefined) return undefined;
  if (typeof version !== "number") {
    throw new TypeError(
      `${action}: expectedVersion must be a number, got ${
        describeType(version)
      }`,
    );
  }
  if (!(Number.isSafeInteger(version) && version >= 1)) {
    throw new RangeError(
      `${action}: expectedVersion must be a whole number from 1 (versions start at 1), got ${version}`,
    );
  }
  return version;
}

/**
 * Checks tags and returns a frozen, de-duplicated copy.
 *
 * @param tags The tags, or `undefined`.
 * @param action What is being attempted.
 * @returns The copy, or `undefined` when there are none.
 * @throws {TypeError} When they are not an array of non-empty strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTags } from "./validate.ts";
 * assert(checkTags(["a", "a", "b"], "Cannot put")?.length === 2);
 * ```
 */
export function checkTags(
  tags: unknown,
  action: string,
): readonly string[] | undefined {
  if (tags === undefined) return undefined;
  if (!Array.isArray(tags)) {
    throw new TypeError(
      `${action}: tags must be an array of strings, got ${describeType(tags)}`,
    );
  }
  for (const tag of tags) {
    if (typeof tag !== "string" || tag.length === 0) {
      throw new TypeError(
        `${action}: every tag must be a non-empty string, got ${
          describeType(tag)
        }`,
      );
    }
  }
  if (tags.length === 0) return undefined;
  return Object.freeze([...new Set(tags as string[])]);
}

/**
 * Checks a count such as `limit` or `skip`.
 *
 * @param n The number, or `undefined`.
 * @param name The option's name.
 * @param action What is being attempted.
 * @param fallback Returned for `undefined`.
 * @returns The number.
 * @throws {RangeError} When it is not a whole number of at least 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCount } from "./validate.ts";
 * assert(checkCount(5, "limit", "Cannot find", Infinity) === 5);
 * ```
 */
export function checkCount(
  n: unknown,
  name: string,
  action: string,
  fallback: number,
): number {
  if (n === undefined) return fallback;
  if (typeof n !== "number" || !(Number.isInteger(n) && n >= 0)) {
    throw new RangeError(
      `${action}: ${name} must be a whole number of at least 0, got ${
        typeof n === "number" ? n : describeType(n)
      }`,
    );
  }
  return n;
}

/** The longest timer `setInterval` supports, in ms (2^31 - 1). */
export const MAX_INTERVAL = 2_147_483_647;

/**
 * Checks a timer interval option: milliseconds above 0 and at most
 * {@linkcode MAX_INTERVAL}, or `Infinity` to turn the timer off.
 *
 * @param n The value, or `undefined`.
 * @param name The option's name.
 * @param fallback Returned for `undefined`.
 * @returns The interval.
 * @throws {RangeError} When it is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkInterval } from "./validate.ts";
 * assert(checkInterval(undefined, "ttlCheckInterval", 10) === 10);
 * assert(checkInterval(Infinity, "ttlCheckInterval", 10) === Infinity);
 * ```
 */
export function checkInterval(
  n: unknown,
  name: string,
  fallback: number,
): number {
  if (n === undefined) return fallback;
  if (
    typeof n !== "number" || !(n > 0 && (n <= MAX_INTERVAL || n === Infinity))
  ) {
    throw new RangeError(
      `Cannot open the database: ${name} must be milliseconds from 1 to ${MAX_INTERVAL}, or Infinity for no timer, got ${
        typeof n === "number" ? n : describeType(n)
      }`,
    );
  }
  return n;
}

/**
 * Checks a size option: a whole number of bytes above 0.
 *
 * @param n The value, or `undefined`.
 * @param name The option's name.
 * @param fallback Returned for `undefined`.
 * @returns The size.
 * @throws {RangeError} When it is not a whole number above 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSize } from "./validate.ts";
 * assert(checkSize(1024, "maxValueBytes", 10) === 1024);
 * ```
 */
export function checkSize(n: unknown, name: string, fallback: number): number {
  if (n === undefined) return fallback;
  if (typeof n !== "number" || !(Number.isSafeInteger(n) && n > 0)) {
    throw new RangeError(
      `Cannot open the database: ${name} must be a whole number of bytes above 0, got ${
        typeof n === "number" ? n : describeType(n)
      }`,
    );
  }
  return n;
}

/**
 * Whether error messages must leave stored values out: the storage is
 * encrypted (it keeps blind indexes, or says it is encrypted). Such
 * messages name collections, keys, indexes and fields, never values.
 *
 * @param storage The engine's storage.
 * @returns `true` on an encrypted database.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStorage } from "@tether/db/storage";
 * import { hidesValues } from "./validate.ts";
 * assert.equal(hidesValues(new MemoryStorage()), false);
 * ```
 */
export function hidesValues(storage: Storage): boolean {
  return storage.blind !== undefined ||
    (storage as { readonly encrypted?: unknown }).encrypted === true;
}

/**
 * Names the type of a value for error messages.
 *
 * @param v Any value.
 * @returns A short description such as `number 5` or `an array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeType } from "./validate.ts";
 * assert(describeType(null) === "null");
 * ```
 */
export function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") {
    const name = (v as { constructor?: { name?: string } }).constructor?.name;
    return name === undefined || name === "Object" ? "an object" : `a ${name}`;
  }
  if (typeof v === "string") return `string '${v.slice(0, 40)}'`;
  if (typeof v === "number" || typeof v === "boolean") {
    return `${typeof v} ${v}`;
  }
  return typeof v;
}

/**
 * Checks index fields: one dotted path or a non-empty list of distinct ones.
 *
 * @param fields The fields.
 * @param action What is being attempted.
 * @returns The list.
 * @throws {TypeError} When a path is empty, has an empty segment or starts
 *   with `$`, or the list is empty or repeats a path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFields } from "./validate.ts";
 * assert.deepEqual(checkFields("a.b", "Cannot index"), ["a.b"]);
 * ```
 */
export function checkFields(fields: unknown, action: string): string[] {
  const list = typeof fields === "string" ? [fields] : fields;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      `${action}: fields must be a field name or a non-empty array of them, got ${
        describeType(fields)
      }`,
    );
  }
  for (const field of list) {
    if (
      typeof field !== "string" || field === "" ||
      field.split(".").some((seg) => seg === "" || seg.startsWith("$"))
    ) {
      throw new TypeError(
        `${action}: a field path is a dotted name without empty or $ parts, got ${
          typeof field === "string" ? `'${field}'` : describeType(field)
        }`,
      );
    }
  }
  if (new Set(list).size !== list.length) {
    throw new TypeError(`${action}: a field is listed twice`);
  }
  return list as string[];
}

/**
 * Whether `put(a, b)` means `put(key, value)`: `a` is a string (a key), or
 * `a` is a primitive and `b` is not an options object (a value under a key
 * of the wrong type, such as `put(5, { a: 1 })`, whose key check then
 * fails). `put(5)`, `put(5, { ttl })` and `put({ a: 1 }, { ttl })` store a
 * value under a new key.
 *
 * @param first The first argument.
 * @param second The second argument.
 * @param optionNames The names an options object of `put` may have.
 * @returns `true` for `put(key, value)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isKeyedPut } from "./validate.ts";
 * assert(isKeyedPut("k", 1, ["ttl", "tags"]));
 * assert(isKeyedPut(5, { a: 1 }, ["ttl", "tags"]));
 * assert(!isKeyedPut(5, { ttl: 10 }, ["ttl", "tags"]));
 * ```
 */
export function isKeyedPut(
  first: unknown,
  second: unknown,
  optionNames: readonly string[],
): boolean {
  if (typeof first === "string") return true;
  if (typeof first === "object" && first !== null) return false;
  if (first === undefined || second === undefined) return false;
  if (typeof second !== "object" || second === null) return true;
  return Object.keys(second).some((k) => !optionNames.includes(k));
}

/**
 * Refuses an array with holes (`[1, , 3]`, `new Array(3)`): a hole is
 * neither a value nor `undefined`, and would be skipped or stored as
 * nothing.
 *
 * @param list The array.
 * @param name What it is, for the message (`items`, `ttl`).
 * @param action What is being attempted.
 * @throws {TypeError} Naming the first hole's index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDense } from "./validate.ts";
 * checkDense([1, undefined, 3], "items", "Cannot put");
 * assert.throws(() => checkDense(new Array(2), "items", "Cannot put"), TypeError);
 * ```
 */
export function checkDense(
  list: readonly unknown[],
  name: string,
  action: string,
): void {
  for (let i = 0; i < list.length; i++) {
    if (!(i in list)) {
      throw new TypeError(
        `${action}: ${name} has a hole at index ${i} (a sparse array); give a value for every index`,
      );
    }
  }
}

/**
 * Refuses an object value whose `_id` is not its key: updates and replaces
 * keep `_id` equal to the key, so such a value could never be updated.
 *
 * @param value The value.
 * @param key Its key, or `undefined` when one is to be generated.
 * @param action What is being attempted.
 * @throws {TypeError} When it has an `_id` other than `key` (any `_id`
 *   when `key` is `undefined`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkIdField } from "./validate.ts";
 * checkIdField({ _id: "k", a: 1 }, "k", "Cannot put 'k'");
 * assert.throws(() => checkIdField({ _id: "x" }, "k", "Cannot put 'k'"), TypeError);
 * ```
 */
export function checkIdField(
  value: unknown,
  key: string | undefined,
  action: string,
): void {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    !Object.hasOwn(value, "_id")
  ) {
    return;
  }
  const given = (value as { _id?: unknown })._id;
  if (given === undefined) return;
  if (key === undefined) {
    throw new TypeError(
      `${action}: the value has an _id (${
        describeType(given)
      }) but no key was given; use insert() to store a document under its _id, or put(key, value) with key equal to _id`,
    );
  }
  if (given !== key) {
    throw new TypeError(
      `${action}: the value's _id (${
        describeType(given)
      }) differs from the key '${key}'; _id must equal the key`,
    );
  }
}

/**
 * Validates a `readonly` option: a boolean, or absent.
 *
 * @param value The option's value.
 * @param action What is being attempted, for the error message.
 * @returns The flag (`undefined` when absent).
 * @throws {TypeError} When it is neither a boolean nor `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkReadonly } from "./validate.ts";
 * assert.equal(checkReadonly(true, "Cannot get 'a'"), true);
 * assert.throws(() => checkReadonly(1, "Cannot get 'a'"), TypeError);
 * ```
 */
export function checkReadonly(
  value: unknown,
  action: string,
): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(
    `${action}: readonly must be true or false, got ${describeType(value)}`,
  );
}

/**
 * Checks a boolean option: `true`, `false` or absent (a `"yes"` or a `1`
 * is a mistake, not "not set").
 *
 * @param value The option's value.
 * @param name The option's name.
 * @param action What is being attempted.
 * @returns The value.
 * @throws {TypeError} When it is something else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFlag } from "./validate.ts";
 * assert.equal(checkFlag(true, "unique", "Cannot create an index"), true);
 * assert.throws(() => checkFlag("yes", "unique", "Cannot create an index"), TypeError);
 * ```
 */
export function checkFlag(
  value: unknown,
  name: string,
  action: string,
): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(
    `${action}: ${name} must be true or false, got ${describeType(value)}`,
  );
}

/**
 * A key as messages show it: quoted when it is a string; else a word (a
 * key that is not a string is reported by {@linkcode checkKey}, and an
 * object may not even turn into text).
 *
 * @param key The key given.
 * @returns `'k'`, or `an item`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shownKey } from "./validate.ts";
 * assert.equal(`Cannot get ${shownKey("a")}`, "Cannot get 'a'");
 * assert.equal(`Cannot get ${shownKey(Object.create(null))}`, "Cannot get an item");
 * ```
 */
export function shownKey(key: unknown): string {
  return typeof key === "string" ? `'${key}'` : "an item";
}
