/**
 * `ingest(db, options)`: the HTTP handler devices post readings to.
 *
 * @module
 */

import {
  type Collection,
  type Database,
  DuplicateKeyError,
  QuotaError,
} from "../../mod.ts";
import { bearer, checkTokenSpec, type TokenSpec, TokenTable } from "./auth.ts";
import {
  type BodyFormat,
  bodyFormat,
  type Located,
  parseReadings,
  readCapped,
} from "./body.ts";
import {
  type RateClock,
  RateLimiter,
  type RateLimitOptions,
} from "./rate_limit.ts";
import { streamInfo } from "./streams.ts";
import { json, problem, sameContent } from "./protocol.ts";
import { coreOf } from "../collection/core.ts";
import { putPairs } from "../collection/writes.ts";
import { StringIndex } from "../string_index.ts";

/** Options of {@linkcode ingest}. */
export interface IngestOptions {
  /**
   * Device id -> its token: in clear, `"sha256:<hex>"` or `{ sha256 }` (so
   * the script need not hold it in clear). Ids are 1-64 letters, digits,
   * `_`, `-` or `.`.
   */
  readonly devices: Readonly<Record<string, TokenSpec>>;
  /** Where readings go. Default `"readings"`. */
  readonly collection?: string;
  /**
   * Keep a reading this long after it was received, ms, once it has been
   * relayed: `relay` sets the TTL when the target acknowledged it. A
   * reading that was never relayed never expires, unless `expireUnrelayed`.
   * Default: kept until deleted.
   */
  readonly ttl?: number;
  /** Apply `ttl` from ingest, relayed or not. Default `false`. */
  readonly expireUnrelayed?: boolean;
  /** The largest body, bytes (413 past it). Default `262_144` (256 KiB). */
  readonly maxBodyBytes?: number;
  /** The most readings in one request (413 past it). Default `10_000`. */
  readonly maxReadings?: number;
  /**
   * A per-device token bucket on readings (429 with `Retry-After` when
   * empty). Default: no limit.
   */
  readonly rateLimit?: RateLimitOptions;
  /**
   * What a full storage (`QuotaError`) does: `"reject"` answers 503 with
   * `Retry-After` so the device keeps its buffer (default); `"dropOldest"`
   * deletes the oldest readings (by `receivedAt`) to make room, counted in
   * `stats().dropped`.
   */
  readonly onFull?: "reject" | "dropOldest";
  /** The `Retry-After` of a 503, seconds. Default `30`. */
  readonly retryAfter?: number;
  /** The time source for `receivedAt` and the rate limit. Default `Date`. */
  readonly clock?: RateClock;
}

/** Counters of an ingest handler. */
export interface IngestStats {
  /** Requests answered. */
  readonly requests: number;
  /** Readings stored. */
  readonly stored: number;
  /** Readings re-sent and already stored (same device, `seq` and content). */
  readonly duplicates: number;
  /** Requests answered with each status other than 200. */
  readonly refused: Readonly<Record<number, number>>;
  /** Readings deleted to make room (`onFull: "dropOldest"`). */
  readonly dropped: number;
}

/** The handler {@linkcode ingest} returns: pass it to `Deno.serve`. */
export interface IngestHandler {
  /** Answers one device request. */
  (request: Request): Promise<Response>;
  /** The handler's counters. */
  stats(): IngestStats;
  /**
   * Stores readings that arrived another way (an MQTT bridge, a serial
   * line) for a device the caller has authenticated: the same checks,
   * limits, rate limit, idempotency and answers as a request, without the
   * token.
   *
   * @param device A device id from `devices` (else a 401 answer).
   * @param body One JSON object or an array (`"json"`), or NDJSON.
   * @param format `"json"` (default) or `"ndjson"`.
   * @returns The answer a request would get.
   */
  submit(
    device: string,
    body: string | Uint8Array,
    format?: BodyFormat,
  ): Promise<Response>;
}

const DEVICE = /^[A-Za-z0-9_.-]{1,64}$/;
const SEQ_TEXT = /^(?=.*[^0-9])[A-Za-z0-9._:-]{1,64}$/;
const RESERVED = ["_id", "receivedAt", "relayedAt"];

/**
 * The key of a reading: `<device>/<seq>` (an integer `seq` as 16 digits,
 * so keys sort by it), or a new time-ordered `<device>/~<id>` without one.
 *
 * @param device The device id.
 * @param seq The reading's `seq`, if any (already checked).
 * @returns The key.
 */
export function readingKey(
  device: string,
  seq: number | string | undefined,
): string {
  if (seq === undefined) return `${device}/~${timeId()}`;
  if (typeof seq === "number") {
    return `${device}/${String(seq).padStart(16, "0")}`;
  }
  return `${device}/${seq}`;
}

let lastTime = 0;
let counter = 0;
function timeId(): string {
  const now = Date.now();
  if (now > lastTime) {
    lastTime = now;
    counter = 0;
  } else counter++;
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!;
  return now.toString(36).padStart(9, "0") +
    counter.toString(36).padStart(4, "0") +
    random.toString(36).padStart(7, "0");
}

interface Prepared {
  readonly where: string;
  readonly key: string;
  readonly doc: Record<string, unknown>;
  readonly seq: boolean;
}

function prepare(
  located: Located,
  device: string,
  receivedAt: number,
): Prepared | string {
  const reading = located.value as Record<string, unknown>;
  for (const name of RESERVED) {
    if (Object.hasOwn(reading, name)) {
      return `${located.where}: '${name}' is set by the gateway`;
    }
  }
  if (Object.hasOwn(reading, "device") && reading.device !== device) {
    return `${located.where}: 'device' is ${
      JSON.stringify(reading.device)
    } but the token is '${device}'s`;
  }
  const seq = reading.seq;
  if (
    seq !== undefined &&
    !(typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 0) &&
    !(typeof seq === "string" && SEQ_TEXT.test(seq))
  ) {
    return `${located.where}: 'seq' must be a whole number from 0 to 2^53-1 or 1-64 letters, digits, '.', '_', ':' or '-' (not only digits), got ${
      JSON.stringify(seq)
    }`;
  }
  return {
    where: located.where,
    key: readingKey(device, seq as number | string | undefined),
    doc: { ...reading, device, receivedAt },
    seq: seq !== undefined,
  };
}

function checkNumber(
  value: unknown,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    throw new RangeError(
      `Cannot set up ingest: ${name} must be a number from ${min} to ${max}, got ${value}`,
    );
  }
}

/**
 * Makes the HTTP handler that devices post readings to.
 *
 * A device sends `POST` with `Authorization: Bearer <token>` and a body of
 * one JSON object, a JSON array of objects, or NDJSON
 * (`application/x-ndjson`). Each reading is stored with `device` (the
 * token's owner) and `receivedAt` (epoch ms); a reading with `seq` (the
 * device's counter) is stored under `<device>/<seq>`, so a re-sent one is
 * stored once and counted as a duplicate. One request is one atomic batch,
 * answered after it is durable under the database's durability:
 *
 * - 200 `{ "stored": n, "duplicates": n }`
 * - 400 `{ "error" }` naming the line or item (nothing stored)
 * - 401 unknown or missing token; 405 not a POST; 409 a `seq` already
 *   stored with other content, or a reading a unique index of the
 *   collection refuses; 413 body or reading count over the limit;
 *   415 neither JSON nor NDJSON; 429 rate limit (`Retry-After`);
 *   503 storage full (`Retry-After`).
 *
 * @param db The gateway's database.
 * @param options Devices, collection, limits, retention.
 * @returns The handler (with `stats()`).
 * @throws {TypeError} When a device id or token is malformed, or the
 *   collection name is invalid.
 * @throws {RangeError} When a limit is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { ingest } from "@tether/db/gateway";
 * await using db = await open();
 * const handle = ingest(db, { devices: { "esp32-1": "secret" } });
 * const response = await handle(new Request("http://gw/", {
 *   method: "POST",
 *   headers: { authorization: "Bearer secret", "content-type": "application/json" },
 *   body: JSON.stringify({ seq: 1, temp: 21.5 }),
 * }));
 * assert.deepEqual(await response.json(), { stored: 1, duplicates: 0 });
 * ```
 */
export function ingest(db: Database, options: IngestOptions): IngestHandler {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot set up ingest: options must be an object");
  }
  const {
    devices,
    collection: name = "readings",
    ttl,
    expireUnrelayed = false,
    maxBodyBytes = 262_144,
    maxReadings = 10_000,
    rateLimit,
    onFull = "reject",
    retryAfter = 30,
    clock = Date,
  } = options;
  if (typeof devices !== "object" || devices === null) {
    throw new TypeError(
      "Cannot set up ingest: devices must be an object of device ids to tokens",
    );
  }
  for (const [id, spec] of Object.entries(devices)) {
    if (!DEVICE.test(id)) {
      throw new TypeError(
        `Cannot set up ingest: device id '${id}' must be 1-64 letters, digits, '_', '-' or '.'`,
      );
    }
    checkTokenSpec(spec, `device '${id}'`);
  }
  checkNumber(ttl, "ttl", 1, 3_155_760_000_000);
  checkNumber(maxBodyBytes, "maxBodyBytes", 1);
  checkNumber(maxReadings, "maxReadings", 1);
  checkNumber(retryAfter, "retryAfter", 0, 86_400);
  if (onFull !== "reject" && onFull !== "dropOldest") {
    throw new TypeError(
      `Cannot set up ingest: onFull must be "reject" or "dropOldest", got ${
        JSON.stringify(onFull)
      }`,
    );
  }
  const col = db.collection<Record<string, unknown>>(name);
  const core = coreOf(col);
  const putAction = `Cannot put a batch into '${name}'`;
  const limiter = rateLimit === undefined
    ? undefined
    : new RateLimiter(rateLimit, clock);
  const info = streamInfo(db, name);
  info.ttl = ttl;
  info.expireUnrelayed = expireUnrelayed;
  const tokens = TokenTable.create(devices);
  // Readings of one device are stored one request at a time, so that two
  // concurrent re-sends of a reading count one as a duplicate.
  const locks = new Map<string, Promise<unknown>>();
  const stats = {
    requests: 0,
    stored: 0,
    duplicates: 0,
    refused: {} as Record<number, number>,
  };

  const refuse = (status: number, message: string, headers?: HeadersInit) => {
    stats.refused[status] = (stats.refused[status] ?? 0) + 1;
    return problem(status, message, headers);
  };

  /**
   * Stores a request's readings. First without reading anything: the batch
   * is written with `onlyNew`, so a reading stored before (a re-send)
   * refuses it whole, nothing written, and the batch is stored again
   * `looking` at each key first: a re-sent reading with the same content is
   * a duplicate, with other content a 409. Most requests hold only new
   * readings: one write, no read.
   */
  const store = async (
    prepared: Prepared[],
    looking = false,
  ): Promise<Response> => {
    // The readings to store, each key once; found by a StringIndex, not a
    // Map (V8's first hashing of each new key string cost ~1 µs a reading).
    const kept: Prepared[] = [];
    const table = new StringIndex(prepared.length);
    let duplicates = 0;
    const stored = looking
      ? await Promise.all(prepared.map((p) => p.seq ? col.get(p.key) : null))
      : undefined;
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[i]!;
      const at = table.get(p.key);
      const earlier = (at < 0 ? undefined : kept[at]!.doc) ?? stored?.[i];
      if (earlier !== null && earlier !== undefined) {
        if (sameContent(earlier, p.doc)) {
          duplicates++;
          continue;
        }
        return refuse(
          409,
          `${p.where}: seq ${
            JSON.stringify(p.doc.seq)
          } of '${p.doc.device}' is already stored with other content`,
        );
      }
      table.put(p.key, kept.length);
      kept.push(p);
    }
    if (kept.length > 0) {
      const options = ttl !== undefined && expireUnrelayed
        ? { ttl, onlyNew: !looking }
        : { onlyNew: !looking };
      const pairs = kept.map((p) => [p.key, p.doc] as const);
      const put = () => putPairs(core, pairs, options, putAction);
      try {
        await putOrMakeRoom(put, kept.length);
      } catch (e) {
        // What the error names, by key (made only here).
        const batch = new Map(pairs);
        const where = new Map(kept.map((p) => [p.key, p.where]));
        if (
          !looking && e instanceof DuplicateKeyError && e.index === undefined &&
          e.key !== undefined && e.key === e.holder && batch.has(e.key)
        ) {
          return await store(prepared, true); // a reading stored before
        }
        if (e instanceof QuotaError) {
          return refuse(
            503,
            `The gateway's storage is full: ${e.message}`,
            { "retry-after": String(retryAfter) },
          );
        }
        const conflict = e instanceof DuplicateKeyError;
        if (
          e instanceof TypeError || e instanceof RangeError ||
          isTooLarge(e) || conflict
        ) {
          const message = (e as Error).message;
          const index = /item (\d+)/.exec(message)?.[1];
          const keys = [...batch.keys()];
          // A unique index names the reading it refused (not the holder).
          const refused = conflict ? (e as DuplicateKeyError).key : undefined;
          const key = refused !== undefined && batch.has(refused)
            ? refused
            : index !== undefined
            ? keys[Number(index)]
            : keys.find((k) => message.includes(`'${k}'`));
          if (key === undefined && isTooLarge(e)) {
            // The batch as a whole is over what one atomic write of this
            // storage holds (Deno KV): fewer readings per request.
            return refuse(
              413,
              `${batch.size} readings are more than one atomic write holds here: ${message}`,
            );
          }
          const at = key === undefined ? "a reading" : where.get(key)!;
          // A unique index of the collection refuses it: sent again, it
          // would be refused again (nothing was stored).
          if (conflict) {
            const holder = (e as DuplicateKeyError).holder;
            const other = holder !== undefined && holder !== key &&
                batch.has(holder)
              ? where.get(holder)!
              : "a stored reading";
            return refuse(409, `${at} conflicts with ${other}: ${message}`);
          }
          return refuse(400, `${at} cannot be stored: ${message}`);
        }
        throw e;
      }
    }
    stats.stored += kept.length;
    stats.duplicates += duplicates;
    return json(200, { stored: kept.length, duplicates });
  };

  const putOrMakeRoom = async (put: () => Promise<unknown>, count: number) => {
    for (let attempt = 0;; attempt++) {
      try {
        await put();
        return;
      } catch (e) {
        if (
          !(e instanceof QuotaError) || onFull !== "dropOldest" || attempt >= 4
        ) {
          throw e;
        }
        const removed = await dropOldest(col, count * 2 ** attempt);
        info.dropped += removed;
        if (removed === 0) throw e;
      }
    }
  };

  const handle = async (request: Request): Promise<Response> => {
    stats.requests++;
    if (request.method !== "POST") {
      await request.body?.cancel().catch(() => {});
      return refuse(405, `${request.method} is not allowed: POST readings`, {
        allow: "POST",
      });
    }
    const device = (await tokens).identify(bearer(request));
    if (device === undefined) {
      await request.body?.cancel().catch(() => {});
      return refuse(401, "A known device's bearer token is required", {
        "www-authenticate": 'Bearer realm="tether-gateway"',
      });
    }
    const format = bodyFormat(request.headers.get("content-type"));
    if (format === undefined) {
      await request.body?.cancel().catch(() => {});
      return refuse(
        415,
        "Send application/json (an object or an array) or application/x-ndjson",
      );
    }
    const wait = limiter?.wait(device) ?? 0;
    if (wait > 0) {
      await request.body?.cancel().catch(() => {});
      return refuse(429, `Device '${device}' is over its rate limit`, {
        "retry-after": String(Math.ceil(wait / 1000)),
      });
    }
    const bytes = await readCapped(request, maxBodyBytes);
    if (!(bytes instanceof Uint8Array)) {
      return refuse(bytes.status, bytes.message);
    }
    return await accept(device, bytes, format);
  };

  const accept = async (
    device: string,
    bytes: Uint8Array,
    format: BodyFormat,
  ): Promise<Response> => {
    const readings = parseReadings(bytes, format);
    if (!Array.isArray(readings)) {
      return refuse(readings.status, readings.message);
    }
    if (readings.length > maxReadings) {
      return refuse(
        413,
        `${readings.length} readings in one request; the limit is ${maxReadings}`,
      );
    }
    limiter?.take(device, readings.length);
    const receivedAt = clock.now();
    const prepared: Prepared[] = [];
    for (const located of readings) {
      const p = prepare(located, device, receivedAt);
      if (typeof p === "string") return refuse(400, p);
      prepared.push(p);
    }
    const before = locks.get(device);
    const run = (before ?? Promise.resolve()).then(() => store(prepared));
    const settled = run.catch(() => {});
    locks.set(device, settled);
    try {
      return await run;
    } catch (e) {
      return refuse(
        500,
        `The readings could not be stored: ${(e as Error)?.message ?? e}`,
      );
    } finally {
      if (locks.get(device) === settled) locks.delete(device);
    }
  };

  const submit = async (
    device: string,
    body: string | Uint8Array,
    format: BodyFormat = "json",
  ): Promise<Response> => {
    stats.requests++;
    if (typeof device !== "string" || !Object.hasOwn(devices, device)) {
      return refuse(401, `'${device}' is not a known device`);
    }
    if (format !== "json" && format !== "ndjson") {
      return refuse(415, `format must be "json" or "ndjson"`);
    }
    const bytes = typeof body === "string"
      ? new TextEncoder().encode(body)
      : body;
    if (bytes.byteLength > maxBodyBytes) {
      return refuse(413, `The body is over the limit of ${maxBodyBytes} bytes`);
    }
    const wait = limiter?.wait(device) ?? 0;
    if (wait > 0) {
      return refuse(429, `Device '${device}' is over its rate limit`, {
        "retry-after": String(Math.ceil(wait / 1000)),
      });
    }
    return await accept(device, bytes, format);
  };

  return Object.assign(handle, {
    submit,
    stats: (): IngestStats => ({
      requests: stats.requests,
      stored: stats.stored,
      duplicates: stats.duplicates,
      refused: { ...stats.refused },
      dropped: info.dropped,
    }),
  });
}

function isTooLarge(e: unknown): boolean {
  return (e as Error)?.name === "TooLargeError";
}

/**
 * Deletes the `count` oldest readings (by `receivedAt`).
 *
 * @returns How many were deleted.
 */
async function dropOldest(
  col: Collection<Record<string, unknown>>,
  count: number,
): Promise<number> {
  const keys: string[] = [];
  for await (
    const entry of col.find({}, { sort: { receivedAt: 1 }, limit: count })
      .entries()
  ) keys.push(entry.key);
  return keys.length === 0 ? 0 : await col.deleteBatch(keys);
}
