/**
 * `receive(db, options)`: the endpoint a relay posts to, and `applyBatch`,
 * which a relay to a local `Database` calls directly.
 *
 * @module
 */

import type { Collection, Database } from "../../mod.ts";
import { checkTokenSpec, sha256, type TokenSpec, TokenTable } from "./auth.ts";
import { readCapped } from "./body.ts";
import {
  APPLIED_COLLECTION,
  compareSeq,
  json,
  parseBatch,
  problem,
  type ReceiveResult,
  type RelayBatch,
  type RelayChange,
} from "./protocol.ts";

/** Options of {@linkcode receive}. */
export interface ReceiveOptions {
  /** The relay's bearer token: in clear, `"sha256:<hex>"` or `{ sha256 }`. */
  readonly token: TokenSpec;
  /** The largest batch body, bytes (413 past it). Default `8_388_608` (8 MiB). */
  readonly maxBodyBytes?: number;
  /** Accept changes only for these collections (403 for others). Default: any. */
  readonly collections?: readonly string[];
  /** The `Retry-After` of a 503 (storage full or busy), seconds. Default `5`. */
  readonly retryAfter?: number;
}

/** What is kept per origin, collection and key: the last applied change. */
interface Applied {
  /** Its position in the origin's feed. */
  readonly s: string;
  /** Its version at the origin. */
  readonly v: number;
}

const MAX_KEY = 1000;

async function appliedKey(
  origin: string,
  change: RelayChange,
): Promise<string> {
  const key = `${origin}/${change.collection}/${change.key}`;
  if (new TextEncoder().encode(key).length <= MAX_KEY) return key;
  const digest = await sha256(change.key);
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  return `${origin}/${change.collection}/#${hex}`;
}

/**
 * Writes a batch, in as few atomic writes as the storage allows: all at once
 * where it can, else (Deno KV's 100-check limit) in parts, halving until one
 * is accepted.
 */
async function putAll<T>(
  col: Collection<T>,
  entries: readonly [string, T][],
): Promise<void> {
  let size = entries.length;
  let at = 0;
  while (at < entries.length) {
    const part = entries.slice(at, at + size);
    try {
      await col.putBatch(new Map(part));
      at += part.length;
    } catch (e) {
      if ((e as Error)?.name !== "TooLargeError" || size === 1) throw e;
      size = Math.max(1, Math.min(Math.floor(size / 2), 90));
    }
  }
}

async function deleteAll(
  col: Collection<unknown>,
  keys: string[],
): Promise<void> {
  let size = keys.length;
  let at = 0;
  while (at < keys.length) {
    const part = keys.slice(at, at + size);
    try {
      await col.deleteBatch(part);
      at += part.length;
    } catch (e) {
      if ((e as Error)?.name !== "TooLargeError" || size === 1) throw e;
      size = Math.max(1, Math.min(Math.floor(size / 2), 90));
    }
  }
}

/**
 * Applies a relay batch to `db`, idempotently: a change is applied only if
 * it is later (in the origin's feed) than the change already applied for
 * that origin, collection and key, which `db` keeps in its `_applied`
 * collection. Per collection, the documents are written first (puts in one
 * atomic write, deletes in another; on Deno KV in parts of under 100), then
 * what was applied; a batch cut short by a crash is completed when the relay
 * sends it again (it was not acknowledged), and a change seen twice is
 * applied once.
 *
 * @param db The target database.
 * @param batch The batch (already checked with `parseBatch`).
 * @returns How many changes were applied and skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../../mod.ts";
 * import { applyBatch } from "./receive.ts";
 * await using db = await open();
 * const batch = { origin: "gw~1", changes: [
 *   { seq: "1", type: "put" as const, collection: "readings", key: "a/1", version: 1, doc: { t: 1 } },
 * ] };
 * assert.deepEqual(await applyBatch(db, batch), { applied: 1, skipped: 0 });
 * assert.deepEqual(await applyBatch(db, batch), { applied: 0, skipped: 1 });
 * ```
 */
export async function applyBatch(
  db: Database,
  batch: RelayBatch,
): Promise<ReceiveResult> {
  const byCollection = new Map<string, Map<string, RelayChange>>();
  for (const change of batch.changes) {
    let keys = byCollection.get(change.collection);
    if (keys === undefined) {
      keys = new Map();
      byCollection.set(change.collection, keys);
    }
    const earlier = keys.get(change.key);
    if (earlier === undefined || compareSeq(change.seq, earlier.seq) > 0) {
      keys.set(change.key, change);
    }
  }
  const applied = db.collection<Applied>(APPLIED_COLLECTION);
  let count = 0;
  let skipped = batch.changes.length;
  for (const [name, changes] of byCollection) {
    const list = [...changes.values()];
    const mapKeys = await Promise.all(
      list.map((c) => appliedKey(batch.origin, c)),
    );
    const seen = await Promise.all(mapKeys.map((k) => applied.get(k)));
    const puts: [string, unknown][] = [];
    const deletes: string[] = [];
    const marks: [string, Applied][] = [];
    for (let i = 0; i < list.length; i++) {
      const change = list[i]!;
      const before = seen[i];
      if (before != null && compareSeq(change.seq, before.s) <= 0) continue;
      if (change.type === "put") puts.push([change.key, change.doc]);
      else deletes.push(change.key);
      marks.push([mapKeys[i]!, { s: change.seq, v: change.version }]);
    }
    if (marks.length === 0) continue;
    const col = db.collection<unknown>(name);
    if (puts.length > 0) await putAll(col, puts);
    if (deletes.length > 0) await deleteAll(col, deletes);
    await putAll(applied, marks);
    count += marks.length;
    skipped -= marks.length;
  }
  return { applied: count, skipped };
}

/**
 * Makes the handler a relay posts batches to (on Deno Deploy:
 * `Deno.serve(receive(await open({ kv: await Deno.openKv() }), { token }))`).
 * It checks the bearer token in constant time, reads at most
 * `maxBodyBytes`, applies the batch with {@linkcode applyBatch} and answers
 * `200 { applied, skipped }` only after the commit. It uses no timers.
 *
 * Statuses: 200; 400 malformed batch, or a document the database refuses;
 * 401 bad token; 403 a collection not accepted; 405 not a POST; 413 body
 * too large; 415 not JSON; 503 with `Retry-After` when the storage is full
 * or the write lost a race.
 *
 * @param db The target database (file, memory or Deno KV).
 * @param options The token and limits.
 * @returns The handler.
 * @throws {TypeError} When the token is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../../mod.ts";
 * import { receive } from "./receive.ts";
 * await using db = await open();
 * const handle = receive(db, { token: "sync-secret" });
 * const response = await handle(new Request("http://cloud/sync", {
 *   method: "POST",
 *   headers: { authorization: "Bearer wrong", "content-type": "application/json" },
 *   body: "{}",
 * }));
 * assert.equal(response.status, 401);
 * ```
 */
export function receive(
  db: Database,
  options: ReceiveOptions,
): (request: Request) => Promise<Response> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "Cannot set up receive: options must be an object with a token",
    );
  }
  const {
    token,
    maxBodyBytes = 8_388_608,
    collections,
    retryAfter = 5,
  } = options;
  checkTokenSpec(token, "the relay");
  if (!(typeof maxBodyBytes === "number" && maxBodyBytes >= 1)) {
    throw new RangeError(
      `Cannot set up receive: maxBodyBytes must be a number from 1, got ${maxBodyBytes}`,
    );
  }
  const allowed = collections === undefined ? undefined : new Set(collections);
  const table = TokenTable.create({ relay: token });
  return async (request: Request): Promise<Response> => {
    if (request.method !== "POST") {
      await request.body?.cancel().catch(() => {});
      return problem(405, `${request.method} is not allowed: POST batches`, {
        allow: "POST",
      });
    }
    const header = request.headers.get("authorization");
    const presented = header === null
      ? undefined
      : /^Bearer +(\S+) *$/i.exec(header)?.[1];
    if ((await (await table).identify(presented)) === undefined) {
      await request.body?.cancel().catch(() => {});
      return problem(401, "The relay's bearer token is required", {
        "www-authenticate": 'Bearer realm="tether-receive"',
      });
    }
    const type = request.headers.get("content-type")?.split(";")[0]?.trim();
    if (type !== "application/json") {
      await request.body?.cancel().catch(() => {});
      return problem(415, "Send application/json");
    }
    const bytes = await readCapped(request, maxBodyBytes);
    if (!(bytes instanceof Uint8Array)) {
      return problem(bytes.status, bytes.message);
    }
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return problem(
        400,
        `The body is not valid JSON: ${(e as Error).message}`,
      );
    }
    const batch = parseBatch(value);
    if (typeof batch === "string") return problem(400, batch);
    if (allowed !== undefined) {
      const other = batch.changes.find((c) => !allowed.has(c.collection));
      if (other !== undefined) {
        return problem(
          403,
          `Collection '${other.collection}' is not accepted here`,
        );
      }
    }
    try {
      return json(200, await applyBatch(db, batch));
    } catch (e) {
      const name = (e as Error)?.name;
      const message = (e as Error)?.message ?? String(e);
      if (name === "QuotaError" || name === "ConflictError") {
        return problem(503, `The batch was not applied: ${message}`, {
          "retry-after": String(retryAfter),
        });
      }
      if (
        name === "TypeError" || name === "RangeError" ||
        name === "TooLargeError"
      ) {
        return problem(400, `The batch was not applied: ${message}`);
      }
      return problem(500, `The batch was not applied: ${message}`);
    }
  };
}
