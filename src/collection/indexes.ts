/**
 * A collection's secondary indexes: the ones declared when it is opened
 * (created before any other call of the collection runs), `createIndex`,
 * `dropIndex` and the list. The `Collection` methods of these names call
 * the functions here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const users = db.collection("users");
 * assert.equal(await users.createIndex("email", { unique: true }), "email_1");
 * assert(await users.dropIndex("email"));
 * ```
 *
 * @module
 */

import { indexName, type IndexSpec } from "../engine/index_keys.ts";
import type { StoredIndex } from "../engine/indexes.ts";
import type { IndexDeclaration, IndexOptions } from "../types.ts";
import { checkOptions, OPTIONS } from "../options.ts";
import { checkFields, checkFlag } from "../validate.ts";
import { type CollectionCore, ready } from "./core.ts";

/**
 * Checks index declarations and makes their definitions.
 *
 * @param indexes The declarations (each checked to be an object).
 * @param action What is being attempted, for error messages.
 * @returns Name, fields, `unique` and `sparse` of each.
 * @throws {TypeError} When a declaration's fields or flags are invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexSpecs } from "./indexes.ts";
 * const [spec] = indexSpecs([{ fields: ["a"], unique: true }], "Cannot open");
 * assert.deepEqual(spec, { name: "a_1", fields: ["a"], unique: true, sparse: false });
 * assert.throws(() => indexSpecs([{ fields: [] }], "Cannot open"), TypeError);
 * ```
 */
export function indexSpecs(
  indexes: readonly IndexDeclaration[],
  action: string,
): IndexSpec[] {
  return indexes.map(({ fields, unique, sparse }) => {
    const list = checkFields(fields, action);
    return {
      name: indexName(list),
      fields: list,
      unique: checkFlag(unique, "unique", action) === true,
      sparse: checkFlag(sparse, "sparse", action) === true,
    };
  });
}

/**
 * Starts creating the indexes declared for a collection; its other calls
 * wait for them (`ready`), and a failure is reported by each call.
 *
 * @param c The collection (its `pending` is set).
 * @param indexes The declarations.
 * @throws {TypeError} When a declaration's fields are invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c", { indexes: [{ fields: ["a", "b"] }] });
 * assert.equal((await c.indexes())[0]?.name, "a_1_b_1");
 * ```
 */
export function declareIndexes(
  c: CollectionCore,
  indexes: readonly IndexDeclaration[],
): void {
  const { engine, name } = c;
  // Declared indexes are created before any other call of this object
  // runs; a failure is reported by each call.
  const action = `Cannot create the indexes declared for '${name}'`;
  const specs = indexSpecs(indexes, action);
  c.pending = (async () => {
    for (const spec of specs) {
      await engine.createIndex(name, spec, action);
    }
  })();
  const pending = c.pending;
  c.pending.then(
    () => {
      if (c.pending === pending) c.pending = undefined;
    },
    () => {},
  );
}

/**
 * `Collection.createIndex`.
 *
 * @param c The collection.
 * @param fields A (dotted) field or a list of them.
 * @param options `unique`, `sparse`.
 * @returns The index's name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.equal(await db.collection("c").createIndex(["city", "age"]), "city_1_age_1");
 * ```
 */
export async function createIndex(
  c: CollectionCore,
  fields: string | readonly string[],
  options: IndexOptions,
): Promise<string> {
  const action = `Cannot create an index on '${c.name}'`;
  checkOptions(options, OPTIONS.createIndex, action);
  const list = checkFields(fields, action);
  if (c.pending !== undefined) await ready(c);
  return await c.engine.createIndex(c.name, {
    name: indexName(list),
    fields: list,
    unique: checkFlag(options.unique, "unique", action) === true,
    sparse: checkFlag(options.sparse, "sparse", action) === true,
  }, action);
}

/**
 * `Collection.dropIndex`.
 *
 * @param c The collection.
 * @param index The index's name, or its fields.
 * @returns Whether it existed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const c = db.collection("c");
 * await c.createIndex("a");
 * assert(await c.dropIndex(["a"]));
 * ```
 */
export async function dropIndex(
  c: CollectionCore,
  index: string | readonly string[],
): Promise<boolean> {
  const action = `Cannot drop an index of '${c.name}'`;
  const name = typeof index === "string" && c.engine.indexes(c.name)
      .some((i) => i.name === index)
    ? index
    : indexName(checkFields(index, action));
  if (c.pending !== undefined) await ready(c);
  return await c.engine.dropIndex(c.name, name, action);
}

/**
 * `Collection.indexes`.
 *
 * @param c The collection.
 * @returns Copies of the index definitions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * assert.deepEqual(await db.collection("c").indexes(), []);
 * ```
 */
export async function listIndexes(c: CollectionCore): Promise<StoredIndex[]> {
  c.engine.assertOpen(`Cannot list the indexes of '${c.name}'`);
  if (c.pending !== undefined) await ready(c);
  // In name order: the same after a reopen and on every storage (the
  // engine keeps them in creation order, a load in key order).
  return c.engine.indexes(c.name).map((i) => ({
    ...i,
    fields: [...i.fields],
  })).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
