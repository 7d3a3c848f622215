/**
 * The options, counters and handle of `relay(db, options)`.
 *
 * @module
 */

import type { Database, Logger } from "../../mod.ts";
import type { ChangeSource } from "./protocol.ts";
import type { RefusedPolicy } from "./relay_refused.ts";
import type { RetryOptions } from "./retry.ts";

/** One relayed collection, with its options. */
export interface RelayCollection {
  /** The collection's name. */
  readonly name: string;
  /** Higher goes first when several have changes waiting. Default `0`. */
  readonly priority?: number;
  /**
   * Keep a relayed document this long after its `receivedAt` (or after it
   * was relayed, without one), ms: once the target acknowledged it, the
   * relay writes it again with `relayedAt` and this TTL. Default: the `ttl`
   * given to `ingest` for this collection in this process, else none.
   */
  readonly ttl?: number;
  /**
   * Send deletes too. Default `true`, except for a collection `ingest`
   * writes: there a delete (a cleanup, `onFull: "dropOldest"`) stays local.
   */
  readonly deletes?: boolean;
}

/** Options of {@linkcode relay}. */
export interface RelayOptions {
  /** What to relay: names, or objects with a priority and retention. */
  readonly collections: readonly (string | RelayCollection)[];
  /**
   * Where to: the URL of a `receive` endpoint, or a `Database` (local or
   * Deno KV) to apply the changes to.
   */
  readonly to: string | URL | Database;
  /** The bearer token the endpoint expects (needed with a URL). */
  readonly token?: string;
  /**
   * This relay's name: its checkpoint is kept under it in the source
   * database's `_relay` collection. Default `"default"`.
   */
  readonly name?: string;
  /**
   * A readable name of this gateway, sent as the batch origin with a random
   * suffix made once per source database (so a wiped gateway starts a new
   * origin). Default `"gateway"`.
   */
  readonly origin?: string;
  /**
   * The most changes in one batch. Default `2_000` (a receiver on Deno
   * Deploy spends ~20 ms of CPU on it, within Deploy's CPU time per
   * request). A receiver of your own on a Deno KV file takes larger batches
   * faster: KV's commit costs more the more key ranges it writes into, and
   * a larger batch writes more readings of each device per commit. Relaying
   * 1,000,000 readings to one with `assumeNew` (7 Dec, 2-core VM): 32,084
   * readings/s with 10,000 against 28,894 with 2,000 in one run, 36,808
   * against 24,821 in two others; set `batchSize: 10_000, maxBatchBytes:
   * 4_194_304` there.
   */
  readonly batchSize?: number;
  /** The most bytes (JSON) in one batch (at least one change). Default `1_048_576`. */
  readonly maxBatchBytes?: number;
  /** Send at most this many bytes per second. Default: no cap. */
  readonly maxBytesPerSecond?: number;
  /** Backoff between attempts. */
  readonly retry?: RetryOptions;
  /**
   * What to do with a change the target refuses for good (a 400, 409 or
   * 413 from the endpoint; a document a target `Database` refuses). Either
   * way a refused batch is first split in halves to find the refused
   * changes, and the others are delivered. `"hold"` (default): retry the
   * refused change with backoff until the target takes it, holding its
   * collection back (`stats().lastError` says why). `"skip"`: set it aside
   * in the source database's `_relay_refused` collection (with its document
   * and the reason; `stats().refused` counts them) and go on, unless
   * `maxRefusedInARow` changes in a row were refused with nothing taken
   * between (a target refusing everything is misconfigured): then hold
   * until one is taken. The same policy applies to a change the source
   * cannot read (damaged at the source: an `IntegrityError` with its
   * position): `"hold"` retries the read with backoff, `"skip"` passes over
   * it (logged as `relay-unreadable`, counted in `stats().unreadable`).
   * Other read errors are always retried with backoff.
   */
  readonly onRefused?: RefusedPolicy;
  /** With `onRefused: "skip"`, the longest run of changes set aside. Default `100`. */
  readonly maxRefusedInARow?: number;
  /** How long one POST may take, ms. Default `30_000`. */
  readonly timeout?: number;
  /** The `fetch` to post with. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /** The time source (for lag, retention and the bandwidth cap). Default `Date`. */
  readonly clock?: { now(): number };
  /** Where retries and errors are told. Default: silent. */
  readonly logger?: Logger;
  /** Aborting it closes the relay. */
  readonly signal?: AbortSignal;
}

/** Counters of a relay. */
export interface RelayStats {
  /** Changes read and not yet acknowledged. */
  readonly pending: number;
  /** Whether the relay has sent everything it knows of. */
  readonly caughtUp: boolean;
  /** Ms since the oldest unacknowledged change was read (0 when caught up). */
  readonly lag: number;
  /** Changes acknowledged by the target. */
  readonly sent: number;
  /** Batches acknowledged. */
  readonly batches: number;
  /** Bytes of acknowledged batches. */
  readonly bytes: number;
  /** Failed attempts (each retried after a backoff). */
  readonly retries: number;
  /** The last failure, if any. */
  readonly lastError: string | undefined;
  /** Changes the target refused for good and that were set aside (`onRefused: "skip"`). */
  readonly refused: number;
  /**
   * Changes the source could not read (an `IntegrityError` naming their
   * position: an item damaged at the source) that were passed over
   * (`onRefused: "skip"`, or `skipUnreadable()`; with `"hold"` the relay
   * retries them).
   */
  readonly unreadable: number;
  /**
   * The change the relay is held on because the source cannot read it
   * (`onRefused: "hold"`): its collection and position. `undefined` when it
   * is not held on one. See {@linkcode Relay.skipUnreadable}.
   */
  readonly unreadableAt: UnreadableChange | undefined;
  /** Documents removed on the gateway to make room (`onFull: "dropOldest"`). */
  readonly dropped: number;
  /** Relayed documents given their retention TTL. */
  readonly retained: number;
  /**
   * Times a collection was sent again from its current state because its
   * checkpoint was older than the feed holds (`FeedGapError`: offline longer
   * than the database's `tombstoneRetention` while documents were deleted).
   * Deletions in the gap are not sent.
   */
  readonly resyncs: number;
  /** The checkpoint per collection. */
  readonly positions: Readonly<Record<string, string>>;
}

/** A change the source cannot read (damaged at the source). */
export interface UnreadableChange {
  /** Its collection. */
  readonly collection: string;
  /** Its position in the change feed. */
  readonly seq: string;
}

/** A running relay. */
export interface Relay extends AsyncDisposable {
  /** The relay's counters. */
  stats(): RelayStats;
  /**
   * Resolves once a pass that started after this call found nothing to
   * send (every change committed before the call is acknowledged).
   * Rejects if the relay is closed first.
   */
  idle(): Promise<void>;
  /**
   * Passes over the change the relay is held on because the source cannot
   * read it (`stats().unreadableAt`; with `onRefused: "hold"`, the default),
   * as `onRefused: "skip"` would have for that one change: logged as a
   * `relay-unreadable` error, counted in `stats().unreadable`, and the
   * checkpoint moves past it. The relay reads on at once (its backoff is
   * cut short). A change the source can read again by then (the item was
   * written again) is delivered, not passed over. Use it when the damage
   * cannot be mended at the source (a change-feed entry written over, an
   * item whose bytes are lost); to deliver the item instead, write it again.
   *
   * @returns The change passed over, or `undefined` (nothing changes) when
   * the relay is not held on an unreadable change.
   */
  skipUnreadable(): UnreadableChange | undefined;
  /** Stops the relay (an unacknowledged batch is sent again next time). */
  close(): Promise<void>;
}

/** What a relay needs besides options: injected in tests. */
export interface RelayDeps {
  /** Where changes come from. */
  readonly source: ChangeSource;
  /** Waits `ms` (or until `signal` aborts). */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for the jitter. */
  readonly random?: () => number;
}
