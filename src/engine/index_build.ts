/**
 * Index builds: creating and dropping secondary indexes and the
 * insertion-order entries, in one commit on a local storage, in checked
 * steps where other processes may write meanwhile.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import { ConflictError, DuplicateKeyError, TooLargeError } from "../errors.ts";
import {
  CollectionIndexes,
  entryId,
  entryKeyId,
  type IndexEntry,
  type StoredIndex,
} from "./indexes.ts";
import { type IndexSpec, sameIndexSpec } from "./index_keys.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { StoredRecord } from "../value_codec.ts";
import { entryCost } from "./size_estimate.ts";
import type { CollectionState, EngineCore } from "./state.ts";
import {
  indexMetaKey,
  isExpired,
  META,
  schemaBump,
  schemaKey,
} from "./layout.ts";
import { buildTrees, settle, sync } from "./load.ts";
import { dropExpired } from "./expiry.ts";
import { deleteUnder, keysUnder } from "./bulk.ts";

/**
 * The index definitions stored for the given collections (all when
 * omitted), read from the storage (so other processes' count too); indexes
 * still being built are left out.
 *
 * @param collections Collection names, or `undefined` for all.
 * @returns `{ collection, spec }` per index.
 */
export async function indexDefinitions(
  s: EngineCore,
  collections?: readonly string[],
): Promise<{ collection: string; spec: IndexSpec }[]> {
  const out: { collection: string; spec: IndexSpec }[] = [];
  const wanted = collections === undefined ? undefined : new Set(collections);
  for await (
    const page of s.storage.scan({ prefix: encodeKey([META]) })
  ) {
    for (const entry of page) {
      const parts = decodeKey(entry.key);
      if (parts[2] !== "index") continue;
      const collection = parts[1] as string;
      if (wanted !== undefined && !wanted.has(collection)) continue;
      const stored = JSON.parse(
        new TextDecoder().decode(entry.value),
      ) as StoredIndex;
      if (stored.building === true) continue;
      out.push({
        collection,
        spec: {
          name: stored.name,
          fields: stored.fields,
          unique: stored.unique,
          sparse: stored.sparse,
        },
      });
    }
  }
  return out;
}

/** Builds the insertion-order entries of a collection, once. */
export function ensureOrder(s: EngineCore, collection: string): Promise<void> {
  const state = s.state(collection);
  if (state.indexes.ordered && !state.indexes.orderBuilding && !s.shared) {
    return Promise.resolve();
  }
  const action = `Cannot order '${collection}' by insertion`;
  s.assertOpen(action);
  return s.enqueue(async () => {
    if (s.bulk) return await orderInSteps(s, collection, action);
    const { indexes } = state;
    if (indexes.ordered) return;
    await dropExpired(s, collection, state);
    const sets: { key: Uint8Array; value: Uint8Array }[] = [];
    let bytes = 0;
    for await (
      const page of s.storage.scan({
        prefix: s.collectionPrefix(collection),
      })
    ) {
      for (const entry of page) {
        const record = s.decode(entry, action);
        const key = indexes.orderKey(s.idOf(entry), record);
        sets.push({ key, value: entry.key });
        bytes += entryCost(key);
      }
    }
    const meta = encodeKey([META, collection, "order"]);
    const value = encodeUtf8("{}");
    // A volatile storage keeps no entries: they live in the order tree.
    if (s.volatile) sets.length = 0;
    sets.push({ key: meta, value });
    const result = await s.storage.commit({ sets });
    if (!result.ok) {
      throw new ConflictError(`${action}: the storage refused the commit`);
    }
    if (result.durable !== undefined) await settle(s, result.durable);
    indexes.ordered = true;
    if (s.local) await buildTrees(s, state, "");
    else s.account(bytes);
  });
}

/**
 * Creates a secondary index from the collection's current items, in one
 * commit with its definition. An identical existing index is kept.
 *
 * @param collection Collection name.
 * @param spec The index.
 * @param action For error messages.
 * @returns The index's name.
 * @throws {TypeError} When an index of that name exists with other options.
 * @throws {DuplicateKeyError} When a unique index meets a duplicate.
 */
export function createIndex(
  s: EngineCore,
  collection: string,
  spec: IndexSpec,
  action: string,
): Promise<string> {
  s.assertOpen(action);
  return s.enqueue(async () => {
    if (s.bulk) {
      return await createIndexInSteps(s, collection, spec, action);
    }
    const state = s.state(collection);
    const existing = state.indexes.get(spec.name);
    if (existing !== undefined) {
      if (sameIndexSpec(existing, spec)) return spec.name;
      throw new TypeError(
        `${action}: index '${spec.name}' already exists with other options`,
      );
    }
    // Expired items go first, so that every stored item has its entries
    // (the invariant every later write and sweep relies on).
    await dropExpired(s, collection, state);
    const building = new CollectionIndexes(collection, s.blinder);
    let stored: StoredIndex = { ...spec, multikey: false };
    building.add(stored);
    const sets: { key: Uint8Array; value: Uint8Array }[] = [];
    const owners = new Map<string, string>();
    let bytes = 0;
    for await (
      const page of s.storage.scan({
        prefix: s.collectionPrefix(collection),
      })
    ) {
      await building.prepare(page.map((e) => s.decode(e, action)));
      for (const entry of page) {
        const record = s.decode(entry, action);
        const id = s.idOf(entry);
        const found = new Set<string>();
        const entries = s.entriesOf(building, id, record, action, found);
        if (found.size > 0) {
          stored = { ...stored, multikey: true };
          building.add(stored);
        }
        for (const e of entries) {
          if (e.unique) {
            const holder = owners.get(entryKeyId(e));
            if (holder !== undefined) {
              throw s.duplicate(action, collection, e, holder, id);
            }
            owners.set(entryKeyId(e), id);
          }
          const value = entry.key; // the item's key
          sets.push({ key: e.key, value });
          bytes += entryCost(e.key);
        }
      }
    }
    const meta = {
      key: indexMetaKey(collection, spec.name),
      value: encodeUtf8(JSON.stringify(stored)),
    };
    s.fitsMemory(bytes, action);
    // A volatile storage keeps no entries: they live in the index tree.
    const result = await s.storage.commit({
      sets: s.volatile ? [meta] : [...sets, meta],
    });
    if (!result.ok) {
      throw new ConflictError(`${action}: the storage refused the commit`);
    }
    if (result.durable !== undefined) await settle(s, result.durable);
    state.indexes.add(stored);
    if (s.local) await buildTrees(s, state, spec.name);
    else s.account(bytes);
    return spec.name;
  });
}

/**
 * Drops a secondary index and its entries in one commit.
 *
 * @param collection Collection name.
 * @param name The index's name.
 * @param action For error messages.
 * @returns Whether it existed.
 */
export function dropIndex(
  s: EngineCore,
  collection: string,
  name: string,
  action: string,
): Promise<boolean> {
  s.assertOpen(action);
  return s.enqueue(async () => {
    if (s.bulk) {
      await sync(s, collection);
      const state = s.state(collection);
      if (state.indexes.get(name) === undefined) return false;
      await dropIndexInSteps(s, collection, state, name, action);
      return true;
    }
    const state = s.collections.get(collection);
    if (state?.indexes.get(name) === undefined) return false;
    const deletes = [indexMetaKey(collection, name)];
    let bytes = await keysUnder(s, state.indexes.prefix(name), deletes);
    if (s.local) bytes = state.ram!.cost(name);
    const result = await s.storage.commit({ deletes });
    if (!result.ok) {
      throw new ConflictError(`${action}: the storage refused the commit`);
    }
    if (result.durable !== undefined) await settle(s, result.durable);
    s.account(-bytes);
    state.indexes.remove(name);
    state.ram?.drop(name);
    return true;
  });
}

/**
 * Commits a schema change (index definition or order marker) with a
 * version check on the schema key; after a lost race, reloads the
 * definitions and asks `still` whether the change is still wanted.
 */
export async function commitSchema(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  change: {
    sets?: { key: Uint8Array; value: Uint8Array }[];
    deletes?: Uint8Array[];
  },
  action: string,
  still: () => boolean = () => true,
): Promise<boolean> {
  for (let attempt = 0;; attempt++) {
    const result = await s.storage.commit({
      checks: [{
        key: schemaKey(collection),
        versionstamp: state.schema,
      }],
      sets: [...change.sets ?? [], schemaBump(collection, s.now())],
      deletes: change.deletes ?? [],
    });
    if (result.ok) {
      if (result.durable !== undefined) await settle(s, result.durable);
      state.schema = result.versionstamp;
      return true;
    }
    await sync(s, collection);
    if (!still()) return false;
    if (attempt >= s.settings.maxRetries) {
      throw new ConflictError(
        `${action}: another process changed the indexes of '${collection}' ${
          attempt + 1
        } times in a row`,
      );
    }
  }
}

/**
 * Writes the entries that `entriesOf` gives for existing documents, a
 * group per commit, each checked against the documents' versions (a
 * document rewritten meanwhile is read again). Unique entries held by
 * another live document are a `DuplicateKeyError`.
 */
export async function backfill(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  action: string,
  entriesOf: (id: string, record: StoredRecord) => IndexEntry[],
  prepare?: (records: StoredRecord[]) => Promise<void>,
): Promise<void> {
  const native = s.storage.capabilities.nativeExpiry;
  const group = async (docs: readonly StorageEntry[]): Promise<void> => {
    let current: readonly StorageEntry[] = docs;
    for (let attempt = 0;; attempt++) {
      await prepare?.(current.map((d) => s.decode(d, action)));
      const now = s.now();
      const checks: { key: Uint8Array; versionstamp: string | null }[] = [
        { key: schemaKey(collection), versionstamp: state.schema },
      ];
      const sets: {
        key: Uint8Array;
        value: Uint8Array;
        expireAt?: number;
      }[] = [];
      const uniques: { entry: IndexEntry; id: string }[] = [];
      const owners = new Map<string, string>();
      for (const doc of current) {
        const record = s.decode(doc, action);
        if (isExpired(record, now)) continue;
        const id = s.idOf(doc);
        checks.push({ key: doc.key, versionstamp: doc.versionstamp });
        for (const e of entriesOf(id, record)) {
          if (e.unique) {
            const holder = owners.get(entryKeyId(e));
            if (holder !== undefined && holder !== id) {
              throw s.duplicate(action, collection, e, holder, id);
            }
            owners.set(entryKeyId(e), id);
            uniques.push({ entry: e, id });
          }
          const expireAt = native ? record.expiresAt : undefined;
          sets.push(
            expireAt === undefined
              ? { key: e.key, value: doc.key }
              : { key: e.key, value: doc.key, expireAt },
          );
        }
      }
      if (uniques.length > 0) {
        const probes = await s.storage.getMany(
          uniques.map((u) => u.entry.key),
        );
        for (let j = 0; j < uniques.length; j++) {
          const probe = probes[j] ?? null;
          const { entry, id } = uniques[j]!;
          checks.push({
            key: entry.key,
            versionstamp: probe?.versionstamp ?? null,
          });
          if (probe === null) continue;
          const holder = entryId(probe.value);
          if (holder === id) continue;
          const held = await s.storage.get(
            s.docKey(collection, holder),
          );
          if (held !== null && !isExpired(s.decode(held, action), now)) {
            throw s.duplicate(action, collection, entry, holder, id);
          }
        }
      }
      s.fits(checks.length, sets.length, action);
      const result = await s.storage.commit({ checks, sets });
      if (result.ok) {
        if (result.durable !== undefined) await settle(s, result.durable);
        let bytes = 0;
        for (const set of sets) bytes += entryCost(set.key);
        s.account(bytes);
        return;
      }
      if (attempt >= s.settings.maxRetries + 8) {
        throw new ConflictError(
          `${action}: other writers kept changing the same documents`,
        );
      }
      await sync(s, collection);
      const fresh = await s.storage.getMany(current.map((d) => d.key));
      current = fresh.filter((d): d is StorageEntry => d !== null);
    }
  };
  const size = s.groupSize(state);
  for await (
    const page of s.storage.scan({
      prefix: s.collectionPrefix(collection),
    })
  ) {
    await s.inGroups(page, size, group);
  }
}

/**
 * Creates an index where other processes may write meanwhile: the
 * definition first (marked as building, so every writer keeps its entries
 * from then on), then the entries of existing documents in groups, then the
 * definition without the mark. A duplicate under a unique index removes
 * the index again.
 */
export async function createIndexInSteps(
  s: EngineCore,
  collection: string,
  spec: IndexSpec,
  action: string,
): Promise<string> {
  await sync(s, collection);
  const state = s.state(collection);
  await dropExpired(s, collection, state);
  const same = (i: StoredIndex | undefined): boolean =>
    i !== undefined && sameIndexSpec(i, spec);
  const metaKey = indexMetaKey(collection, spec.name);
  for (;;) {
    const existing = state.indexes.get(spec.name) as StoredIndex | undefined;
    if (existing !== undefined && !same(existing)) {
      throw new TypeError(
        `${action}: index '${spec.name}' already exists with other options`,
      );
    }
    if (existing !== undefined && existing.building !== true) {
      return spec.name;
    }
    if (existing !== undefined) break; // resume a build left unfinished
    const building: StoredIndex = {
      ...spec,
      multikey: false,
      building: true,
    };
    const done = await commitSchema(
      s,
      collection,
      state,
      {
        sets: [{ key: metaKey, value: encodeUtf8(JSON.stringify(building)) }],
      },
      action,
      () => state.indexes.get(spec.name) === undefined,
    );
    if (done) {
      state.indexes.add(building);
      break;
    }
  }
  const one = new CollectionIndexes(collection, s.blinder);
  one.add({ ...spec, multikey: false });
  const found = new Set<string>();
  try {
    await backfill(
      s,
      collection,
      state,
      action,
      (id, record) => s.entriesOf(one, id, record, action, found),
      (records) => one.prepare(records),
    );
  } catch (e) {
    // A document the index cannot take (a duplicate, a value it cannot
    // index, a key past the storage's size) fails every build again: the
    // half-built index goes (left, it would refuse that document's every
    // write). Other failures (a lost race, a closed or full storage) leave
    // it for the next createIndex to resume.
    if (
      e instanceof DuplicateKeyError || e instanceof TooLargeError ||
      e instanceof TypeError || e instanceof RangeError
    ) {
      await dropIndexInSteps(s, collection, state, spec.name, action);
    }
    throw e;
  }
  const current = state.indexes.get(spec.name) as StoredIndex | undefined;
  const ready: StoredIndex = {
    ...spec,
    multikey: found.size > 0 || current?.multikey === true,
  };
  await commitSchema(
    s,
    collection,
    state,
    { sets: [{ key: metaKey, value: encodeUtf8(JSON.stringify(ready)) }] },
    action,
    () => same(state.indexes.get(spec.name)),
  );
  state.indexes.add(ready);
  return spec.name;
}

/** Drops an index: the definition first, then its entries in groups. */
export async function dropIndexInSteps(
  s: EngineCore,
  collection: string,
  state: CollectionState,
  name: string,
  action: string,
): Promise<void> {
  const prefix = state.indexes.prefix(name);
  await commitSchema(
    s,
    collection,
    state,
    { deletes: [indexMetaKey(collection, name)] },
    action,
    () => state.indexes.get(name) !== undefined,
  );
  state.indexes.remove(name);
  await deleteUnder(s, prefix);
}

/** Builds the insertion-order entries in steps, as an index. */
export async function orderInSteps(
  s: EngineCore,
  collection: string,
  action: string,
): Promise<void> {
  await sync(s, collection);
  const state = s.state(collection);
  const meta = encodeKey([META, collection, "order"]);
  if (state.indexes.ordered && !state.indexes.orderBuilding) return;
  if (!state.indexes.ordered) {
    const started = await commitSchema(
      s,
      collection,
      state,
      { sets: [{ key: meta, value: encodeUtf8('{"building":true}') }] },
      action,
      () => !state.indexes.ordered,
    );
    if (started) state.indexes.ordered = true;
    state.indexes.orderBuilding = true;
  }
  if (!state.indexes.orderBuilding) return;
  await dropExpired(s, collection, state);
  const order = state.indexes;
  await backfill(s, collection, state, action, (id, record) => [{
    key: order.orderKey(id, record),
    index: "",
    unique: false,
    tuple: [],
  }]);
  await commitSchema(
    s,
    collection,
    state,
    { sets: [{ key: meta, value: encodeUtf8("{}") }] },
    action,
    () => state.indexes.ordered,
  );
  state.indexes.orderBuilding = false;
}
