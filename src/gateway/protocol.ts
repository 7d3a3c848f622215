/**
 * The relay protocol: what a relay POSTs to a `receive` endpoint, how the
 * endpoint answers, and the helpers both sides share.
 *
 * A batch is `POST <to>` with `Authorization: Bearer <token>`,
 * `Content-Type: application/json` and the body
 * `{ "origin": "<id>", "changes": [RelayChange, ...] }`. The receiver
 * answers `200 { "applied": n, "skipped": n }` after its commit; anything
 * else means "not applied, send again" (with `Retry-After` on 429/503).
 *
 * @module
 */

import type { FeedChange } from "../../mod.ts";

export type { FeedChange };

/** Options of a change source's `changes`. */
export interface FeedOptions {
  /** Start after this position (from the beginning when absent). */
  readonly since?: string;
  /** Stop after this many changes. */
  readonly limit?: number;
  /** Stops a live iteration. */
  readonly signal?: AbortSignal;
  /** Wait for new changes (default) or end when caught up (`false`). */
  readonly live?: boolean;
}

/**
 * Where a relay reads changes: one durable feed per collection. The
 * database's `collection(name).changes(options)` is one.
 */
export interface ChangeSource {
  /**
   * The changes of a collection after `since`, in order.
   *
   * @param collection The collection.
   * @param options Position, limit, signal, live.
   */
  changes(collection: string, options: FeedOptions): AsyncIterable<FeedChange>;
}

/** One change as sent on the wire. */
export interface RelayChange {
  /** The change's position in the origin's feed. */
  readonly seq: string;
  /** `put` (with `doc`) or `delete`. */
  readonly type: "put" | "delete";
  /** The collection. */
  readonly collection: string;
  /** The document's key. */
  readonly key: string;
  /** The document's version at the origin. */
  readonly version: number;
  /** The document (`put` only). */
  readonly doc?: unknown;
}

/**
 * A feed change as a relay sends it, or `undefined` when it is not sent:
 * expiries never, deletes only when the collection relays them, and not
 * the relay's own rewrite of a relayed document of a stream collection
 * (its retention marks it with `relayedAt`).
 *
 * @param change The change read from the feed.
 * @param spec The collection as the relay takes it: its name, whether its
 *   deletes are sent, and whether the relay rewrites what it relayed.
 * @returns The change on the wire, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toWire } from "./protocol.ts";
 * const spec = { name: "r", deletes: false, stream: false };
 * const del = {
 *   seq: "2", type: "delete", collection: "r", key: "a", version: 2,
 * } as const;
 * assert.equal(toWire(del, spec), undefined);
 * assert.equal(toWire(del, { ...spec, deletes: true })?.type, "delete");
 * ```
 */
export function toWire(
  change: FeedChange,
  spec: {
    readonly name: string;
    readonly deletes: boolean;
    readonly stream: boolean;
  },
): RelayChange | undefined {
  if (change.type === "expire") return undefined;
  if (change.type === "delete") {
    if (!spec.deletes) return undefined;
    return {
      seq: change.seq,
      type: "delete",
      collection: spec.name,
      key: change.key,
      version: change.version,
    };
  }
  const doc = change.doc as Record<string, unknown> | undefined;
  // The relay's own rewrite of a relayed document (retention): not a change to send.
  if (
    spec.stream && typeof doc === "object" && doc !== null &&
    typeof doc.relayedAt === "number"
  ) return undefined;
  return {
    seq: change.seq,
    type: "put",
    collection: spec.name,
    key: change.key,
    version: change.version,
    doc: change.doc,
  };
}

/** One POST of a relay. */
export interface RelayBatch {
  /** Which gateway database sent it (stable across restarts). */
  readonly origin: string;
  /** The changes, oldest first; at most one per collection and key. */
  readonly changes: readonly RelayChange[];
}

/** What a receiver answers to a batch it committed. */
export interface ReceiveResult {
  /** Changes applied. */
  readonly applied: number;
  /** Changes already applied (or older than the applied one). */
  readonly skipped: number;
}

/** Where a relay keeps its checkpoints (in the source database). */
export const RELAY_COLLECTION = "_relay";
/** Where a receiver keeps what it applied per origin and key. */
export const APPLIED_COLLECTION = "_applied";

const ORIGIN = /^[A-Za-z0-9_.:~-]{1,128}$/;
/**
 * A feed position: a counter (up to 20 digits), or `0.` and the hex of a
 * storage key (a record older than the feed; Deno KV's keys go to 2 KiB).
 */
const SEQ = /^(?:[0-9]{1,20}|0\.[0-9a-f]{2,4200})$/;
const COLLECTION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Orders two feed positions. A position is a counter (`"42"`), or, for a
 * record older than the feed, `"0.<hex of its storage key>"` (all of those
 * come before counter 1, in key order). So: the whole parts compare as
 * numbers (the longer is greater, then the greater text; zero-padded
 * counters compare as they are), then the parts after a `.` as text, none
 * before any.
 *
 * @param a A position.
 * @param b Another.
 * @returns Negative, 0 or positive, as `a` is before, equal to or after `b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareSeq } from "./protocol.ts";
 * assert(compareSeq("9", "10") < 0);
 * assert(compareSeq("0.7a02", "1") < 0);
 * assert(compareSeq("0.7a02", "0.7a0201") < 0);
 * assert(compareSeq("00000009", "00000010") < 0);
 * ```
 */
export function compareSeq(a: string, b: string): number {
  const dotA = a.indexOf(".");
  const dotB = b.indexOf(".");
  const wholeA = dotA < 0 ? a : a.slice(0, dotA);
  const wholeB = dotB < 0 ? b : b.slice(0, dotB);
  if (wholeA.length !== wholeB.length) return wholeA.length - wholeB.length;
  if (wholeA !== wholeB) return wholeA < wholeB ? -1 : 1;
  const restA = dotA < 0 ? "" : a.slice(dotA + 1);
  const restB = dotB < 0 ? "" : b.slice(dotB + 1);
  if (dotA < 0 || dotB < 0) return (dotA < 0 ? 0 : 1) - (dotB < 0 ? 0 : 1);
  return restA < restB ? -1 : restA > restB ? 1 : 0;
}

/**
 * Checks a parsed request body against the batch shape.
 *
 * @param value The parsed JSON.
 * @returns The batch, or what is wrong with it.
 */
export function parseBatch(value: unknown): RelayBatch | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "The body must be an object { origin, changes }";
  }
  const { origin, changes } = value as Record<string, unknown>;
  if (typeof origin !== "string" || !ORIGIN.test(origin)) {
    return "origin must be 1-128 letters, digits or '_.:~-'";
  }
  if (!Array.isArray(changes)) return "changes must be an array";
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as Record<string, unknown> | null;
    const at = `change ${i + 1}`;
    if (typeof c !== "object" || c === null) return `${at} is not an object`;
    if (typeof c.seq !== "string" || !SEQ.test(c.seq)) {
      return `${at}: seq must be a feed position (a counter of up to 20 digits, or "0." and hex)`;
    }
    if (c.type !== "put" && c.type !== "delete") {
      return `${at}: type must be "put" or "delete"`;
    }
    if (
      typeof c.collection !== "string" || !COLLECTION.test(c.collection) ||
      c.collection === APPLIED_COLLECTION
    ) {
      return `${at}: collection is not a valid collection name`;
    }
    if (typeof c.key !== "string" || c.key.length === 0) {
      return `${at}: key must be a non-empty string`;
    }
    if (
      typeof c.version !== "number" || !Number.isSafeInteger(c.version) ||
      c.version < 0
    ) {
      return `${at}: version must be a whole number`;
    }
    if (c.type === "put" && !("doc" in c)) return `${at}: a put needs doc`;
  }
  return value as RelayBatch;
}

/**
 * A JSON response.
 *
 * @param status The status.
 * @param body The body (serialised).
 * @param headers More headers.
 * @returns The response.
 */
export function json(
  status: number,
  body: unknown,
  headers?: HeadersInit,
): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/**
 * An error response `{ "error": message }`.
 *
 * @param status The status.
 * @param message What is wrong.
 * @param headers More headers (`Retry-After`, `Allow`).
 * @returns The response.
 */
export function problem(
  status: number,
  message: string,
  headers?: HeadersInit,
): Response {
  return json(status, { error: message }, headers);
}

/** Fields the gateway sets; a re-sent reading is compared without them. */
const GATEWAY_FIELDS = new Set(["receivedAt", "relayedAt"]);

/**
 * Whether a stored reading and a re-sent one have the same content (the
 * fields the gateway sets, `receivedAt` and `relayedAt`, left out).
 *
 * @param stored The stored document.
 * @param incoming The new one.
 * @returns `true` when equal.
 */
export function sameContent(stored: unknown, incoming: unknown): boolean {
  const a = stored as Record<string, unknown>;
  const b = incoming as Record<string, unknown>;
  const keysA = Object.keys(a).filter((k) => !GATEWAY_FIELDS.has(k));
  const keysB = Object.keys(b).filter((k) => !GATEWAY_FIELDS.has(k));
  if (keysA.length !== keysB.length) return false;
  for (const k of keysA) {
    if (!Object.hasOwn(b, k) || !deepEqual(a[k], b[k])) return false;
  }
  return true;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (
    typeof a !== "object" || typeof b !== "object" || a === null || b === null
  ) {
    return false;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date &&
      a.getTime() === b.getTime();
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (
      !Object.hasOwn(b, k) ||
      !deepEqual(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
      )
    ) return false;
  }
  return true;
}
