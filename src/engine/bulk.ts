/**
 * Bulk removals: `clear()`, and deleting items or entries in groups that
 * fit one commit of a storage with limits (Deno KV).
 *
 * @module
 */

import { ConflictError } from "../errors.ts";
import { entryCost, keyDirCost, recordCost } from "./size_estimate.ts";
import type { CollectionState, EngineCore, ItemChange } from "./state.ts";
import { isExpired } from "./layout.ts";
import { decodeKey } from "../key_codec.ts";
import type { StoredRecord } from "../value_codec.ts";
import { commitItems } from "./commit.ts";
import { recordOrDamaged } from "./write_build.ts";
import { FeedCommit } from "./feed_hooks.ts";
import { settle, sync } from "./load.ts";

/**
 * Appends every index or order entry key under `prefix` to `keys`;
 * returns their estimated memory.
 */
export async function keysUnder(
  s: EngineCore,
  prefix: Uint8Array,
  keys: Uint8Array[],
): Promise<number> {
  let bytes = 0;
  for await (const page of s.storage.scan({ prefix })) {
    for (const entry of page) {
      keys.push(entry.key);
      bytes += entryCost(entry.key);
    }
  }
  return bytes;
}

/**
 * Deletes every stored document of a collection in one commit.
 *
 * @param collection Collection name.
 * @param action For error messages.
 * @returns How many visible items were removed.
 */
export function clear(
  s: EngineCore,
  collection: string,
  action: string,
): Promise<number> {
  s.assertOpen(action);
  return s.enqueue(async () => {
    if (s.bulk) return await clearInSteps(s, collection, action);
    const now = s.now();
    const deletes: Uint8Array[] = [];
    const tombs: { key: Uint8Array; value: Uint8Array }[] = [];
    const feed = new FeedCommit(s, collection);
    const ids: string[] = [];
    let visible = 0;
    let bytes = 0;
    const state = s.state(collection);
    const one = (key: Uint8Array, id: string, record: StoredRecord) => {
      deletes.push(key);
      ids.push(id);
      const live = !isExpired(record, now);
      if (live) visible++;
      // A tombstone per deletion, an expiry marker per expired item.
      tombs.push(feed.gone(id, record, live, now));
    };
    if (s.local) {
      for (const slot of state.table!.all()) {
        bytes += slot.cost;
        one(slot.key, slot.id, s.decode(slot, action));
      }
    } else {
      for await (
        const page of s.storage.scan({
          prefix: s.collectionPrefix(collection),
        })
      ) {
        for (const entry of page) {
          bytes += s.valuesOnDisk
            ? keyDirCost(entry.key.length)
            : recordCost(entry.key, entry.value);
          one(entry.key, s.idOf(entry), s.decode(entry, action));
        }
      }
    }
    if (deletes.length === 0) return 0;
    const docs = deletes.length;
    const entryBytes = await keysUnder(s, state.indexes.orderPrefix, deletes) +
      await keysUnder(s, state.indexes.indexesPrefix, deletes);
    bytes += s.local ? state.ram!.cost() : entryBytes;
    const result = await s.storage.commit({ sets: tombs, deletes });
    if (!result.ok) {
      throw new ConflictError(`${action}: the storage refused the commit`);
    }
    feed.applied(result.versionstamp, result.durable ?? result.written);
    if (result.durable !== undefined) await settle(s, result.durable);
    s.account(-bytes);
    state.table?.clear();
    state.ram?.clear();
    if (state.tombs !== undefined) {
      for (const tomb of tombs) {
        state.tombs.add(decodeKey(tomb.key)[2] as string);
      }
    }
    state.stored -= docs;
    s.feed.publish([{ type: "clear", collection }]);
    state.inflight.clear();
    for (const id of ids) state.schedule.delete(id);
    s.ops.deletes += visible;
    return visible;
  });
}

/** Deletes every key under `prefix`, a commit per group (no checks). */
export async function deleteUnder(
  s: EngineCore,
  prefix: Uint8Array,
): Promise<void> {
  const limit = s.storage.limits?.maxMutations ?? 1024;
  for (;;) {
    const keys: Uint8Array[] = [];
    for await (const page of s.storage.scan({ prefix, limit })) {
      for (const e of page) {
        keys.push(e.key);
        s.account(-entryCost(e.key));
      }
    }
    if (keys.length === 0) return;
    await s.inGroups(keys, limit, async (deletes) => {
      const result = await s.storage.commit({ deletes: [...deletes] });
      if (result.ok && result.durable !== undefined) {
        await settle(s, result.durable);
      }
    });
  }
}

/**
 * Deletes items with their index entries, a group per commit; a group that
 * lost a race is read again (items already gone or rewritten alive are
 * left alone when `onlyExpired`). The bookkeeping of a group (its expiry
 * schedule entries, and `committed`) changes together with `stored`, with
 * no await between, so counts never see a group half applied.
 *
 * @param committed Told each group as it is applied (its deletes).
 * @returns How many visible items were deleted.
 */
export async function deleteInGroups(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  changes: readonly ItemChange[],
  action: string,
  onlyExpired: boolean,
  committed?: (group: readonly ItemChange[]) => void,
): Promise<number> {
  let visible = 0;
  await s.inGroups(changes, s.groupSize(state), async (group) => {
    let current = group;
    for (let attempt = 0;; attempt++) {
      const now = s.now();
      // (A damaged item, `old` unknown, counts as one removed.)
      const live = current.filter((c) =>
        c.old === undefined ? c.entry !== null : !isExpired(c.old, now)
      ).length;
      const group = current;
      const result = await commitItems(
        s,
        collection,
        state,
        group,
        group.map(() =>
          undefined
        ),
        action,
        () => {
          for (const c of group) state.schedule.delete(c.id);
          committed?.(group);
        },
      );
      if (result !== false) {
        if (result.durable !== undefined) await settle(s, result.durable);
        visible += live;
        return;
      }
      if (attempt >= s.settings.maxRetries + 8) {
        throw new ConflictError(
          `${action}: other writers kept changing the same items`,
        );
      }
      const fresh = await s.storage.getMany(current.map((c) => c.key));
      const next: ItemChange[] = [];
      for (let i = 0; i < current.length; i++) {
        const entry = fresh[i] ?? null;
        if (entry === null) continue;
        const old = onlyExpired
          ? s.decode(entry, action)
          : recordOrDamaged(s, entry, current[i]!.id, action, "deleted");
        if (onlyExpired && !isExpired(old!, s.now())) continue;
        // `key` is a getter of LazyChange: a spread would drop it.
        const change = current[i]!;
        next.push({ ...change, key: change.key, entry, old });
      }
      if (next.length === 0) return;
      current = next;
    }
  });
  return visible;
}

/** Deletes every document of a collection, a group per commit. */
export async function clearInSteps(
  s: EngineCore,
  collection: string,
  action: string,
): Promise<number> {
  await sync(s, collection);
  const state = s.state(collection);
  let removed = 0;
  for (;;) {
    const changes: ItemChange[] = [];
    for await (
      const page of s.storage.scan({
        prefix: s.collectionPrefix(collection),
        limit: 1024,
      })
    ) {
      for (const entry of page) {
        const id = s.idOf(entry);
        changes.push({
          id,
          key: entry.key,
          entry,
          old: recordOrDamaged(s, entry, id, action, "deleted"),
          next: undefined,
        });
      }
    }
    if (changes.length === 0) break;
    removed += await deleteInGroups(
      s,
      collection,
      state,
      changes,
      action,
      false,
    );
  }
  state.inflight.clear();
  state.recent.clear();
  state.recentBytes = 0;
  s.ops.deletes += removed;
  s.feed.publish([{ type: "clear", collection }]);
  return removed;
}
