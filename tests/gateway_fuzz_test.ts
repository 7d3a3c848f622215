// Hostile input against the gateway's HTTP handlers, property based: ingest()
// and receive() never throw, answer only documented statuses (never 500 on a
// memory database), write all or nothing, are idempotent, and pollute no
// prototype. TETHER_TORTURE=1 runs 20x as many cases. What is sent comes from
// fixtures/gateway_fuzz_inputs.ts; requests and database snapshots from
// fixtures/gateway_fuzz_support.ts. Here: what the answers must be.

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, open } from "../mod.ts";
import { ingest, type IngestHandler, receive } from "../gateway.ts";
import {
  assertPlain,
  type Bytes,
  canon,
  changed,
  type Doc,
  dump,
  enc,
  exchange,
  overCap,
  type Req,
  risky,
  split,
  toRequest,
} from "./fixtures/gateway_fuzz_support.ts";
import {
  DEVICES,
  ingestBytes,
  ingestReq,
  receiveBytes,
  receiveReq,
} from "./fixtures/gateway_fuzz_inputs.ts";

const TORTURE = Deno.env.get("TETHER_TORTURE") !== undefined;
const runs = (n: number) => ({ numRuns: TORTURE ? n * 20 : n });
const CAP = 4096; // ingest's maxBodyBytes
const RECEIVE_CAP = 16_384;
const MAX_READINGS = 20;

// ---- ingest ----------------------------------------------------------------

/** The body formats of docs/gateway.md, read independently. */
function parseReadings(bytes: Uint8Array, format: string): Doc[] | undefined {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    const items: unknown[] = format === "json"
      ? [JSON.parse(text)].flat()
      : text.split("\n").map((l) => l.trim()).filter((l) => l !== "")
        .map((l) => JSON.parse(l));
    const objects = items.every((v) =>
      typeof v === "object" && v !== null && !Array.isArray(v)
    );
    return objects && items.length > 0 ? items as Doc[] : undefined;
  } catch {
    return undefined;
  }
}

/** A reading the gateway takes (docs/gateway.md, "Device protocol"). */
function validReading(r: Doc, device: string): boolean {
  if (["_id", "receivedAt", "relayedAt"].some((f) => Object.hasOwn(r, f))) {
    return false;
  }
  if (Object.hasOwn(r, "device") && r.device !== device) return false;
  const s = r.seq;
  return s === undefined ||
    (typeof s === "number" && Number.isSafeInteger(s) && s >= 0) ||
    (typeof s === "string" && /^[\w.:-]{1,64}$/.test(s) && /\D/.test(s));
}
const keyOf = (device: string, seq: unknown) =>
  `${device}/${typeof seq === "number" ? `${seq}`.padStart(16, "0") : seq}`;

/** Sends one request; checks the answer and the database against it. */
async function sendIngest(
  db: Database,
  handle: IngestHandler,
  r: Req,
  now: number,
): Promise<{ status: number; readings?: Doc[] }> {
  const bytes = ingestBytes(r);
  const req = toRequest(r, bytes);
  const [device, format] = [r.auth[1], r.type[1]];
  let allowed = [200, 400, 409, 429];
  let readings: Doc[] | undefined;
  if (req.method !== "POST") allowed = [405];
  else if (device === null) allowed = [401];
  else if (format === null) allowed = [415];
  else if (overCap(req, bytes, CAP)) allowed = [413, 429];
  else if (r.delivery === "error") allowed = [400, 429];
  else if (!(readings = parseReadings(bytes, format))) allowed = [400, 429];
  else if (readings.length > MAX_READINGS) allowed = [413, 429];
  else if (!readings.every((x) => validReading(x, device))) {
    allowed = [400, 429];
  } else {
    // 400 only for a reading the storage refuses; 409 only for a seq stored
    // with other content, or a value of the unique index on "u".
    if (!readings.some((x) => risky({ ...x, device, receivedAt: now }, 600))) {
      allowed = allowed.filter((s) => s !== 400);
    }
    if (!readings.some((x) => x.seq !== undefined || Object.hasOwn(x, "u"))) {
      allowed = allowed.filter((s) => s !== 409);
    }
  }
  const out = await exchange(db, handle, req, allowed);
  if (out.status !== 200) return { status: out.status };
  assert(readings !== undefined && device !== null);
  assert.deepEqual(Object.keys(out.body).sort(), ["duplicates", "stored"]);
  const { stored, duplicates } = out.body as Record<string, number>;
  assert(Number.isSafeInteger(stored) && Number.isSafeInteger(duplicates));
  assert(stored! >= 0 && duplicates! >= 0);
  assert.equal(stored! + duplicates!, readings.length);
  assert(out.diff.every((k) => !out.before.has(k)), "a reading was rewritten");
  assert.equal(out.diff.length, stored);
  const col = db.collection<Doc>("readings");
  const sent = new Set(readings.map((x) => canon({ ...x, device })));
  for (const [name, key] of out.diff.map(split)) {
    assert.equal(name, "readings");
    const doc = (await col.get(key))!;
    assert.equal(doc.device, device);
    assert.equal(doc.receivedAt, now);
    assert(sent.has(canon(doc, "receivedAt")), `${key}: not what was sent`);
  }
  for (const x of readings.filter((x) => x.seq !== undefined)) {
    const doc = await col.get(keyOf(device, x.seq));
    assert.equal(canon(doc, "receivedAt"), canon({ ...x, device }));
  }
  return { status: 200, readings };
}

/** A memory database and ingest(); `shared` also takes receive()'s batches
 * (no unique index, the default maxValueBytes). */
async function ingestSetup(rateLimit: boolean, shared = false) {
  const db = await open(shared ? {} : { maxValueBytes: 1024 });
  const unique = { unique: true, sparse: true };
  if (!shared) await db.collection("readings").createIndex("u", unique);
  const clock = { time: 1_700_000_000_000, now: () => clock.time };
  const handle = ingest(db, {
    devices: DEVICES,
    maxBodyBytes: CAP,
    maxReadings: MAX_READINGS,
    clock,
    ...(rateLimit ? { rateLimit: { perSecond: 5, burst: 10 } } : {}),
  });
  return { db, handle, clock };
}

Deno.test("ingest fuzz: hostile requests get a documented status and are stored all or nothing", async () => {
  const seen = new Set<number>();
  await fc.assert(
    fc.asyncProperty(
      fc.array(ingestReq(false), { minLength: 1, maxLength: 6 }),
      async (reqs) => {
        const { db, handle, clock } = await ingestSetup(true);
        await using _ = db;
        for (const r of reqs) {
          clock.time += r.advance;
          seen.add((await sendIngest(db, handle, r, clock.time)).status);
        }
      },
    ),
    runs(100),
  );
  // Not vacuous: acceptance and the refusals are reached.
  for (const s of [200, 400, 401, 405, 413, 415]) assert(seen.has(s), `${s}`);
});

Deno.test("ingest fuzz: a request answered 200 whose readings all have seq, sent again, stores nothing", async () => {
  let resent = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(ingestReq(true), { minLength: 1, maxLength: 5 }),
      async (reqs) => {
        const { db, handle, clock } = await ingestSetup(false);
        await using _ = db;
        const ok: [Req, number][] = [];
        for (const r of reqs) {
          clock.time += 1000;
          const out = await sendIngest(db, handle, r, clock.time);
          if (out.readings?.every((x) => x.seq !== undefined)) {
            ok.push([r, out.readings.length]);
          }
        }
        for (const [r, n] of ok) {
          clock.time += 1000;
          const again = toRequest(r, ingestBytes(r));
          const { body, diff } = await exchange(db, handle, again, [200]);
          assert.deepEqual(body, { stored: 0, duplicates: n });
          assert.deepEqual(diff, []);
          resent++;
        }
      },
    ),
    runs(60),
  );
  assert(resent > 0);
});

// ---- receive ---------------------------------------------------------------

interface Change {
  seq: string;
  type: string;
  collection: string;
  key: string;
  version: number;
  doc?: unknown;
}
const validChange = (c: Change) =>
  typeof c === "object" && c !== null && typeof c.seq === "string" &&
  /^(?:[0-9]{1,20}|0\.[0-9a-f]{2,4200})$/.test(c.seq) &&
  (c.type === "put" || c.type === "delete") &&
  typeof c.collection === "string" && c.collection !== "_applied" &&
  /^[A-Za-z0-9_][\w.-]{0,127}$/.test(c.collection) &&
  typeof c.key === "string" && c.key !== "" &&
  Number.isSafeInteger(c.version) && c.version >= 0 &&
  (c.type === "delete" || Object.hasOwn(c, "doc"));
/** The batch of docs/gateway.md ("Relay protocol"), read independently
 * (UTF-8 only). */
function parseBatch(bytes: Uint8Array) {
  try {
    const v = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
    const ok = typeof v === "object" && v !== null &&
      typeof v.origin === "string" && /^[\w.:~-]{1,128}$/.test(v.origin) &&
      Array.isArray(v.changes) && v.changes.every(validChange);
    return ok ? v as { origin: string; changes: Change[] } : undefined;
  } catch {
    return undefined;
  }
}
const badKey = (c: Change) =>
  enc.encode(c.key).length > 1024 || !c.key.isWellFormed();
const unstorable = (c: Change) =>
  badKey(c) || (c.type === "put" && risky(c.doc, 60e3));

async function sendReceive(
  db: Database,
  handle: (r: Request) => Promise<Response>,
  r: Req,
  only?: string[],
) {
  const bytes = receiveBytes(r);
  const req = toRequest(r, bytes);
  let allowed: number[];
  let batch: ReturnType<typeof parseBatch>;
  if (req.method !== "POST") allowed = [405];
  else if (r.auth[1] === null) allowed = [401];
  else if (r.type[1] === null) allowed = [415];
  else if (overCap(req, bytes, RECEIVE_CAP)) allowed = [413];
  else if (r.delivery === "error") allowed = [400];
  else if (!(batch = parseBatch(bytes))) allowed = [400];
  else if (only && batch.changes.some((c) => !only.includes(c.collection))) {
    allowed = [403];
  } else if (batch.changes.some(badKey)) {
    allowed = [400]; // refused before any write, whatever else it holds
  } else {
    allowed = [200, ...(batch.changes.some(unstorable) ? [400] : [])];
  }
  const { status, body, diff } = await exchange(db, handle, req, allowed);
  if (status !== 200) return { status };
  assert(batch !== undefined);
  const { origin, changes } = batch;
  assert.deepEqual(Object.keys(body).sort(), ["applied", "skipped"]);
  const { applied, skipped } = body as Record<string, number>;
  assert(Number.isSafeInteger(applied) && applied! >= 0 && skipped! >= 0);
  assert.equal(applied! + skipped!, changes.length);
  if (applied === 0) assert.deepEqual(diff, []);
  let written = 0;
  for (const [name, key] of diff.map(split)) {
    const now = await db.collection(name).get(key);
    if (name === "_applied") { // the position: a seq of that collection
      const s = (now as { s?: string } | null)?.s;
      assert(
        changes.some((c) => `${origin}/${c.collection}` === key && c.seq === s),
      );
      continue;
    }
    written++;
    const gone = !(await db.collection(name).has(key));
    assert(
      changes.some((c) =>
        c.collection === name && c.key === key &&
        (gone
          ? c.type === "delete"
          : c.type === "put" && canon(c.doc) === canon(now))
      ),
      `${name}/${key}: not what the batch says`,
    );
  }
  assert(written <= applied!, "more documents changed than applied");
  return { status, n: changes.length };
}

Deno.test("receive fuzz: hostile batches get a documented status and are applied all or nothing", async () => {
  const seen = new Set<number>();
  await fc.assert(
    fc.asyncProperty(
      fc.array(receiveReq(false), { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      async (reqs, limited) => {
        await using db = await open();
        const only = limited ? ["readings", "_relay", "__proto__"] : undefined;
        const handle = receive(db, {
          token: "sync",
          maxBodyBytes: RECEIVE_CAP,
          ...(only ? { collections: only } : {}),
        });
        for (const r of reqs) {
          seen.add((await sendReceive(db, handle, r, only)).status);
        }
      },
    ),
    runs(100),
  );
  for (const s of [200, 400, 401, 403, 405, 413, 415]) {
    assert(seen.has(s), `${s}`);
  }
});

Deno.test("receive fuzz: a batch answered 200, sent again, applies nothing", async () => {
  let resent = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(receiveReq(true), { minLength: 1, maxLength: 5 }),
      async (reqs) => {
        await using db = await open();
        const handle = receive(db, {
          token: "sync",
          maxBodyBytes: RECEIVE_CAP,
        });
        const ok: [Req, number][] = [];
        for (const r of reqs) {
          const out = await sendReceive(db, handle, r);
          if (out.status === 200) ok.push([r, out.n!]);
        }
        for (const [r, n] of ok) {
          const again = toRequest(r, receiveBytes(r));
          const { body, diff } = await exchange(db, handle, again, [200]);
          assert.deepEqual(body, { applied: 0, skipped: n });
          assert.deepEqual(diff, []);
          resent++;
        }
      },
    ),
    runs(60),
  );
  assert(resent > 0);
});

// ---- prototypes ------------------------------------------------------------

Deno.test("gateway fuzz: no prototype pollution; stored documents are plain objects", async () => {
  const protos = () =>
    [Object.prototype, Array.prototype, Function.prototype]
      .map((p) => Reflect.ownKeys(p).map(String).sort().join());
  const before = protos();
  let docs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(ingestReq(true), { maxLength: 4 }),
      fc.array(receiveReq(true), { maxLength: 4 }),
      async (readings, batches) => {
        const { db, handle, clock } = await ingestSetup(false, true);
        await using _ = db;
        const sync = receive(db, { token: "sync", maxBodyBytes: RECEIVE_CAP });
        for (const r of readings) await sendIngest(db, handle, r, clock.time);
        for (const r of batches) await sendReceive(db, sync, r);
        assert.equal(({} as Doc).polluted, undefined);
        assert.deepEqual(protos(), before);
        for (const name of await db.collections()) {
          const col = db.collection(name);
          for await (const { key, value } of col.find({}).entries()) {
            assertPlain(value, `${name}/${key}`);
            assertPlain(await col.get(key), `get ${name}/${key}`);
            docs++;
          }
          for (const doc of await col.find({}).toArray()) {
            assertPlain(doc, name);
          }
        }
      },
    ),
    runs(40),
  );
  assert(docs > 0);
});

// ---- bugs the fuzz found, fixed -------------------------------------------

const post = (body: BodyInit) =>
  new Request("http://gateway/in", {
    method: "POST",
    headers: {
      authorization: "Bearer sync",
      "content-type": "application/json",
    },
    body,
  });
const batch = (origin: string, ...changes: Doc[]) =>
  post(JSON.stringify({ origin, changes }));
const put = (seq: string, collection: string, key: string, type = "put") => ({
  seq,
  type,
  collection,
  key,
  version: 1,
  ...(type === "put" ? { doc: {} } : {}),
});

// Found: receive() answered 400 "not applied" after applying part of a
// batch (a key over 1024 bytes in a later collection; a delete after the
// puts). Now every key and document is checked before any write, and a
// collection's puts and deletes are one atomic write.
Deno.test({
  name: "receive: a batch refused with 400 has written nothing",
  async fn() {
    await using db = await open();
    const handle = receive(db, { token: "sync" });
    const key = "x".repeat(1100);
    const written = [];
    for (
      const [origin, refused] of [
        ["gw~1", put("2", "b", key)], // in a later collection
        ["gw~2", put("2", "a", key, "delete")], // a delete after the puts
      ] as const
    ) {
      const before = await dump(db);
      const res = await handle(batch(origin, put("1", "a", origin), refused));
      assert.equal(res.status, 400);
      await res.body?.cancel();
      written.push(changed(before, await dump(db)));
    }
    assert.deepEqual(written, [[], []]);
  },
});

// Found: a memory database took a key with a lone surrogate (receive
// answered 200) and then could not list its collections or read its feed.
// checkKey refuses such keys now, on every storage.
Deno.test({
  name:
    "receive: a key with a lone surrogate is a 400; the database stays listable",
  async fn() {
    await using db = await open();
    const handle = receive(db, { token: "sync" });
    const res = await handle(
      batch("gw~1", put("1", "r", "ok"), put("2", "r", "\ud800")),
    );
    assert.equal(res.status, 400);
    assert.match((await res.json()).error, /lone surrogate/);
    assert.deepEqual(await db.collections(), []);
    const feed = await Array.fromAsync(db.changes({ live: false }));
    assert.equal(feed.length, 0);
  },
});

// Found: both handlers took a body stream's chunks for bytes: one string
// chunk gave a 200 with body {} and no cap, two made the handler throw.
Deno.test({
  name: "ingest and receive: a body stream of strings is a 400",
  async fn() {
    await using db = await open();
    const handlers = [
      ingest(db, { devices: { d: "sync" }, maxBodyBytes: 10 }),
      receive(db, { token: "sync", maxBodyBytes: 10 }),
    ];
    for (const handle of handlers) {
      for (
        const chunks of [['{"seq":1}'], ['{"seq":1}', " "], ["x".repeat(99)]]
      ) {
        const body = new ReadableStream<string>({
          start(c) {
            for (const chunk of chunks) c.enqueue(chunk);
            c.close();
          },
        }) as unknown as ReadableStream<Bytes>;
        const res = await handle(post(body));
        assert([400, 413].includes(res.status), `${res.status}`);
        assert.equal(typeof (await res.json()).error, "string");
      }
    }
    assert.equal(await db.collection("readings").count(), 0);
  },
});
