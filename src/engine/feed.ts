/**
 * The reader of the durable change feed: `changes({ since })` on a
 * collection or a database. Positions, their storage and the in-RAM index
 * are in feed_index.ts; docs/changes.md states the guarantees.
 *
 * @module
 */

import { FeedGapError, IntegrityError } from "../errors.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import { copyValue, recordMeta, type StoredRecord } from "../value_codec.ts";
import type { Storage, StorageEntry } from "../storage/contract.ts";
import type { FeedChange } from "../types.ts";
import {
  BY_POSITION,
  DELETE,
  EXPIRE,
  FEED_GAP,
  FEED_MARK,
  type PositionEntry,
  PUT,
  readGap,
  readMark,
  readTombstone,
} from "./feed_format.ts";
import type { FeedIndex } from "./feed_index.ts";
import { readPositions } from "./feed_block.ts";

/** Entries read per step. */
const BATCH = 256;
/** How often a live read of a shared storage looks for other processes' commits, ms. */
const POLL_MS = 250;

/** What the feed reader needs from the engine. */
export interface FeedHost {
  /** The storage. */
  readonly storage: Storage;
  /** Positions (and, on local storages, the in-RAM index). */
  readonly index: FeedIndex;
  /** Whether other processes write the storage (read by-position keys). */
  readonly shared: boolean;
  /** Whether the database is closed. */
  readonly closed: boolean;
  /** Whether records written before the feed may exist. */
  readonly legacy: boolean;
  /** Resolves once `index` holds every change (local storages). */
  ready?(): Promise<void>;
  /** `["d", collection, id]`, encoded. */
  docKey(collection: string, id: string): Uint8Array;
  /** `["t", collection, id]`, encoded. */
  tombKey(collection: string, id: string): Uint8Array;
  /** Decodes a document entry (its memo when the storage kept one). */
  decode(entry: StorageEntry, action: string): StoredRecord;
  /** The current time. */
  now(): number;
  /** Runs `fn` on close; returns a function that unregisters it. */
  onClose(fn: () => void): () => void;
}

/** A checked `changes()` request. */
export interface FeedRequest {
  /** The parsed `since`. */
  readonly since: Since;
  /** Most changes yielded. */
  readonly limit: number;
  /** Ends the iteration. */
  readonly signal: AbortSignal | undefined;
  /** Wait for new changes once caught up. */
  readonly live: boolean;
  /** Yield expiries too. */
  readonly expiries: boolean;
  /** Only these collections (all when `undefined`). */
  readonly collections: readonly string[] | undefined;
  /** For error messages. */
  readonly action: string;
}

/** Where a read starts. */
export interface Since {
  /** The text given (`undefined`: from the start). */
  readonly text: string | undefined;
  /** Changes after this position (0 for the start and legacy cursors). */
  readonly position: number;
  /**
   * Records without a position are read first, in key order, after this
   * key (`null`: from the first); `undefined` when past them.
   */
  readonly legacyAfter: Uint8Array | null | undefined;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function unhex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/**
 * Parses a `since` (a {@linkcode FeedChange.seq}).
 *
 * @param since The text, or `undefined` for the start.
 * @param action For error messages.
 * @returns The start.
 * @throws {TypeError} When it is not a string.
 * @throws {RangeError} When it is not a position this feed writes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSince } from "./feed.ts";
 * assert.equal(parseSince("42", "read").position, 42);
 * assert.throws(() => parseSince("-1", "read"), RangeError);
 * ```
 */
export function parseSince(since: unknown, action: string): Since {
  if (since === undefined) {
    return { text: undefined, position: 0, legacyAfter: null };
  }
  if (typeof since !== "string") {
    throw new TypeError(
      `${action}: since must be a seq string from a change, got ${typeof since}`,
    );
  }
  if (/^[1-9][0-9]{0,15}$/.test(since)) {
    const position = Number(since);
    if (Number.isSafeInteger(position)) {
      return { text: since, position, legacyAfter: undefined };
    }
  }
  if (since === "0") return { text: since, position: 0, legacyAfter: null };
  if (since.startsWith("0.")) {
    const key = unhex(since.slice(2));
    if (key !== undefined && key.length > 0) {
      return { text: since, position: 0, legacyAfter: key };
    }
  }
  throw new RangeError(
    `${action}: since '${
      since.slice(0, 40)
    }' is not a position of this feed (pass the seq of a change)`,
  );
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/**
 * Reads the durable change feed (see {@linkcode FeedRequest}).
 *
 * @param host The engine.
 * @param request The checked options.
 * @returns The changes, in position order.
 * @throws {FeedGapError} When changes after `since` may be gone, or the
 *   database never reached `since`.
 */
export async function* readChanges<T>(
  host: FeedHost,
  request: FeedRequest,
): AsyncGenerator<FeedChange<T>> {
  const { signal, live, expiries, action } = request;
  if (signal?.aborted === true || host.closed) return;
  await host.ready?.();
  if ((signal?.aborted as boolean | undefined) === true || host.closed) return;
  const index = host.index;
  const { storage } = host;
  const wanted = request.collections === undefined
    ? undefined
    : new Set(request.collections);
  let left = request.limit;
  let stopped = false;
  let wakeStop: (() => void) | undefined;
  const stopping = new Promise<void>((resolve) => wakeStop = resolve);
  const stop = () => {
    stopped = true;
    wakeStop!();
  };
  signal?.addEventListener("abort", stop, { once: true });
  const unregister = host.onClose(stop);
  const remote = new AbortController();
  let watching: Promise<void> | undefined;
  const gapOf = async (): Promise<{ d: number; e: number }> =>
    host.shared ? readGap(await storage.get(FEED_GAP)) : index.gap;
  const behind = (gap: { d: number; e: number }) =>
    expiries ? Math.max(gap.d, gap.e) : gap.d;
  try {
    const since = request.since;
    const startGap = behind(await gapOf());
    if (since.text !== undefined) {
      if (startGap > since.position) {
        throw new FeedGapError(
          `${action}: cannot resume since '${since.text}': the markers of deletions${
            expiries ? " and expiries" : ""
          } up to position ${startGap} were purged (tombstoneRetention); resync: read changes() without since and resume from its positions`,
          since.text,
          String(startGap),
        );
      }
      const top = host.shared
        ? readMark(await storage.get(FEED_MARK))
        : index.top;
      if (since.position > top) {
        throw new FeedGapError(
          `${action}: cannot resume since '${since.text}': this database's feed only reaches position ${top} (was it replaced by an older copy?); resync: read changes() without since`,
          since.text,
          String(top),
        );
      }
    }
    // 1. Records written before the feed existed (position 0), key order.
    if (since.legacyAfter !== undefined && host.legacy) {
      const prefixes = wanted === undefined
        ? [encodeKey(["d"])]
        : [...wanted].sort().map((c) => encodeKey(["d", c]));
      const after = since.legacyAfter;
      for (const prefix of prefixes) {
        const options = after === null
          ? { prefix }
          : { prefix, start: successor(after) };
        for await (const page of storage.scan(options)) {
          if (stopped) return;
          const now = host.now();
          for (const entry of page) {
            let record: StoredRecord;
            try {
              // A structured entry (Deno KV) has its record: no bytes made.
              const meta = entry.memo === undefined
                ? recordMeta(entry.value)
                : undefined;
              if (meta !== undefined && meta.feed > 0) continue;
              record = host.decode(entry, action);
            } catch (e) {
              // A damaged document: whether it had a position is unknown
              // here; if it had one, the pass by position reports it.
              if (e instanceof IntegrityError) continue;
              throw e;
            }
            if ((record.feed ?? 0) > 0) continue;
            if (record.expiresAt !== undefined && now >= record.expiresAt) {
              continue;
            }
            const parts = decodeKey(entry.key);
            yield {
              seq: `0.${hex(entry.key)}`,
              type: "put",
              collection: parts[1] as string,
              key: parts[2] as string,
              version: record.version,
              doc: copyValue(record.value) as T,
            };
            if (--left === 0 || stopped) return;
          }
        }
      }
    }
    // 2. Changes by position.
    let at = since.position;
    for (;;) {
      if (stopped || host.closed) return;
      const version = index.version;
      let entries: PositionEntry[];
      let caughtUp: boolean;
      let blocked = false;
      let damaged: unknown;
      if (host.shared) {
        entries = [];
        let raw = 0;
        scan: for await (
          const page of storage.scan({
            prefix: encodeKey([BY_POSITION]),
            start: encodeKey([BY_POSITION, at + 1]),
            limit: BATCH,
          })
        ) {
          for (const entry of page) {
            raw++;
            // One change, or a block of a bulk write's puts (feed_block.ts).
            try {
              for (const e of readPositions(entry)) {
                if (e.position > at) entries.push(e);
              }
            } catch (e) {
              // Written over: the changes before it go out first.
              damaged = e;
              break scan;
            }
          }
        }
        caughtUp = raw < BATCH;
      } else {
        // A reload (refresh, restore) may have left positions for later.
        await host.ready?.();
        const found = index.after(at, BATCH, wanted);
        entries = found.entries;
        caughtUp = found.done;
        blocked = found.blocked;
        if (entries.length === 0) at = Math.max(at, found.next);
      }
      // A purge that removed markers ahead of `at` was recorded first.
      const gap = behind(await gapOf());
      if (gap > at && (since.text !== undefined || gap > startGap)) {
        throw new FeedGapError(
          `${action}: fell behind: the markers of deletions${
            expiries ? " and expiries" : ""
          } up to position ${gap} were purged before they were read (position ${at}; tombstoneRetention); resync: read changes() without since`,
          String(at),
          String(gap),
        );
      }
      const keep = entries.filter((e) =>
        (wanted === undefined || wanted.has(e.collection)) &&
        (expiries || e.kind !== EXPIRE)
      );
      const keys = keep.map((e) =>
        e.kind === PUT
          ? host.docKey(e.collection, e.id)
          : host.tombKey(e.collection, e.id)
      );
      // A shared storage leaves a deletion's tombstone when the key is put
      // again (Deno KV): read the documents too, to see a newer put.
      const docAt = new Map<unknown, number>();
      if (host.shared) {
        const n = keys.length;
        for (let i = 0; i < n; i++) {
          const e = keep[i]!;
          if (e.kind === PUT) continue;
          docAt.set(e, keys.length);
          keys.push(host.docKey(e.collection, e.id));
        }
      }
      const found = keys.length === 0 ? [] : await storage.getMany(keys);
      const now = host.now();
      let wait = blocked;
      let k = 0;
      for (const e of entries) {
        if (stopped) return;
        if (keep[k] !== e) {
          at = e.position;
          continue;
        }
        let entry = found[k++] ?? null;
        const at2 = docAt.get(e);
        let change: FeedChange<T> | null | undefined;
        try {
          if (at2 !== undefined && entry !== null) {
            const doc = found[at2] ?? null;
            if (
              doc !== null &&
              (host.decode(doc, action).feed ?? 0) > e.position
            ) {
              entry = null; // put again since: superseded
            }
          }
          change = current<T>(host, e, entry, now, action);
        } catch (cause) {
          throw unreadable(cause, e, action);
        }
        if (change === undefined) {
          // Superseded; on a local storage by a write that may not be
          // durable yet: wait for it rather than skip what it replaced.
          if (!host.shared) {
            const latest = index.latest(e.collection, e.id);
            if (latest !== undefined && latest > index.visible) {
              wait = true;
              break;
            }
          }
          at = e.position;
          continue;
        }
        at = e.position;
        if (change !== null) {
          yield change;
          if (--left === 0) return;
        }
      }
      if (damaged !== undefined) throw damaged;
      if (!wait && !caughtUp) continue;
      if (!live && !wait) return;
      if (host.shared && watching === undefined && storage.watch) {
        watching = (async () => {
          for await (const _ of storage.watch!([FEED_MARK], remote.signal)) {
            index.wake();
          }
        })().catch(() => {});
      }
      if (!host.shared) {
        await Promise.race([index.wait(version), stopping]);
        continue;
      }
      // Deno KV: `kv.watch` does not see other processes' commits on a
      // local KV file, so a shared storage is also read again each
      // POLL_MS (one by-position list call).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        index.wait(version),
        stopping,
        new Promise<void>((resolve) => timer = setTimeout(resolve, POLL_MS)),
      ]);
      clearTimeout(timer);
    }
  } catch (e) {
    // Closed while reading (Deno KV then fails with its own error): the
    // iteration just ends, as on close while waiting.
    if (host.closed) return;
    throw e;
  } finally {
    signal?.removeEventListener("abort", stop);
    unregister();
    remote.abort();
    await watching;
  }
}

/**
 * The error for a change the feed cannot read (an item another program
 * overwrote on Deno KV, a record that does not decode): an
 * `IntegrityError` naming the change and carrying its position as `seq`,
 * so that a consumer can resume after it. Other errors pass unchanged.
 */
function unreadable(cause: unknown, e: PositionEntry, action: string): unknown {
  if (!(cause instanceof IntegrityError) || cause.seq !== undefined) {
    return cause;
  }
  const seq = String(e.position);
  const what = e.kind === PUT
    ? "a put"
    : e.kind === DELETE
    ? "a deletion"
    : "an expiry";
  const item = `${what} of ${JSON.stringify(e.id)} in '${e.collection}'`;
  return new IntegrityError(
    `${action}: the change at position ${seq} (${item}) cannot be read: ${cause.message}; delete or replace that item, or resume after it with since: '${seq}'`,
    { cause, seq },
  );
}

/**
 * The change an entry stands for if it is still the item's latest:
 * `undefined` when superseded, `null` when current but hidden (a put that
 * has expired and waits for the sweeper).
 */
function current<T>(
  host: FeedHost,
  e: PositionEntry,
  entry: StorageEntry | null,
  now: number,
  action: string,
): FeedChange<T> | null | undefined {
  if (entry === null) return undefined;
  const seq = String(e.position);
  if (e.kind === PUT) {
    const record = host.decode(entry, action);
    if (record.feed !== e.position) return undefined;
    if (record.expiresAt !== undefined && now >= record.expiresAt) return null;
    return {
      seq,
      type: "put",
      collection: e.collection,
      key: e.id,
      version: record.version,
      doc: copyValue(record.value) as T,
    };
  }
  const tomb = readTombstone(entry.value);
  if (tomb.position !== e.position) return undefined;
  if (tomb.expired !== (e.kind === EXPIRE)) return undefined;
  return {
    seq,
    type: e.kind === DELETE ? "delete" : "expire",
    collection: e.collection,
    key: e.id,
    version: tomb.version,
  };
}

/** Collection names as `db.collection()` accepts them. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Checks the options of `changes()` (before anything is read).
 *
 * @param options The caller's options (already checked for unknown names).
 * @param action For error messages.
 * @param collections The collections to follow (`undefined`: all).
 * @returns The request.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When `limit` is not a whole number >= 1 or `since`
 *   is not a position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkChanges } from "./feed.ts";
 * const request = checkChanges({ since: "7", live: false }, "read", ["r"]);
 * assert.equal(request.since.position, 7);
 * assert.throws(() => checkChanges({ limit: 0 }, "read", undefined), RangeError);
 * ```
 */
export function checkChanges(
  options: {
    readonly since?: unknown;
    readonly limit?: unknown;
    readonly signal?: unknown;
    readonly live?: unknown;
    readonly expiries?: unknown;
  },
  action: string,
  collections: readonly string[] | undefined,
): FeedRequest {
  const { limit, signal, live, expiries } = options;
  if (
    limit !== undefined &&
    (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1)
  ) {
    if (typeof limit !== "number") {
      throw new TypeError(
        `${action}: limit must be a whole number >= 1, got ${typeof limit}`,
      );
    }
    throw new RangeError(
      `${action}: limit must be a whole number >= 1, got ${limit}`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${action}: signal must be an AbortSignal`);
  }
  for (const [name, value] of [["live", live], ["expiries", expiries]]) {
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(
        `${action}: ${name} must be a boolean, got ${typeof value}`,
      );
    }
  }
  if (collections !== undefined) {
    if (!Array.isArray(collections)) {
      throw new TypeError(
        `${action}: collections must be an array of collection names`,
      );
    }
    for (const name of collections) {
      if (typeof name !== "string" || !NAME.test(name)) {
        throw new TypeError(
          `${action}: collections must be collection names, got ${
            typeof name === "string" ? `'${name}'` : typeof name
          }`,
        );
      }
    }
  }
  return {
    since: parseSince(options.since, action),
    limit: (limit as number | undefined) ?? Infinity,
    signal: signal as AbortSignal | undefined,
    live: live !== false,
    expiries: expiries === true,
    collections: collections === undefined ? undefined : [...collections],
    action,
  };
}
