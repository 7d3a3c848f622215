/**
 * A Deno Deploy style HTTP API that keeps sensor readings in Deno KV through
 * `open({ kv })`:
 *
 * | request                                      | answer                                      |
 * | -------------------------------------------- | ------------------------------------------- |
 * | `POST /readings?ttl=ms` (JSON object body)   | 201 `{ id, expiresAt }`, `Location` header  |
 * | `GET /readings?device=x&limit=n&cursor=c`    | 200 `{ items, next }` (`next`: the cursor)  |
 * | `GET /readings/:id`                          | 200 the reading, or 404                     |
 * | `DELETE /readings/:id`                       | 204, or 404                                 |
 *
 * A reading is any JSON object with a `device` string (indexed); it expires
 * after `ttl` milliseconds (default one day). A request body is read as a
 * stream and capped at `maxBodyBytes` (1 MiB by default): past the cap the
 * answer is 413 at once, the rest of the body is cancelled, never buffered,
 * so a huge or endless upload costs at most the cap in memory. (A reading
 * is also refused with 413 when its record is over the database's
 * `maxValueBytes`, 64 KiB by default.) Listing pages through the
 * readings in creation order (of one device with `device`) with the
 * database's resumable cursors: pass `next` back as `cursor`.
 *
 * Locally (`deno task deploy`) the KV is a SQLite file: the first argument,
 * else `TETHER_KV`, else `.tmp/deploy-kv.sqlite`. `TETHER_KV` may also be
 * `:memory:` or the URL of a self-hosted denokv (`http://localhost:4512`,
 * with `DENO_KV_ACCESS_TOKEN` set). On Deno Deploy (`DENO_DEPLOYMENT_ID` is
 * set) it is the project's KV: `Deno.openKv()` with no argument. Every
 * isolate opens the same KV; writes are atomic across them.
 *
 * `createHandler` is exported so that tests call it with `new Request(...)`
 * without opening a port (`tests/deploy_example_test.ts`).
 */

import {
  ConflictError,
  type Database,
  DuplicateKeyError,
  open,
  QuotaError,
  TooLargeError,
} from "../mod.ts";

/** A stored reading: the posted object plus its id. */
export interface Reading {
  /** The reading's id: time-ordered, assigned by the server. */
  readonly _id: string;
  /** Which device sent it (indexed). */
  readonly device: string;
  /** Anything else the device sent. */
  readonly [field: string]: unknown;
}

/** Options of {@linkcode createHandler}. */
export interface HandlerOptions {
  /** TTL of a reading posted without `?ttl=`, ms. Default one day. */
  readonly defaultTtl?: number;
  /** Largest `?ttl=` accepted, ms. Default 365 days. */
  readonly maxTtl?: number;
  /** Page size without `?limit=`. Default 20. */
  readonly defaultLimit?: number;
  /** Largest `?limit=` accepted. Default 100. */
  readonly maxLimit?: number;
  /**
   * Largest request body read, in bytes; a larger one is answered 413
   * without reading the rest. Default {@linkcode MAX_BODY_BYTES}.
   */
  readonly maxBodyBytes?: number;
}

/** The default cap on a request body: 1 MiB. */
export const MAX_BODY_BYTES = 1_048_576;

/** One day, in ms. */
export const DAY = 86_400_000;
/** Longest accepted `device`, in characters (it is an index key). */
export const MAX_DEVICE = 128;

/** Thrown for a request the client got wrong; becomes a 4xx. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function fail(status: number, message: string): Response {
  return Response.json({ error: message }, { status });
}

/** Maps the database's errors to HTTP statuses. */
function failure(e: unknown): Response {
  if (e instanceof HttpError) return fail(e.status, e.message);
  if (e instanceof SyntaxError) {
    return fail(400, `the body is not valid JSON: ${e.message}`);
  }
  if (e instanceof TypeError || e instanceof RangeError) {
    return fail(400, e.message); // a malformed value, key or cursor
  }
  if (e instanceof TooLargeError) return fail(413, e.message);
  if (e instanceof DuplicateKeyError) return fail(409, e.message);
  if (e instanceof ConflictError) return fail(409, e.message); // retries lost
  if (e instanceof QuotaError) return fail(507, e.message);
  console.error(e);
  return fail(500, "internal error");
}

/** A whole number from a query parameter, within bounds. */
function intParam(
  params: URLSearchParams,
  name: string,
  fallback: number,
  max: number,
): number {
  const text = params.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !(n >= 1 && n <= max)) {
    throw new HttpError(
      400,
      `${name} must be a whole number from 1 to ${max}, got '${text}'`,
    );
  }
  return n;
}

/**
 * Reads a request body as text, at most `max` bytes of it. A declared
 * `Content-Length` over the cap is refused before reading; otherwise the
 * body is read chunk by chunk and, as soon as the count passes the cap, the
 * stream is cancelled (the client's upload is not read further) and the
 * request is refused with 413.
 */
async function readBody(request: Request, max: number): Promise<string> {
  const tooLarge = () =>
    new HttpError(413, `the body is over the limit of ${max} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await request.body?.cancel();
    throw tooLarge();
  }
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/**
 * The HTTP handler over a database: the routes in the module comment.
 *
 * @param db An open database (any storage; Deno KV on Deploy).
 * @param options TTL and page-size defaults and limits, and the body cap.
 * @returns A handler for `Deno.serve`.
 */
export function createHandler(
  db: Database,
  options: HandlerOptions = {},
): (request: Request) => Promise<Response> {
  const defaultTtl = options.defaultTtl ?? DAY;
  const maxTtl = options.maxTtl ?? 365 * DAY;
  const defaultLimit = options.defaultLimit ?? 20;
  const maxLimit = options.maxLimit ?? 100;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  if (!(Number.isSafeInteger(maxBodyBytes) && maxBodyBytes > 0)) {
    throw new RangeError(
      `Cannot create the handler: maxBodyBytes must be a whole number of bytes above 0, got ${maxBodyBytes}`,
    );
  }
  const readings = db.collection<Reading>("readings", {
    indexes: [{ fields: "device" }],
  });

  async function create(request: Request, url: URL): Promise<Response> {
    const ttl = intParam(url.searchParams, "ttl", defaultTtl, maxTtl);
    const body: unknown = JSON.parse(await readBody(request, maxBodyBytes));
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new HttpError(400, "the body must be a JSON object");
    }
    const { device } = body as { device?: unknown };
    if (
      typeof device !== "string" || device.length === 0 ||
      device.length > MAX_DEVICE
    ) {
      throw new HttpError(
        400,
        `the body needs a "device" string of 1 to ${MAX_DEVICE} characters`,
      );
    }
    if ("_id" in body) {
      throw new HttpError(400, "the server assigns _id; leave it out");
    }
    // The id is generated: time-ordered, so key order is creation order.
    const id = await readings.insert({ ...body, device } as Reading, { ttl });
    const entry = await readings.getEntry(id);
    return Response.json({ id, expiresAt: entry?.expiresAt ?? null }, {
      status: 201,
      headers: { location: `/readings/${encodeURIComponent(id)}` },
    });
  }

  async function list(url: URL): Promise<Response> {
    const params = url.searchParams;
    const limit = intParam(params, "limit", defaultLimit, maxLimit);
    const device = params.get("device");
    const cursor = params.get("cursor") ?? undefined;
    // Key order (= creation order), or the device index's order (device,
    // then key): either way the cursor is a position, not an offset.
    const page = await readings.find(device === null ? {} : { device }, {
      after: cursor,
    }).page(limit);
    return Response.json({ items: page.items, next: page.next ?? null });
  }

  async function one(method: string, id: string): Promise<Response> {
    if (method === "GET") {
      const entry = await readings.getEntry(id);
      if (entry === null) return fail(404, `no reading '${id}'`);
      const headers: Record<string, string> = {};
      if (entry.expiresAt !== undefined) {
        headers["x-expires-at"] = String(entry.expiresAt);
      }
      return Response.json(entry.value, { headers });
    }
    if (await readings.delete(id)) return new Response(null, { status: 204 });
    return fail(404, `no reading '${id}'`);
  }

  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const route = /^\/readings(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (route === null) return fail(404, `no route ${url.pathname}`);
    const { method } = request;
    try {
      if (route[1] === undefined) {
        if (method === "POST") return await create(request, url);
        if (method === "GET") return await list(url);
        return new Response(null, {
          status: 405,
          headers: { allow: "GET, POST" },
        });
      }
      if (method !== "GET" && method !== "DELETE") {
        return new Response(null, {
          status: 405,
          headers: { allow: "GET, DELETE" },
        });
      }
      let id: string;
      try {
        id = decodeURIComponent(route[1]);
      } catch {
        throw new HttpError(400, `'${route[1]}' is not a valid id`);
      }
      return await one(method, id);
    } catch (e) {
      return failure(e);
    }
  };
}

/**
 * Opens the KV: Deploy's own with no argument, else a path, `:memory:` or a
 * KV Connect URL (creating a local file's directory).
 */
async function openKv(where: string | undefined): Promise<Deno.Kv> {
  if (where === undefined) return await Deno.openKv();
  const local = where !== ":memory:" && !/^https?:\/\//.test(where);
  const slash = where.lastIndexOf("/");
  if (local && slash > 0) {
    await Deno.mkdir(where.slice(0, slash), { recursive: true });
  }
  return await Deno.openKv(where);
}

if (import.meta.main) {
  const onDeploy = Deno.env.get("DENO_DEPLOYMENT_ID") !== undefined;
  const where = Deno.args[0] ?? Deno.env.get("TETHER_KV") ??
    (onDeploy ? undefined : ".tmp/deploy-kv.sqlite");
  const db = await open({ kv: await openKv(where) });
  const port = Number(Deno.env.get("PORT") ?? 8000);
  Deno.serve({ port }, createHandler(db));
}
