/**
 * Counts and `stats()`.
 *
 * @module
 */

import type { DatabaseStats } from "../types.ts";
import type { CollectionState, EngineCore } from "./state.ts";
import { poke } from "./expiry.ts";

export function visibleCount(
  state: CollectionState,
  now: number,
): number {
  return Math.max(
    0,
    state.stored - state.schedule.countExpired(now) - state.inflight.size,
  );
}

/** Counts a query. */
export function countQuery(s: EngineCore): void {
  s.ops.queries++;
  poke(s);
}

/**
 * Number of visible items in a collection (every collection when omitted).
 *
 * @param collection Collection name.
 * @returns The count.
 */
export function count(s: EngineCore, collection?: string): number {
  const now = s.now();
  if (collection !== undefined) {
    const state = s.collections.get(collection);
    return state === undefined ? 0 : visibleCount(state, now);
  }
  let total = 0;
  for (const state of s.collections.values()) {
    total += visibleCount(state, now);
  }
  return total;
}

/**
 * Counters and sizes.
 *
 * @returns A snapshot.
 */
export function stats(s: EngineCore): DatabaseStats {
  const now = s.now();
  let ttlItems = 0;
  for (const { schedule } of s.collections.values()) {
    ttlItems += schedule.size - schedule.countExpired(now);
  }
  return {
    storage: s.storage.constructor.name,
    items: count(s),
    ttlItems,
    bytes: s.bytes,
    memoryLimit: Number.isFinite(s.memoryLimit) ? s.memoryLimit : undefined,
    ops: { ...s.ops },
    sweeps: s.sweeps,
    expired: s.expired,
    lastSweepAt: s.lastSweepAt,
    sweepErrors: s.sweepErrors,
    lastError: s.lastError,
    storageStats: s.storage.stats?.(),
  };
}
