/**
 * The commit of item changes: documents, their index and insertion-order
 * entries, tombstones, unique-index claims and the memory estimate, in one
 * atomic storage commit.
 *
 * @module
 */

import { binaryString, compareBytes, encodeUtf8 } from "../bytes.ts";
import { entryId, entryKeyId, type IndexEntry } from "./indexes.ts";
import { encodeKey } from "../key_codec.ts";
import type { StoredRecord } from "../value_codec.ts";
import { RecordSet } from "./write_build.ts";
import { entryCost, keyDirCost, recordCost } from "./size_estimate.ts";
import type { CollectionState, EngineCore, ItemChange } from "./state.ts";
import {
  indexMetaKey,
  isExpired,
  META,
  schemaBump,
  schemaKey,
  tombKey,
} from "./layout.ts";
import { sync } from "./load.ts";
import { commitLocal, keepsEntry } from "./local_commit.ts";
import { FeedCommit, feedReady } from "./feed_hooks.ts";
import { FEED_MARK } from "./feed_format.ts";
import type { StorageCommitResult } from "../storage/contract.ts";

/** How a commit follows another one in flight (see `commitItems`). */
export interface CommitChain {
  /** The storage promise of the commit this one follows, if any. */
  readonly after?: Promise<StorageCommitResult> | undefined;
  /** Gets this commit's storage promise once it is handed over. */
  readonly sent?: (commit: Promise<StorageCommitResult>) => void;
}

/** The stand-in record of a damaged item being deleted (version 0, no feed position). */
const DAMAGED: StoredRecord = {
  value: null,
  tags: undefined,
  expiresAt: undefined,
  createdAt: 0,
  updatedAt: 0,
  version: 0,
  seq: 0,
  feed: 0,
  dates: undefined,
};

/**
 * Writes item changes and their index entries in one commit, enforcing
 * unique indexes and the memory limit; updates `stored` and `bytes`.
 *
 * With `blind` (a bulk write of items taken as new, shared storages), an
 * item whose entry is `null` gets no version check, and the puts'
 * by-position entries go in one block key: one mutation per item.
 *
 * With `chain` (a storage that chains commits, `Storage.chains`):
 * the commit follows `chain.after`, a commit still in flight, which the
 * storage checks the feed counter against; `chain.sent` gets this commit's
 * storage promise as soon as it is handed over (for the next to follow).
 *
 * @returns `false` when a version check failed (nothing was written),
 *   else the storage's `durable` promise, if it gave one.
 */
export async function commitItems(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  changes: readonly ItemChange[],
  values: readonly (Uint8Array | undefined)[],
  action: string,
  committed?: (durable: Promise<void> | undefined) => void,
  costs?: readonly (number | undefined)[],
  blind = false,
  chain?: CommitChain,
): Promise<
  false | { durable: Promise<void> | undefined; versionstamp: string }
> {
  if (s.local) {
    // The fast path: one code path for every storage only we write.
    return await commitLocal(
      s,
      collection,
      state,
      changes,
      values,
      action,
      committed,
      costs,
    );
  }
  // Both read together: `sync` may replace them while this awaits.
  const { indexes, schema } = state;
  const tombNow = s.now();
  if (s.shared) await feedReady(s); // change feed: the counter's value
  const feed = new FeedCommit(s, collection, blind);
  if (indexes.blinder !== undefined) {
    const records: StoredRecord[] = [];
    for (const c of changes) {
      if (c.old !== undefined) records.push(c.old);
      if (c.next !== undefined) records.push(c.next);
    }
    await indexes.prepare(records);
  }
  const checks: { key: Uint8Array; versionstamp: string | null }[] = [];
  const sets: {
    key: Uint8Array;
    value: Uint8Array;
    memo?: unknown;
    expireAt?: number;
    structured?: boolean;
  }[] = [];
  // The storage may keep records in its own form (Deno KV, unwrapped).
  const structured = s.storage.structured === true;
  const deletes: Uint8Array[] = [];
  let delta = 0;
  let stored = 0;
  // Unique entries to claim, and unique entries to release if still ours.
  const claims: { entry: IndexEntry; owner: string }[] = [];
  const releases: { entry: IndexEntry; owner: string }[] = [];
  const claimed = new Map<string, string>();
  const multikey = new Set<string>();
  const native = s.storage.capabilities.nativeExpiry;
  for (let i = 0; i < changes.length; i++) {
    const { id, key, entry, old, next } = changes[i]!;
    // Index entries expire with their item where the storage expires
    // entries itself; a changed expiry rewrites them all.
    const expireAt = native ? next?.expiresAt : undefined;
    const ttlMoved = native && old !== undefined && next !== undefined &&
      old.expiresAt !== next.expiresAt;
    const entrySet = (k: Uint8Array, v: Uint8Array) =>
      expireAt === undefined
        ? { key: k, value: v }
        : { key: k, value: v, expireAt };
    if (!blind || entry !== null) {
      checks.push({ key, versionstamp: entry?.versionstamp ?? null });
    }
    if (entry !== null) {
      // (A damaged item, `old` unknown: its value may not even be bytes.)
      delta -= s.valuesOnDisk || old === undefined
        ? keyDirCost(entry.key.length)
        : recordCost(entry.key, entry.value);
      stored--;
    }
    const value = values[i];
    const wasLive = old !== undefined && !isExpired(old, tombNow);
    if (next !== undefined && (value !== undefined || s.valuesOnDisk)) {
      delta += s.valuesOnDisk
        ? keyDirCost(key.length)
        : recordCost(key, value!);
      stored++;
      // No bytes from buildChanges (a storage keeping values on disk):
      // the storage writes the record from it (RecordSet).
      sets.push(
        value === undefined
          ? new RecordSet(key, next)
          : next.expiresAt === undefined
          ? { key, value, memo: next, structured }
          : { key, value, memo: next, expireAt: next.expiresAt, structured },
      );
      // Back over an expired record: its marker goes. A key with no record
      // at all writes nothing more (a tombstone left by an earlier delete
      // stays; backups and the change feed see the record is newer).
      if (entry !== null && !wasLive && changes[i]!.fresh !== true) {
        deletes.push(tombKey(collection, id));
      }
      feed.put(id, next, old, expireAt);
    } else if (entry !== null) {
      deletes.push(key);
      // A deletion leaves a tombstone (for backups and the change feed), an
      // expiry a tombstone marked as one (for the change feed only). A
      // damaged item (its record unknown) is deleted as version 0.
      sets.push(
        old === undefined
          ? feed.gone(id, DAMAGED, true, tombNow)
          : feed.gone(id, old, wasLive, tombNow),
      );
    }
    if (indexes.size === 0) {
      if (!indexes.ordered) continue; // no entries at all
      // Only the insertion-order entry, unchanged when the item stays.
      const same = old !== undefined && next !== undefined &&
        old.createdAt === next.createdAt && old.seq === next.seq;
      if (!same || ttlMoved) {
        if (old !== undefined && !same) {
          const orderKey = indexes.orderKey(id, old);
          deletes.push(orderKey);
          delta -= entryCost(orderKey);
        }
        if (next !== undefined) {
          const orderKey = indexes.orderKey(id, next);
          sets.push(entrySet(orderKey, key));
          delta += entryCost(orderKey);
        }
      }
      continue;
    }
    const before = old === undefined ? [] : indexes.entries(id, old);
    const after = next === undefined
      ? []
      : s.entriesOf(indexes, id, next, action, multikey);
    if (
      before.length === 1 && after.length === 1 && !ttlMoved &&
      entryKeyId(before[0]!) === entryKeyId(after[0]!)
    ) {
      continue; // One entry, unchanged.
    }
    const beforeIds = new Set(before.map(entryKeyId));
    const afterIds = before.length === 0
      ? beforeIds
      : new Set(after.map(entryKeyId));
    if (ttlMoved) beforeIds.clear(); // set every entry again
    for (const e of before) {
      if (afterIds.has(entryKeyId(e))) continue;
      if (e.unique) {
        releases.push({ entry: e, owner: id });
      } else {
        deletes.push(e.key);
        delta -= entryCost(e.key);
      }
    }
    for (const e of after) {
      if (beforeIds.size > 0 && beforeIds.has(entryKeyId(e))) continue;
      const entryBytes = key; // an index entry's value is the item's key
      if (e.unique) {
        const holder = claimed.get(entryKeyId(e));
        if (holder !== undefined && holder !== id) {
          throw s.duplicate(action, collection, e, holder, id);
        }
        claimed.set(entryKeyId(e), id);
        claims.push({ entry: e, owner: id });
      }
      sets.push(entrySet(e.key, entryBytes));
      delta += entryCost(e.key);
    }
  }
  if (claims.length > 0 || releases.length > 0) {
    const probes = await s.storage.getMany([
      ...claims.map((c) => c.entry.key),
      ...releases.map((r) => r.entry.key),
    ]);
    const rivals: { entry: IndexEntry; holder: string; owner: string }[] = [];
    for (let j = 0; j < claims.length; j++) {
      const probe = probes[j] ?? null;
      const claim = claims[j]!;
      checks.push({
        key: claim.entry.key,
        versionstamp: probe?.versionstamp ?? null,
      });
      if (probe === null) continue;
      const holder = entryId(probe.value);
      if (holder === claim.owner) continue;
      // A holder rewritten by this same commit releases it there (else,
      // keeping it, it is a rival like any other).
      if (
        changes.some((c) => c.id === holder) &&
        !keepsEntry(s, state, changes, holder, claim.entry, action)
      ) continue;
      rivals.push({ entry: claim.entry, holder, owner: claim.owner });
    }
    if (rivals.length > 0) {
      // A holder that has expired or is gone left a stale entry: take it.
      const held = await s.storage.getMany(
        rivals.map((r) => s.docKey(collection, r.holder)),
      );
      const now = s.now();
      for (let j = 0; j < rivals.length; j++) {
        const doc = held[j] ?? null;
        if (doc !== null && !isExpired(s.decode(doc, action), now)) {
          throw s.duplicate(
            action,
            collection,
            rivals[j]!.entry,
            rivals[j]!.holder,
            rivals[j]!.owner,
          );
        }
      }
    }
    for (let j = 0; j < releases.length; j++) {
      const probe = probes[claims.length + j] ?? null;
      const release = releases[j]!;
      if (probe === null || entryId(probe.value) !== release.owner) continue;
      if (claimed.has(entryKeyId(release.entry))) continue; // taken over
      checks.push({
        key: release.entry.key,
        versionstamp: probe.versionstamp,
      });
      deletes.push(release.entry.key);
      delta -= entryCost(probe.key);
    }
  }
  if (indexes.size > 0 || indexes.ordered) {
    // A damaged item's index entries (its record unknown) go too.
    for (const c of changes) {
      if (c.entry === null || c.old !== undefined) continue;
      for (const stale of await entriesOfKey(s, indexes, c.key, sets)) {
        deletes.push(stale);
        delta -= entryCost(stale);
      }
    }
  }
  for (const name of multikey) {
    sets.push({
      key: indexMetaKey(collection, name),
      value: encodeUtf8(
        JSON.stringify({ ...indexes.get(name)!, multikey: true }),
      ),
    });
  }
  const shared = s.shared;
  if (shared) {
    checks.push({
      key: schemaKey(collection),
      versionstamp: schema,
    });
    if (multikey.size > 0) sets.push(schemaBump(collection, s.now()));
  }
  if (shared && s.settings.feed === true) {
    sets.push({
      key: encodeKey([META, collection, "feed"]),
      value: encodeUtf8(JSON.stringify({
        w: s.writer,
        c: changes.map((c) => [c.id, c.next === undefined ? 0 : 1]),
      })),
    });
  }
  const after = chain?.after;
  feed.finish(checks, sets, deletes, after !== undefined);
  s.fits(
    checks.length + (after === undefined ? 0 : 1),
    sets.length + deletes.length,
    action,
  );
  s.fitsMemory(delta, action);
  const sent = s.storage.commit(
    after === undefined
      ? { checks, sets, deletes }
      : { checks, sets, deletes, after: { commit: after, check: FEED_MARK } },
  );
  chain?.sent?.(sent);
  const result = await sent;
  if (!result.ok) {
    feed.failed();
    if (shared) s.refused = checks;
    if (shared) await sync(s, collection);
    return false;
  }
  feed.applied(result.versionstamp, result.durable ?? result.written);
  if (shared && multikey.size > 0) state.schema = result.versionstamp;
  s.account(delta);
  state.stored += stored;
  for (const name of multikey) {
    indexes.add({ ...indexes.get(name)!, multikey: true });
  }
  // Bookkeeping that must change together with `stored` (no await between).
  committed?.(result.durable);
  return { durable: result.durable, versionstamp: result.versionstamp };
}

/**
 * The stored index and insertion-order entries that point at `key`, found
 * by scanning the collection's entries (for a damaged item, whose record
 * cannot say which they are), except those `sets` writes again.
 */
async function entriesOfKey(
  s: EngineCore,
  indexes: CollectionState["indexes"],
  key: Uint8Array,
  sets: readonly { key: Uint8Array }[],
): Promise<Uint8Array[]> {
  const again = new Set(sets.map((x) => binaryString(x.key)));
  const out: Uint8Array[] = [];
  for (const prefix of [indexes.indexesPrefix, indexes.orderPrefix]) {
    for await (const page of s.storage.scan({ prefix })) {
      for (const entry of page) {
        let points: boolean;
        try {
          points = compareBytes(entry.value, key) === 0;
        } catch {
          continue; // an unreadable entry: verify reports it
        }
        if (points && !again.has(binaryString(entry.key))) out.push(entry.key);
      }
    }
  }
  return out;
}
