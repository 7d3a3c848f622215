/**
 * The write path: the write queue, version checks and retries after a lost
 * race on a shared storage, guessing what items are without reading them,
 * and building the new records of puts and deletes.
 *
 * @module
 */

import { ConflictError } from "../errors.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { CollectionState, EngineCore, WriteOp } from "./state.ts";
import { commitItems } from "./commit.ts";
import { settle } from "./load.ts";
import { poke } from "./expiry.ts";
import { afterCommit, buildChanges } from "./write_build.ts";
import { feedReady } from "./feed_hooks.ts";
import { FEED_MARK } from "./feed_format.ts";

/** Most items per collection remembered as written last (shared storage). */
const RECENT_ITEMS = 16_384;
/** Most record bytes per collection remembered so. */
const RECENT_TOTAL = 2 * 1024 * 1024;
/** Largest record remembered so. */
const RECENT_BYTES = 4096;
/**
 * Most retries of a write whose commits lost only the race for the change
 * feed's counter (other writers committed other items meanwhile), before a
 * `ConflictError`. Such races do not count against `maxRetries`.
 */
const FEED_RETRIES = 64;

/**
 * Runs `build` in the write queue (so nothing else writes meanwhile), then
 * applies the steps it returns in one atomic commit. On a shared storage a
 * lost race runs `build` again, up to `maxRetries` times.
 *
 * @param collection Collection name.
 * @param action For error messages.
 * @param build Reads what it needs and returns the steps; each id at most
 *   once.
 * @returns Per step, whether a visible item existed before.
 */
export function transact(
  s: EngineCore,
  collection: string,
  action: string,
  build: () => Promise<readonly WriteOp[]>,
  regroup?: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
): Promise<boolean[]> {
  s.assertOpen(action);
  const result = s.enqueue(() =>
    writeAttempts(s, collection, action, build, regroup)
  );
  poke(s);
  // The queue moves on once the commit is applied; the caller also waits
  // until it is durable (so concurrent writers share one fsync).
  return result.then(async ({ existed, durable }) => {
    if (durable !== undefined) await settle(s, durable, true);
    return existed;
  });
}

/**
 * The body of {@linkcode transact}, for a caller already in the write
 * queue: builds and applies the steps, again after a lost race (up to
 * `maxRetries` times).
 *
 * @returns Per step, whether a visible item existed before, and when the
 *   commit is durable.
 */
export async function writeAttempts(
  s: EngineCore,
  collection: string,
  action: string,
  build: () => Promise<readonly WriteOp[]>,
  regroup?: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
): Promise<{ existed: boolean[]; durable: Promise<void> | undefined }> {
  let feedRaces = 0;
  for (let attempt = 0;;) {
    const ops = await build();
    if (
      regroup !== undefined && s.storage.limits !== undefined &&
      ops.length > s.groupSize(s.state(collection))
    ) {
      return await writeInGroups(s, collection, ops, action, regroup);
    }
    const done = await writeAttempt(s, collection, ops, action);
    if (done !== undefined) return done;
    if (await feedOnlyRace(s)) await feedRaceLost(s, ++feedRaces, action);
    else await lostRace(s, attempt++, action);
  }
}

/**
 * After a shared storage refused a commit: whether only the change feed's
 * counter had moved (another writer committed other items), not anything
 * the write read. Reads the refused commit's checked keys once, and keeps
 * the counter's new value (the next attempt then needs no read of it).
 *
 * @returns `true` for a race on the counter alone.
 */
async function feedOnlyRace(s: EngineCore): Promise<boolean> {
  const checks = s.refused;
  s.refused = undefined;
  if (!s.shared || checks === undefined || s.closed) return false;
  const counter = checks.findIndex((c) => c.key === FEED_MARK);
  if (counter < 0) return false;
  const found = await s.storage.getMany(checks.map((c) => c.key));
  s.feedIndex.counterRead(found[counter] ?? null);
  for (let i = 0; i < checks.length; i++) {
    if (i === counter) continue;
    if ((found[i]?.versionstamp ?? null) !== checks[i]!.versionstamp) {
      return false;
    }
  }
  return (found[counter]?.versionstamp ?? null) !==
    checks[counter]!.versionstamp;
}

/**
 * After a write lost the race for the change feed's counter alone: a
 * `ConflictError` after {@linkcode FEED_RETRIES} such races in a row, else
 * a short random pause that grows with them (up to `retryDelay`). Writers
 * of other items never conflict on what they wrote; only their positions
 * in the feed are taken in commit order.
 */
async function feedRaceLost(
  s: EngineCore,
  races: number,
  action: string,
): Promise<void> {
  if (races > FEED_RETRIES) {
    throw new ConflictError(
      `${action}: ${races} commits in a row lost the race for the change feed's position counter to other writers of this storage (writing other items); nothing was written`,
    );
  }
  const cap = Math.min(s.settings.retryDelay, 2 ** Math.min(races, 10));
  await new Promise((r) => setTimeout(r, Math.random() * cap));
}

/**
 * After a write lost a race: a `ConflictError` once `maxRetries` retries
 * are spent, else a pause of about `retryDelay` (jittered, so that racing
 * writers do not meet again).
 */
export async function lostRace(
  s: EngineCore,
  attempt: number,
  action: string,
): Promise<void> {
  const { maxRetries, retryDelay } = s.settings;
  if (attempt >= maxRetries) {
    throw new ConflictError(
      `${action}: another writer changed the same items ${
        attempt + 1
      } times in a row`,
    );
  }
  await new Promise((r) => setTimeout(r, retryDelay * (0.5 + Math.random())));
}

/**
 * Applies steps too many for one commit of the storage (an `update` or
 * `deleteMany` matching many documents on Deno KV) in groups that fit,
 * each atomic; a group that lost a race is rebuilt from its items'
 * current state by `regroup`.
 */
export async function writeInGroups(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
  regroup: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
): Promise<{ existed: boolean[]; durable: undefined }> {
  const existed: boolean[] = [];
  const size = s.groupSize(s.state(collection));
  try {
    await s.inGroups(ops, size, async (group) => {
      let current = group;
      let feedRaces = 0;
      for (let attempt = 0;;) {
        const done = await writeAttempt(s, collection, current, action);
        if (done !== undefined) {
          if (done.durable !== undefined) await settle(s, done.durable);
          for (const e of done.existed) existed.push(e); // no spread: any size
          return;
        }
        if (await feedOnlyRace(s)) await feedRaceLost(s, ++feedRaces, action);
        else await lostRace(s, attempt++, action);
        current = await regroup(current.map((op) => op.id));
        if (current.length === 0) return;
      }
    });
  } catch (e) {
    if (existed.length === 0 || !(e instanceof Error)) throw e;
    const Class = e.constructor as new (
      message: string,
      options: { cause: unknown },
    ) => Error;
    throw new Class(
      `${e.message} (${existed.length} of ${ops.length} changes were applied before: this storage takes a write this large in several commits)`,
      { cause: e },
    );
  }
  return { existed, durable: undefined };
}

/** Applies one attempt; `undefined` when a version check failed. */
export async function writeAttempt(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
): Promise<
  { existed: boolean[]; durable: Promise<void> | undefined } | undefined
> {
  if (ops.length === 0) return { existed: [], durable: undefined };
  // What a refused commit of this attempt checked (none so far).
  s.refused = undefined;
  const state = s.state(collection);
  if (s.local) {
    // The fast path: the object tier knows every item; nothing to read.
    const table = state.table!;
    const keys: (Uint8Array | undefined)[] = new Array(ops.length);
    const current: (StorageEntry | null)[] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const id = ops[i]!.id;
      const slot = table.get(id);
      current[i] = slot ?? null;
      // Key bytes only where the storage keeps bytes (else made if asked).
      keys[i] = s.volatile
        ? slot?.knownKey
        : slot?.key ?? s.docKey(collection, id);
      // A value only the storage holds: read it (a miss is async).
      if (slot !== undefined && slot.record === undefined) {
        current[i] = await s.storage.get(slot.key);
      }
    }
    return await writeOver(s, collection, ops, action, keys, current);
  }
  const keys = ops.map((op) => s.docKey(collection, op.id));
  if (s.shared) {
    // A read costs a round trip on a shared storage: write over what the
    // items probably are (as this process last wrote them, or absent),
    // with version checks that they are; read only if one was not.
    const guess = guessCurrent(state, ops);
    if (guess !== undefined) {
      const done = await writeOver(
        s,
        collection,
        ops,
        action,
        keys,
        guess.entries,
      );
      if (guess.absentGiven) learn(state, done === undefined ? 1 : 0);
      if (done !== undefined) return done;
      for (const op of ops) {
        const was = state.recent.get(op.id);
        if (was === undefined) continue;
        state.recent.delete(op.id);
        state.recentBytes -= was.value.length;
      }
    }
  }
  const current = await s.storage.getMany(keys);
  if (s.shared) {
    let given = 0;
    let found = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.kind !== "put" || op.fresh === true) continue;
      given++;
      if (current[i] !== null) found++;
    }
    if (given > 0) learn(state, found / given);
  }
  return await writeOver(s, collection, ops, action, keys, current);
}

/**
 * What the items of a write probably are, without reading them: the
 * entries this process wrote last, or absent for new ids and for given
 * keys when puts of given keys have mostly found nothing (`existRate`).
 * `undefined` when some item must be read.
 */
export function guessCurrent(
  state: CollectionState,
  ops: readonly WriteOp[],
): { entries: (StorageEntry | null)[]; absentGiven: boolean } | undefined {
  const entries: (StorageEntry | null)[] = [];
  let absentGiven = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const known = state.recent.get(op.id);
    if (known !== undefined) {
      // An insert over it would fail unverified: read instead.
      if (op.kind === "put" && op.mustBeNew === true) return undefined;
      entries.push(known);
      continue;
    }
    if (op.kind !== "put" || op.expectedVersion !== undefined) {
      return undefined;
    }
    if (op.fresh !== true) {
      if (state.existRate >= 0.25) return undefined;
      absentGiven = true;
    }
    entries.push(null);
  }
  return { entries, absentGiven };
}

/** Updates the moving average of puts of given keys that found an item. */
export function learn(
  state: CollectionState,
  found: number,
): void {
  state.existRate = 0.8 * state.existRate + 0.2 * found;
}

/** Applies one attempt over the items' current entries. */
export async function writeOver(
  s: EngineCore,
  collection: string,
  ops: readonly WriteOp[],
  action: string,
  keys: readonly (Uint8Array | undefined)[],
  current: readonly (StorageEntry | null)[],
): Promise<
  { existed: boolean[]; durable: Promise<void> | undefined } | undefined
> {
  if (s.shared) await feedReady(s); // change feed: the counter's value
  const state = s.state(collection);
  const built = buildChanges(
    s,
    state,
    ops,
    action,
    keys,
    current,
    s.collectionPrefix(collection),
  );
  if (built === undefined) return undefined;
  const { existed, changes, values } = built;
  const committed = await commitItems(
    s,
    collection,
    state,
    changes,
    values,
    action,
    (durable) => afterCommit(s, collection, state, ops, built, durable),
    built.costs,
  );
  if (committed === false) return undefined;
  if (s.shared) {
    const { recent } = state;
    for (let i = 0; i < ops.length; i++) {
      const next = changes[i]!.next;
      const value = values[i];
      const id = ops[i]!.id;
      const was = recent.get(id);
      if (was !== undefined) {
        recent.delete(id);
        state.recentBytes -= was.value.length;
      }
      if (next === undefined || value === undefined) continue;
      if (value.length > RECENT_BYTES) continue;
      recent.set(id, {
        key: changes[i]!.key,
        value,
        versionstamp: committed.versionstamp,
        memo: next,
      });
      state.recentBytes += value.length;
      while (
        recent.size > RECENT_ITEMS || state.recentBytes > RECENT_TOTAL
      ) {
        const [oldest, entry] = recent.entries().next().value!;
        recent.delete(oldest);
        state.recentBytes -= entry.value.length;
      }
    }
  }
  return { existed, durable: committed.durable };
}
