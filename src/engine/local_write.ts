/**
 * The fast path of a write on a storage that only this process writes and
 * that keeps objects (memory): validate (done by the caller), build the
 * records, check them against the object tier, hand them to the storage,
 * update the object tier, all synchronously, when no other write is queued.
 * Anything else (a queued write, blind indexes, a value only the storage
 * holds, a lost version check) takes the queued path, with the same checks
 * and errors.
 *
 * @module
 */

import type { StorageEntry } from "../storage/contract.ts";
import type { EngineCore, WriteOp } from "./state.ts";
import { afterCommit, buildChanges } from "./write_build.ts";
import { applyLocal, prepareLocal, storeLocal } from "./local_commit.ts";
import { putNow } from "./local_put.ts";

/**
 * Applies a write at once when the fast path can take it.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param ops The steps; each id at most once.
 * @param action For error messages.
 * @returns Per step, whether a visible item existed before; `undefined`
 *   when the write must go through the queue instead (nothing changed).
 * @throws {TooLargeError} A record is over `maxValueBytes`.
 * @throws {QuotaError} The write would pass `memoryLimit`.
 * @throws {DuplicateKeyError} An id or unique index value is taken.
 */
export function writeNow(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
): boolean[] | undefined {
  if (!s.volatile || s.queued > 0 || s.blinder !== undefined) return undefined;
  const n = ops.length;
  if (n === 1 && ops[0]!.kind === "put") {
    const live = putNow(s, collection, s.state(collection), ops[0]!, action);
    return live === undefined ? undefined : [live];
  }
  const state = s.state(collection);
  const table = state.table!;
  const keys: (Uint8Array | undefined)[] = new Array(n);
  const current: (StorageEntry | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const slot = table.get(ops[i]!.id);
    if (slot !== undefined && slot.record === undefined) return undefined;
    current[i] = slot ?? null;
    // Key bytes are made only if the storage asks for them.
    keys[i] = slot?.knownKey;
  }
  const prefix = s.collectionPrefix(collection);
  const built = buildChanges(s, state, ops, action, keys, current, prefix);
  if (built === undefined) return undefined;
  const p = prepareLocal(
    s,
    collection,
    state,
    built.changes,
    built.values,
    action,
    built.costs,
    current,
    built.now,
  );
  const result = storeLocal(s, p, action);
  if (result instanceof Promise) throw new Error("unreachable: not volatile");
  applyLocal(s, state, p, result);
  afterCommit(s, collection, state, ops, built, result.durable);
  return built.existed;
}

/**
 * {@linkcode writeNow} for one step, without arrays.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param op The step.
 * @param action For error messages.
 * @returns Whether a visible item existed before; `undefined` when the
 *   write must go through the queue instead (nothing changed).
 * @throws As {@linkcode writeNow}.
 */
export function writeOneNow(
  s: EngineCore,
  collection: string,
  op: WriteOp,
  action: string,
): boolean | undefined {
  if (op.kind !== "put") return writeNow(s, collection, [op], action)?.[0];
  if (!s.volatile || s.queued > 0 || s.blinder !== undefined) return undefined;
  return putNow(s, collection, s.state(collection), op, action);
}
