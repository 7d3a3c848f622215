/**
 * `relay(db, options)`: store-and-forward of collections' changes to a
 * `receive` endpoint or another database, resumable from a checkpoint kept
 * in the source database.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import { ClosedError, IntegrityError } from "../errors.ts";
import { StringIndex } from "../string_index.ts";
import {
  type ChangeSource,
  type ReceiveResult,
  RELAY_COLLECTION,
  type RelayBatch,
  type RelayChange,
  toWire,
} from "./protocol.ts";
import { applyBatch } from "./receive.ts";
import { backoff, defaultSleep } from "./retry.ts";
import { checkRelayOptions, type RelaySpec } from "./relay_check.ts";
import type {
  Relay,
  RelayDeps,
  RelayOptions,
  RelayStats,
  UnreadableChange,
} from "./relay_options.ts";
import { HttpError, keepText, postBatch, wireTexts } from "./relay_post.ts";
import {
  deliverSplitting,
  isRefusal,
  Refusal,
  setAside,
} from "./relay_refused.ts";
import { knownStream } from "./streams.ts";

interface Page {
  readonly spec: RelaySpec;
  readonly changes: RelayChange[];
  /** The position after the last change read (sent or skipped). */
  readonly last: string | undefined;
  readonly bytes: number;
  /** When it was read (`clock.now()`). */
  at: number;
}

/** A waiter of `idle()`. */
interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

/** The checkpoint document in `_relay`. */
interface Checkpoint {
  readonly origin: string;
  readonly positions: Record<string, string>;
}

/**
 * Starts a relay with injected dependencies (the public `relay` passes the
 * database's change feed).
 *
 * @param db The source database.
 * @param options What and where.
 * @param deps The change source, sleep and random.
 * @returns The running relay.
 * @throws {TypeError} When an option is malformed.
 * @throws {RangeError} When a number is out of range.
 */
export function startRelay(
  db: Database,
  options: RelayOptions,
  deps: RelayDeps,
): Relay {
  const {
    specs,
    to,
    isUrl,
    token,
    name,
    originName,
    batchSize,
    maxBatchBytes,
    maxBytesPerSecond,
    retry,
    onRefused,
    maxRefusedInARow,
    timeout,
    fetchFn,
    clock,
    logger,
    signal,
  } = checkRelayOptions(db, options);
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const source = deps.source;
  const checkpoints = db.collection<Checkpoint>(RELAY_COLLECTION);
  const stop = new AbortController();
  const onAbort = () => void close();
  signal?.addEventListener("abort", onAbort, { once: true });

  let checkpoint: Checkpoint | undefined;
  /**
   * Where the next page of each collection is read from: ahead of the
   * checkpoint by the pages read and not yet acknowledged.
   */
  let readAt: Record<string, string> = {};
  /** Pages read and not yet acknowledged, oldest first (at most two). */
  const unacked: Page[] = [];
  /** Settles once the page being sent is acknowledged (or given up at close). */
  let inFlight: Promise<void> = Promise.resolve();
  let caughtUp = false;
  let sent = 0;
  let batches = 0;
  let bytesSent = 0;
  let retries = 0;
  let retained = 0;
  let resyncs = 0;
  let refused = 0;
  let unreadable = 0;
  /** Changes set aside since the target last took one. */
  let refusedInARow = 0;
  let lastError: string | undefined;
  /** The unreadable change a read is held on (`onRefused: "hold"`). */
  let heldOn: UnreadableChange | undefined;
  /** The position `skipUnreadable()` passes over at the next read. */
  let skipSeq: string | undefined;
  /** Ends the backoff of a read held on an unreadable change. */
  let holdWake: AbortController | undefined;
  let nextFree = 0;
  let closed = false;
  /** Idle waiters, each resolved after a scan that started after it. */
  let waiters: Waiter[] = [];
  /** Waiters whose scan is running. */
  let starters: Waiter[] = [];
  let wake: (() => void) | undefined;

  const log = (
    level: "info" | "warn" | "error",
    event: string,
    message: string,
    data: Record<string, unknown> = {},
  ) => {
    try {
      logger?.[level]?.(message, { event, ...data });
    } catch { /* logging never fails the relay */ }
  };

  const load = async (): Promise<Checkpoint> => {
    const stored = await checkpoints.get(name);
    if (stored !== null) return stored;
    const suffix = Array.from(
      crypto.getRandomValues(new Uint8Array(6)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const fresh = { origin: `${originName}~${suffix}`, positions: {} };
    await checkpoints.put(name, fresh);
    return fresh;
  };

  /**
   * A page of a collection; a read that fails is tried again with backoff
   * (a source on Deno KV may fail for a moment), and a change the source
   * cannot read (an `IntegrityError` naming its position) is held that way
   * too, or, with `onRefused: "skip"`, passed over (logged, counted in
   * `stats().unreadable`). A closed source ends the relay.
   */
  const readPage = async (spec: RelaySpec, cp: Checkpoint): Promise<Page> => {
    for (let attempt = 0;; attempt++) {
      try {
        const page = await readGapped(spec, cp);
        if (heldOn?.collection === spec.name) heldOn = skipSeq = undefined;
        return page;
      } catch (e) {
        if (closed || e instanceof ClosedError) throw e;
        lastError = (e as Error)?.message ?? String(e);
        const seq = e instanceof IntegrityError ? e.seq : undefined;
        if (
          seq !== undefined && (onRefused === "skip" || seq === skipSeq)
        ) {
          heldOn = skipSeq = undefined;
          unreadable++;
          log(
            "error",
            "relay-unreadable",
            `Relay '${name}' passed over a change of '${spec.name}' it cannot read (position ${seq}): ${lastError}`,
            { collection: spec.name, seq },
          );
          // Read on after it; the checkpoint moves past it with the next
          // page acknowledged, or at once when nothing follows it
          // (`passSkipped`).
          readAt[spec.name] = seq;
          attempt = -1;
          continue;
        }
        retries++;
        const delay = backoff(attempt, retry, random());
        log(
          "warn",
          "relay-read-retry",
          `Relay '${name}' could not read the changes of '${spec.name}' (attempt ${
            attempt + 1
          }); retrying in ${Math.round(delay)} ms: ${lastError}`,
          { collection: spec.name, attempt: attempt + 1, delay },
        );
        if (seq === undefined) {
          heldOn = undefined; // another failure, not a change it cannot read
          await sleep(delay, stop.signal);
        } else {
          // Held on it: `skipUnreadable()` cuts the wait short.
          heldOn = { collection: spec.name, seq };
          holdWake = new AbortController();
          await sleep(delay, AbortSignal.any([stop.signal, holdWake.signal]));
          holdWake = undefined;
        }
        if (closed) throw e;
      }
    }
  };

  const readGapped = async (spec: RelaySpec, cp: Checkpoint): Promise<Page> => {
    try {
      return await readFrom(spec);
    } catch (e) {
      if ((e as Error)?.name !== "FeedGapError") throw e;
      // The position is older than what the feed still holds (deletion
      // markers purged after tombstoneRetention): start the collection over
      // from its current state; the receiver skips what it already has.
      // The page being sent settles first (its ack moves the checkpoint).
      await inFlight;
      await background;
      resyncs++;
      log(
        "warn",
        "relay-resync",
        `Relay '${name}' cannot resume '${spec.name}' from ${
          readAt[spec.name]
        }: ${(e as Error).message}; sending its current state again`,
      );
      delete readAt[spec.name];
      delete cp.positions[spec.name];
      await checkpoints.put(name, cp);
      return await readFrom(spec);
    }
  };

  const readFrom = async (spec: RelaySpec): Promise<Page> => {
    const since = readAt[spec.name];
    const wires: RelayChange[] = [];
    let last: string | undefined;
    let bytes = 2;
    let read = 0;
    const feed = source.changes(spec.name, {
      ...(since === undefined ? {} : { since }),
      limit: batchSize,
      live: false,
      signal: stop.signal,
    });
    try {
      for await (const change of feed) {
        const wire = toWire(change, spec);
        if (wire !== undefined) {
          const text = JSON.stringify(wire);
          const size = text.length + 1;
          if (wires.length > 0 && bytes + size > maxBatchBytes) break;
          bytes += size;
          wires.push(wire);
          keepText(wire, text); // the POST reuses it
        }
        last = change.seq;
        if (++read >= batchSize) break;
      }
    } catch (e) {
      // A change it cannot read after others: this page ends before it
      // (the next read starts at it).
      if (!(read > 0 && e instanceof IntegrityError && e.seq !== undefined)) {
        throw e;
      }
    }
    const changes = latestOnly(wires);
    return { spec, changes, last, bytes, at: clock.now() };
  };

  const deliver = async (batch: RelayBatch): Promise<ReceiveResult> =>
    isUrl
      ? await postBatch(
        { to: to as string | URL, token: token!, timeout, fetch: fetchFn },
        batch,
        stop.signal,
        wireTexts,
      )
      : await applyBatch(to as Database, batch);

  const throttle = async (bytes: number): Promise<void> => {
    if (maxBytesPerSecond === undefined) return;
    const now = clock.now();
    const start = Math.max(now, nextFree);
    nextFree = start + bytes / maxBytesPerSecond * 1000;
    if (start > now) await sleep(start - now, stop.signal);
  };

  const send = async (batch: RelayBatch, bytes: number): Promise<void> => {
    for (let attempt = 0; !closed; attempt++) {
      await throttle(bytes);
      if (closed) return;
      try {
        await deliver(batch);
        refusedInARow = 0;
        return;
      } catch (e) {
        if (closed) return;
        lastError = (e as Error)?.message ?? String(e);
        if (
          isRefusal(e, isUrl) &&
          (batch.changes.length > 1 ||
            (onRefused === "skip" && refusedInARow < maxRefusedInARow))
        ) {
          // Split, or set aside (deliverPage): not retried as it is.
          throw new Refusal(e);
        }
        retries++;
        const delay = Math.min(
          3_600_000,
          Math.max(
            backoff(attempt, retry, random()),
            e instanceof HttpError ? e.retryAfter ?? 0 : 0,
          ),
        );
        log(
          "warn",
          "relay-retry",
          `Relay '${name}' could not deliver ${batch.changes.length} changes (attempt ${
            attempt + 1
          }); retrying in ${Math.round(delay)} ms: ${lastError}`,
          { attempt: attempt + 1, delay },
        );
        await sleep(delay, stop.signal);
      }
    }
  };

  /** Gives acknowledged documents their retention TTL. */
  const retain = async (spec: RelaySpec, changes: readonly RelayChange[]) => {
    if (spec.ttl === undefined) return;
    const col = db.collection<Record<string, unknown>>(spec.name);
    const puts = changes.filter((c) => c.type === "put");
    const entries = await Promise.all(puts.map((c) => col.getEntry(c.key)));
    const now = clock.now();
    const rewrite = new Map<string, Record<string, unknown>>();
    const ttls: number[] = [];
    for (let i = 0; i < puts.length; i++) {
      const entry = entries[i];
      // Only the version that was sent, and only once.
      if (entry == null || entry.version !== puts[i]!.version) continue;
      const doc = entry.value;
      const from = typeof doc.receivedAt === "number" ? doc.receivedAt : now;
      rewrite.set(puts[i]!.key, { ...doc, relayedAt: now });
      ttls.push(Math.max(1, from + spec.ttl - now));
    }
    if (rewrite.size === 0) return;
    try {
      await col.putBatch(rewrite, { ttl: ttls });
      retained += rewrite.size;
    } catch (e) {
      // The documents stay (without expiry): never lost, only kept longer.
      log(
        "warn",
        "relay-retain-failed",
        `Relay '${name}' could not set the TTL of ${rewrite.size} relayed documents of '${spec.name}': ${
          (e as Error)?.message
        }`,
      );
    }
  };

  const waitForChange = async (): Promise<void> => {
    const local = new AbortController();
    const onStop = () => local.abort();
    stop.signal.addEventListener("abort", onStop, { once: true });
    const woken = new Promise<void>((resolve) => wake = resolve);
    try {
      await Promise.race([
        woken,
        ...specs.map(async (spec) => {
          const since = readAt[spec.name];
          const feed = source.changes(spec.name, {
            ...(since === undefined ? {} : { since }),
            live: true,
            signal: local.signal,
          });
          try {
            for await (const _ of feed) return;
          } catch {
            // The next pass meets the error (a gap, a closed database).
          }
          // A feed that ends (closed database) ends the wait.
        }),
      ]);
    } finally {
      wake = undefined;
      local.abort();
      stop.signal.removeEventListener("abort", onStop);
    }
  };

  /**
   * The work after an acknowledgement: the retention rewrite, then the
   * checkpoint. It runs while the next batch is read and sent (a checkpoint
   * lost in a crash only makes the relay send a batch again, which the
   * receiver skips), in order, at most two behind.
   */
  let background: Promise<void> = Promise.resolve();
  let behind = 0;
  const afterAck = async (
    spec: RelaySpec,
    changes: readonly RelayChange[],
    positions: Record<string, string>,
  ): Promise<void> => {
    if (behind >= 2) await background;
    behind++;
    background = background.then(async () => {
      try {
        if (changes.length > 0) await retain(spec, changes);
        await checkpoints.put(name, { origin: checkpoint!.origin, positions });
      } catch (e) {
        lastError = (e as Error)?.message ?? String(e);
        log(
          "warn",
          "relay-checkpoint-failed",
          `Relay '${name}' could not save its checkpoint (the last batches will be sent again): ${lastError}`,
        );
      } finally {
        behind--;
      }
    });
  };

  /**
   * The next page: from the collection of the highest priority with
   * changes after its read position (which it moves past the page), or
   * `undefined` when none has any.
   */
  const readNext = async (
    cp: Checkpoint,
    ahead: boolean,
  ): Promise<Page | undefined> => {
    // Reading ahead, a turn of the event loop first: a file database reads
    // synchronously, and the POST just started must leave before that.
    if (ahead) await new Promise((resolve) => setTimeout(resolve, 0));
    for (const spec of specs) {
      const page = await readPage(spec, cp);
      if (closed) return undefined;
      if (page.last === undefined) {
        await passSkipped(spec, cp);
        continue;
      }
      readAt[spec.name] = page.last;
      caughtUp = false;
      unacked.push(page);
      return page;
    }
    return undefined;
  };

  /**
   * With nothing left to read after changes passed over (unreadable, with
   * `onRefused: "skip"`) and no page of the collection waiting for its
   * acknowledgement, the checkpoint moves past them (else it would move
   * only with a later page, and a restart before one would meet them
   * again).
   */
  const passSkipped = async (
    spec: RelaySpec,
    cp: Checkpoint,
  ): Promise<void> => {
    const at = readAt[spec.name];
    if (
      at === undefined || at === cp.positions[spec.name] ||
      unacked.some((p) => p.spec === spec)
    ) return;
    cp.positions[spec.name] = at;
    await afterAck(spec, [], { ...cp.positions });
  };

  /** Sends a page, then moves the checkpoint past it (in the background). */
  const deliverPage = async (cp: Checkpoint, page: Page): Promise<void> => {
    let taken = page.changes;
    if (page.changes.length > 0) {
      const all = page.changes.length;
      // A part of a split page: its share of the page's bytes.
      const bytesOf = (n: number) => Math.ceil(page.bytes * n / all);
      const aside = await deliverSplitting(
        page.changes,
        async (changes) => {
          await send({ origin: cp.origin, changes }, bytesOf(changes.length));
          if (closed) return;
          batches++;
          bytesSent += bytesOf(changes.length);
        },
        (change, cause) => setAsideRetrying(change, cause),
        () => closed,
      );
      if (closed) return;
      if (aside.length > 0) {
        const out = new Set(aside);
        taken = page.changes.filter((c) => !out.has(c));
      }
      sent += taken.length;
    }
    cp.positions[page.spec.name] = page.last!;
    unacked.shift();
    await afterAck(page.spec, taken, { ...cp.positions });
  };

  /** Sets a refused change aside (before the checkpoint moves past it). */
  const setAsideRetrying = async (
    change: RelayChange,
    cause: unknown,
  ): Promise<void> => {
    const reason = (cause as Error)?.message ?? String(cause);
    for (let attempt = 0; !closed; attempt++) {
      try {
        await setAside(db, name, change, reason, clock.now());
        refused++;
        refusedInARow++;
        log(
          "warn",
          "relay-refused",
          `Relay '${name}' set aside the change of '${change.collection}' key ${
            JSON.stringify(change.key)
          } the target refused: ${reason}`,
          { collection: change.collection, key: change.key, seq: change.seq },
        );
        return;
      } catch (e) {
        // The gateway's storage full or busy: the relay cannot go past it.
        lastError = (e as Error)?.message ?? String(e);
        await sleep(backoff(attempt, retry, random()), stop.signal);
      }
    }
  };

  /**
   * The loop: one page is sent at a time, in feed order (the receiver's
   * rule needs a collection's batches applied in order, see `applyBatch`),
   * while the next page is read; the checkpoint moves past a page only
   * after its acknowledgement. So at most two pages are held: the one
   * being sent (retried until acknowledged) and the one read ahead.
   */
  const run = async (): Promise<void> => {
    const cp = checkpoint = await load();
    readAt = { ...cp.positions };
    // A scan: the waiters present when it started, and the page it finds.
    const scan = (ahead: boolean) => {
      starters = waiters;
      waiters = [];
      const page = readNext(cp, ahead);
      page.catch(() => {}); // met when awaited
      return { joined: starters, page };
    };
    let next = scan(false);
    try {
      while (!closed) {
        const page = await next.page;
        if (closed) return;
        if (page === undefined) {
          // Everything read is acknowledged (each send is awaited first).
          if (!caughtUp) {
            log(
              "info",
              "relay-caught-up",
              `Relay '${name}' has sent everything`,
              { sent },
            );
          }
          caughtUp = true;
          await background;
          for (const w of next.joined.splice(0)) w.resolve();
          if (waiters.length === 0) await waitForChange();
          next = scan(false);
          continue;
        }
        // The waiters of this scan join the next one (started now, while
        // this page is sent): it ends with nothing to send only after
        // this page is acknowledged.
        waiters.unshift(...next.joined.splice(0));
        const sending = deliverPage(cp, page);
        inFlight = sending.catch(() => {});
        next = scan(true);
        await sending;
      }
    } finally {
      await next.page.catch(() => {});
    }
  };

  const running = run().catch((e) => {
    lastError = (e as Error)?.message ?? String(e);
    log("error", "relay-stopped", `Relay '${name}' stopped: ${lastError}`);
    closed = true;
    for (const w of [...starters.splice(0), ...waiters]) w.reject(e as Error);
    waiters = [];
  });

  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      stop.abort();
      wake?.();
    }
    signal?.removeEventListener("abort", onAbort);
    await running;
    await background;
    const error = new Error(`Relay '${name}' is closed`);
    for (const w of [...starters.splice(0), ...waiters]) w.reject(error);
    waiters = [];
  };

  return {
    stats(): RelayStats {
      let dropped = 0;
      for (const spec of specs) {
        dropped += knownStream(db, spec.name)?.dropped ?? 0;
      }
      let pending = 0;
      for (const page of unacked) pending += page.changes.length;
      const oldest = unacked[0]?.at;
      return {
        pending,
        caughtUp,
        lag: caughtUp || oldest === undefined
          ? 0
          : Math.max(0, clock.now() - oldest),
        sent,
        batches,
        bytes: bytesSent,
        retries,
        lastError,
        dropped,
        retained,
        resyncs,
        refused,
        unreadable,
        unreadableAt: heldOn === undefined ? undefined : { ...heldOn },
        positions: { ...checkpoint?.positions },
      };
    },
    idle(): Promise<void> {
      if (closed) {
        return Promise.reject(new Error(`Relay '${name}' is closed`));
      }
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      waiters.push({ resolve, reject });
      wake?.();
      return promise;
    },
    skipUnreadable(): UnreadableChange | undefined {
      if (closed || heldOn === undefined) return undefined;
      skipSeq = heldOn.seq;
      holdWake?.abort();
      return { ...heldOn };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The change feed of a database as a relay's source.
 *
 * @param db The database.
 * @returns The source.
 */
export function databaseSource(db: Database): ChangeSource {
  return {
    changes: (collection, options) =>
      db.collection(collection).changes(options),
  };
}

/**
 * Starts store-and-forward of collections' changes to `to`: a `receive`
 * endpoint's URL, or another `Database`. The checkpoint lives in the source
 * database (`_relay`), advanced only after the target acknowledged a batch;
 * failures are retried with capped exponential backoff and jitter; after a
 * crash or restart the relay resumes from its checkpoint. Delivery is at
 * least once; `receive` makes it exactly once in effect.
 *
 * @param db The source database.
 * @param options Collections, target, token, limits.
 * @returns The running relay (`stats()`, `idle()`, `close()`).
 * @throws {TypeError} When an option is malformed.
 * @throws {RangeError} When a number is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { relay } from "@tether/db/gateway";
 * await using gateway = await open();
 * await using cloud = await open();
 * await gateway.collection("readings").put("a/1", { t: 21.5 });
 * await using uplink = relay(gateway, { collections: ["readings"], to: cloud });
 * await uplink.idle();
 * assert.deepEqual(await cloud.collection("readings").get("a/1"), { t: 21.5 });
 * ```
 */
export function relay(db: Database, options: RelayOptions): Relay {
  return startRelay(db, options, { source: databaseSource(db) });
}

/**
 * A page's changes with only the later of two changes of a key (a key
 * written again while the page was read), in its place. The keys are
 * looked up in a {@linkcode StringIndex}: a `Map` would hash each key
 * string, and V8's first hashing of a key just read from the file costs
 * ~1 µs; sorting them cost ~0.6 µs a change (long common prefixes).
 *
 * @param changes The changes, in feed order.
 * @returns Them, or those left.
 */
function latestOnly(changes: RelayChange[]): RelayChange[] {
  const n = changes.length;
  if (n < 2) return changes;
  const table = new StringIndex(n);
  let gone: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const earlier = table.put(changes[i]!.key, i);
    if (earlier >= 0) (gone ??= new Uint8Array(n))[earlier] = 1;
  }
  return gone === undefined ? changes : changes.filter((_, i) => gone[i] === 0);
}
