// ingest(): statuses, atomicity, idempotent re-sends, body cap, rate limit,
// full storage.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { ingest } from "../gateway.ts";
import { readingKey } from "../src/gateway/ingest.ts";

const DEVICES = { "esp32-a": "token-a", "esp32-b": "token-b" };

function post(
  body: BodyInit | null,
  options: {
    token?: string;
    type?: string;
    method?: string;
    headers?: Record<string, string>;
  } = {},
): Request {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) {
    headers.authorization = `Bearer ${options.token}`;
  }
  if (options.type !== undefined) headers["content-type"] = options.type;
  return new Request("http://gateway/ingest", {
    method: options.method ?? "POST",
    headers,
    body,
  });
}

const ndjson = (lines: unknown[]) =>
  lines.map((l) => JSON.stringify(l)).join("\n") + "\n";

Deno.test("ingest: a JSON object, an array and NDJSON are stored with device and receivedAt", async () => {
  await using db = await open({ clock: { now: () => 1_000 } });
  const handle = ingest(db, { devices: DEVICES, clock: { now: () => 5_000 } });
  const one = await handle(
    post(JSON.stringify({ temp: 21 }), {
      token: "token-a",
      type: "application/json",
    }),
  );
  assert.equal(one.status, 200);
  assert.deepEqual(await one.json(), { stored: 1, duplicates: 0 });
  const many = await handle(
    post(JSON.stringify([{ seq: 1, t: 1 }, { seq: 2, t: 2 }]), {
      token: "token-a",
      type: "application/json; charset=utf-8",
    }),
  );
  assert.deepEqual(await many.json(), { stored: 2, duplicates: 0 });
  const lines = await handle(
    post(ndjson([{ seq: 1, t: 9 }, { seq: 2, t: 8 }]), {
      token: "token-b",
      type: "application/x-ndjson",
    }),
  );
  assert.deepEqual(await lines.json(), { stored: 2, duplicates: 0 });
  const readings = db.collection("readings");
  assert.equal(await readings.count(), 5);
  assert.deepEqual(await readings.get(readingKey("esp32-a", 2)), {
    seq: 2,
    t: 2,
    device: "esp32-a",
    receivedAt: 5_000,
  });
  assert.deepEqual(await readings.get("esp32-b/0000000000000001"), {
    seq: 1,
    t: 9,
    device: "esp32-b",
    receivedAt: 5_000,
  });
  // Unrelayed readings have no expiry, whatever the ttl.
  const handle2 = ingest(db, {
    devices: DEVICES,
    ttl: 1_000,
    collection: "r2",
  });
  await handle2(
    post(JSON.stringify({ seq: 1 }), {
      token: "token-a",
      type: "application/json",
    }),
  );
  assert.equal(
    (await db.collection("r2").getEntry("esp32-a/0000000000000001"))!.expiresAt,
    undefined,
  );
  const handle3 = ingest(db, {
    devices: DEVICES,
    ttl: 1_000,
    collection: "r3",
    expireUnrelayed: true,
  });
  await handle3(
    post(JSON.stringify({ seq: 1 }), {
      token: "token-a",
      type: "application/json",
    }),
  );
  assert.equal(
    (await db.collection("r3").getEntry("esp32-a/0000000000000001"))!.expiresAt,
    2_000,
  );
});

Deno.test("ingest: a re-sent reading is stored once and counted as a duplicate; other content under the same seq is a 409", async () => {
  await using db = await open();
  const handle = ingest(db, { devices: DEVICES });
  const body = ndjson([{ seq: 7, t: 1 }, { seq: 8, t: 2 }]);
  assert.deepEqual(
    await (await handle(
      post(body, { token: "token-a", type: "application/x-ndjson" }),
    )).json(),
    { stored: 2, duplicates: 0 },
  );
  const again = await handle(
    post(
      ndjson([{ seq: 7, t: 1 }, { seq: 8, t: 2 }, { seq: 9, t: 3 }, {
        seq: 9,
        t: 3,
      }]),
      { token: "token-a", type: "application/x-ndjson" },
    ),
  );
  assert.deepEqual(await again.json(), { stored: 1, duplicates: 3 });
  const entry = await db.collection("readings").getEntry(
    "esp32-a/0000000000000007",
  );
  assert.equal(entry!.version, 1); // not rewritten
  // The same seq from another device is another reading.
  assert.deepEqual(
    await (await handle(
      post(ndjson([{ seq: 7, t: 1 }]), {
        token: "token-b",
        type: "application/x-ndjson",
      }),
    )).json(),
    { stored: 1, duplicates: 0 },
  );
  const conflict = await handle(
    post(ndjson([{ seq: 10, t: 1 }, { seq: 7, t: 99 }]), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(conflict.status, 409);
  assert.match((await conflict.json()).error, /line 2/);
  assert.equal(
    await db.collection("readings").has("esp32-a/0000000000000010"),
    false,
  );
  // Concurrent re-sends of one new reading: one stored, one duplicate.
  const [r1, r2] = await Promise.all(
    [1, 2].map(() =>
      handle(
        post(ndjson([{ seq: 11, t: 5 }]), {
          token: "token-a",
          type: "application/x-ndjson",
        }),
      )
    ),
  );
  const results = [await r1!.json(), await r2!.json()];
  assert.deepEqual(results.map((r) => r.stored).sort(), [0, 1]);
  assert.equal(
    (await db.collection("readings").getEntry("esp32-a/0000000000000011"))!
      .version,
    1,
  );
});

Deno.test("ingest: a bad line or reading stores nothing and the 400 names it", async () => {
  await using db = await open();
  const handle = ingest(db, { devices: DEVICES });
  const cases: [string, string, RegExp][] = [
    [
      '{"seq":1}\n{"seq":2}\n{oops}\n',
      "application/x-ndjson",
      /line 3 is not valid JSON/,
    ],
    [
      '{"seq":1}\n[1,2]\n',
      "application/x-ndjson",
      /line 2 is not a JSON object/,
    ],
    ['[{"seq":1},{"seq":-1}]', "application/json", /item 2: 'seq' must be/],
    ['[{"seq":1},{"seq":"123"}]', "application/json", /item 2: 'seq'/],
    [
      '{"seq":1,"receivedAt":5}',
      "application/json",
      /the body: 'receivedAt' is set by the gateway/,
    ],
    [
      '{"seq":1,"device":"esp32-b"}',
      "application/json",
      /'device' is "esp32-b"/,
    ],
    ['{"seq":1,"_id":"x"}', "application/json", /'_id' is set by the gateway/],
    ["", "application/json", /not valid JSON/],
    ["\n\n", "application/x-ndjson", /no reading/],
    // Only JSON's whitespace is blank: a no-break space is not.
    ['{"seq":1}\n\u00a0\n', "application/x-ndjson", /line 2 is not valid JSON/],
    ['\u00a0{"seq":1}\n', "application/x-ndjson", /line 1 is not valid JSON/],
    [
      '{"seq":1}\n{"big":"' + "x".repeat(70_000) + '"}\n',
      "application/x-ndjson",
      /line 2 cannot be stored/,
    ],
  ];
  for (const [body, type, message] of cases) {
    const response = await handle(post(body, { token: "token-a", type }));
    assert.equal(response.status, 400, body.slice(0, 40));
    assert.match((await response.json()).error, message);
  }
  assert.equal(await db.collection("readings").count(), 0);
  // CRLF line ends, blank lines of spaces and tabs, and a leading BOM
  // (RFC 8259 lets a parser ignore one) are fine.
  const crlf = await handle(
    post('\ufeff{"seq":1}\r\n \t\r\n{"seq":2}\r\n', {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(crlf.status, 200);
  assert.equal((await crlf.json()).stored, 2);
  await db.collection("readings").clear();
  // A device may repeat its own id.
  assert.equal(
    (await handle(
      post('{"seq":1,"device":"esp32-a"}', {
        token: "token-a",
        type: "application/json",
      }),
    )).status,
    200,
  );
});

Deno.test("ingest: a reading a unique index of the collection refuses is a 409 naming its line, the other line or a stored reading, and the index; nothing of the request is stored", async () => {
  await using db = await open();
  const readings = db.collection("readings");
  await readings.createIndex(["device", "t"], { unique: true });
  const handle = ingest(db, { devices: DEVICES });
  const first = await handle(
    post(ndjson([{ seq: 1, t: 10 }]), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(first.status, 200);
  // Another seq with the same (device, t): the index refuses it.
  const response = await handle(
    post(ndjson([{ seq: 2, t: 11 }, { seq: 3, t: 10 }]), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(response.status, 409);
  assert.match(
    (await response.json()).error,
    /^line 2 conflicts with a stored reading: .*unique index 'device_1_t_1'/,
  );
  assert.equal(await readings.count(), 1);
  // Two readings of one request with the same value: the later is named.
  const inside = await handle(
    post(ndjson([{ seq: 4, t: 20 }, { seq: 5, t: 21 }, { seq: 6, t: 20 }]), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(inside.status, 409);
  assert.match(
    (await inside.json()).error,
    /^line 3 conflicts with line 1: .*unique index 'device_1_t_1'/,
  );
  assert.equal(await readings.count(), 1);
});

Deno.test("ingest: 401 without a known token, 405 for other methods, 415 for other bodies", async () => {
  await using db = await open();
  const handle = ingest(db, { devices: DEVICES });
  for (const token of [undefined, "token-c", "token-a2", ""]) {
    const r = await handle(
      post("{}", {
        ...(token === undefined ? {} : { token }),
        type: "application/json",
      }),
    );
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate")!, /^Bearer/);
  }
  const basic = await handle(
    post("{}", {
      type: "application/json",
      headers: { authorization: "Basic dG9rZW4tYQ==" },
    }),
  );
  assert.equal(basic.status, 401);
  const get = await handle(post(null, { token: "token-a", method: "GET" }));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  for (const type of [undefined, "text/plain", "application/xml"]) {
    const r = await handle(
      post("{}", { token: "token-a", ...(type === undefined ? {} : { type }) }),
    );
    assert.equal(r.status, 415);
  }
  assert.equal(await db.collection("readings").count(), 0);
  assert.deepEqual(handle.stats().refused, { 401: 5, 405: 1, 415: 3 });
});

Deno.test("ingest: tokens may be given as SHA-256 hex; a bare 64-hex string is a clear token", async () => {
  await using db = await open();
  const token = "a".repeat(64);
  const digest = Array.from(
    new Uint8Array(
      await crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode("kitchen"),
      ),
    ),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const handle = ingest(db, {
    devices: {
      kitchen: `sha256:${digest}`,
      hall: { sha256: digest.toUpperCase() },
      hex: token,
    },
  });
  const ok = await handle(
    post('{"seq":1}', { token: "kitchen", type: "application/json" }),
  );
  assert.equal(ok.status, 200);
  assert.equal(
    await db.collection("readings").has("kitchen/0000000000000001"),
    true,
  );
  // The digest itself is no token.
  assert.equal(
    (await handle(
      post('{"seq":2}', { token: digest, type: "application/json" }),
    )).status,
    401,
  );
  assert.equal(
    (await handle(post('{"seq":3}', { token, type: "application/json" })))
      .status,
    200,
  );
  assert.throws(() => ingest(db, { devices: { x: "sha256:abc" } }), TypeError);
  assert.throws(
    () => ingest(db, { devices: { x: { sha256: "zz" } } }),
    TypeError,
  );
  assert.throws(() => ingest(db, { devices: { "bad id": "t" } }), TypeError);
  assert.throws(() => ingest(db, { devices: { x: "" } }), TypeError);
  assert.throws(
    () => ingest(db, { devices: DEVICES, maxBodyBytes: 0 }),
    RangeError,
  );
  assert.throws(
    () => ingest(db, { devices: DEVICES, onFull: "drop" as "reject" }),
    TypeError,
  );
});

Deno.test("ingest: a body over maxBodyBytes is a 413, refused by Content-Length or cut off while streaming", async () => {
  await using db = await open();
  const handle = ingest(db, {
    devices: DEVICES,
    maxBodyBytes: 4096,
    maxReadings: 3,
  });
  const declared = await handle(
    post("x".repeat(5000), { token: "token-a", type: "application/json" }),
  );
  assert.equal(declared.status, 413);
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new TextEncoder().encode('{"seq":1}\n'.repeat(100)));
    },
  }, { highWaterMark: 0 });
  const streamed = await handle(
    post(endless, { token: "token-a", type: "application/x-ndjson" }),
  );
  assert.equal(streamed.status, 413);
  assert.ok(
    pulled <= 5,
    `pulled ${pulled} chunks of 1000 bytes for a 4096-byte cap`,
  );
  const many = await handle(
    post(ndjson([{}, {}, {}, {}]), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(many.status, 413);
  assert.match((await many.json()).error, /4 readings/);
  assert.equal(await db.collection("readings").count(), 0);
});

Deno.test("ingest: a device over its rate limit gets 429 with Retry-After; others are not affected", async () => {
  await using db = await open();
  let now = 0;
  const handle = ingest(db, {
    devices: DEVICES,
    rateLimit: { perSecond: 2, burst: 4 },
    clock: { now: () => now },
  });
  const send = (token: string, n: number) =>
    handle(
      post(ndjson(Array.from({ length: n }, () => ({ t: 1 }))), {
        token,
        type: "application/x-ndjson",
      }),
    );
  assert.equal((await send("token-a", 4)).status, 200);
  const limited = await send("token-a", 1);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "1");
  assert.equal((await send("token-b", 1)).status, 200);
  now = 500; // one token back
  assert.equal((await send("token-a", 6)).status, 200); // a batch may overdraw
  now = 1000;
  const later = await send("token-a", 1);
  assert.equal(later.status, 429);
  assert.equal(later.headers.get("retry-after"), "3"); // at -4, 5 tokens short of 1: 2.5 s
  now = 3500;
  assert.equal((await send("token-a", 1)).status, 200);
  assert.equal(await db.collection("readings").count(), 12);
});

Deno.test("ingest: a full storage answers 503 with Retry-After and stores nothing; dropOldest makes room", async () => {
  await using db = await open({ memoryLimit: 40_000 });
  let now = 0;
  const handle = ingest(db, {
    devices: DEVICES,
    retryAfter: 12,
    clock: { now: () => ++now },
  });
  let seq = 0;
  let response: Response;
  do {
    response = await handle(
      post(
        ndjson(
          Array.from(
            { length: 20 },
            () => ({ seq: ++seq, pad: "x".repeat(50) }),
          ),
        ),
        { token: "token-a", type: "application/x-ndjson" },
      ),
    );
  } while (response.status === 200 && seq < 100_000);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "12");
  const count = await db.collection("readings").count();
  assert.equal(count % 20, 0); // whole batches only
  assert.equal(
    await db.collection("readings").has(readingKey("esp32-a", seq)),
    false,
  );

  const dropping = ingest(db, {
    devices: DEVICES,
    onFull: "dropOldest",
    clock: { now: () => ++now },
  });
  const ok = await dropping(
    post(
      ndjson(
        Array.from({ length: 20 }, () => ({ seq: ++seq, pad: "x".repeat(50) })),
      ),
      { token: "token-a", type: "application/x-ndjson" },
    ),
  );
  assert.equal(ok.status, 200);
  assert.ok(dropping.stats().dropped >= 20);
  assert.equal(
    await db.collection("readings").has(readingKey("esp32-a", 1)),
    false,
  ); // the oldest went
  assert.equal(
    await db.collection("readings").has(readingKey("esp32-a", seq)),
    true,
  );
});

Deno.test("ingest: the answer comes after the batch is on disk (strict file durability)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using db = await open({ path: `${dir}/gw.tdb` });
    const handle = ingest(db, { devices: DEVICES });
    const r = await handle(
      post(ndjson([{ seq: 1, t: 1 }, { seq: 2, t: 2 }]), {
        token: "token-a",
        type: "application/x-ndjson",
      }),
    );
    assert.equal(r.status, 200);
    // A reader of the file (another open, read-only) sees the batch at once.
    await using reader = await open({ path: `${dir}/gw.tdb`, readOnly: true });
    assert.equal(await reader.collection("readings").count(), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ingest: submit() stores readings of an authenticated device with the same checks (for bridges)", async () => {
  await using db = await open();
  const handle = ingest(db, { devices: DEVICES, maxBodyBytes: 100 });
  const ok = await handle.submit("esp32-b", '{"seq":1,"t":2}');
  assert.deepEqual(await ok.json(), { stored: 1, duplicates: 0 });
  assert.deepEqual(
    await (await handle.submit("esp32-b", '{"seq":1,"t":2}\n', "ndjson"))
      .json(),
    { stored: 0, duplicates: 1 },
  );
  assert.equal((await handle.submit("esp32-z", "{}")).status, 401);
  assert.equal((await handle.submit("esp32-b", "[1]")).status, 400);
  assert.equal((await handle.submit("esp32-b", "x".repeat(101))).status, 413);
  assert.equal(await db.collection("readings").count(), 1);
});

Deno.test("ingest: on Deno KV a request over one atomic write's limit is a 413 and stores nothing", async () => {
  await using db = await open({ kv: ":memory:" });
  const handle = ingest(db, { devices: DEVICES });
  const r = await handle(
    post(ndjson(Array.from({ length: 400 }, (_, i) => ({ seq: i, t: i }))), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(r.status, 413);
  assert.match(
    (await r.json()).error,
    /400 readings are more than one atomic write holds/,
  );
  assert.equal(await db.collection("readings").count(), 0);
  const ok = await handle(
    post(ndjson(Array.from({ length: 20 }, (_, i) => ({ seq: i, t: i }))), {
      token: "token-a",
      type: "application/x-ndjson",
    }),
  );
  assert.equal(ok.status, 200);
});
