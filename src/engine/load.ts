/**
 * Rebuilding the engine's bookkeeping from storage: counts, sizes, TTL
 * schedules and index definitions at open, after a failed durable write,
 * after `refresh()` or a restore, and a shared storage's schema changes.
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import { CollectionIndexes, entryLength, type StoredIndex } from "./indexes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import { binaryString } from "../bytes.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { Change } from "../types.ts";
import { decodeRecord, recordMeta } from "../value_codec.ts";
import {
  entryCost,
  fileRecordCost,
  heapCap,
  indexEntryCost,
  keyDirCost,
  objectRecordCost,
  recordCost,
  storedRecordCost,
} from "./size_estimate.ts";
import type { CollectionState, EngineCore } from "./state.ts";
import { DocSlot } from "./record_table.ts";
import type { StoredRecord } from "../value_codec.ts";
import { DOC, META, schemaKey, TOMB } from "./layout.ts";
import { feedLoad, feedLoadDoc } from "./feed_hooks.ts";

/**
 * A `memoryLimit` the V8 heap cannot hold would end in an out-of-memory
 * crash before any `QuotaError`: it is lowered to what the heap can hold.
 */
export async function capMemoryLimit(s: EngineCore): Promise<void> {
  const limit = s.settings.memoryLimit;
  if (!Number.isFinite(limit)) return;
  const cap = await heapCap();
  if (limit <= cap) return;
  s.memoryLimit = cap;
  s.settings.log?.warn(
    "memory-limit",
    `memoryLimit ${limit} is more than the V8 heap can hold; using ${cap} bytes (raise it with --v8-flags=--max-old-space-size=MiB)`,
    { memoryLimit: limit, used: cap },
  );
}

/** Applies one metadata entry (index definition, order, schema). */
export function loadMeta(s: EngineCore, entry: StorageEntry): void {
  const parts = decodeKey(entry.key);
  const collection = parts[1] as string;
  if (parts[2] === "order") {
    const { indexes } = s.state(collection);
    indexes.ordered = true;
    indexes.orderBuilding = entry.value.length > 2; // `{"building":true}`
    return;
  }
  if (parts[2] === "schema") {
    s.state(collection).schema = entry.versionstamp;
    return;
  }
  if (parts[2] !== "index") return;
  let spec: StoredIndex;
  try {
    spec = JSON.parse(new TextDecoder().decode(entry.value));
  } catch (cause) {
    throw new IntegrityError(
      `Cannot open: the definition of index '${
        String(parts[3])
      }' of '${collection}' is not valid JSON`,
      { cause },
    );
  }
  s.state(collection).indexes.add(spec);
}

/**
 * Reads the storage's documents, tombstones and definitions into the
 * engine's bookkeeping (at open, and on every reload). Change feed readers
 * wait for it to end (`feedLoading`).
 *
 * @param s The engine.
 */
export async function load(s: EngineCore): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  s.feedLoading = promise;
  try {
    await loadAll(s);
  } finally {
    resolve();
  }
}

async function loadAll(s: EngineCore): Promise<void> {
  s.feedIndex.reset();
  s.feedLoads++;
  // Local storages: positions of puts are indexed when a reader asks.
  s.feedIndex.deferPuts = !s.storage.capabilities.shared;
  for await (
    const page of s.storage.scan({ prefix: encodeKey([META]) })
  ) {
    for (const entry of page) loadMeta(s, entry);
  }
  // A shared storage that expires items itself (Deno KV) is not read
  // whole: other processes change it anyway, so counts come from scans.
  const { shared, nativeExpiry } = s.storage.capabilities;
  if (shared && nativeExpiry) return await feedLoad(s);
  const { local, volatile } = s;
  const keys = new DocKeys(s);
  for await (const page of s.storage.scan({ prefix: encodeKey([DOC]) })) {
    for (const entry of page) {
      if (!local) {
        loadKeyed(s, keys, entry);
        continue;
      }
      const id = keys.read(entry);
      const collection = keys.collection;
      const state = s.state(collection);
      // The file storage decodes a record from its stored parts (memo).
      let found = entry.memo as StoredRecord | undefined;
      if (found === undefined) {
        found = decodeOrMiss(entry, `Cannot open: reading '${id}'`);
        if (found === undefined) {
          // Unreadable: only the storage holds it, and every read of it
          // reports the damage (never skipped).
          const slot = new DocSlot(
            id,
            s.collectionPrefix(collection),
            undefined,
            entry.key,
          );
          slot.cost = storedRecordCost(entry.key, entry.value);
          s.bytes += slot.cost;
          state.stored++;
          state.table!.add(slot);
          continue;
        }
      }
      const meta = found;
      state.stored++;
      if (meta.seq > state.seq) state.seq = meta.seq;
      if (meta.expiresAt !== undefined) {
        state.schedule.set(id, meta.expiresAt);
      }
      feedLoadDoc(s, collection, id, meta.feed ?? 0);
      const record = meta;
      // The object tier: the record, and what it was accounted at.
      // Key bytes kept only where the storage made them anyway.
      const slot = new DocSlot(
        id,
        keys.prefix,
        record,
        keys.binary === undefined ? entry.key : undefined,
      );
      const keyLength = keys.binary?.length ?? entry.key.length;
      slot.cost = volatile
        ? objectRecordCost(keyLength, record)
        : fileRecordCost(keyLength, record);
      s.bytes += slot.cost;
      state.table!.add(slot);
    }
  }
  if (local) {
    for await (const page of s.storage.scan({ prefix: encodeKey([TOMB]) })) {
      for (const entry of page) {
        const parts = decodeKey(entry.key);
        s.state(parts[1] as string).tombs!.add(parts[2] as string);
      }
    }
    await feedLoad(s);
    if (volatile) await dropStoredEntries(s);
    for (const state of s.collections.values()) await buildTrees(s, state);
    s.account(0);
    return;
  }
  await feedLoad(s);
  // Index and insertion-order entries count as the writes counted them.
  for (const space of ["i", "o"]) {
    for await (
      const page of s.storage.scan({ prefix: encodeKey([space]) })
    ) {
      for (const entry of page) s.bytes += entryCost(entry.key);
    }
  }
  s.account(0);
}

/**
 * Loads one document whose record the engine does not keep (the storage
 * keeps values: a file on disk, Deno KV): its counts, expiry and change
 * feed position. Its id is read from the key only when needed (an expiry,
 * a shared storage's feed), which is most of the cost for small records.
 */
function loadKeyed(s: EngineCore, keys: DocKeys, entry: StorageEntry): void {
  const collection = keys.collectionOf(entry);
  const state = s.state(collection);
  // A storage that keeps record fields beside its values (the file
  // storage's key directory) gives them without a parse.
  const meta = (entry as { meta?: ReturnType<typeof recordMeta> }).meta ??
    recordMeta(entry.value) ??
    s.decode(entry, `Cannot open: reading '${keys.read(entry)}'`);
  state.stored++;
  if (meta.seq > state.seq) state.seq = meta.seq;
  if (meta.expiresAt !== undefined) {
    state.schedule.set(keys.read(entry), meta.expiresAt);
  }
  const feed = meta.feed ?? 0;
  if (feed <= 0 || s.shared) {
    feedLoadDoc(s, collection, keys.read(entry), feed);
  } else feedLoadDoc(s, collection, "", feed);
  s.bytes += s.valuesOnDisk
    ? keyDirCost(keys.binary?.length ?? entry.key.length)
    : recordCost(entry.key, entry.value);
}

/** A record's decoding, or `undefined` when it does not decode. */
/**
 * Reads the collection and id of document keys (`["d", collection, id]`)
 * in storage order: a key of the collection seen last, with a plain ASCII
 * id, is read from its binary string (the file storage gives it) without
 * decoding; any other is decoded.
 */
class DocKeys {
  readonly #s: EngineCore;
  #text: string | undefined;
  /** The collection of the key read last. */
  collection = "";
  /** Its key prefix. */
  prefix: Uint8Array = new Uint8Array();
  /** The binary string of the key read last, if the storage gave it. */
  binary: string | undefined;

  constructor(s: EngineCore) {
    this.#s = s;
  }

  /**
   * The collection of a document's entry, without reading its id when the
   * key is of the collection read last (its binary string starts with that
   * collection's prefix, which ends in the prefix's terminator).
   */
  collectionOf(entry: StorageEntry): string {
    const binary = (entry as { binaryKey?: string }).binaryKey;
    const text = this.#text;
    if (
      binary !== undefined && text !== undefined && binary.startsWith(text)
    ) {
      this.binary = binary;
      return this.collection;
    }
    this.read(entry);
    return this.collection;
  }

  /** The id of a document's entry (its collection in `collection`). */
  read(entry: StorageEntry): string {
    const binary = (entry as { binaryKey?: string }).binaryKey;
    this.binary = binary;
    const text = this.#text;
    if (
      binary !== undefined && text !== undefined && binary.startsWith(text) &&
      PLAIN_ID.test(binary.slice(text.length))
    ) {
      return binary.slice(text.length + 1, binary.length - 1);
    }
    const parts = decodeKey(entry.key);
    const collection = parts[1] as string;
    if (collection !== this.collection || text === undefined) {
      this.collection = collection;
      this.prefix = this.#s.collectionPrefix(collection);
      this.#text = binaryString(this.prefix);
    }
    return parts[2] as string;
  }
}

/**
 * A string key part of plain ASCII (no escaped NUL): tag, text, end. Key
 * bytes are what it matches: control characters are intended.
 */
// deno-lint-ignore no-control-regex
const PLAIN_ID = /^0[\x01-\x7f]*\x00$/;

function decodeOrMiss(
  entry: StorageEntry,
  action: string,
): StoredRecord | undefined {
  try {
    return decodeRecord(entry.value, action);
  } catch (e) {
    if (e instanceof IntegrityError) return undefined;
    throw e;
  }
}

/**
 * Removes index and insertion-order entries from a volatile storage (a
 * restore writes them): there they live in the engine's trees only.
 */
async function dropStoredEntries(s: EngineCore): Promise<void> {
  const deletes: Uint8Array[] = [];
  for (const space of ["i", "o"]) {
    for await (
      const page of s.storage.scan({ prefix: encodeKey([space]) })
    ) {
      for (const entry of page) deletes.push(entry.key);
    }
  }
  if (deletes.length > 0) await s.storage.commit({ deletes });
}

/**
 * Builds the object tier's index trees of a collection from its records
 * (every index, and insertion order once built), accounting their entries.
 *
 * @param s The engine.
 * @param state The collection.
 * @param only Build only this index (`""`: insertion order).
 * @returns When built.
 */
export async function buildTrees(
  s: EngineCore,
  state: CollectionState,
  only?: string,
): Promise<void> {
  const { indexes } = state;
  const table = state.table!;
  const ram = state.ram!;
  const specs = only === undefined
    ? indexes.list
    : indexes.list.filter((i) => i.name === only);
  const order = indexes.ordered && (only === undefined || only === "");
  if (specs.length === 0 && !order) return;
  if (indexes.blinder !== undefined && specs.length > 0) {
    const records: StoredRecord[] = [];
    for (const slot of table.all()) records.push(slot.record!);
    await indexes.prepare(records, specs);
  }
  let bytes = 0;
  for (const slot of table.all()) {
    const record = slot.record!;
    if (order) {
      const e = indexes.orderEntry(slot.id, record);
      ram.add(e, slot);
      bytes += indexEntryCost(e.length, s.volatile);
    }
    for (const spec of specs) {
      let entries;
      try {
        entries = indexes.indexEntries(spec, slot.id, record);
      } catch {
        continue; // unindexable items were refused when written
      }
      for (const e of entries) {
        ram.add(e, slot);
        bytes += indexEntryCost(entryLength(e), s.volatile);
      }
    }
  }
  s.account(bytes);
}

/**
 * Waits for a commit to be durable. If the storage could not make it so, it
 * has taken the commit back (and later ones): rebuild the bookkeeping.
 */
export async function settle(
  s: EngineCore,
  durable: Promise<void>,
  outsideQueue = false,
): Promise<void> {
  try {
    await durable;
  } catch (e) {
    // Outside the write queue, wait for the rebuild so that the caller
    // sees consistent counts as soon as its write rejects.
    const reload = reloadSoon(s);
    if (outsideQueue) await reload;
    throw e;
  }
}

/** Rebuilds counts, sizes, schedules and index definitions from storage. */
export function reloadSoon(s: EngineCore): Promise<void> {
  if (s.closed) return Promise.resolve();
  s.reloading ??= s.enqueue(async () => {
    s.reloading = undefined;
    s.collections.clear();
    s.bytes = 0;
    await load(s);
  }).catch((e) => s.recordError(e));
  return s.reloading;
}

/**
 * On a shared storage, reloads a collection's index definitions when
 * another process changed them (one read when nothing changed).
 *
 * @param collection Collection name.
 * @returns When the definitions are current.
 */
export async function sync(s: EngineCore, collection: string): Promise<void> {
  if (!s.shared || s.closed) return;
  const state = s.state(collection);
  const found = await s.storage.get(schemaKey(collection));
  if ((found?.versionstamp ?? null) === state.schema) return;
  const fresh = new CollectionIndexes(collection, s.blinder);
  const prefix = encodeKey([META, collection]);
  let schema: string | null = null;
  const specs: StorageEntry[] = [];
  for await (const page of s.storage.scan({ prefix })) {
    for (const entry of page) {
      const parts = decodeKey(entry.key);
      if (parts[2] === "schema") schema = entry.versionstamp;
      else specs.push(entry);
    }
  }
  state.indexes = fresh;
  state.schema = schema;
  for (const entry of specs) loadMeta(s, entry);
}

/**
 * Has the storage load other processes' changes (a read-only file
 * database), then rebuilds counts, schedules and index definitions.
 *
 * @returns Whether anything changed.
 */
export function refresh(s: EngineCore): Promise<boolean> {
  s.assertOpen("Cannot refresh");
  const storage = s.storage;
  if (storage.refresh === undefined) return Promise.resolve(false);
  return s.enqueue(async () => {
    const changed = await storage.refresh!();
    if (changed) {
      s.collections.clear();
      s.bytes = 0;
      await load(s);
    }
    return changed;
  });
}

/**
 * Rebuilds counts, sizes, schedules and index definitions from storage
 * after changes written to it directly (a restore applies its staged
 * commit so), then tells watchers of those changes. Call it inside
 * {@linkcode Engine.exclusive}.
 *
 * @param changes The document changes to report (asked only when
 *   someone watches).
 * @returns When the bookkeeping is rebuilt.
 */
export async function reloaded(
  s: EngineCore,
  changes: () => readonly Change[],
): Promise<void> {
  s.collections.clear();
  s.bytes = 0;
  await load(s);
  if (s.listeners.size === 0) return;
  for (const change of changes()) s.emit(change);
}
