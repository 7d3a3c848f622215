/**
 * A collection's point reads: `get` (with its fast path for a record the
 * object tier holds), `getEntry` and `has`. The `Collection` methods of
 * these names call the functions here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("k", { a: 1 }, { tags: ["t"] });
 * assert.deepEqual(await db.get("k"), { a: 1 });
 * assert.deepEqual((await db.getEntry("k"))?.tags, ["t"]);
 * assert(await db.has("k"));
 * ```
 *
 * @module
 */

import { toEntry } from "../query/cursor.ts";
import type { Entry, ReadOptions } from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import {
  checkKey,
  checkReadonly,
  MAX_KEY_BYTES,
  shownKey,
} from "../validate.ts";
import { copyValue, shareValue } from "../value_codec.ts";
import type { CollectionCore } from "./core.ts";

/** Whether a read's results are shared and frozen (`readonly`). */
function shared(
  c: CollectionCore,
  options: ReadOptions,
  action: string,
): boolean {
  checkOptions(options, OPTIONS.get, action);
  return checkReadonly(options.readonly, action) ??
    c.engine.settings.readonly === true;
}

/**
 * `Collection.get`.
 *
 * @param c The collection.
 * @param key The key.
 * @param options `readonly`.
 * @returns A copy of the value (shared and frozen with `readonly`), or
 *   `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("k", { a: 1 });
 * assert(Object.isFrozen(await db.get("k", { readonly: true })));
 * ```
 */
export function get<T>(
  c: CollectionCore,
  key: string,
  options: ReadOptions | undefined,
): Promise<T | null> {
  const engine = c.engine;
  // The common case first, without building an error context: a key
  // surely valid, no options, an open database, a hit (or a sure miss)
  // in RAM. Anything else takes the checked path, with its errors.
  if (
    options === undefined && typeof key === "string" && key.length > 0 &&
    key.length * 3 <= MAX_KEY_BYTES && !engine.closed
  ) {
    const hit = engine.peekSlot(c.name, key, "Cannot get");
    if (hit === null) return Promise.resolve(null);
    if (hit !== undefined) {
      return Promise.resolve(
        (engine.settings.readonly === true
          ? hit.shared()
          : copyValue(hit.doc)) as T,
      );
    }
  }
  return getChecked(c, key, options);
}

async function getChecked<T>(
  c: CollectionCore,
  key: string,
  options?: ReadOptions,
): Promise<T | null> {
  const action = `Cannot get ${shownKey(key)}`;
  checkKey(key, action);
  const isShared = options === undefined
    ? c.engine.settings.readonly === true
    : shared(c, options, action);
  const engine = c.engine;
  const hit = engine.peek(c.name, key, action);
  const record = hit !== undefined
    ? hit
    : await engine.read(c.name, key, action);
  if (record === null) return null;
  return (isShared ? shareValue(record.value) : copyValue(record.value)) as T;
}

/**
 * `Collection.getEntry`.
 *
 * @param c The collection.
 * @param key The key.
 * @param options `readonly`.
 * @returns The entry, or `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("k", 1);
 * assert.equal((await db.getEntry("k"))?.version, 1);
 * ```
 */
export async function getEntry<T>(
  c: CollectionCore,
  key: string,
  options: ReadOptions | undefined,
): Promise<Entry<T> | null> {
  const action = `Cannot get ${shownKey(key)}`;
  checkKey(key, action);
  const isShared = options === undefined
    ? c.engine.settings.readonly === true
    : shared(c, options, action);
  const record = await c.engine.read(c.name, key, action);
  return record === null
    ? null
    : toEntry<T>(key, record, isShared ? shareValue : copyValue);
}

/**
 * `Collection.has`.
 *
 * @param c The collection.
 * @param key The key.
 * @returns Whether it holds a visible item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert(!(await db.has("k")));
 * ```
 */
export async function has(c: CollectionCore, key: string): Promise<boolean> {
  const action = `Cannot check ${shownKey(key)}`;
  checkKey(key, action);
  return (await c.engine.read(c.name, key, action)) !== null;
}
