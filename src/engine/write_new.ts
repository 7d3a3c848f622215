/**
 * Writing items taken as new (`putBatch(items, { atomic: false, assumeNew:
 * true })`) on a shared storage with limits (Deno KV): in the largest
 * commits the storage allows, one mutation and no version check per item.
 *
 * @module
 */

import { TooLargeError } from "../errors.ts";
import type { EngineCore, WriteOp } from "./state.ts";
import { commitItems } from "./commit.ts";
import type { StorageCommitResult } from "../storage/contract.ts";
import { feedReady } from "./feed_hooks.ts";
import { settle } from "./load.ts";
import { afterCommit, buildChanges } from "./write_build.ts";
import { lostRace } from "./write.ts";
import { poke } from "./expiry.ts";

/** Mutations of a commit kept for other than the items (counter, block...). */
const COMMIT_OVERHEAD = 24;

/**
 * Whether {@linkcode writeNew} writes a collection blind: a shared storage
 * with limits (Deno KV) and no index or insertion-order entries (those of
 * an item that did exist must be removed, so its record must be read).
 */
function writesBlind(s: EngineCore, collection: string): boolean {
  if (!s.shared || s.local || s.storage.limits === undefined) return false;
  const { indexes } = s.state(collection);
  return indexes.size === 0 && !indexes.ordered && !indexes.orderBuilding;
}

/**
 * Writes puts of items taken as new (`putBatch(items, { atomic: false,
 * assumeNew: true })`) on a shared storage with limits: no read and no
 * version check per item, the feed's by-position entries as one block per
 * commit, so one mutation per item and commits of up to the storage's
 * mutation limit (Deno KV: about 975 items, each commit atomic, halved when
 * the storage finds one too large in bytes). A put over an item that exists
 * replaces it as a new one (version 1, a new `createdAt`) and leaves its
 * earlier by-position entry (the feed skips it as superseded). A commit that
 * lost a race (the feed counter or the collection's schema moved) is built
 * again. Not atomic as a whole: when a commit fails, the ones before it
 * stay, and the error says how many items were written.
 *
 * Where the collection is not (or no longer, after another process made an
 * index) written blind, the rest goes to `fallback`, the checked write.
 *
 * @param collection Collection name.
 * @param ops Puts, each id at most once.
 * @param action For error messages.
 * @param fallback Writes the rest with reads and version checks.
 * @returns How many items were written blind.
 */
export async function writeNew(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
  fallback: (rest: readonly WriteOp[]) => Promise<unknown>,
): Promise<number> {
  s.assertOpen(action);
  const limits = s.storage.limits!;
  let size = Math.max(1, limits.maxMutations - COMMIT_OVERHEAD);
  let done = 0;
  let blind = 0;
  try {
    if (
      s.storage.chains === true && ops.length > size &&
      s.memoryLimit === Infinity
    ) {
      // Each commit built while the storage writes the one before; what
      // that leaves (a lost race, a commit too large, ...) goes on below.
      const chained = await s.enqueue(() =>
        writeNewChained(s, collection, ops, size, action)
      );
      done = blind = chained.written;
      // A commit too large is split below; any other error ends the write
      // (as it does there).
      const e = chained.error;
      if (e !== undefined && !(e instanceof TooLargeError)) throw e;
    }
    while (done < ops.length) {
      const part = ops.slice(done, done + size);
      try {
        const written = await s.enqueue(() =>
          writeNewPart(s, collection, part, action)
        );
        if (!written) {
          await fallback(ops.slice(done));
          done = ops.length;
          break;
        }
        blind += part.length;
      } catch (e) {
        if (!(e instanceof TooLargeError) || part.length === 1) throw e;
        size = Math.max(1, part.length >> 1);
        continue;
      }
      done += part.length;
    }
  } catch (e) {
    if (done === 0 || !(e instanceof Error)) throw e;
    const Class = e.constructor as new (
      message: string,
      options: { cause: unknown },
    ) => Error;
    throw new Class(
      `${e.message} (${done} of ${ops.length} items were stored before: putBatch with assumeNew writes in several atomic steps)`,
      { cause: e },
    );
  } finally {
    poke(s);
  }
  return blind;
}

/**
 * {@linkcode writeNew}'s commits on a storage that chains them
 * (`Storage.chains`): each part is built and handed over while the one
 * before is being written, the storage sending it after that one with a
 * check that the feed counter is still where that one left it. Stops at
 * the first part that is not written (a lost race, an error: the parts
 * after it, chained to it, are not sent either).
 *
 * @returns How many items, from the first, were written, and the error
 *   of the first part not written, if it threw.
 */
async function writeNewChained(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  size: number,
  action: string,
): Promise<{ written: number; error?: unknown }> {
  if (!writesBlind(s, collection)) return { written: 0 };
  const state = s.state(collection);
  const prefix = s.collectionPrefix(collection);
  await feedReady(s);
  type Step = { n: number; result: Promise<boolean> };
  let error: unknown;
  const failed = (e: unknown): false => {
    error ??= e;
    return false;
  };
  let before: Step | undefined;
  let after: Promise<StorageCommitResult> | undefined;
  let written = 0;
  // Insertion sequences go on from the part built last, not from the last
  // one applied.
  let seq = state.seq;
  for (let at = 0; at < ops.length; at += size) {
    const part = ops.slice(at, at + size);
    const keys = part.map((op) => s.docKey(collection, op.id));
    if (seq > state.seq) state.seq = seq;
    let built: ReturnType<typeof buildChanges>;
    try {
      built = buildChanges(
        s,
        state,
        part,
        action,
        keys,
        part.map(() => null),
        prefix,
      );
    } catch (e) {
      // (A record over maxValueBytes, ...) The parts in flight end first.
      failed(e);
      break;
    }
    if (built === undefined) break; // (the checked path says why)
    seq = built.seq;
    // (Wrapped: a promise resolved with a promise would wait for it.)
    let handed!: (sent: { p: Promise<StorageCommitResult> }) => void;
    const sent = new Promise<{ p: Promise<StorageCommitResult> }>(
      (resolve) => {
        handed = resolve;
      },
    );
    const result = commitItems(
      s,
      collection,
      state,
      built.changes,
      built.values,
      action,
      (durable) => afterCommit(s, collection, state, part, built, durable),
      built.costs,
      true,
      { after, sent: (p) => handed({ p }) },
    ).then(async (committed) => {
      if (committed === false) return false;
      forgetRecent(state, part);
      if (committed.durable !== undefined) {
        await settle(s, committed.durable);
      }
      return true;
    });
    // Handed over, or failed before: then nothing after it is sent.
    const next = await Promise.race([
      sent,
      result.then(() => undefined, () => undefined),
    ]);
    const step = { n: part.length, result: result.catch(failed) };
    if (before !== undefined) {
      if (!(await before.result)) {
        await step.result;
        return { written, error };
      }
      written += before.n;
    }
    before = step;
    if (next === undefined) break;
    after = next.p;
  }
  if (before !== undefined && await before.result) written += before.n;
  return { written, error };
}

/** What this process remembers of items written anew is superseded. */
function forgetRecent(
  state: { recent: Map<string, { value: Uint8Array }>; recentBytes: number },
  ops: readonly WriteOp[],
): void {
  const { recent } = state;
  if (recent.size === 0) return;
  for (const op of ops) {
    const was = recent.get(op.id);
    if (was === undefined) continue;
    recent.delete(op.id);
    state.recentBytes -= was.value.length;
  }
}

/**
 * One atomic commit of {@linkcode writeNew}, retried after a lost race;
 * `false` (nothing written) when the collection is not written blind.
 */
async function writeNewPart(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
): Promise<boolean> {
  const prefix = s.collectionPrefix(collection);
  const keys = ops.map((op) => s.docKey(collection, op.id));
  const absent = ops.map(() => null);
  for (let attempt = 0;; attempt++) {
    // Checked again after a lost race: `sync` may have found indexes.
    if (!writesBlind(s, collection)) return false;
    const state = s.state(collection);
    await feedReady(s);
    const built = buildChanges(s, state, ops, action, keys, absent, prefix);
    if (built === undefined) {
      throw new TypeError(`${action}: assumeNew takes puts without versions`);
    }
    const committed = await commitItems(
      s,
      collection,
      state,
      built.changes,
      built.values,
      action,
      (durable) => afterCommit(s, collection, state, ops, built, durable),
      built.costs,
      true,
    );
    if (committed !== false) {
      forgetRecent(state, ops);
      if (committed.durable !== undefined) {
        await settle(s, committed.durable);
      }
      return true;
    }
    await lostRace(s, attempt, action);
  }
}
