/**
 * A collection's state, shared by the functions of `src/collection/`: its
 * engine, its name and the creation of its declared indexes, which every
 * document call waits for. `Collection` (src/collection.ts) holds one and
 * hands it to the functions of each side: point reads (reads.ts), writes
 * by key (writes.ts), queries (query.ts), documents (documents.ts and
 * mongo_writes.ts), changes (watch.ts) and indexes (indexes.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const users = db.collection("users", { indexes: [{ fields: "email" }] });
 * assert.equal((await users.indexes())[0]?.name, "email_1"); // waited for
 * ```
 *
 * @module
 */

import type { Engine } from "../engine/engine.ts";

/** What the functions of `src/collection/` share of one collection. */
export interface CollectionCore {
  /** The database's engine. */
  readonly engine: Engine;
  /** The collection's name. */
  readonly name: string;
  /** The creation of the declared indexes, until it succeeds. */
  pending: Promise<void> | undefined;
}

/** Collection handles' states (see {@linkcode coreOf}). */
const handles = new WeakMap<object, CollectionCore>();

/**
 * Ties a collection handle to its state (its constructor does).
 *
 * @param handle The handle.
 * @param core Its state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachCore, coreOf, createCore } from "./core.ts";
 * import type { Engine } from "../engine/engine.ts";
 * const handle = {};
 * const core = createCore({} as Engine, "c");
 * attachCore(handle, core);
 * assert.equal(coreOf(handle), core);
 * ```
 */
export function attachCore(handle: object, core: CollectionCore): void {
  handles.set(handle, core);
}

/**
 * A collection handle's state, for code of this package that works below
 * the public API (the gateway's receiver writes through `putPairs`).
 *
 * @param handle A `Collection` (or the database, its default collection).
 * @returns Its state.
 * @throws {TypeError} When `handle` is not a collection handle.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { coreOf } from "./core.ts";
 * await using db = await open();
 * assert.equal(coreOf(db.collection("r")).name, "r");
 * assert.throws(() => coreOf({}), TypeError);
 * ```
 */
export function coreOf(handle: object): CollectionCore {
  const core = handles.get(handle);
  if (core === undefined) throw new TypeError("Not a collection handle");
  return core;
}

/**
 * Creates a collection's state.
 *
 * @param engine The database's engine.
 * @param name The collection's name.
 * @returns The state, with nothing pending.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCore } from "./core.ts";
 * import type { Engine } from "../engine/engine.ts";
 * const c = createCore({} as Engine, "c");
 * assert.equal(c.pending, undefined);
 * ```
 */
export function createCore(engine: Engine, name: string): CollectionCore {
  return { engine, name, pending: undefined };
}

/**
 * What a call waits for before it runs: the creation of the declared
 * indexes, if still under way (it rejects with their error).
 *
 * Callers await it only when it is defined (`if (c.pending !== undefined)`):
 * an `await` of nothing still puts off what follows by a turn, so an insert
 * would reach the write queue after a delete called after it.
 *
 * @param c The collection.
 * @returns The promise to wait for, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCore, ready } from "./core.ts";
 * import type { Engine } from "../engine/engine.ts";
 * assert.equal(ready(createCore({} as Engine, "c")), undefined);
 * ```
 */
export function ready(c: CollectionCore): Promise<void> | undefined {
  return c.pending;
}
