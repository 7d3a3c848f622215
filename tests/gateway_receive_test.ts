// receive() / applyBatch(): a change is applied once per origin and key,
// only when it is later than the one applied; statuses; Deno KV targets.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { applyBatch, receive } from "../gateway.ts";
import type { RelayChange } from "../src/gateway/protocol.ts";

const put = (
  seq: string,
  key: string,
  doc: unknown,
  version = 1,
): RelayChange => ({
  seq,
  type: "put",
  collection: "readings",
  key,
  version,
  doc,
});

/** A POST of `body` to the receiver, with the relay's token. */
function syncRequest(body: string): Request {
  return new Request("http://cloud/sync", {
    method: "POST",
    headers: {
      authorization: "Bearer sync",
      "content-type": "application/json",
    },
    body,
  });
}

Deno.test("receive: a batch sent again is skipped; a later change of a key is applied, an earlier one is not", async () => {
  await using db = await open();
  const readings = db.collection("readings");
  const batch = {
    origin: "gw~1",
    changes: [put("0001", "a", { t: 1 }), put("0002", "b", { t: 2 })],
  };
  assert.deepEqual(await applyBatch(db, batch), { applied: 2, skipped: 0 });
  assert.deepEqual(await applyBatch(db, batch), { applied: 0, skipped: 2 });
  assert.equal((await readings.getEntry("a"))!.version, 1); // not written twice
  // A later change, then an older one arriving late.
  assert.deepEqual(
    await applyBatch(db, {
      origin: "gw~1",
      changes: [put("0005", "a", { t: 5 }, 2)],
    }),
    { applied: 1, skipped: 0 },
  );
  assert.deepEqual(
    await applyBatch(db, {
      origin: "gw~1",
      changes: [put("0003", "a", { t: 3 }, 1)],
    }),
    { applied: 0, skipped: 1 },
  );
  assert.deepEqual(await readings.get("a"), { t: 5 });
  // A delete, then a re-creation (versions restart at 1: positions decide).
  await applyBatch(db, {
    origin: "gw~1",
    changes: [{
      seq: "0006",
      type: "delete",
      collection: "readings",
      key: "a",
      version: 2,
    }],
  });
  assert.equal(await readings.has("a"), false);
  await applyBatch(db, {
    origin: "gw~1",
    changes: [put("0007", "a", { t: 7 }, 1)],
  });
  assert.deepEqual(await readings.get("a"), { t: 7 });
  // Another origin has its own record.
  assert.deepEqual(
    await applyBatch(db, {
      origin: "gw~2",
      changes: [put("0001", "c", { t: 1 })],
    }),
    { applied: 1, skipped: 0 },
  );
  // Within one batch, the later change of a key wins.
  await applyBatch(db, {
    origin: "gw~3",
    changes: [put("0009", "d", { t: 9 }), put("0008", "d", { t: 8 })],
  });
  assert.deepEqual(await readings.get("d"), { t: 9 });
  // Positions of records older than the feed ("0.<hex key>") come first.
  await applyBatch(db, {
    origin: "gw~5",
    changes: [put("0.6b31", "f", { t: 1 })],
  });
  await applyBatch(db, {
    origin: "gw~5",
    changes: [put("0.6b32", "f", { t: 2 })],
  });
  await applyBatch(db, { origin: "gw~5", changes: [put("3", "f", { t: 3 })] });
  assert.deepEqual(await readings.get("f"), { t: 3 });
  assert.deepEqual(
    await applyBatch(db, {
      origin: "gw~5",
      changes: [put("0.6b33", "f", { t: 0 })],
    }),
    { applied: 0, skipped: 1 },
  );
  // Positions order by length, then text.
  await applyBatch(db, { origin: "gw~4", changes: [put("9", "e", { t: 9 })] });
  await applyBatch(db, {
    origin: "gw~4",
    changes: [put("10", "e", { t: 10 })],
  });
  assert.deepEqual(await readings.get("e"), { t: 10 });
});

Deno.test("receive: statuses 200, 400, 401, 403, 405, 413, 415", async () => {
  await using db = await open();
  const handle = receive(db, {
    token: "sync",
    maxBodyBytes: 10_000,
    collections: ["readings"],
  });
  const req = (
    body: string,
    headers: Record<string, string> = {},
    method = "POST",
  ) =>
    handle(
      new Request("http://cloud/sync", {
        method,
        headers: {
          authorization: "Bearer sync",
          "content-type": "application/json",
          ...headers,
        },
        ...(method === "GET" ? {} : { body }),
      }),
    );
  const ok = await req(
    JSON.stringify({ origin: "gw~1", changes: [put("1", "a", { t: 1 })] }),
  );
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { applied: 1, skipped: 0 });
  assert.equal((await req("{}", { authorization: "Bearer nope" })).status, 401);
  assert.equal((await req("{}", { authorization: "" })).status, 401);
  assert.equal((await req("", {}, "GET")).status, 405);
  assert.equal((await req("{}", { "content-type": "text/plain" })).status, 415);
  assert.equal((await req("x".repeat(10_001))).status, 413);
  for (
    const bad of [
      "{",
      "[]",
      JSON.stringify({ origin: "", changes: [] }),
      JSON.stringify({ origin: "gw", changes: {} }),
      JSON.stringify({
        origin: "gw",
        changes: [{ ...put("1", "a", {}), type: "patch" }],
      }),
      JSON.stringify({
        origin: "gw",
        changes: [{ ...put("1", "a", {}), version: -1 }],
      }),
      JSON.stringify({
        origin: "gw",
        changes: [{
          seq: "1",
          type: "put",
          collection: "readings",
          key: "a",
          version: 1,
        }],
      }),
      JSON.stringify({
        origin: "gw",
        changes: [{ ...put("1", "a", {}), collection: "_applied" }],
      }),
    ]
  ) {
    const r = await req(bad);
    assert.equal(r.status, 400, bad);
  }
  const other = await req(
    JSON.stringify({
      origin: "gw",
      changes: [{ ...put("1", "a", {}), collection: "secrets" }],
    }),
  );
  assert.equal(other.status, 403);
  assert.equal(await db.collection("secrets").count(), 0);
  const tooBig = await req(
    JSON.stringify({
      origin: "gw",
      changes: [put("2", "b", { pad: "x".repeat(9_000) })],
    }),
  );
  assert.equal(tooBig.status, 200);
  assert.throws(() => receive(db, { token: "" }), TypeError);
});

Deno.test("receive: a full target answers 503 with Retry-After and applies nothing of the batch", async () => {
  await using db = await open({ memoryLimit: 20_000 });
  const handle = receive(db, { token: "sync", retryAfter: 9 });
  const changes = Array.from(
    { length: 200 },
    (_, i) =>
      put(String(i + 1).padStart(4, "0"), `k${i}`, { pad: "x".repeat(100) }),
  );
  const r = await handle(
    syncRequest(JSON.stringify({ origin: "gw~1", changes })),
  );
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("retry-after"), "9");
  assert.equal(await db.collection("readings").count(), 0);
});

Deno.test("receive: a document a unique index of the receiver refuses is a 409; nothing of the batch is applied", async () => {
  await using db = await open();
  const readings = db.collection("readings");
  await readings.createIndex("serial", { unique: true });
  await readings.put("other", { serial: "S1" });
  const handle = receive(db, { token: "sync" });
  const r = await handle(
    syncRequest(JSON.stringify({
      origin: "gw~1",
      changes: [
        put("1", "a", { serial: "S2" }),
        put("2", "b", {
          serial: "S1",
        }),
      ],
    })),
  );
  assert.equal(r.status, 409);
  assert.match((await r.json()).error, /unique index 'serial_1'/);
  assert.equal(await readings.get("a"), null);
  assert.equal(await readings.count(), 1);
});

Deno.test("receive: a collection's puts and deletes are one atomic write; a batch of several collections refused at a later one says what was applied", async () => {
  for (const kv of [false, true]) {
    await using db = await open(kv ? { kv: ":memory:" } : {});
    const readings = db.collection("readings");
    await readings.createIndex("serial", { unique: true });
    await readings.putBatch(
      new Map([["other", { serial: "S1" }], ["old", { serial: "S0" }]]),
    );
    const del = (seq: string, key: string): RelayChange => ({
      seq,
      type: "delete",
      collection: "readings",
      key,
      version: 1,
    });
    // The delete comes before the refused put: it is not applied either.
    const refused = await applyBatch(db, {
      origin: "gw~1",
      changes: [del("1", "old"), put("2", "b", { serial: "S1" })],
    }).then(() => undefined, (e) => e);
    assert.equal(refused?.name, "DuplicateKeyError");
    assert.deepEqual(await readings.get("old"), { serial: "S0" });
    // A delete that frees a value and a put that takes it: together.
    assert.deepEqual(
      await applyBatch(db, {
        origin: "gw~1",
        changes: [del("3", "other"), put("4", "b", { serial: "S1" })],
      }),
      { applied: 2, skipped: 0 },
    );
    assert.deepEqual(await readings.get("b"), { serial: "S1" });
    assert.equal(await readings.get("other"), null);
    // Several collections: the first is applied, the second refused; the
    // error says so, and sent again once fixed, the first is skipped.
    const notes = (seq: string, key: string): RelayChange => ({
      seq,
      type: "put",
      collection: "notes",
      key,
      version: 1,
      doc: { n: key },
    });
    const two = {
      origin: "gw~2",
      changes: [notes("1", "n1"), put("2", "c", { serial: "S1" })],
    };
    await assert.rejects(
      applyBatch(db, two),
      /unique index 'serial_1'.*the changes of 'notes' in this batch were applied before; sent again, they are skipped/,
    );
    assert.deepEqual(await db.collection("notes").get("n1"), { n: "n1" });
    await readings.delete("b");
    assert.deepEqual(await applyBatch(db, two), { applied: 1, skipped: 1 });
    assert.deepEqual(await readings.get("c"), { serial: "S1" });
  }
});

Deno.test("receive: on Deno KV a batch larger than one KV commit is applied in parts, once", async () => {
  await using db = await open({ kv: ":memory:" });
  const changes = Array.from(
    { length: 250 },
    (_, i) => put(String(i + 1).padStart(6, "0"), `k${i}`, { i }),
  );
  assert.deepEqual(await applyBatch(db, { origin: "gw~1", changes }), {
    applied: 250,
    skipped: 0,
  });
  assert.deepEqual(await applyBatch(db, { origin: "gw~1", changes }), {
    applied: 0,
    skipped: 250,
  });
  assert.equal(await db.collection("readings").count(), 250);
  const deletes = changes.map((c, i): RelayChange => ({
    seq: String(1000 + i).padStart(6, "0"),
    type: "delete",
    collection: "readings",
    key: c.key,
    version: 1,
  }));
  assert.deepEqual(await applyBatch(db, { origin: "gw~1", changes: deletes }), {
    applied: 250,
    skipped: 0,
  });
  assert.equal(await db.collection("readings").count(), 0);
});

Deno.test("receive: a stale batch still being applied when a newer one arrives (a timed-out POST sent again) neither overwrites the newer documents nor sets the position back", async () => {
  await using db = await open();
  const readings = db.collection("readings");
  const older = {
    origin: "gw~7",
    changes: [put("0001", "a", { t: 1 }), put("0002", "b", { t: 2 })],
  };
  const newer = {
    origin: "gw~7",
    changes: [put("0003", "a", { t: 3 }, 2), put("0004", "b", { t: 4 }, 2)],
  };
  // The newer batch starts first; the stale copy of the older one arrives
  // while it is being applied.
  const [first, second] = await Promise.all([
    applyBatch(db, newer),
    applyBatch(db, older),
  ]);
  assert.deepEqual(first, { applied: 2, skipped: 0 });
  assert.deepEqual(second, { applied: 0, skipped: 2 });
  assert.deepEqual(await readings.get("a"), { t: 3 });
  assert.deepEqual(await readings.get("b"), { t: 4 });
  // The position is the newer batch's: both are duplicates now.
  assert.deepEqual(await applyBatch(db, newer), { applied: 0, skipped: 2 });
  assert.deepEqual(await applyBatch(db, older), { applied: 0, skipped: 2 });
  // Out of order across origins: each origin keeps its own position.
  assert.deepEqual(
    await applyBatch(db, {
      origin: "gw~8",
      changes: [put("0001", "a", { t: 9 })],
    }),
    { applied: 1, skipped: 0 },
  );
  assert.deepEqual(await readings.get("a"), { t: 9 });
});

Deno.test("applyBatch: a collection's batches must come in feed order (the rule is a position per origin and collection, not per key): one applied after a later batch is skipped whole, puts of other keys and deletes too; so a relay has one batch in flight", async () => {
  await using db = await open();
  const readings = db.collection("readings");
  await applyBatch(db, {
    origin: "gw~1",
    changes: [put("0001", "a", { t: 1 }), put("0002", "b", { t: 1 })],
  });
  const first = {
    origin: "gw~1",
    changes: [
      put("0003", "c", { t: 3 }),
      {
        seq: "0004",
        type: "delete" as const,
        collection: "readings",
        key: "b",
        version: 1,
      },
    ],
  };
  const second = {
    origin: "gw~1",
    changes: [put("0005", "a", { t: 5 }, 2)],
  };
  // Out of order: the later batch first.
  assert.deepEqual(await applyBatch(db, second), { applied: 1, skipped: 0 });
  assert.deepEqual(await applyBatch(db, first), { applied: 0, skipped: 2 });
  assert.equal(await readings.has("c"), false); // never applied
  assert.equal(await readings.has("b"), true); // its delete neither
  // In order, on another target, both apply.
  await using other = await open();
  await applyBatch(other, {
    origin: "gw~1",
    changes: [put("0001", "a", { t: 1 }), put("0002", "b", { t: 1 })],
  });
  assert.deepEqual(await applyBatch(other, first), { applied: 2, skipped: 0 });
  assert.deepEqual(await applyBatch(other, second), { applied: 1, skipped: 0 });
  assert.deepEqual(await other.collection("readings").get("c"), { t: 3 });
  assert.equal(await other.collection("readings").has("b"), false);
  assert.deepEqual(await other.collection("readings").get("a"), { t: 5 });
});

Deno.test("receive: a change the database refuses (its key, its document) is a 400 that names it, and nothing of the batch is written", async () => {
  const cases: [boolean, boolean][] = [[false, false], [true, false], [
    true,
    true,
  ]];
  for (const [assumeNew, kv] of cases) {
    using store = kv ? await Deno.openKv(":memory:") : undefined;
    await using db = await open(store === undefined ? {} : { kv: store });
    const handle = receive(db, { token: "sync", assumeNew });
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 200; i++) at = (at.a = {}) as Record<string, unknown>;
    for (
      const [bad, named] of [
        [put("2", "k".repeat(2_000), { t: 2 }), `key "${"k".repeat(100)}"`],
        [put("2", "too-deep", deep), 'key "too-deep"'],
      ] as const
    ) {
      const r = await handle(syncRequest(JSON.stringify({
        origin: "gw~1",
        changes: [put("1", "fine", { t: 1 }), bad],
      })));
      assert.equal(r.status, 400);
      const { error } = await r.json();
      assert(
        error.includes(`Cannot apply the change of 'readings' ${named}`),
        error,
      );
      assert.equal(await db.collection("readings").count(), 0);
    }
    // Two collections: the refused document is in the second; the first
    // is not written either.
    const r = await handle(syncRequest(JSON.stringify({
      origin: "gw~1",
      changes: [
        { ...put("1", "fine", { t: 1 }), collection: "a" },
        { ...put("2", "too-deep", deep), collection: "b" },
      ],
    })));
    assert.equal(r.status, 400);
    const { error } = await r.json();
    assert(error.includes(`Cannot apply the change of 'b' key "too-deep"`));
    assert.equal(await db.collection("a").count(), 0);
  }
});

Deno.test("receive: seq is a feed position; the position of an old record with a long key is taken", async () => {
  await using db = await open();
  const handle = receive(db, { token: "sync" });
  const send = async (seq: unknown) => {
    const r = await handle(
      syncRequest(JSON.stringify({
        origin: "gw~1",
        changes: [{ ...put("1", "k", { t: 1 }), seq }],
      })),
    );
    return { status: r.status, body: await r.json() };
  };
  // A record older than the feed, with a key of 1,000 bytes: over 2,000 hex.
  const long = `0.${"6b".repeat(1_100)}`;
  assert.deepEqual(await send(long), {
    status: 200,
    body: { applied: 1, skipped: 0 },
  });
  for (
    const bad of ["", "abc", "1.5", "-1", "0.", "0.6B", "1".repeat(21), 7, null]
  ) {
    const { status, body } = await send(bad);
    assert.equal(status, 400, String(bad));
    assert.match(body.error, /seq must be a feed position/);
  }
  assert.deepEqual(await send("00000000000000000001"), {
    status: 200,
    body: { applied: 1, skipped: 0 },
  });
});

Deno.test("applyBatch writes a batch's changes in key order (one device's readings together), with or without assumeNew, on memory and Deno KV", async () => {
  const keys = ["dev-2/03", "dev-1/01", "dev-3/02", "dev-1/04", "dev-2/05"];
  for (const assumeNew of [false, true]) {
    for (const kv of [false, true]) {
      using store = kv ? await Deno.openKv(":memory:") : undefined;
      await using db = await open(store === undefined ? {} : { kv: store });
      const batch = {
        origin: "gw~1",
        changes: keys.map((key, i) => ({
          seq: String(i + 1),
          type: "put" as const,
          collection: "readings",
          key,
          version: 1,
          doc: { i },
        })),
      };
      assert.deepEqual(await applyBatch(db, batch, { assumeNew }), {
        applied: 5,
        skipped: 0,
      });
      const order: string[] = [];
      for await (
        const c of db.collection("readings").changes({ live: false })
      ) order.push(c.key);
      const what = `assumeNew ${assumeNew}, ${kv ? "kv" : "memory"}`;
      assert.deepEqual(order, keys.toSorted(), what);
      assert.deepEqual(await db.collection("readings").get("dev-3/02"), {
        i: 2,
      }, what);
    }
  }
});
