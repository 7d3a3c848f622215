/**
 * The change feed's hooks into the engine's mechanisms: positions taken by
 * a commit's changes and what the commit writes for them, loading them,
 * purging their markers, and the reader's view of the engine. Kept apart
 * from the write path so that each hook there is one call.
 *
 * @module
 */

import { decodeKey, encodeKey } from "../key_codec.ts";
import { binaryString, encodeUtf8 } from "../bytes.ts";
import type {
  StorageCheck,
  StorageEntry,
  StorageSet,
} from "../storage/contract.ts";
import type { FeedChange } from "../types.ts";
import { recordMeta, type StoredRecord } from "../value_codec.ts";
import type { EngineCore } from "./state.ts";
import { DOC, TOMB, tombKey } from "./layout.ts";
import {
  DELETE,
  EXPIRE,
  FEED_GAP,
  FEED_MARK,
  positionKey,
  positionValue,
  PUT,
  readGap,
  readMark,
  readPosition,
  readTombstone,
  tombstoneValue,
} from "./feed_format.ts";
import { type FeedHost, type FeedRequest, readChanges } from "./feed.ts";
import { blockSet } from "./feed_block.ts";

const NO_NUMBERS: readonly number[] = [];
const NO_IDS: readonly string[] = [];

/**
 * The positions one commit's changes take, and (on a shared storage) the
 * by-position keys and counter it writes.
 */
export class FeedCommit {
  readonly #s: EngineCore;
  readonly #collection: string;
  // Made on first use: most commits of one put need one entry each, and
  // local storages never the shared ones.
  #positions: number[] | undefined;
  #ids: string[] | undefined;
  #kinds: number[] | undefined;
  /** Shared storages: by-position keys to write and to remove. */
  #sets: StorageSet[] | undefined;
  #deletes: Uint8Array[] | undefined;
  /** Shared storages, bulk writes: puts written as one block (feed_block.ts). */
  readonly #block: { positions: number[]; ids: string[] } | undefined;

  /**
   * @param s The engine.
   * @param collection The collection the commit changes.
   * @param block Write the puts' by-position entries as one block key
   *   (shared storages; a bulk write of new items).
   */
  constructor(s: EngineCore, collection: string, block = false) {
    this.#s = s;
    this.#collection = collection;
    this.#block = block && s.shared ? { positions: [], ids: [] } : undefined;
  }

  /** The commit's positions, ascending. */
  get positions(): readonly number[] {
    return this.#positions ?? NO_NUMBERS;
  }

  /** The item keys of the commit's positions. */
  get ids(): readonly string[] {
    return this.#ids ?? NO_IDS;
  }

  #take(position: number, id: string, kind: number): void {
    if (this.#positions === undefined) {
      this.#positions = [position];
      this.#ids = [id];
      this.#kinds = [kind];
      return;
    }
    this.#positions.push(position);
    this.#ids!.push(id);
    this.#kinds!.push(kind);
  }

  /**
   * A put (its position was taken when its record was built).
   *
   * @param id The item's key.
   * @param next The record written.
   * @param old The record replaced, if any.
   * @param expireAt The storage expiry of the item's entries, if any.
   */
  put(
    id: string,
    next: StoredRecord,
    old: StoredRecord | undefined,
    expireAt: number | undefined,
  ): void {
    const position = next.feed ?? 0;
    if (position === 0) return;
    this.#take(position, id, PUT);
    if (!this.#s.shared) return;
    const was = old?.feed ?? 0;
    if (was > 0) (this.#deletes ??= []).push(positionKey(was));
    if (this.#block !== undefined) {
      this.#block.positions.push(position);
      this.#block.ids.push(id);
      return;
    }
    const value = positionValue(this.#collection, id, PUT);
    (this.#sets ??= []).push(
      expireAt === undefined
        ? { key: positionKey(position), value }
        : { key: positionKey(position), value, expireAt },
    );
  }

  /**
   * A document removed: deleted while visible, or removed after it expired.
   * Takes a position and returns its tombstone (or expiry marker).
   *
   * @param id The item's key.
   * @param old The record removed.
   * @param deleted Whether it was visible (a deletion, not an expiry).
   * @param now The time of the removal.
   * @returns The set that writes the tombstone.
   */
  gone(
    id: string,
    old: StoredRecord,
    deleted: boolean,
    now: number,
  ): StorageSet {
    const position = this.#s.feedIndex.next();
    const kind = deleted ? DELETE : EXPIRE;
    this.#take(position, id, kind);
    if (this.#s.shared) {
      (this.#sets ??= []).push({
        key: positionKey(position),
        value: positionValue(this.#collection, id, kind),
      });
      const was = old.feed ?? 0;
      if (was > 0) (this.#deletes ??= []).push(positionKey(was));
    }
    return {
      key: tombKey(this.#collection, id),
      value: tombstoneValue(
        now,
        position,
        deleted ? old.version + 1 : old.version,
        !deleted,
      ),
    };
  }

  /**
   * Adds what the commit writes for the feed: on a shared storage the
   * by-position keys and the counter's check and new value.
   *
   * @param checks The commit's checks.
   * @param sets Its sets.
   * @param deletes Its deletes.
   * @param chained The commit follows one in flight, which the storage
   *   checks the counter against (`StorageCommit.after`): no check here.
   */
  finish(
    checks: StorageCheck[],
    sets: StorageSet[],
    deletes: Uint8Array[],
    chained = false,
  ): void {
    if (!this.#s.shared || this.#positions === undefined) return;
    const { check, set } = this.#s.feedIndex.counterWrite();
    if (!chained) checks.push(check);
    sets.push(set);
    for (const s of this.#sets ?? []) sets.push(s); // no spread: any size
    const block = this.#block;
    if (block !== undefined && block.ids.length > 0) {
      sets.push(blockSet(this.#collection, block.positions, block.ids));
    }
    for (const d of this.#deletes ?? []) deletes.push(d);
  }

  /**
   * After the storage applied the commit: indexes its changes (local) or
   * keeps the counter's versionstamp (shared).
   *
   * @param versionstamp The commit's versionstamp.
   * @param durable The storage's `durable` promise, if any.
   */
  applied(versionstamp: string, durable: Promise<void> | undefined): void {
    const positions = this.#positions;
    if (positions === undefined) return;
    this.#s.feedIndex.applied(
      positions,
      this.#collection,
      this.#ids!,
      this.#kinds!,
      durable,
      versionstamp,
    );
  }

  /** After the storage refused the commit (a check failed, or it threw). */
  failed(): void {
    this.#s.feedIndex.failed();
  }
}

/**
 * Before a write on a shared storage: reads the counter when this
 * process's copy may be stale, so that positions follow commit order.
 *
 * @param s The engine.
 * @returns When positions can be taken.
 */
export async function feedReady(s: EngineCore): Promise<void> {
  if (!s.feedIndex.stale) return;
  s.feedIndex.counterRead(await s.storage.get(FEED_MARK));
}

/**
 * At load, for each document: indexes its position (local storages).
 *
 * @param s The engine.
 * @param collection The collection.
 * @param id The item's key.
 * @param position The record's position (0: written before the feed).
 */
export function feedLoadDoc(
  s: EngineCore,
  collection: string,
  id: string,
  position: number,
): void {
  if (position <= 0) s.feedLegacy = true;
  else if (s.shared) s.feedIndex.add(position, collection, id, PUT);
  // Local: indexed when a reader first asks (feedIndexReady).
  else s.feedIndex.defer(position);
}

/**
 * Before a change feed reads the in-RAM index (local storages): indexes the
 * documents' positions that loading and puts left for later (the index
 * then takes puts as they commit). One indexing at a time; readers wait
 * for it.
 *
 * @param s The engine.
 * @returns Once the index holds every document's position.
 */
export async function feedIndexReady(s: EngineCore): Promise<void> {
  for (;;) {
    // Positions are deferred while a load runs: index after it.
    await s.feedLoading;
    const index = s.feedIndex;
    if ((!index.deferPuts && index.deferred === 0) || s.closed) return;
    s.feedIndexing ??= indexDeferred(s).finally(() => {
      s.feedIndexing = undefined;
    });
    // Once more if a reload overtook it.
    await s.feedIndexing;
  }
}

/**
 * Reads document keys in key order: the collection and id of each. Where
 * the storage hands out a key as a binary string (`binaryKey`, the file
 * storage) and the id is plain ASCII, the id is cut from that string after
 * the collection's prefix: no key bytes are made and nothing is decoded
 * (on a 300,000-document file, making and decoding the keys was a third
 * of the first change-feed read). Any other key is decoded.
 */
export class DocKeys {
  readonly #s: EngineCore;
  /** The current collection's prefix, as a binary string ("": none yet). */
  #prefix = "";
  /** The collection of the last key read. */
  collection = "";

  /** @param s The engine (for collection prefixes). */
  constructor(s: EngineCore) {
    this.#s = s;
  }

  /**
   * The id of a document entry; its collection is then in `collection`.
   *
   * @param entry A document entry (key `["d", collection, id]`).
   * @returns The id.
   */
  read(entry: StorageEntry): string {
    const bin = (entry as { binaryKey?: string }).binaryKey;
    if (
      bin !== undefined && this.#prefix !== "" && bin.startsWith(this.#prefix)
    ) {
      const id = plainId(bin, this.#prefix.length);
      if (id !== undefined) return id;
    }
    const parts = decodeKey(entry.key);
    if (parts[1] !== this.collection || this.#prefix === "") {
      this.collection = parts[1] as string;
      this.#prefix = bin === undefined
        ? ""
        : binaryString(this.#s.collectionPrefix(this.collection));
    }
    return parts[2] as string;
  }
}

/**
 * The id encoded at `from` in a binary key (a string part: tag 0x30, its
 * bytes, a 0x00 terminator) when it ends the key and is plain ASCII with no
 * NUL (then its bytes are its chars); else `undefined`. A NUL is stored as
 * 0x00 0xff, so the 0xff turns it away.
 */
function plainId(bin: string, from: number): string | undefined {
  const end = bin.length - 1;
  if (
    end <= from || bin.charCodeAt(from) !== 0x30 || bin.charCodeAt(end) !== 0
  ) {
    return undefined;
  }
  for (let i = from + 1; i < end; i++) {
    const c = bin.charCodeAt(i);
    // Past ASCII: UTF-8, or a NUL (escaped as 0x00 0xff): decode it.
    if (c >= 0x80) return undefined;
  }
  return bin.slice(from + 1, end);
}

async function indexDeferred(s: EngineCore): Promise<void> {
  const index = s.feedIndex;
  // Puts committed from now on are indexed as they commit; those left out
  // so far all have positions up to `upTo`.
  index.deferPuts = false;
  const upTo = index.deferred;
  const loads = s.feedLoads;
  // Later writes have higher positions (already indexed); a document
  // rewritten meanwhile has its new one: only positions up to `upTo` count.
  const add = (collection: string, id: string, position: number) => {
    if (position > 0 && position <= upTo) {
      index.addDoc(position, collection, id);
    }
  };
  if (s.local) {
    // The object tier holds every record (a miss has no known position,
    // as at load): no await, so nothing changes meanwhile.
    for (const [collection, state] of s.collections) {
      for (const slot of state.table!.all()) {
        if (slot.record !== undefined) {
          add(collection, slot.id, slot.record.feed ?? 0);
        }
      }
    }
  } else {
    const at = new DocKeys(s);
    for await (const page of s.storage.scan({ prefix: encodeKey([DOC]) })) {
      // A reload started its own load (and deferral) meanwhile: stop.
      if (s.feedLoads !== loads || s.closed) return;
      for (const entry of page) {
        const id = at.read(entry);
        const meta = (entry as { meta?: { feed: number } }).meta ??
          recordMeta(entry.value) ??
          s.decode(entry, `Cannot read changes: reading '${id}'`);
        add(at.collection, id, meta.feed ?? 0);
      }
    }
  }
  if (s.feedLoads === loads) index.deferred = 0;
}

/**
 * At the end of a load: indexes the tombstones' positions, raises the
 * counter to the stored high-water mark, reads the purge marks.
 *
 * @param s The engine.
 */
export async function feedLoad(s: EngineCore): Promise<void> {
  const index = s.feedIndex;
  if (s.shared) {
    index.gap = readGap(await s.storage.get(FEED_GAP));
    return;
  }
  for await (const page of s.storage.scan({ prefix: encodeKey([TOMB]) })) {
    for (const entry of page) {
      const tomb = readTombstone(entry.value);
      if (tomb.position === 0) continue;
      const parts = decodeKey(entry.key);
      index.add(
        tomb.position,
        parts[1] as string,
        parts[2] as string,
        tomb.expired ? EXPIRE : DELETE,
      );
    }
  }
  const [mark, gap] = await s.storage.getMany([FEED_MARK, FEED_GAP]);
  index.gap = readGap(gap ?? null);
  index.loaded(readMark(mark ?? null));
}

/**
 * Before tombstones are purged: what to write first (the high-water mark,
 * so positions never go back, and the purge marks, so a reader from before
 * them is told) and the by-position keys to remove with them.
 *
 * @param s The engine.
 * @param purged The tombstone entries about to be removed.
 * @returns The sets for the mark commit, and the extra deletes.
 */
export async function feedPurge(
  s: EngineCore,
  purged: readonly StorageEntry[],
): Promise<{ sets: StorageSet[]; deletes: Uint8Array[] }> {
  const index = s.feedIndex;
  const gap = s.shared ? readGap(await s.storage.get(FEED_GAP)) : index.gap;
  let { d, e } = gap;
  for (const entry of purged) {
    const tomb = readTombstone(entry.value);
    if (tomb.position === 0) continue;
    if (tomb.expired) e = Math.max(e, tomb.position);
    else d = Math.max(d, tomb.position);
  }
  // Shared storages: every deletion or expiry by-position key between the
  // old marks and the new ones goes (reads from there are refused): those of
  // the purged tombstones, and those a later put superseded without knowing
  // them (a put over a deleted key does not read its tombstone).
  const deletes: Uint8Array[] = [];
  const from = Math.min(gap.d, gap.e);
  const to = Math.max(d, e);
  if (s.shared && to > from) {
    for await (
      const page of s.storage.scan({
        start: positionKey(from + 1),
        end: positionKey(to + 1),
      })
    ) {
      for (const entry of page) {
        const change = readPosition(entry);
        if (change !== undefined && change.kind !== PUT) {
          deletes.push(entry.key);
        }
      }
    }
  }
  const sets: StorageSet[] = [];
  if (d !== gap.d || e !== gap.e) {
    sets.push({
      key: FEED_GAP,
      value: encodeUtf8(JSON.stringify({ d, e })),
    });
  }
  if (!s.shared) {
    sets.push({ key: FEED_MARK, value: encodeUtf8(String(index.top)) });
  }
  return { sets, deletes };
}

/**
 * After the purge marks are durable: the in-RAM index follows.
 *
 * @param s The engine.
 * @param purged The tombstone entries removed.
 * @param marks The sets written by {@linkcode feedPurge}.
 */
export function feedPurged(
  s: EngineCore,
  purged: readonly StorageEntry[],
  marks: readonly StorageSet[],
): void {
  const index = s.feedIndex;
  for (const set of marks) {
    if (set.key === FEED_GAP) index.gap = readGap(set as StorageEntry);
  }
  if (s.shared) return;
  for (const entry of purged) {
    const tomb = readTombstone(entry.value);
    if (tomb.position === 0) continue;
    const parts = decodeKey(entry.key);
    index.forget(parts[1] as string, parts[2] as string, tomb.position);
  }
}

/**
 * Reads the durable change feed of this engine.
 *
 * @param s The engine.
 * @param request The checked options.
 * @returns The changes.
 */
export function durableChanges<T>(
  s: EngineCore,
  request: FeedRequest,
): AsyncIterable<FeedChange<T>> {
  const host: FeedHost = {
    storage: s.storage,
    index: s.feedIndex,
    shared: s.shared,
    get closed() {
      return s.closed;
    },
    legacy: s.shared || s.feedLegacy,
    ready: () => feedIndexReady(s),
    docKey: (collection, id) => s.docKey(collection, id),
    tombKey,
    decode: (entry, action) => s.decode(entry, action),
    now: () => s.now(),
    onClose: (fn) => {
      s.onClose.push(fn);
      return () => {
        s.onClose = s.onClose.filter((f) => f !== fn);
      };
    },
  };
  return readChanges<T>(host, request);
}
