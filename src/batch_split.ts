/**
 * `putBatch(items, { atomic: false })`: a batch larger than one atomic
 * write of the storage (Deno KV: 100 version checks, 1,000 mutations,
 * 800 KiB) written as several atomic writes, in order.
 *
 * @module
 */

import type { WriteOp } from "./engine/state.ts";
import type { Storage } from "./storage/contract.ts";
import { TooLargeError } from "./errors.ts";

/** What a split write needs of the engine (engine.ts passes itself). */
export interface SplitWriter {
  /** The storage (its `limits` bound one atomic write). */
  readonly storage: Storage;
  /** Items per group to start with. */
  batchSize(collection: string): number;
  /** One atomic write. */
  write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<boolean[]>;
}

/**
 * Writes `ops` in consecutive groups that each fit one atomic write of the
 * storage: groups of `engine.batchSize(collection)` items at first, halved
 * when the storage finds a group too large (bytes), down to one item. On a
 * storage without such limits (memory, file) it is one atomic write.
 *
 * Not atomic as a whole: when a group fails, the groups before it stay
 * written and the error says how many items were.
 *
 * @param engine The engine.
 * @param collection Collection name.
 * @param ops The puts, each id at most once.
 * @param action For error messages.
 * @returns Per item, whether a visible item existed before.
 * @throws {TooLargeError} When a single item is too large for one write.
 */
export async function writeSplit(
  engine: SplitWriter,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
): Promise<boolean[]> {
  if (engine.storage.limits === undefined) {
    return await engine.write(collection, ops, action);
  }
  let size = engine.batchSize(collection);
  const existed: boolean[] = [];
  for (let i = 0; i < ops.length;) {
    const n = Math.min(size, ops.length - i);
    try {
      existed.push(
        ...await engine.write(collection, ops.slice(i, i + n), action),
      );
      i += n;
    } catch (e) {
      if (e instanceof TooLargeError && n > 1) {
        size = Math.max(1, n >> 1);
        continue;
      }
      if (i === 0 || !(e instanceof Error)) throw e;
      const Class = e.constructor as new (
        message: string,
        options: { cause: unknown },
      ) => Error;
      throw new Class(
        `${e.message} (${i} of ${ops.length} items were stored before: putBatch with atomic: false writes in several atomic steps)`,
        { cause: e },
      );
    }
  }
  return existed;
}
