/**
 * Positions of the durable change feed (`changes({ since })`): how they are
 * assigned, where they are stored, and the in-RAM by-position index that
 * the local storages (memory, file) read the feed from.
 *
 * Every change (a put, a delete, an expiry) gets a position, a whole number
 * that only grows. It is stored with the change itself: in the record
 * envelope's `f` field for a put, in the tombstone `["t", collection, id]`
 * for a delete or an expiry. Local storages keep a by-position index in RAM,
 * rebuilt from those at load; shared storages (Deno KV) keep a counter key
 * checked by every commit and one `["q", position]` key per change. See
 * docs/changes.md for the guarantees, feed_format.ts and FORMAT.md for the
 * bytes.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import type {
  StorageCheck,
  StorageEntry,
  StorageSet,
} from "../storage/contract.ts";
import { FEED_MARK, type PositionEntry, PUT, readMark } from "./feed_format.ts";
import { IdFilter } from "./id_filter.ts";
import { byPosition } from "./position_order.ts";

/**
 * Tag bit of an entry indexed in bulk by {@linkcode FeedIndex.addDoc} and
 * not yet in the per-item map.
 */
const BULK = 4;

/** A commit still waiting to be durable. */
interface Pending {
  last: number;
  state: 0 | 1 | 2; // waiting, durable, taken back
  readonly durable: Promise<void> | undefined;
}

/**
 * Assigns positions, and on local storages indexes them in RAM.
 *
 * Local storages (one writer): the counter is in RAM, loaded as the highest
 * position stored (records, tombstones, {@linkcode FEED_MARK}); the index
 * holds each key's latest change. Shared storages: the counter is the
 * {@linkcode FEED_MARK} key, read before a write when this process's copy
 * may be stale, checked and rewritten by every commit with changes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FeedIndex } from "./feed_index.ts";
 * import { PUT } from "./feed_format.ts";
 * const index = new FeedIndex(false);
 * const f = index.next();
 * index.applied([f], ["c"], ["a"], [PUT], undefined);
 * const { entries } = index.after(0, 10, undefined);
 * assert.deepEqual(entries.map((e) => e.id), ["a"]);
 * ```
 */
export class FeedIndex {
  readonly #shared: boolean;
  /** Highest position assigned (or loaded). */
  #top = 0;
  /** Shared: the counter's versionstamp as last read or written. */
  #stamp: string | null | undefined = undefined;
  /** Positions up to this one belong to durable commits. */
  #visible = 0;
  /** Ascending positions of the entries (stale ones included). */
  #pos: number[] = [];
  /** Per entry: collection number * 8 + {@linkcode BULK} if so + kind. */
  #tag: number[] = [];
  /** Per entry: the item's key. */
  #ids: string[] = [];
  /** Collection names by number, and back. */
  #names: string[] = [];
  readonly #numbers = new Map<string, number>();
  /** The collection of the last entry added, and its number. */
  #lastName: string | undefined = undefined;
  #lastNumber = 0;
  /**
   * Per collection: item key -> its latest position, for every item but
   * those whose only entry is a bulk one ({@linkcode FeedIndex.addDoc}).
   * While bulk entries are held, a purged tombstone's item stays as its
   * negated position (so that an older bulk entry of it reads as stale).
   */
  readonly #latest: Map<string, number>[] = [];
  /** Bulk entries held (not in `#latest`). */
  #bulk = 0;
  /**
   * While bulk entries are held (and `#latest` is built): the ids in
   * `#latest`, so that a bulk entry's id is looked up only if it may be
   * there (a first lookup of each id read from a file cost ~1 µs).
   */
  #filter: IdFilter | undefined = undefined;
  /**
   * Items indexed: exact while no bulk entry is held; then at most twice
   * the number (an item written again after its bulk entry counts twice).
   */
  #live = 0;
  #sorted = true;
  /**
   * Whether `#latest` is kept up to date as entries are added. It starts
   * off: until a reader asks (`after`, `latest`, `size`), entries are only
   * appended, and `#latest` is built from them when first needed (a put
   * then costs three array pushes, not a map insertion; an open that
   * indexes a million records likewise).
   */
  #eager = false;
  /** Lazy: the highest position appended. */
  #maxAdded = 0;
  /**
   * Puts' entries are left out (`applied` skips them): the engine indexes
   * every document's position from the documents themselves when a reader
   * first asks. Deletes and expiries are always indexed.
   */
  deferPuts = false;
  /** The highest position of a document's put left out (0: none). */
  deferred = 0;
  /** Lazy: `forget` calls waiting for `#latest` to be built. */
  #forgotten: { n: number; id: string; position: number }[] = [];
  /** Lazy: how many entries before the next look at {@linkcode liveBound}. */
  #nextCheck = 1024;
  /**
   * At least the number of items (documents and tombstones) the storage
   * holds, for bounding the stale entries kept while `#latest` is not
   * built; the engine sets it. Without it, stale entries are dropped only
   * once a reader has asked.
   */
  liveBound: (() => number) | undefined = undefined;
  #pending: Pending[] = [];
  /** Purge marks (see {@linkcode FEED_GAP}). */
  gap: { d: number; e: number } = { d: 0, e: 0 };
  /** Bumped on every change a reader may wait for. */
  #version = 0;
  #waiters: (() => void)[] = [];

  /**
   * @param shared Whether other processes write the storage (then the index
   *   holds nothing: readers scan the by-position keys).
   */
  constructor(shared: boolean) {
    this.#shared = shared;
  }

  /** The highest position assigned or loaded. */
  get top(): number {
    return this.#top;
  }

  /** Positions up to this one are durable (local storages). */
  get visible(): number {
    return this.#visible;
  }

  /** Changes readers may wait for (see {@linkcode FeedIndex.wait}). */
  get version(): number {
    return this.#version;
  }

  /** Entries held, stale ones (of items changed since) included. */
  get held(): number {
    return this.#pos.length;
  }

  /** Items indexed (one entry each). */
  get size(): number {
    this.#ensureEager();
    this.#merge();
    return this.#live;
  }

  /**
   * The next position (an integer assignment).
   *
   * @returns A position above every position assigned before.
   */
  next(): number {
    return ++this.#top;
  }

  /**
   * Shared storages: whether the counter must be read before assigning.
   *
   * @returns `true` when this process's copy may be stale.
   */
  get stale(): boolean {
    return this.#shared && this.#stamp === undefined;
  }

  /**
   * Shared storages: takes the counter as read from the storage.
   *
   * @param entry The entry under {@linkcode FEED_MARK}, or `null`.
   */
  counterRead(entry: StorageEntry | null): void {
    this.#top = Math.max(this.#top, readMark(entry));
    this.#stamp = entry?.versionstamp ?? null;
  }

  /**
   * Shared storages: the check and set that a commit whose changes took
   * positions up to `last` adds, so that commits take positions in commit
   * order.
   *
   * @returns The check and the set.
   */
  counterWrite(): { check: StorageCheck; set: StorageSet } {
    return {
      check: { key: FEED_MARK, versionstamp: this.#stamp ?? null },
      set: { key: FEED_MARK, value: encodeUtf8(String(this.#top)) },
    };
  }

  /**
   * After a commit: on a shared storage the counter's new versionstamp (or,
   * when it failed, that the copy is stale); on a local one the entries are
   * appended and become visible once `durable` resolves.
   *
   * @param positions The commit's positions, ascending.
   * @param collections Their collections (one name: all of them).
   * @param ids Their item keys.
   * @param kinds Their kinds.
   * @param durable The storage's `durable` promise, if it gave one.
   * @param versionstamp The commit's versionstamp (shared storages).
   * @returns How many items the index holds more (or fewer) than before.
   */
  applied(
    positions: readonly number[],
    collections: string | readonly string[],
    ids: readonly string[],
    kinds: readonly number[],
    durable: Promise<void> | undefined,
    versionstamp?: string,
  ): number {
    if (this.#shared) {
      if (positions.length > 0 && versionstamp !== undefined) {
        this.#stamp = versionstamp;
      }
      this.#bump();
      return 0;
    }
    const before = this.#live;
    for (let i = 0; i < positions.length; i++) {
      const position = positions[i]!;
      if (this.deferPuts && kinds[i] === PUT) {
        if (position > this.deferred) this.deferred = position;
        continue;
      }
      this.add(
        position,
        typeof collections === "string" ? collections : collections[i]!,
        ids[i]!,
        kinds[i]!,
      );
    }
    if (positions.length === 0) return 0;
    const last = positions[positions.length - 1]!;
    this.#durable(last, durable);
    this.#compactSoon();
    return this.#live - before;
  }

  /**
   * {@linkcode FeedIndex.applied} for a commit of one change on a local
   * storage (no arrays; shared storages use `applied`).
   *
   * @param position The change's position.
   * @param collection Its collection.
   * @param id The item's key.
   * @param kind {@linkcode PUT}, {@linkcode DELETE} or {@linkcode EXPIRE}.
   * @param durable The storage's `durable` promise, if any.
   */
  appliedOne(
    position: number,
    collection: string,
    id: string,
    kind: number,
    durable: Promise<void> | undefined,
  ): void {
    if (this.#shared) throw new Error("appliedOne: local storages only");
    if (this.deferPuts && kind === PUT) {
      if (position > this.deferred) this.deferred = position;
    } else {
      this.add(position, collection, id, kind);
    }
    this.#durable(position, durable);
    this.#compactSoon();
  }

  /** Shared storages: the counter may have moved (a commit failed). */
  failed(): void {
    if (this.#shared) this.#stamp = undefined;
  }

  #durable(last: number, durable: Promise<void> | undefined): void {
    if (durable === undefined && this.#pending.length === 0) {
      if (last > this.#visible) this.#visible = last;
      this.#bump();
      return;
    }
    // Commits of one group share a `durable` promise: one entry for them.
    const tail = this.#pending.at(-1);
    if (
      tail !== undefined && durable !== undefined && tail.durable === durable
    ) {
      tail.last = last;
      return;
    }
    const held: Pending = {
      last,
      state: durable === undefined ? 1 : 0,
      durable,
    };
    this.#pending.push(held);
    if (durable === undefined) return this.#drain();
    durable.then(
      () => {
        held.state = 1;
        this.#drain();
      },
      () => {
        held.state = 2;
        this.#drain();
      },
    );
  }

  #drain(): void {
    let i = 0;
    const pending = this.#pending;
    while (i < pending.length && pending[i]!.state !== 0) {
      const { last, state } = pending[i++]!;
      if (state === 1 && last > this.#visible) this.#visible = last;
    }
    if (i > 0) {
      pending.splice(0, i);
      this.#bump();
    }
  }

  /**
   * Indexes one change (at load, or after its commit): it becomes the
   * item's latest.
   *
   * @param position The position.
   * @param collection The collection.
   * @param id The item's key.
   * @param kind {@linkcode PUT}, {@linkcode DELETE} or {@linkcode EXPIRE}.
   */
  add(position: number, collection: string, id: string, kind: number): void {
    this.#append(position, collection, id, kind, false);
  }

  /**
   * Indexes a document's put in bulk, before the first read: its id is
   * kept out of the per-item map, so the first read does not hash every
   * id (inserting a few hundred thousand fresh id strings into a map was
   * most of a gateway's first change-feed read). The caller promises that
   * the collection holds one such entry per id (each live document once,
   * at its current position); later writes of the item are indexed with
   * {@linkcode FeedIndex.add} and make it stale.
   *
   * @param position The document's position.
   * @param collection The collection.
   * @param id The document's key.
   */
  addDoc(position: number, collection: string, id: string): void {
    this.#append(position, collection, id, PUT, !this.#eager);
  }

  #append(
    position: number,
    collection: string,
    id: string,
    kind: number,
    bulk: boolean,
  ): void {
    let n = collection === this.#lastName
      ? this.#lastNumber
      : this.#numbers.get(collection);
    if (n === undefined) {
      n = this.#names.length;
      this.#names.push(collection);
      this.#numbers.set(collection, n);
      this.#latest.push(new Map());
    }
    this.#lastName = collection;
    this.#lastNumber = n;
    if (this.#eager) {
      const latest = this.#latest[n]!;
      const was = latest.get(id);
      if (was !== undefined && was >= position) return;
      // (An item whose bulk entry is not in the map counts twice.)
      if (was === undefined || was < 0) this.#live++;
      latest.set(id, position);
      if (was === undefined && this.#filter !== undefined) {
        this.#filter.add(id, n);
        if (this.#filter.full) this.#refilter();
      }
    } else if (position > this.#maxAdded) {
      this.#maxAdded = position;
    }
    if (bulk) this.#bulk++;
    const pos = this.#pos;
    if (pos.length > 0 && pos[pos.length - 1]! > position) this.#sorted = false;
    pos.push(position);
    this.#tag.push(n * 8 + (bulk ? BULK : 0) + kind);
    this.#ids.push(id);
    if (position > this.#top) this.#top = position;
  }

  /**
   * Drops an item's entry if `position` is still its latest (its tombstone
   * was purged).
   *
   * @param collection The collection.
   * @param id The item's key.
   * @param position The purged tombstone's position.
   * @returns Whether the entry went.
   */
  forget(collection: string, id: string, position: number): boolean {
    const n = this.#numbers.get(collection);
    if (n === undefined) return false;
    if (!this.#eager) {
      // Applied when `#latest` is built: it goes if still the latest then.
      this.#forgotten.push({ n, id, position });
      return true;
    }
    if (!this.#forgetIn(n, id, position)) return false;
    this.#compactSoon();
    return true;
  }

  /** `forget` on `#latest` (built). */
  #forgetIn(n: number, id: string, position: number): boolean {
    const latest = this.#latest[n]!;
    if (latest.get(id) !== position) return false;
    // An older bulk entry of the item must still read as stale.
    if (this.#bulk > 0) latest.set(id, -position);
    else latest.delete(id);
    this.#live--;
    return true;
  }

  /**
   * The latest position of an item, if indexed: `undefined` also for an
   * item whose latest change is its bulk entry ({@linkcode FeedIndex.addDoc}).
   *
   * @param collection The collection.
   * @param id The item's key.
   * @returns Its position.
   */
  latest(collection: string, id: string): number | undefined {
    this.#ensureEager();
    const n = this.#numbers.get(collection);
    const latest = n === undefined ? undefined : this.#latest[n]!.get(id);
    return latest === undefined || latest < 0 ? undefined : latest;
  }

  /**
   * Forgets every entry (before a reload); the counter and what waits to be
   * durable stay, so positions never go back.
   */
  reset(): void {
    this.#pos = [];
    this.#tag = [];
    this.#ids = [];
    this.#names = [];
    this.#numbers.clear();
    this.#lastName = undefined;
    this.#latest.length = 0;
    this.#live = 0;
    this.#bulk = 0;
    this.#filter = undefined;
    this.#sorted = true;
    this.#maxAdded = 0;
    this.deferred = 0;
    this.#forgotten = [];
    this.#nextCheck = 1024;
  }

  /**
   * At load: a document's put at `position` is left out, to be indexed
   * when a reader first asks; the top and the visible bound count it now.
   *
   * @param position Its position.
   */
  defer(position: number): void {
    if (position > this.deferred) this.deferred = position;
    if (position > this.#top) this.#top = position;
  }

  /**
   * After a load: sorts what was added, raises the counter to `mark`, and
   * makes everything loaded visible (except behind a commit that still
   * waits to be durable).
   *
   * @param mark The stored {@linkcode FEED_MARK}.
   */
  loaded(mark: number): void {
    if (mark > this.#top) this.#top = mark;
    let max = this.#maxAdded;
    if (this.#eager) {
      this.#sort();
      max = this.#pos.length === 0 ? 0 : this.#pos[this.#pos.length - 1]!;
    }
    if (this.deferred > max) max = this.deferred;
    // A commit still waiting to be durable keeps its positions hidden.
    const waiting = this.#pending.find((p) => p.state === 0);
    const upTo = waiting === undefined ? max : Math.min(max, waiting.last - 1);
    if (upTo > this.#visible) this.#visible = upTo;
    this.#bump();
  }

  #sort(): void {
    if (this.#sorted) return;
    const pos = this.#pos;
    const order = byPosition(pos);
    this.#pos = order.map((i) => pos[i]!);
    const tag = this.#tag;
    this.#tag = order.map((i) => tag[i]!);
    const ids = this.#ids;
    this.#ids = order.map((i) => ids[i]!);
    this.#sorted = true;
  }

  /** Builds `#latest` from the entries, and keeps it up to date from then on. */
  #ensureEager(): void {
    if (this.#eager) return;
    this.#build();
    this.#eager = true;
  }

  /**
   * `#latest` (and `#live`) from the entries and the waiting `forget`s;
   * bulk entries stay out of it.
   */
  #build(): void {
    this.#sort();
    const latest = this.#latest;
    for (const map of latest) map.clear();
    const pos = this.#pos;
    const tag = this.#tag;
    const ids = this.#ids;
    let live = 0;
    // Ascending positions: the last entry of an item is its latest.
    for (let i = 0; i < pos.length; i++) {
      const t = tag[i]!;
      if ((t & BULK) !== 0) continue;
      const map = latest[t >> 3]!;
      if (map.size === map.set(ids[i]!, pos[i]!).size) continue;
      live++;
    }
    // (An item with a bulk entry and others counts twice.)
    if (this.#bulk > 0) live += this.#bulk;
    this.#crossCheck();
    this.#live = live;
    for (const { n, id, position } of this.#forgotten) {
      this.#forgetIn(n, id, position);
    }
    this.#forgotten = [];
  }

  /**
   * Puts into `#latest` the bulk entries of items that have other entries
   * too (a tombstone left by an earlier delete, a delete or a put since),
   * where the bulk one is the later. Only those ids are hashed into a map:
   * a bulk id is looked up only when its hash (computed here, cheaply)
   * is among theirs.
   */
  #crossCheck(): void {
    this.#filter = undefined;
    if (this.#bulk === 0) return;
    const filter = this.#refilter();
    const latest = this.#latest;
    let others = 0;
    for (const map of latest) others += map.size;
    if (others === 0) return;
    const pos = this.#pos;
    this.#forBulk((i, id, n) => {
      if (!filter.has(id, n)) return;
      const map = latest[n]!;
      const was = map.get(id);
      if (was !== undefined && was < pos[i]!) map.set(id, pos[i]!);
    });
  }

  /** Calls `visit` with each bulk entry's index, id and collection number. */
  #forBulk(visit: (i: number, id: string, n: number) => void): void {
    const tag = this.#tag;
    const ids = this.#ids;
    for (let i = 0; i < tag.length; i++) {
      const t = tag[i]!;
      if ((t & BULK) !== 0) visit(i, ids[i]!, t >> 3);
    }
  }

  /**
   * A new filter of the ids in `#latest` (for the bulk entries' lookups),
   * sized for twice as many.
   */
  #refilter(): IdFilter {
    const latest = this.#latest;
    let size = 0;
    for (const map of latest) size += map.size;
    const filter = new IdFilter(2 * size);
    for (let n = 0; n < latest.length; n++) {
      for (const id of latest[n]!.keys()) filter.add(id, n);
    }
    return this.#filter = filter;
  }

  /**
   * Puts every bulk entry into `#latest` (the item's latest unless a later
   * change or a purge is there) and drops the purge markers: `#live`
   * is exact again.
   */
  #merge(): void {
    if (this.#bulk === 0) return;
    const latest = this.#latest;
    const pos = this.#pos;
    const tag = this.#tag;
    this.#forBulk((i, id, n) => {
      tag[i] = tag[i]! & ~BULK;
      const map = latest[n]!;
      if (!map.has(id)) map.set(id, pos[i]!);
    });
    this.#bulk = 0;
    this.#filter = undefined;
    let live = 0;
    for (const map of latest) {
      for (const [id, position] of map) {
        if (position < 0) map.delete(id);
      }
      live += map.size;
    }
    this.#live = live;
  }

  /** Drops stale entries once they outnumber the live ones. */
  #compactSoon(): void {
    const n = this.#pos.length;
    if (!this.#eager) {
      // Without `#latest`: look at the engine's bound now and then, and
      // build `#latest` only to drop what it shows to be stale.
      if (n < this.#nextCheck) return;
      const bound = this.liveBound?.() ?? n;
      if (n < 2 * bound) {
        this.#nextCheck = Math.max(n + 1024, 2 * bound);
        return;
      }
      this.#build();
      this.#drop();
      for (const map of this.#latest) map.clear();
      this.#nextCheck = Math.max(1024, 2 * this.#pos.length);
      return;
    }
    if (n < 1024 || n < 2 * this.#live) return;
    this.#drop();
  }

  /** Keeps only each item's latest entry (`#latest` built, entries sorted). */
  #drop(): void {
    this.#merge();
    const n = this.#pos.length;
    this.#sort();
    const pos: number[] = [];
    const tag: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const t = this.#tag[i]!;
      const id = this.#ids[i]!;
      if (this.#latest[t >> 3]!.get(id) !== this.#pos[i]) continue;
      pos.push(this.#pos[i]!);
      tag.push(t);
      ids.push(id);
    }
    this.#pos = pos;
    this.#tag = tag;
    this.#ids = ids;
  }

  /**
   * The latest changes of items after `since` and up to the visible
   * position, in position order.
   *
   * @param since Exclusive lower bound.
   * @param limit Most entries returned.
   * @param collections Only these (all when `undefined`).
   * @returns The entries; `next`, the last position examined; `done` when
   *   every visible entry was examined; `blocked` when an entry was
   *   superseded by a write that is not durable yet (wait, then read again).
   */
  after(
    since: number,
    limit: number,
    collections: ReadonlySet<string> | undefined,
  ): {
    entries: PositionEntry[];
    next: number;
    done: boolean;
    blocked: boolean;
  } {
    this.#ensureEager();
    this.#sort();
    const pos = this.#pos;
    let lo = 0;
    let hi = pos.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pos[mid]! <= since) lo = mid + 1;
      else hi = mid;
    }
    const entries: PositionEntry[] = [];
    const visible = this.#visible;
    let next = since;
    for (let i = lo; i < pos.length; i++) {
      if (entries.length >= limit) {
        return { entries, next, done: false, blocked: false };
      }
      const position = pos[i]!;
      if (position > visible) break;
      const t = this.#tag[i]!;
      const id = this.#ids[i]!;
      const n = t >> 3;
      const latest = (t & BULK) !== 0 && this.#filter?.has(id, n) === false
        ? undefined
        : this.#latest[n]!.get(id);
      // A bulk entry is its item's latest unless the map says otherwise.
      if (latest !== position && (latest !== undefined || (t & BULK) === 0)) {
        if (latest !== undefined && latest > visible) {
          return { entries, next, done: true, blocked: true };
        }
        next = position;
        continue;
      }
      next = position;
      const collection = this.#names[n]!;
      if (collections !== undefined && !collections.has(collection)) continue;
      entries.push({ position, collection, id, kind: t & 3 });
    }
    return { entries, next, done: true, blocked: false };
  }

  /** Wakes every reader waiting for a change. */
  #bump(): void {
    this.#version++;
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Wakes readers (a remote change was seen, or the database closes). */
  wake(): void {
    this.#bump();
  }

  /**
   * Waits until {@linkcode FeedIndex.version} is past `version`.
   *
   * @param version The version the reader last read.
   * @returns When something changed (at once if it already did).
   */
  wait(version: number): Promise<void> {
    if (this.#version !== version) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
