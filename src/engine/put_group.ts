/**
 * Group commit of single writes: puts and deletes of one item each that
 * wait in the write queue together (a gateway's concurrent requests, a
 * `Promise.all` of puts) go to the storage as one commit instead of one
 * commit each, on a storage that only this process writes and that does
 * not take them at once (a file; the memory storage when its queue is
 * busy). Each caller still gets its own result and its own error:
 *
 * - a write joins the group waiting at the tail of the queue only (so no
 *   task queued after the group runs before it), of the same collection,
 *   with another id, up to {@linkcode MAX_GROUP} writes;
 * - in a collection with a unique index, a group in which a write takes a
 *   value that a later write's item holds (and gives up) runs one by one:
 *   alone, the earlier write finds it taken, in one commit it would not;
 * - the group is tried as one write; if one of the checks that refuse a
 *   write before anything changes fails (a duplicate id of an insert, a
 *   version conflict, a value too large, the memory limit), every write of
 *   it runs alone, in order, and gets its own outcome, as if it had never
 *   been grouped; any other failure (the storage's, a close) is every
 *   write's, as for one write;
 * - once applied, each caller waits until the commit is durable (one
 *   fsync for all of them), as a single write does.
 *
 * @module
 */

import type {
  EngineCore,
  GroupOutcome,
  QueuedGroup,
  WriteOp,
} from "./state.ts";
import { writeAttempt, writeAttempts } from "./write.ts";
import { entryKeyId } from "./indexes.ts";
import type { StoredRecord } from "../value_codec.ts";
import { settle } from "./load.ts";
import { poke } from "./expiry.ts";
import {
  ConflictError,
  DuplicateKeyError,
  QuotaError,
  TooLargeError,
} from "../errors.ts";

/** Most writes in one group (one commit). */
export const MAX_GROUP = 1_000;

/** Writes waiting in the queue as one task. */
export class WriteGroup implements QueuedGroup {
  /** Their collection. */
  readonly collection: string;
  /** The writes, in the order they came. */
  readonly ops: WriteOp[] = [];
  /** Each write's action (for its own error messages). */
  readonly actions: string[] = [];
  /** Their ids. */
  readonly ids: Set<string> = new Set();
  /** Each write's outcome: whether a visible item existed, or the error. */
  readonly settled: PromiseWithResolvers<GroupOutcome>[] = [];
  /** The task has started: no write joins any more. */
  started = false;

  /** @param collection Their collection. */
  constructor(collection: string) {
    this.collection = collection;
  }

  /** Whether a write of `op` to `collection` may join. */
  takes(collection: string, op: WriteOp): boolean {
    return !this.started && collection === this.collection &&
      this.ops.length < MAX_GROUP && !this.ids.has(op.id);
  }

  /** Adds a write; its outcome is promised. */
  add(op: WriteOp, action: string): Promise<GroupOutcome> {
    this.ops.push(op);
    this.actions.push(action);
    this.ids.add(op.id);
    const settled = Promise.withResolvers<GroupOutcome>();
    this.settled.push(settled);
    return settled.promise;
  }
}

/**
 * Writes one item through the queue, in the group waiting at its tail when
 * there is one that takes it.
 *
 * @param s The engine.
 * @param collection Collection name.
 * @param op The write.
 * @param action For error messages.
 * @returns Whether a visible item existed before (as `Engine.write`'s),
 *   once the write is durable.
 */
export function groupWrite(
  s: EngineCore,
  collection: string,
  op: WriteOp,
  action: string,
): Promise<boolean[]> {
  s.assertOpen(action);
  const open = s.openGroup;
  let outcome: Promise<GroupOutcome>;
  if (open !== undefined && open.takes(collection, op)) {
    outcome = open.add(op, action);
  } else {
    const group = new WriteGroup(collection);
    outcome = group.add(op, action);
    void s.enqueue(() => runGroup(s, group));
    // After `enqueue`, which closes any other group to joins.
    s.openGroup = group;
    poke(s);
  }
  return outcome.then(async ({ existed, durable }) => {
    if (durable !== undefined) await settle(s, durable, true);
    return [existed];
  });
}

/** Runs a group in the queue: as one write, or each alone if that fails. */
async function runGroup(s: EngineCore, group: WriteGroup): Promise<void> {
  group.started = true;
  if (s.openGroup === group) s.openGroup = undefined;
  const { ops, settled } = group;
  if (ops.length > 1 && await asOneAlike(s, group)) {
    let done;
    try {
      done = await writeAttempt(s, group.collection, ops, group.actions[0]!);
    } catch (e) {
      if (!refusedBefore(e)) {
        // Not a check that refuses one write before anything changes (the
        // storage failed, the database closed): the group shares it, as
        // one write would; never tried again (it might have been applied).
        for (const x of settled) x.reject(e);
        return;
      }
      done = undefined; // each alone, for its own error
    }
    if (done !== undefined) {
      for (let i = 0; i < ops.length; i++) {
        settled[i]!.resolve({
          existed: done.existed[i]!,
          durable: done.durable,
        });
      }
      return;
    }
  }
  // Each alone, in order: the retry loop of `transact`, already queued.
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    try {
      const { existed, durable } = await writeAttempts(
        s,
        group.collection,
        group.actions[i]!,
        () => Promise.resolve([op]),
      );
      settled[i]!.resolve({ existed: existed[0]!, durable });
    } catch (e) {
      settled[i]!.reject(e);
    }
  }
}

/**
 * Whether the group's writes, checked together as one commit, get the
 * outcomes they would get one by one. Without a unique index they do
 * (distinct ids). With one, a commit checks each write against the values
 * as the whole commit leaves them: an earlier write would then take a
 * value that a later one gives up (a put of new values, a delete), which
 * one by one it finds taken. So: no write may claim a unique value that a
 * later write's item holds now. Reads the items (in the queue: nothing
 * changes them meanwhile); anything unsure runs them one by one.
 */
async function asOneAlike(s: EngineCore, group: WriteGroup): Promise<boolean> {
  const state = s.collections.get(group.collection);
  if (state === undefined || !state.indexes.hasUnique) return true;
  const { ops } = group;
  const action = group.actions[0]!;
  try {
    const found = await s.storage.getMany(
      ops.map((op) => s.docKey(group.collection, op.id)),
    );
    const olds = found.map((e) => e === null ? undefined : s.decode(e, action));
    const news = ops.map((op) =>
      op.kind === "put"
        ? { value: op.value.value, dates: op.value.dates } as StoredRecord
        : undefined
    );
    const specs = state.indexes.list.filter((spec) => spec.unique);
    const records = [...olds, ...news].filter((r) => r !== undefined);
    await state.indexes.prepare(records, specs);
    const values = (id: string, record: StoredRecord | undefined) =>
      record === undefined
        ? []
        : specs.flatMap((spec) =>
          state.indexes.indexEntries(spec, id, record).map(entryKeyId)
        );
    // Each unique value held now, by the last write's item that holds it.
    const heldBy = new Map<string, number>();
    for (let j = 0; j < ops.length; j++) {
      for (const v of values(ops[j]!.id, olds[j])) heldBy.set(v, j);
    }
    for (let i = 0; i < ops.length; i++) {
      for (const v of values(ops[i]!.id, news[i])) {
        if ((heldBy.get(v) ?? -1) > i) return false;
      }
    }
    return true;
  } catch {
    return false; // unindexable, unreadable: each alone gets its own error
  }
}

/**
 * Whether an error is one of the engine's checks of a single write, made
 * before anything changes: a taken id or unique value, a value too large,
 * the memory limit, a version conflict, a caller's mistake.
 */
function refusedBefore(e: unknown): boolean {
  return e instanceof DuplicateKeyError || e instanceof TooLargeError ||
    e instanceof QuotaError || e instanceof ConflictError ||
    e instanceof TypeError || e instanceof RangeError;
}
