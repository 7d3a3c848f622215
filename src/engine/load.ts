/**
 * Rebuilding the engine's bookkeeping from storage: counts, sizes, TTL
 * schedules and index definitions at open, after a failed durable write,
 * after `refresh()` or a restore, and a shared storage's schema changes.
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import { CollectionIndexes, type StoredIndex } from "./indexes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type { StorageEntry } from "../storage/contract.ts";
import type { Change } from "../types.ts";
import { recordMeta } from "../value_codec.ts";
import { entryCost, heapCap, recordCost } from "./size_estimate.ts";
import type { EngineCore } from "./state.ts";
import { DOC, META, schemaKey } from "./layout.ts";

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

export async function load(s: EngineCore): Promise<void> {
  for await (
    const page of s.storage.scan({ prefix: encodeKey([META]) })
  ) {
    for (const entry of page) loadMeta(s, entry);
  }
  // A shared storage that expires items itself (Deno KV) is not read
  // whole: other processes change it anyway, so counts come from scans.
  const { shared, nativeExpiry } = s.storage.capabilities;
  if (shared && nativeExpiry) return;
  for await (const page of s.storage.scan({ prefix: encodeKey([DOC]) })) {
    for (const entry of page) {
      const parts = decodeKey(entry.key);
      const collection = parts[1] as string;
      const id = parts[2] as string;
      const record = recordMeta(entry.value) ??
        s.decode(entry, `Cannot open: reading '${id}'`);
      const state = s.state(collection);
      state.stored++;
      if (record.seq > state.seq) state.seq = record.seq;
      s.bytes += recordCost(entry.key, entry.value);
      if (record.expiresAt !== undefined) {
        state.schedule.set(id, record.expiresAt);
      }
    }
  }
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
