/**
 * `receive(db, options)`: the endpoint a relay posts to, and `applyBatch`,
 * which a relay to a local `Database` calls directly.
 *
 * @module
 */

import type { Collection, Database } from "../../mod.ts";
import { checkKey } from "../validate.ts";
import { coreOf } from "../collection/core.ts";
import { putPairs } from "../collection/writes.ts";
import { checkValue } from "../value_codec.ts";
import { checkTokenSpec, type TokenSpec, TokenTable } from "./auth.ts";
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
  /**
   * Write the documents with `putBatch(..., { atomic: false, assumeNew:
   * true })` (see {@linkcode ApplyOptions.assumeNew}): on Deno KV about 8x
   * the documents per second for collections without indexes. Default
   * `false`.
   */
  readonly assumeNew?: boolean;
}

/** Options of {@linkcode applyBatch}. */
export interface ApplyOptions {
  /**
   * `true`: write a batch's puts as new documents, without reading them or
   * checking their versions (`putBatch` with `assumeNew`; on Deno KV one
   * mutation per document, in commits of up to about 975). Every guarantee
   * of `applyBatch` stays (idempotent, each change applied once in effect,
   * answered after the commit, completed when sent again, listed by the
   * target's change feed); what changes is a put over a document the
   * target already holds (a key updated at the origin, or written on the
   * target too): it is written as a new document, version 1 with a new
   * `createdAt`, instead of the old version + 1. Collections with indexes
   * are written as without it. Default `false`.
   */
  readonly assumeNew?: boolean;
}

/**
 * What is kept per origin and collection: the position of the latest change
 * applied. A relay sends each collection's changes in feed order (a batch
 * never holds a change older than one of an earlier batch it sent), so every
 * change of that origin and collection up to this position has been applied,
 * and a change is newer than the one applied for its key exactly when its
 * position is past this one.
 */
interface Applied {
  /** The position. */
  readonly s: string;
}

/** Refuses bytes that are not UTF-8 (a JSON body is UTF-8, RFC 8259). */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The largest part a collection's storage took in one atomic write. */
const partSize = new WeakMap<object, number>();

/** Parts written at once when a batch needs several (Deno KV). */
const CONCURRENT_PARTS = 4;

/**
 * Writes in as few atomic writes as the storage allows: all at once where it
 * can, else (Deno KV's 100-check limit) in parts, halving until one is
 * accepted (and starting from that size next time). Once the part size is
 * known, up to {@linkcode CONCURRENT_PARTS} parts are written at once (their
 * keys differ; a Deno KV commit waits mostly on its store, so concurrent
 * commits overlap). A part that fails fails the batch: nothing acknowledges
 * it, the relay sends it again, and what was written is written again with
 * the same content.
 */
async function inParts<K>(
  col: object,
  items: readonly K[],
  write: (part: K[]) => Promise<unknown>,
): Promise<void> {
  let size = Math.min(items.length, partSize.get(col) ?? items.length);
  let at = 0;
  while (at < items.length) {
    if (partSize.has(col) && items.length - at > size) {
      const parts: K[][] = [];
      for (
        let i = 0;
        i < CONCURRENT_PARTS && at + i * size < items.length;
        i++
      ) {
        parts.push(items.slice(at + i * size, at + (i + 1) * size));
      }
      try {
        await Promise.all(parts.map(write));
      } catch (e) {
        if ((e as Error)?.name !== "TooLargeError" || size === 1) throw e;
        // Written again from here in smaller parts (the same content).
        size = Math.max(1, Math.floor(size / 2));
        partSize.set(col, size);
        continue;
      }
      for (const part of parts) at += part.length;
      continue;
    }
    const part = items.slice(at, at + size);
    try {
      await write(part);
      at += part.length;
    } catch (e) {
      if ((e as Error)?.name !== "TooLargeError" || size === 1) throw e;
      size = Math.max(1, Math.min(Math.floor(size / 2), 90));
      partSize.set(col, size);
    }
  }
}

/**
 * Applies a relay batch to `db`, idempotently: a change is applied only if
 * it is later (in the origin's feed) than the change already applied for
 * its key from that origin. `db` keeps, in its `_applied` collection, one
 * record per origin and collection: the position of the latest change
 * applied (the relay sends a collection's changes in feed order, so that is
 * the per-key rule at the cost of one read and one write per batch). Every
 * key and document is checked before anything is written; then, per
 * collection, its puts and deletes are written in one atomic write (on
 * Deno KV in parts of under 100), then the position;
 * a batch cut short by a crash is completed when the relay sends it again
 * (it was not acknowledged), and a change seen twice is applied once.
 * Batches of one origin are applied one at a time in this process, and the
 * position is never set back, so a stale copy of a batch (a POST the relay
 * gave up on and sent again) is skipped once a newer batch is applied.
 *
 * @param db The target database.
 * @param batch The batch (already checked with `parseBatch`).
 * @param options `assumeNew`.
 * @returns How many changes were applied and skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { applyBatch } from "@tether/db/gateway";
 * await using db = await open();
 * const batch = { origin: "gw~1", changes: [
 *   { seq: "1", type: "put" as const, collection: "readings", key: "a/1", version: 1, doc: { t: 1 } },
 * ] };
 * assert.deepEqual(await applyBatch(db, batch), { applied: 1, skipped: 0 });
 * assert.deepEqual(await applyBatch(db, batch), { applied: 0, skipped: 1 });
 * const next = { origin: "gw~1", changes: [
 *   { seq: "2", type: "put" as const, collection: "readings", key: "a/2", version: 1, doc: { t: 2 } },
 * ] };
 * assert.deepEqual(await applyBatch(db, next, { assumeNew: true }), { applied: 1, skipped: 0 });
 * ```
 */
export function applyBatch(
  db: Database,
  batch: RelayBatch,
  options: ApplyOptions = {},
): Promise<ReceiveResult> {
  const assumeNew = typeof options === "object" && options !== null
    ? options.assumeNew ?? false
    : options;
  if (typeof assumeNew !== "boolean") {
    return Promise.reject(
      new TypeError(
        `Cannot apply a relay batch: options.assumeNew must be a boolean, got ${typeof assumeNew}`,
      ),
    );
  }
  // Batches of one origin are applied one at a time: a batch still being
  // applied when the relay gave up on it (timeout) and sent it again, then
  // sent the next, must not write its older documents after the newer ones,
  // nor set the position back.
  let byOrigin = running.get(db);
  if (byOrigin === undefined) {
    byOrigin = new Map();
    running.set(db, byOrigin);
  }
  const queue = byOrigin;
  const before = queue.get(batch.origin) ?? Promise.resolve();
  const run = before.then(() => applyNow(db, batch, assumeNew));
  const settled = run.then(() => {}, () => {});
  queue.set(batch.origin, settled);
  void settled.then(() => {
    if (queue.get(batch.origin) === settled) queue.delete(batch.origin);
  });
  return run;
}

/** The batch being applied per database and origin. */
const running = new WeakMap<Database, Map<string, Promise<void>>>();

async function applyNow(
  db: Database,
  batch: RelayBatch,
  assumeNew: boolean,
): Promise<ReceiveResult> {
  const byCollection = byKey(batch.changes);
  // What the database refuses by a change's shape (a key, a document) is
  // found before anything is written. A single collection's puts taken as
  // new are one putBatch, which checks every document before it writes any
  // (and copies it): their documents are checked there, not twice.
  const docsInBatch = assumeNew && byCollection.length === 1;
  for (const [name, changes] of byCollection) {
    checkChanges(name, changes, !docsInBatch);
  }
  const applied = db.collection<Applied>(APPLIED_COLLECTION);
  let count = 0;
  let skipped = batch.changes.length;
  const done: string[] = [];
  for (const [name, changes] of byCollection) {
    const markKey = `${batch.origin}/${name}`;
    const before = (await applied.get(markKey))?.s;
    const todo: RelayChange[] = [];
    let latest = before;
    for (const change of changes) {
      if (before !== undefined && compareSeq(change.seq, before) <= 0) continue;
      todo.push(change);
      if (latest === undefined || compareSeq(change.seq, latest) > 0) {
        latest = change.seq;
      }
    }
    if (todo.length === 0) continue;
    const col = db.collection<unknown>(name);
    try {
      await write(col, todo, assumeNew);
    } catch (e) {
      // A document putBatch refused: the error that names the change.
      if (docsInBatch && (e instanceof TypeError || e instanceof RangeError)) {
        checkChanges(name, todo, true);
      }
      throw done.length === 0 ? e : appliedBefore(e, done);
    }
    // Never set the position back (another handle of the same target may
    // have applied a later batch meanwhile).
    const now = (await applied.get(markKey))?.s;
    if (now === undefined || compareSeq(latest!, now) > 0) {
      await applied.put(markKey, { s: latest! });
    }
    done.push(name);
    count += todo.length;
    skipped -= todo.length;
  }
  return { applied: count, skipped };
}

/**
 * A batch's changes by collection (in the order they first appear), each
 * collection's in key order with one change per key: of a key sent twice
 * (a relay sends each once), the one with the later `seq`. No map is keyed
 * by the keys: the first hashing of a key string just parsed from the body
 * cost ~1.4 µs a change, a tenth of a batch's JavaScript, where sorting
 * compares them.
 *
 * @param changes The batch's changes.
 * @returns Collection name and changes, per collection.
 */
function byKey(
  changes: readonly RelayChange[],
): [string, RelayChange[]][] {
  const groups: [string, RelayChange[]][] = [];
  // Looked up only when the collection changes from one change to the next
  // (a batch is mostly one collection's).
  const byName = new Map<string, [string, RelayChange[]]>();
  let group: [string, RelayChange[]] | undefined;
  for (const change of changes) {
    if (group === undefined || group[0] !== change.collection) {
      group = byName.get(change.collection);
      if (group === undefined) {
        group = [change.collection, []];
        groups.push(group);
        byName.set(change.collection, group);
      }
    }
    group[1].push(change);
  }
  for (const g of groups) {
    // Stable: of a key sent twice with the same seq, the first stays.
    const sorted = g[1].sort((a, b) =>
      a.key < b.key ? -1 : a.key > b.key ? 1 : 0
    );
    let n = 0;
    for (const change of sorted) {
      const last = n === 0 ? undefined : sorted[n - 1]!;
      if (last === undefined || last.key !== change.key) sorted[n++] = change;
      else if (compareSeq(change.seq, last.seq) > 0) sorted[n - 1] = change;
    }
    sorted.length = n;
  }
  return groups;
}

/**
 * Checks the changes' keys and (with `docs`) their documents as the
 * database will, throwing the error of the first it refuses, which names
 * the change (that message is made only then: made for every change it
 * cost ~3% of a batch's time).
 */
function checkChanges(
  name: string,
  changes: Iterable<RelayChange>,
  docs: boolean,
): void {
  for (const change of changes) {
    try {
      checkKey(change.key, "");
      if (docs && change.type === "put") checkValue(change.doc, "");
    } catch {
      const at = `Cannot apply the change of '${name}' key ${
        JSON.stringify(change.key.slice(0, 100))
      }`;
      checkKey(change.key, at);
      if (change.type === "put") checkValue(change.doc, at);
    }
  }
}

/**
 * Writes one collection's changes: puts and deletes in one atomic write
 * (on Deno KV, in parts of what one commit holds); with `assumeNew`, the
 * puts as new documents, then the deletes.
 */
async function write(
  col: Collection<unknown>,
  changes: readonly RelayChange[],
  assumeNew: boolean,
): Promise<void> {
  // In key order (byKey): a commit of a batch's part then writes
  // neighbouring keys. A gateway's batch interleaves its devices (keys
  // `device/seq`); in feed order every commit inserted into every device's
  // key range of the storage's B-tree (Deno KV: SQLite), in key order each
  // range is written by one or two commits (measured: 100 devices, 2,000
  // per batch, 18,000 readings/s in feed order). Each key is in the batch
  // once, so the order between them is free.
  const puts = changes.filter((c) => c.type === "put");
  if (assumeNew && puts.length > 0) {
    // In commits as large as the storage takes (not atomic as a whole:
    // a batch cut short is completed when the relay sends it again).
    // As pairs: the keys are distinct (byKey), and a Map of them would
    // hash each key string once more.
    await putPairs(coreOf(col), puts.map((c) => [c.key, c.doc]), {
      atomic: false,
      assumeNew: true,
    }, `Cannot put a batch into '${col.name}'`);
    const deletes = changes.filter((c) => c.type === "delete");
    if (deletes.length > 0) {
      await inParts(
        col,
        deletes,
        (part) => col.deleteBatch(part.map((c) => c.key)),
      );
    }
    return;
  }
  await inParts(col, changes, (part) => {
    const map = new Map<string, unknown>();
    const deletes: string[] = [];
    for (const c of part) {
      if (c.type === "put") map.set(c.key, c.doc);
      else deletes.push(c.key);
    }
    return col.putBatch(map, deletes.length > 0 ? { deletes } : undefined);
  });
}

/**
 * The error of a collection refused after others of the batch were
 * applied: the same class, saying so (sent again, those are skipped).
 */
function appliedBefore(e: unknown, done: readonly string[]): unknown {
  if (!(e instanceof Error)) return e;
  const Class = e.constructor as new (
    message: string,
    options: { cause: unknown },
  ) => Error;
  return new Class(
    `${e.message} (the changes of ${
      done.map((n) => `'${n}'`).join(", ")
    } in this batch were applied before; sent again, they are skipped)`,
    { cause: e },
  );
}

/**
 * Makes the handler a relay posts batches to (on Deno Deploy:
 * `Deno.serve(receive(await open({ kv: await Deno.openKv() }), { token }))`).
 * It checks the bearer token in constant time, reads at most
 * `maxBodyBytes`, applies the batch with {@linkcode applyBatch} and answers
 * `200 { applied, skipped }` only after the commit. It uses no timers.
 *
 * Statuses: 200; 400 malformed batch, or a document the database refuses;
 * 401 bad token; 403 a collection not accepted; 405 not a POST; 409 a
 * document a unique index of the database refuses; 413 body too large; 415
 * not JSON; 503 with `Retry-After` when the storage is full or the write
 * lost a race.
 *
 * @param db The target database (file, memory or Deno KV).
 * @param options The token and limits.
 * @returns The handler.
 * @throws {TypeError} When the token is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { receive } from "@tether/db/gateway";
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
    assumeNew = false,
  } = options;
  if (typeof assumeNew !== "boolean") {
    throw new TypeError(
      `Cannot set up receive: assumeNew must be a boolean, got ${typeof assumeNew}`,
    );
  }
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
    if ((await table).identify(presented) === undefined) {
      await request.body?.cancel().catch(() => {});
      return problem(401, "The relay's bearer token is required", {
        "www-authenticate": 'Bearer realm="tether-receive"',
      });
    }
    const type = request.headers.get("content-type")?.split(";")[0]?.trim()
      .toLowerCase();
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
      value = JSON.parse(utf8.decode(bytes));
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
      return json(200, await applyBatch(db, batch, { assumeNew }));
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
      if (name === "DuplicateKeyError") {
        // A unique index of this database refuses a document: the same
        // batch would be refused again.
        return problem(409, `The batch was not applied: ${message}`);
      }
      return problem(500, `The batch was not applied: ${message}`);
    }
  };
}
