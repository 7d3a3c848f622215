/**
 * Deno KV layout 2: document records as KV's own structured values, split
 * as bytes only past one KV value; layout-1 databases (every record as JSON
 * bytes) still open, read and take writes; encrypted databases keep storing
 * sealed bytes.
 */

import assert from "node:assert/strict";
import { serialize } from "node:v8";
import { open } from "../mod.ts";
import {
  fitsOneValue,
  fromNative,
  serializedBound,
  toNative,
} from "../src/storage/kv_values.ts";

/** The raw KV value under the document key of `id` in `collection`. */
async function rawDoc(
  kv: Deno.Kv,
  collection: string,
  id: string,
): Promise<unknown> {
  for await (const e of kv.list({ prefix: ["tether"] })) {
    const part = e.key[1];
    if (!(part instanceof Uint8Array)) continue;
    const text = new TextDecoder().decode(part);
    if (text === `\x30d\x00\x30${collection}\x00\x30${id}\x00`) return e.value;
  }
  return undefined;
}

Deno.test("kv layout 2: a document is one structured KV value, dates and bytes kept as such", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const doc = { n: 1, at: new Date(5), raw: new Uint8Array([1, 2, 3]) };
  await db.put("a", doc, { tags: ["x"] });
  const raw = await rawDoc(kv, "default", "a");
  assert.ok(Array.isArray(raw), "a structured value, not bytes");
  assert.equal(raw[0], 2);
  assert.deepEqual(raw[1], doc);
  assert.ok((raw[1] as typeof doc).at instanceof Date);
  assert.ok((raw[1] as typeof doc).raw instanceof Uint8Array);
  assert.deepEqual(raw[7], ["x"]);
  assert.deepEqual(await db.get("a"), doc);
  const entry = await db.getEntry("a");
  assert.deepEqual(entry?.tags, ["x"]);
  assert.equal(entry?.version, 1);
  // A second handle reads it as well.
  await using other = await open({ kv });
  assert.deepEqual(await other.get("a"), doc);
  kv.close();
});

Deno.test("kv layout 2: a record over one KV value is stored as split bytes and reads back", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, maxValueBytes: 300_000 });
  // 30,000 doubles: 330 KB of JSON would not be measured; 270 KB serialised.
  const big = { list: Array.from({ length: 20_000 }, (_, i) => i + 0.5) };
  await db.put("big", big);
  const raw = await rawDoc(kv, "default", "big");
  assert.ok(
    typeof raw === "object" && raw !== null && "chunks" in raw,
    "a split value's marker",
  );
  assert.deepEqual(await db.get("big"), big);
  // Just under the limit when serialised, though its JSON is longer: one
  // structured value.
  const wide = { s: "\u00e9".repeat(60_000) }; // 120 KB of UTF-8, 60 KB in V8
  await db.put("wide", wide);
  assert.ok(Array.isArray(await rawDoc(kv, "default", "wide")));
  assert.deepEqual(await db.get("wide"), wide);
  // Rewritten small: the parts go.
  await db.put("big", { small: true });
  assert.ok(Array.isArray(await rawDoc(kv, "default", "big")));
  let parts = 0;
  for await (const _ of kv.list({ prefix: ["tether", "c"] })) parts++;
  assert.equal(parts, 0);
  kv.close();
});

Deno.test("kv layout 2: an encrypted database stores sealed bytes, never the record", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({
    kv,
    encryption: { key: new Uint8Array(32).fill(7) },
  });
  await db.put("a", { secret: "plain text here", raw: new Uint8Array([9]) });
  const raw = await rawDoc(kv, "default", "a");
  assert.ok(raw instanceof Uint8Array, "sealed bytes");
  const text = new TextDecoder().decode(raw);
  assert.ok(!text.includes("plain text here"));
  assert.deepEqual(await db.get("a"), {
    secret: "plain text here",
    raw: new Uint8Array([9]),
  });
  kv.close();
});

Deno.test("kv layout 1 fixture: a database written with JSON byte values opens, reads, and takes writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-layout1-" });
  try {
    const path = `${dir}/kv.sqlite`;
    await Deno.copyFile(
      new URL("./fixtures/kv_layout1.sqlite", import.meta.url),
      path,
    );
    const kv = await Deno.openKv(path);
    await using db = await open({ kv, maxValueBytes: 200_000 });
    assert.ok((await rawDoc(kv, "default", "plain")) instanceof Uint8Array);
    assert.deepEqual(await db.get("plain"), {
      n: 1,
      s: "h\u00e9llo",
      at: new Date(1700000000000),
      list: [1, 2.5, null, true],
    });
    assert.deepEqual((await db.getEntry("plain"))?.tags, ["t1"]);
    assert.deepEqual(await db.get("ttl"), { n: 2 });
    assert.equal(((await db.get("big")) as { s: string }).s.length, 70_000);
    assert.equal(await db.get("gone"), null);
    assert.deepEqual(await db.get("twice"), { n: 5 });
    assert.equal((await db.getEntry("twice"))?.version, 2);
    const people = db.collection("people");
    assert.deepEqual(await people.find({ email: "b@x" }).toArray(), [
      { _id: "b", email: "b@x", age: 40 },
    ]);
    await assert.rejects(
      people.insert({ _id: "c", email: "a@x" }),
      (e: Error) => e.name === "DuplicateKeyError",
    );
    assert.deepEqual((await db.verify()).problems, []);
    // Writes over old records store layout 2 and keep the metadata going.
    await db.put("twice", { n: 6 });
    assert.ok(Array.isArray(await rawDoc(kv, "default", "twice")));
    assert.equal((await db.getEntry("twice"))?.version, 3);
    await db.put("big", { s: "small" });
    let parts = 0;
    for await (const _ of kv.list({ prefix: ["tether", "c"] })) parts++;
    assert.equal(parts, 0, "the old split value's parts are gone");
    const changes: string[] = [];
    for await (
      const c of db.collection("default").changes({ live: false })
    ) {
      changes.push(`${c.type}:${c.key}`);
    }
    assert.ok(changes.includes("put:twice"));
    assert.equal(await db.count(), 4);
    kv.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv layout 2: the serialised-size bound is never under V8's own size", () => {
  const values: unknown[] = [
    { a: 1, b: -0, c: 2 ** 31, d: 0.5, e: -7, f: null, g: true, h: "x" },
    [1, 2, 0.5, [1, 2, 3]],
    { s: "\u20ac".repeat(300), t: "\u00e9".repeat(300), u: "" },
    [[], {}, [[[]]], { "0": 1, "12": "a" }],
    { at: new Date(0), raw: new Uint8Array(1000), empty: new Uint8Array(0) },
    Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? -0 : i * 1e9)),
    Array.from({ length: 300 }, (_, i) => ({ [`k${i}`]: [i, `v${i}`] })),
  ];
  for (const value of values) {
    const native = toNative({
      value,
      tags: ["a"],
      expiresAt: 1e12,
      createdAt: 1,
      updatedAt: 2,
      version: 3,
      seq: 4,
      feed: 5,
      dates: [["x"]],
    });
    const actual = serialize(native).length - 2; // less V8's header
    assert.ok(
      serializedBound(native, 0) >= actual,
      `bound ${serializedBound(native, 0)} < ${actual} for ${
        JSON.stringify(value).slice(0, 40)
      }`,
    );
    assert.deepEqual(fromNative(structuredClone(native))?.value, value);
  }
  assert.ok(fitsOneValue([2, "x".repeat(60_000)], 60_050));
  assert.ok(!fitsOneValue([2, "x".repeat(66_000)], 66_050));
  assert.equal(fromNative(new Uint8Array([1])), undefined);
  assert.equal(fromNative([1, {}, 1, 1, 1, 1]), undefined);
});

/** A `Deno.Kv` whose atomic operations count deletes of tombstone keys. */
function countingTombDeletes(kv: Deno.Kv): { kv: Deno.Kv; deletes: number[] } {
  const counts = { deletes: [] as number[] };
  const tomb = (k: Deno.KvKey) =>
    k[1] instanceof Uint8Array && k[1][0] === 0x30 && k[1][1] === 0x74;
  const wrapped = new Proxy(kv, {
    get(target, name) {
      if (name === "atomic") {
        return () => {
          const op = target.atomic();
          let n = 0;
          const del = op.delete.bind(op);
          op.delete = (key: Deno.KvKey) => {
            if (tomb(key)) n++;
            return del(key);
          };
          const commit = op.commit.bind(op);
          op.commit = () => {
            counts.deletes.push(n);
            return commit();
          };
          return op;
        };
      }
      const v = Reflect.get(target, name);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { kv: wrapped, deletes: counts.deletes };
}

Deno.test("kv: a put of a new key writes no tombstone delete; a put after a delete is no deletion in an incremental backup", async () => {
  const raw = await Deno.openKv(":memory:");
  const { kv, deletes } = countingTombDeletes(raw);
  await using db = await open({ kv });
  const since = Date.now() - 1;
  await db.put("a", { n: 1 });
  await db.putBatch(new Map([["b", 1], ["c", 2]]));
  assert.equal(deletes.reduce((a, b) => a + b, 0), 0, "no tombstone delete");
  await db.delete("a");
  await db.put("a", { n: 2 });
  await db.delete("b");
  const chunks: Uint8Array[] = [];
  const done = await db.backup(
    new WritableStream({ write: (c) => void chunks.push(c) }),
    { since },
  );
  assert.equal(done.deleted, 1, "only b's deletion");
  await using copy = await open();
  await copy.put("b", "old");
  await copy.restore(new Blob(chunks as Uint8Array<ArrayBuffer>[]).stream(), {
    mode: "merge",
  });
  assert.deepEqual(await copy.get("a"), { n: 2 });
  assert.equal(await copy.get("b"), null);
  assert.equal(await copy.get("c"), 2);
  // The change feed shows the latest change of a: the put (the stale
  // tombstone is superseded), and b's deletion.
  const seen: string[] = [];
  for await (const c of db.collection("default").changes({ live: false })) {
    seen.push(`${c.type}:${c.key}`);
  }
  assert.deepEqual(seen.filter((s) => s.endsWith(":a")), ["put:a"]);
  assert.deepEqual(seen.filter((s) => s.endsWith(":b")), ["delete:b"]);
  raw.close();
});
