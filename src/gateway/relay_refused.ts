/**
 * What a relay does with changes its target refuses for good (a 400, 409 or
 * 413 from a `receive` endpoint; a document a target `Database` refuses):
 * it splits a refused batch to find them, delivers the rest, and (with
 * `onRefused: "skip"`) sets each refused change aside in the source
 * database's `_relay_refused` collection.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import type { RelayChange } from "./protocol.ts";
import { HttpError } from "./relay_post.ts";

/**
 * What a relay does with a change its target refuses for good: `"hold"`
 * retries it (with backoff) until the target takes it, holding its
 * collection back; `"skip"` sets it aside in `_relay_refused` and goes on.
 */
export type RefusedPolicy = "hold" | "skip";

/** Where a relay with `onRefused: "skip"` sets refused changes aside. */
export const REFUSED_COLLECTION = "_relay_refused";

/** A change set aside (a document of `_relay_refused`). */
export interface RefusedChange {
  /** The relay's name. */
  readonly relay: string;
  /** The change's collection. */
  readonly collection: string;
  /** The change's key. */
  readonly key: string;
  /** Its feed position. */
  readonly seq: string;
  /** `"put"` or `"delete"`. */
  readonly type: "put" | "delete";
  /** The document's version. */
  readonly version: number;
  /**
   * The document sent (puts), unless it was too large to set aside with
   * the rest (then `docOmitted` is `true`; the source collection keeps it).
   */
  readonly doc?: unknown;
  /** Whether `doc` was left out. */
  readonly docOmitted?: true;
  /** Why the target refused it. */
  readonly reason: string;
  /** When it was set aside (the relay's clock, epoch ms). */
  readonly at: number;
}

/** Raised by a delivery the target refused for good (not retried). */
export class Refusal extends Error {
  /** @param cause The target's answer or error. */
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
    this.name = "Refusal";
  }
}

/**
 * Whether a failed delivery is a refusal for good: the same changes sent
 * again would be refused again. From a `receive` endpoint: 400 (a
 * malformed change or a document the receiver refuses), 409 (a unique
 * index of the receiver) and 413 (too large). From a target `Database`:
 * the errors `receive` answers with those statuses. Anything else
 * (network, timeout, 401, 403, 429, 5xx, a full or busy storage) is
 * retried.
 *
 * @param e What the delivery threw.
 * @param isUrl Whether the target is an endpoint (else a `Database`).
 * @returns `true` for a refusal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRefusal } from "./relay_refused.ts";
 * import { HttpError } from "./relay_post.ts";
 * assert.equal(isRefusal(new HttpError("409 from x", undefined, 409), true), true);
 * assert.equal(isRefusal(new HttpError("503 from x", 5000, 503), true), false);
 * assert.equal(isRefusal(new TypeError("connection refused"), true), false);
 * ```
 */
export function isRefusal(e: unknown, isUrl: boolean): boolean {
  if (isUrl) {
    return e instanceof HttpError &&
      (e.status === 400 || e.status === 409 || e.status === 413);
  }
  const name = (e as Error)?.name;
  return name === "TypeError" || name === "RangeError" ||
    name === "TooLargeError" || name === "DuplicateKeyError";
}

/**
 * Delivers `changes` in order through `attempt`, which throws a
 * {@linkcode Refusal} when the target refuses them for good (and retries
 * anything else itself). A refused batch of several changes is split in
 * halves, each delivered in turn (so at most about `2 log2(n)` more
 * deliveries per refused change), down to single changes refused alone,
 * which go to `refuse`. Changes keep their order: a half is delivered only
 * after the one before it.
 *
 * @param changes The changes, in feed order.
 * @param attempt Delivers some of them; throws a `Refusal` for good.
 * @param refuse Takes a single refused change (sets it aside).
 * @param stopped Whether to stop (the relay closing).
 * @returns The refused changes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deliverSplitting, Refusal } from "./relay_refused.ts";
 * const change = (key: string) => ({ seq: key, type: "put" as const, collection: "c", key, version: 1, doc: {} });
 * const sent: string[][] = [];
 * const refused = await deliverSplitting(
 *   ["1", "2", "3", "4"].map(change),
 *   (part) => {
 *     if (part.some((c) => c.key === "3")) return Promise.reject(new Refusal(new Error("no")));
 *     sent.push(part.map((c) => c.key));
 *     return Promise.resolve();
 *   },
 *   () => Promise.resolve(),
 *   () => false,
 * );
 * assert.deepEqual(sent, [["1", "2"], ["4"]]);
 * assert.deepEqual(refused.map((c) => c.key), ["3"]);
 * ```
 */
export async function deliverSplitting(
  changes: readonly RelayChange[],
  attempt: (changes: readonly RelayChange[]) => Promise<void>,
  refuse: (change: RelayChange, cause: unknown) => Promise<void>,
  stopped: () => boolean,
): Promise<RelayChange[]> {
  const refused: RelayChange[] = [];
  const go = async (part: readonly RelayChange[]): Promise<void> => {
    if (stopped()) return;
    try {
      await attempt(part);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      if (part.length === 1) {
        await refuse(part[0]!, e.cause);
        refused.push(part[0]!);
        return;
      }
      const mid = part.length >>> 1;
      await go(part.slice(0, mid));
      await go(part.slice(mid));
    }
  };
  await go(changes);
  return refused;
}

/**
 * The key of a refused change in `_relay_refused`: the relay, the
 * collection and a hash of the change's key (a later refusal of the same
 * key replaces the earlier).
 */
async function refusedKey(
  relay: string,
  change: RelayChange,
): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(change.key),
    ),
  );
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i]!.toString(16).padStart(2, "0");
  return `${relay}/${change.collection}/${hex}`;
}

/**
 * Sets a refused change aside in `db`'s `_relay_refused` collection, with
 * its document (left out, and `docOmitted` set, when the whole would be
 * too large to store) and the reason.
 *
 * @param db The source database.
 * @param relay The relay's name.
 * @param change The refused change.
 * @param reason Why.
 * @param at The time, epoch ms.
 * @returns Resolves once it is stored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { REFUSED_COLLECTION, setAside } from "./relay_refused.ts";
 * await using db = await open();
 * await setAside(db, "default", { seq: "7", type: "put", collection: "readings", key: "a/1", version: 1, doc: { t: 1 } }, "409", 5);
 * const [aside] = await db.collection(REFUSED_COLLECTION).find().toArray();
 * assert.deepEqual(aside, { relay: "default", collection: "readings", key: "a/1", seq: "7", type: "put", version: 1, doc: { t: 1 }, reason: "409", at: 5 });
 * ```
 */
export async function setAside(
  db: Database,
  relay: string,
  change: RelayChange,
  reason: string,
  at: number,
): Promise<void> {
  const col = db.collection<RefusedChange>(REFUSED_COLLECTION);
  const key = await refusedKey(relay, change);
  const record: RefusedChange = {
    relay,
    collection: change.collection,
    key: change.key,
    seq: change.seq,
    type: change.type,
    version: change.version,
    ...(change.type === "put" ? { doc: change.doc } : {}),
    reason: reason.slice(0, 1_000),
    at,
  };
  try {
    await col.put(key, record);
  } catch (e) {
    if ((e as Error)?.name !== "TooLargeError" || !("doc" in record)) throw e;
    const { doc: _, ...rest } = record;
    await col.put(key, { ...rest, docOmitted: true });
  }
}
