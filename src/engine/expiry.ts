/**
 * Expiry: the sweeper (timers and sweeps started by operations) that
 * removes expired items, earliest first, and `compact()`.
 *
 * @module
 */

import { ConflictError } from "../errors.ts";
import type { Change } from "../types.ts";
import type { CollectionState, EngineCore, ItemChange } from "./state.ts";
import { isExpired } from "./layout.ts";
import type { StorageEntry } from "../storage/contract.ts";
import { LazyChange } from "./write_build.ts";
import { commitItems } from "./commit.ts";
import { settle } from "./load.ts";
import { deleteInGroups } from "./bulk.ts";
import { purgeTombstones } from "./tombstones.ts";
import { yieldToLoop } from "./yield.ts";
import { type ProgressCallback, ProgressReport } from "../progress.ts";

/** Most expired items one sweep commit removes. */
export const SWEEP_BATCH = 1024;

function unref(id: number): void {
  const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
    .Deno;
  deno?.unrefTimer?.(id);
}

export function earliestExpiry(s: EngineCore): number {
  let min = Infinity;
  for (const { schedule } of s.collections.values()) {
    const top = schedule.peek();
    if (top !== undefined && top.expiresAt < min) min = top.expiresAt;
  }
  return min;
}

export function startTimers(s: EngineCore): void {
  if (s.storage.capabilities.readOnly === true) return;
  const { ttlCheckInterval, cleanupInterval } = s.settings;
  if (Number.isFinite(ttlCheckInterval)) {
    const id = setInterval(
      () => background(s, false),
      ttlCheckInterval,
    ) as unknown as number;
    unref(id);
    s.timers.push(id);
  }
  if (Number.isFinite(cleanupInterval)) {
    const id = setInterval(
      () => background(s, true),
      cleanupInterval,
    ) as unknown as number;
    unref(id);
    s.timers.push(id);
  }
}

export function background(s: EngineCore, full: boolean): void {
  if (s.closed || s.sweeping) return;
  s.sweeping = true;
  (full ? compact(s) : sweepAll(s))
    .catch((e) => s.recordError(e))
    .finally(() => s.sweeping = false);
}

/**
 * Removes every expired item of a collection, from inside the write queue
 * (so every stored item then has all its index entries).
 */
export async function dropExpired(
  s: EngineCore,
  collection: string,
  state: CollectionState,
): Promise<void> {
  const due = state.schedule.popExpired(s.now());
  if (due.length === 0) return;
  for (const d of due) state.inflight.set(d.key, d.expiresAt);
  await removeExpired(s, collection, state, due);
}

/**
 * Starts a bounded background sweep when the earliest expiry has passed.
 * Never awaited by the caller; errors land in `stats().lastError`.
 */
export function poke(s: EngineCore): void {
  if (s.sweeping || s.closed) return;
  if (s.storage.capabilities.readOnly === true) return;
  const earliest = earliestExpiry(s);
  // Nothing expires (no clock read), or not yet.
  if (earliest === Infinity || earliest > s.now()) return;
  s.sweeping = true;
  s.poked = sweep(s, SWEEP_BATCH)
    .catch((e) => s.recordError(e))
    .finally(() => {
      s.sweeping = false;
      s.poked = undefined;
    });
}

/**
 * Removes up to `limit` expired items, earliest first.
 *
 * @param limit Most items to remove.
 * @returns How many were removed.
 */
export async function sweep(
  s: EngineCore,
  limit: number = SWEEP_BATCH,
): Promise<number> {
  if (s.closed) return 0;
  const now = s.now();
  s.sweeps++;
  s.lastSweepAt = now;
  let removed = 0;
  for (const [collection, state] of s.collections) {
    if (limit <= 0) break;
    // Popped entries wait in `inflight` (still counted as expired) until
    // their items are gone or a write supersedes them.
    const due = state.schedule.popExpired(now, limit);
    if (due.length === 0) continue;
    limit -= due.length;
    for (const d of due) state.inflight.set(d.key, d.expiresAt);
    removed += await s.enqueue(() => removeExpired(s, collection, state, due));
  }
  return removed;
}

/**
 * The current entries of items due to expire. On a local storage they come
 * from the object tier (a value only the storage holds is read, nearby ones
 * together): a sweep reads what it removes and nothing else (reading the
 * memory storage would first fold its whole write log). On a shared storage
 * they are read from it.
 */
async function expiredEntries(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  live: readonly { key: string }[],
): Promise<{
  keys: (Uint8Array | undefined)[];
  current: (StorageEntry | null)[];
}> {
  if (!s.local || state.table === undefined) {
    const keys = live.map((d) => s.docKey(collection, d.key));
    return { keys, current: await s.storage.getMany(keys) };
  }
  const table = state.table;
  const keys: (Uint8Array | undefined)[] = new Array(live.length);
  const current: (StorageEntry | null)[] = new Array(live.length);
  const misses: number[] = [];
  for (let i = 0; i < live.length; i++) {
    const slot = table.get(live[i]!.key);
    current[i] = slot ?? null;
    keys[i] = s.volatile ? slot?.knownKey : slot?.key;
    if (slot !== undefined && slot.record === undefined) misses.push(i);
  }
  if (misses.length > 0) {
    const read = await s.storage.getMany(misses.map((i) => keys[i]!));
    for (let j = 0; j < misses.length; j++) current[misses[j]!] = read[j]!;
  }
  return { keys, current };
}

export async function removeExpired(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  due: readonly { key: string; expiresAt: number }[],
): Promise<number> {
  const action = `Cannot sweep expired items of '${collection}'`;
  const { inflight } = state;
  const live = due.filter((d) => inflight.get(d.key) === d.expiresAt);
  try {
    const { keys, current } = await expiredEntries(s, collection, state, live);
    const prefix = s.collectionPrefix(collection);
    const now = s.now();
    const changes: ItemChange[] = [];
    let gone = 0;
    for (let i = 0; i < live.length; i++) {
      const entry = current[i] ?? null;
      if (entry === null) {
        gone++; // the storage expired it first (or another process)
        continue;
      }
      const old = s.decode(entry, action);
      if (!isExpired(old, now)) continue; // re-put since it was scheduled
      // The key's bytes only if the storage asks (object tier: lazily).
      changes.push(
        new LazyChange(
          live[i]!.key,
          prefix,
          keys[i],
          entry,
          old,
          undefined,
          false,
        ),
      );
    }
    const told = (): Change[] =>
      changes.map((c) => ({ type: "expire", collection, key: c.id }));
    if (changes.length > 0 && s.bulk) {
      // Each group's items leave `inflight` as the group's commit lowers
      // `stored` (counts subtract both: never the same item twice).
      await deleteInGroups(
        s,
        collection,
        state,
        changes,
        action,
        true,
        (group) => {
          s.expired += group.length;
          for (const c of group) inflight.delete(c.id);
        },
      );
      if (s.listeners.size > 0) s.feed.publish(told());
    } else if (changes.length > 0) {
      const committed = await commitItems(
        s,
        collection,
        state,
        changes,
        changes.map(() => undefined),
        action,
        (durable) => {
          s.expired += changes.length;
          for (const d of live) inflight.delete(d.key);
          if (s.listeners.size > 0) {
            s.feed.publish(told(), durable);
          }
        },
      );
      if (committed === false) {
        throw new ConflictError(`${action}: lost a race`);
      }
      if (committed.durable !== undefined) {
        await settle(s, committed.durable);
      }
    }
    if (gone > 0) {
      state.stored = Math.max(0, state.stored - gone);
      s.expired += gone;
    }
    for (const d of live) inflight.delete(d.key);
    return changes.length + gone;
  } catch (e) {
    // Schedule them again so a later sweep retries; reads hide them.
    for (const d of live) {
      if (inflight.delete(d.key)) state.schedule.set(d.key, d.expiresAt);
    }
    throw e;
  }
}

export async function sweepAll(s: EngineCore): Promise<number> {
  // A sweep started by an operation may hold items this one would skip.
  if (s.poked !== undefined) await s.poked;
  let total = 0;
  for (;;) {
    total += await sweep(s, SWEEP_BATCH);
    if (s.closed || earliestExpiry(s) > s.now()) return total;
    await yieldToLoop();
  }
}

/**
 * Removes every expired item now.
 *
 * @returns How many were removed.
 */
export function cleanup(s: EngineCore): Promise<number> {
  s.assertOpen("Cannot clean up");
  return sweepAll(s);
}

/**
 * Options of `compact`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CompactOptions, open } from "@tether/db";
 * const dir = await Deno.makeTempDir();
 * {
 *   await using db = await open({ path: `${dir}/app.tdb` });
 *   for (let i = 0; i < 100; i++) await db.put("counter", i);
 *   const seen: [number, number][] = [];
 *   const options: CompactOptions = { onProgress: (done, total) => seen.push([done, total]) };
 *   assert(await db.compact(options));
 *   const [done, total] = seen.at(-1)!;
 *   assert.equal(done, total);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface CompactOptions {
  /**
   * Called as the storage rewrites itself, with how much is done of how
   * much in all (the file storage: bytes of live records copied into the
   * new file, after about every 4 MiB of them): the total is known from the
   * first call on, `done` never decreases nor passes it, and the last call
   * has `done === total` (just `(0, 0)` when there was nothing to rewrite,
   * or on a storage that does not rewrite itself). If it throws, the
   * compaction fails with that error as its cause, and nothing changes.
   */
  readonly onProgress?: ProgressCallback | undefined;
}

/**
 * Removes every expired item, then lets the storage drop dead data (the
 * file storage rewrites its log).
 *
 * @param s The engine.
 * @param onProgress Told how far the storage's rewrite is.
 * @returns Whether the storage rewrote anything.
 */
export async function compact(
  s: EngineCore,
  onProgress?: ProgressCallback,
): Promise<boolean> {
  s.assertOpen("Cannot compact");
  await sweepAll(s);
  await purgeTombstones(s);
  const progress = new ProgressReport(onProgress);
  let rewrote = false;
  if (s.storage.compact !== undefined) {
    rewrote = await s.storage.compact(
      onProgress === undefined ? undefined : (done, total) => {
        progress.resize(total);
        progress.report(done);
      },
    );
  }
  progress.finish();
  return rewrote;
}
