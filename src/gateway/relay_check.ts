/**
 * The checks of `relay(db, options)`: every option validated, with its
 * default, before the relay starts (a `TypeError` or `RangeError` names the
 * option; nothing has started).
 *
 * @module
 */

import type { Database, Logger } from "../../mod.ts";
import { checkTokenSpec } from "./auth.ts";
import { RELAY_COLLECTION } from "./protocol.ts";
import type { RelayCollection, RelayOptions } from "./relay_options.ts";
import { REFUSED_COLLECTION, type RefusedPolicy } from "./relay_refused.ts";
import type { RetryOptions } from "./retry.ts";
import { knownStream } from "./streams.ts";

/** A relayed collection, its options resolved. */
export interface RelaySpec {
  /** The collection. */
  readonly name: string;
  /** Higher goes first. */
  readonly priority: number;
  /** The retention TTL of relayed documents, if any. */
  readonly ttl: number | undefined;
  /** Whether deletes are sent. */
  readonly deletes: boolean;
  /** Whether relayed documents are written again with `relayedAt`. */
  readonly stream: boolean;
}

/** The options of a relay, checked, with their defaults. */
export interface CheckedRelayOptions {
  /** The collections, highest priority first. */
  readonly specs: readonly RelaySpec[];
  /** The target. */
  readonly to: string | URL | Database;
  /** Whether the target is a URL (else a `Database`). */
  readonly isUrl: boolean;
  /** The bearer token (a URL target). */
  readonly token: string | undefined;
  /** The relay's name (its checkpoint's key). */
  readonly name: string;
  /** The origin's readable part. */
  readonly originName: string;
  /** The most changes in one batch. */
  readonly batchSize: number;
  /** The most bytes in one batch. */
  readonly maxBatchBytes: number;
  /** The bandwidth cap, if any. */
  readonly maxBytesPerSecond: number | undefined;
  /** Backoff. */
  readonly retry: RetryOptions;
  /** What happens to a refused or unreadable change. */
  readonly onRefused: RefusedPolicy;
  /** Changes set aside in a row before the relay holds. */
  readonly maxRefusedInARow: number;
  /** A POST's timeout, ms. */
  readonly timeout: number;
  /** The `fetch` to post with. */
  readonly fetchFn: typeof fetch;
  /** Time. */
  readonly clock: { now(): number };
  /** Where events go. */
  readonly logger: Logger | undefined;
  /** Stops the relay when it aborts. */
  readonly signal: AbortSignal | undefined;
}

function checkPositive(value: unknown, name: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !(value > 0)) {
    throw new RangeError(
      `Cannot start the relay: ${name} must be a positive number, got ${value}`,
    );
  }
}

/**
 * Checks a relay's options and resolves their defaults.
 *
 * @param db The source database (collection names are checked by it).
 * @param options The options given to `relay`.
 * @returns The checked options.
 * @throws {TypeError} When an option is malformed.
 * @throws {RangeError} When a number is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../../mod.ts";
 * import { checkRelayOptions } from "./relay_check.ts";
 * await using db = await open();
 * await using cloud = await open();
 * const checked = checkRelayOptions(db, { collections: ["r"], to: cloud });
 * assert.equal(checked.batchSize, 2_000);
 * assert.throws(
 *   () => checkRelayOptions(db, { collections: [], to: cloud }),
 *   TypeError,
 * );
 * ```
 */
export function checkRelayOptions(
  db: Database,
  options: RelayOptions,
): CheckedRelayOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot start the relay: options must be an object");
  }
  const {
    collections,
    to,
    token,
    name = "default",
    origin: originName = "gateway",
    batchSize = 2_000,
    maxBatchBytes = 1_048_576,
    maxBytesPerSecond,
    retry = {},
    onRefused = "hold",
    maxRefusedInARow = 100,
    timeout = 30_000,
    fetch: fetchFn = globalThis.fetch,
    clock = Date,
    logger,
    signal,
  } = options;
  if (!Array.isArray(collections) || collections.length === 0) {
    throw new TypeError(
      "Cannot start the relay: collections must be a non-empty array",
    );
  }
  const specs: RelaySpec[] = collections.map((c) => {
    const o: RelayCollection = typeof c === "string" ? { name: c } : c;
    if (
      typeof o?.name !== "string" || o.name === RELAY_COLLECTION ||
      o.name === REFUSED_COLLECTION
    ) {
      throw new TypeError(
        `Cannot start the relay: ${
          JSON.stringify(c)
        } is not a collection to relay`,
      );
    }
    db.collection(o.name); // checks the name
    checkPositive(o.ttl, `the ttl of '${o.name}'`);
    const stream = knownStream(db, o.name);
    const ttl = o.ttl ??
      (stream !== undefined && !stream.expireUnrelayed
        ? stream.ttl
        : undefined);
    return {
      name: o.name,
      priority: o.priority ?? 0,
      ttl,
      deletes: o.deletes ?? stream === undefined,
      stream: stream !== undefined || o.ttl !== undefined,
    };
  }).sort((a, b) => b.priority - a.priority);
  const isUrl = typeof to === "string" || to instanceof URL;
  if (
    !isUrl &&
    (typeof to !== "object" || to === null ||
      typeof (to as Database).collection !== "function")
  ) {
    throw new TypeError(
      "Cannot start the relay: to must be a receive endpoint's URL or a Database",
    );
  }
  if (isUrl) {
    new URL(to); // throws a TypeError on a bad URL
    if (token === undefined) {
      throw new TypeError("Cannot start the relay: a URL target needs a token");
    }
    checkTokenSpec(token, "the relay");
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(originName)) {
    throw new TypeError(
      `Cannot start the relay: origin must be 1-64 letters, digits, '_', '-' or '.', got ${
        JSON.stringify(originName)
      }`,
    );
  }
  checkPositive(batchSize, "batchSize");
  checkPositive(maxBatchBytes, "maxBatchBytes");
  checkPositive(maxBytesPerSecond, "maxBytesPerSecond");
  checkPositive(timeout, "timeout");
  if (onRefused !== "hold" && onRefused !== "skip") {
    throw new TypeError(
      `Cannot start the relay: onRefused must be "hold" or "skip", got ${
        JSON.stringify(onRefused)
      }`,
    );
  }
  if (!Number.isInteger(maxRefusedInARow) || maxRefusedInARow < 1) {
    throw new RangeError(
      `Cannot start the relay: maxRefusedInARow must be an integer from 1, got ${maxRefusedInARow}`,
    );
  }
  checkPositive(retry.initial, "retry.initial");
  checkPositive(retry.max, "retry.max");
  if (retry.factor !== undefined && !(retry.factor >= 1)) {
    throw new RangeError(
      `Cannot start the relay: retry.factor must be at least 1, got ${retry.factor}`,
    );
  }
  return {
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
  };
}
