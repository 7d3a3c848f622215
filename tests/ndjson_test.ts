/**
 * NDJSON export and import: round trips between storages, metadata and TTL
 * kept, malformed input refused whole, expired items left out.
 */

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { FakeClock } from "./conformance/database_suite.ts";

type Doc = { _id?: string; device: string; at?: Date; n?: number };

async function fill(db: Database): Promise<void> {
  const r = db.collection<Doc>("readings");
  await r.createIndex("device");
  await r.insert({ _id: "a", device: "d1", at: new Date(5), n: 1 });
  await r.insert({ _id: "b", device: "d2", n: 2 }, { ttl: 60_000 });
  await r.update({ _id: "a" }, { $inc: { n: 10 } });
  await db.put("plain", [1, 2, 3], { tags: ["x", "y"] });
  await db.collection("gone").insert({ _id: "g", device: "d3" }, { ttl: 10 });
}

async function entries(db: Database, collection: string) {
  const c = db.collection(collection);
  const out = [];
  for (const doc of await c.find({}).toArray() as { _id?: string }[]) {
    out.push(doc);
  }
  return out;
}

Deno.test("ndjson: a round trip keeps values, dates, versions, times, tags and TTLs, into any storage", async () => {
  const clock = new FakeClock();
  const dir = await Deno.makeTempDir({ prefix: "tether-ndjson-" });
  try {
    await using source = await open({ clock });
    await fill(source);
    clock.advance(10); // "gone" expires: it is not exported
    const path = `${dir}/dump.ndjson`;
    assert.deepEqual(await source.export(path), {
      documents: 3,
      expired: 0,
      deleted: 0,
    });
    const text = await Deno.readTextFile(path);
    // The index definition first, then the three documents.
    assert.equal(text.trim().split("\n").length, 4);
    assert.deepEqual(JSON.parse(text.split("\n")[0]!), {
      col: "readings",
      index: {
        name: "device_1",
        fields: ["device"],
        unique: false,
        sparse: false,
      },
    });
    assert.ok(!text.includes('"gone"'));
    const kv = await Deno.openKv(":memory:");
    for (
      const target of [
        () => open({ clock }),
        () => open({ clock, path: `${dir}/copy.tdb` }),
        () => open({ clock, kv }),
        () =>
          open({
            clock,
            encryption: { passphrase: "p", iterations: 1000 },
            compression: true,
          }),
      ]
    ) {
      await using db = await target();
      assert.deepEqual(await db.import(path), {
        documents: 3,
        expired: 0,
        deleted: 0,
      });
      const a = await db.collection("readings").getEntry("a");
      const was = await source.collection("readings").getEntry("a");
      assert.deepEqual(a, was);
      assert.ok((a?.value as Doc).at instanceof Date);
      assert.deepEqual(
        await db.collection("readings").getEntry("b"),
        await source.collection("readings").getEntry("b"),
      );
      assert.deepEqual(
        await db.getEntry("plain"),
        await source.getEntry("plain"),
      );
      // The index came along; it follows the imported documents.
      assert.deepEqual(
        (await db.collection("readings").indexes()).map((i) => i.name),
        ["device_1"],
      );
      assert.deepEqual(
        await entries(db, "readings"),
        await entries(source, "readings"),
      );
      assert.equal(await db.collection("readings").count({ device: "d2" }), 1);
    }
    kv.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ndjson: a malformed line anywhere is refused by number, and nothing is stored", async () => {
  await using db = await open();
  await db.put("keep", 1);
  const good = '{"col":"c","id":"a","v":1,"c":1,"u":1,"n":1}';
  const cases: [string, RegExp][] = [
    ["not json", /line 2: it is not JSON/],
    ["[1]", /line 2: it is not a JSON object/],
    ['{"col":"","id":"a","v":1,"c":1,"u":1,"n":1}', /"col"/],
    ['{"col":"c","id":"","v":1,"c":1,"u":1,"n":1}', /line 2/],
    ['{"col":"c","id":"b","c":1,"u":1,"n":1}', /"v"/],
    ['{"col":"c","id":"b","v":1,"c":1,"u":1,"n":0}', /version/],
    ['{"col":"c","id":"b","v":1,"c":1,"u":1,"n":1,"t":[1]}', /"t"/],
  ];
  for (const [bad, message] of cases) {
    const text = `${good}\n${bad}\n${good.replace('"a"', '"z"')}\n`;
    await assert.rejects(
      db.import(new Blob([text]).stream()),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      bad,
    );
    assert.equal(await db.collection("c").count(), 0, bad);
  }
  assert.equal(await db.get("keep"), 1);
});

Deno.test("ndjson: expired lines are skipped, a key twice keeps the last, replace empties what it imports into", async () => {
  const clock = new FakeClock();
  await using db = await open({ clock });
  await db.collection("c").insert({ _id: "old", n: 0 });
  await db.collection("other").insert({ _id: "o", n: 0 });
  const now = clock.now();
  const text = [
    `{"col":"c","id":"a","v":1,"c":1,"u":1,"n":1,"x":${now}}`,
    `{"col":"c","id":"b","v":1,"c":1,"u":1,"n":1}`,
    `{"col":"c","id":"b","v":2,"c":1,"u":2,"n":2}`,
    "",
  ].join("\n");
  assert.deepEqual(
    await db.import(new Blob([text]).stream(), { mode: "replace" }),
    { documents: 2, expired: 1, deleted: 0 },
  );
  assert.equal(await db.collection("c").get("old"), null);
  assert.equal(await db.collection("c").get("b"), 2);
  assert.equal((await db.collection("c").getEntry("b"))?.version, 2);
  assert.equal(await db.collection("other").count(), 1);
  await assert.rejects(
    db.import(new Blob([text]).stream(), { mode: "all" as "merge" }),
    TypeError,
  );
  await assert.rejects(
    db.export("x", { collections: ["bad name!"] }),
    TypeError,
  );
});
