/**
 * Backups and restore: round trips between storages, encrypted backups, and
 * restore refusing damaged input while leaving the database as it was.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Database,
  DuplicateKeyError,
  IntegrityError,
  open,
  WrongKeyError,
} from "../mod.ts";
import { FakeClock } from "./conformance/database_suite.ts";

type Doc = { _id?: string; device: string; at?: Date; n?: number };

async function fill(db: Database): Promise<void> {
  const r = db.collection<Doc>("readings");
  await r.createIndex("device");
  for (let i = 0; i < 120; i++) {
    await r.insert({
      _id: `r${i}`,
      device: `d${i % 7}`,
      at: new Date(i),
      n: i,
    });
  }
  await r.update({ _id: "r3" }, { $inc: { n: 100 } });
  await db.put("plain", { secret: "swordfish" }, { tags: ["x"], ttl: 60_000 });
  await db.collection("notes").insert({ _id: "n", device: "d0" });
}

/** Everything a database holds, as comparable data. */
async function contents(db: Database): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ["readings", "notes", "default", "extra"]) {
    const c = db.collection(name);
    const ids = (await c.find({}).toArray() as { _id?: string }[]).map((d) =>
      d._id
    );
    const entries = [];
    for (const id of ids) {
      if (id !== undefined) entries.push(await c.getEntry(id));
    }
    out[name] = { count: await c.count(), entries };
  }
  out.plain = await db.getEntry("plain");
  return out;
}

async function bytesOf(db: Database, options = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await db.backup(
    new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    options,
  );
  return new Uint8Array(
    await new Blob(chunks as Uint8Array<ArrayBuffer>[]).arrayBuffer(),
  );
}

function stream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

Deno.test("backup: from every storage into every storage, exactly, with metadata, dates, TTLs and indexes", async () => {
  const clock = new FakeClock();
  const dir = await Deno.makeTempDir({ prefix: "tether-backup-" });
  const kvs: Deno.Kv[] = [];
  let n = 0;
  const storages = [
    ["memory", () => open({ clock })],
    ["file", () => open({ clock, path: `${dir}/db-${n++}.tdb` })],
    ["kv", async () => {
      const kv = await Deno.openKv(":memory:");
      kvs.push(kv);
      return await open({ clock, kv });
    }],
  ] as const;
  try {
    for (const [from, openSource] of storages) {
      await using source = await openSource();
      await fill(source);
      const path = `${dir}/full-${from}.tbk`;
      const done = await source.backup(path);
      assert.equal(done.documents, 122);
      assert.equal(done.indexes, 1);
      assert.equal(done.bytes, (await Deno.stat(path)).size);
      const expected = await contents(source);
      for (const [to, openTarget] of storages) {
        const what = `${from} -> ${to}`;
        await using db = await openTarget();
        await db.collection("extra").insert({ _id: "e", device: "x" });
        assert.deepEqual(await db.restore(path), {
          documents: 122,
          expired: 0,
          deleted: 0,
        }, what);
        // "replace": the database is the backup, "extra" is gone.
        assert.deepEqual(await contents(db), expected, what);
        const readings = db.collection<Doc>("readings");
        const at = (await readings.get("r5"))?.at;
        assert.ok(at instanceof Date && at.getTime() === 5, what);
        assert.equal(
          (await readings.find({ device: "d3" }).explain()).index,
          "device_1",
        );
        await db.collection("extra").insert({ _id: "e", device: "x" });
        await db.restore(stream(await Deno.readFile(path)), { mode: "merge" });
        assert.equal(await db.collection("extra").count(), 1, what);
      }
    }
  } finally {
    for (const kv of kvs) kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backup: an encrypted database's backup is encrypted under its secret; another secret can be chosen", async () => {
  const secret = { passphrase: "tiger", iterations: 1000 };
  await using db = await open({ encryption: secret });
  await fill(db);
  const bytes = await bytesOf(db);
  const text = new TextDecoder("latin1").decode(bytes);
  assert.ok(!text.includes("swordfish"));
  assert.ok(!text.includes("readings"));
  // Into itself: no secret needed. Elsewhere: the database's secret.
  await db.restore(stream(bytes));
  await using other = await open();
  await assert.rejects(other.restore(stream(bytes)), WrongKeyError);
  await assert.rejects(
    other.restore(stream(bytes), {
      encryption: { passphrase: "nope", iterations: 1000 },
    }),
    WrongKeyError,
  );
  assert.equal(
    (await other.restore(stream(bytes), { encryption: secret })).documents,
    122,
  );
  assert.deepEqual(await contents(other), await contents(db));
  // A plain database's backup under a passphrase of its own.
  const own = { passphrase: "backup only", iterations: 1000 };
  const sealed = await bytesOf(other, { encryption: own });
  assert.ok(!new TextDecoder("latin1").decode(sealed).includes("swordfish"));
  await using third = await open();
  await assert.rejects(third.restore(stream(sealed)), WrongKeyError);
  await third.restore(stream(sealed), { encryption: own });
  assert.deepEqual(await contents(third), await contents(db));
});

Deno.test("restore refuses a damaged, truncated or padded backup and leaves the database as it was", async () => {
  for (const encrypted of [false, true]) {
    const secret = { passphrase: "x", iterations: 1000 };
    await using source = await open(encrypted ? { encryption: secret } : {});
    await fill(source);
    const good = await bytesOf(source);
    await using db = await open();
    await db.collection("notes").insert({ _id: "mine", device: "kept" });
    const before = await contents(db);
    const options = encrypted ? { encryption: secret } : {};
    const positions = [
      0,
      9,
      14,
      40,
      Math.floor(good.length / 2),
      good.length - 40,
      good.length - 1,
    ];
    for (const at of positions) {
      const bad = good.slice();
      bad[at]! ^= 0x40;
      await assert.rejects(
        db.restore(stream(bad), options),
        (e: Error) => e instanceof IntegrityError || e instanceof WrongKeyError,
        `byte ${at} flipped`,
      );
      assert.deepEqual(await contents(db), before, `byte ${at} flipped`);
    }
    for (
      const length of [
        0,
        5,
        20,
        good.length >> 1,
        good.length - 33,
        good.length - 1,
      ]
    ) {
      await assert.rejects(
        db.restore(stream(good.subarray(0, length)), options),
        IntegrityError,
      );
      assert.deepEqual(await contents(db), before, `cut at ${length}`);
    }
    const padded = new Uint8Array(good.length + 1);
    padded.set(good);
    await assert.rejects(db.restore(stream(padded), options), IntegrityError);
    assert.deepEqual(await contents(db), before);
    // The intact backup restores.
    await db.restore(stream(good), options);
    assert.deepEqual(await contents(db), await contents(source));
  }
});

Deno.test("restore refuses a backup with any one byte changed (property)", async () => {
  await using source = await open();
  await source.collection("c").insertMany([{ _id: "a", n: 1 }, {
    _id: "b",
    n: 2,
  }]);
  const good = await bytesOf(source);
  await using db = await open();
  await db.put("mine", 1);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: good.length - 1 }),
      fc.integer({ min: 1, max: 255 }),
      async (at, xor) => {
        const bad = good.slice();
        bad[at]! ^= xor;
        await assert.rejects(db.restore(stream(bad)), IntegrityError);
        assert.equal(await db.get("mine"), 1);
        assert.equal(await db.collection("c").count(), 0);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("verify reports every damaged value and every index entry without its document", async () => {
  const { CodecStorage } = await import("../src/crypto/codec_storage.ts");
  const { MemoryStorage } = await import("../src/storage/memory.ts");
  const { encodeKey } = await import("../src/key_codec.ts");
  const inner = new MemoryStorage();
  await using db = await open({
    storage: await CodecStorage.open(inner, {
      encryption: { passphrase: "v", iterations: 1000 },
    }),
  });
  const c = db.collection("c");
  await c.createIndex("n");
  await c.insertMany([{ _id: "a", n: 1 }, { _id: "b", n: 2 }, {
    _id: "d",
    n: 3,
  }]);
  assert.deepEqual((await db.verify()).problems, []);
  for (const id of ["a", "b"]) {
    const key = encodeKey(["d", "c", id]);
    const value = (await inner.get(key))!.value.slice();
    value[value.length - 1]! ^= 1;
    await inner.commit({ sets: [{ key, value }] });
  }
  const report = await db.verify();
  assert.ok(report.checked >= 6);
  assert.deepEqual(report.problems.map((p) => [p.collection, p.key]), [
    ["c", "a"],
    ["c", "b"],
  ]);
  assert.match(report.problems[0]!.problem, /fails its MAC/);
  // A plain database: a record that does not decode, and an index entry
  // whose document is gone.
  const bare = new MemoryStorage();
  await using plain = await open({ storage: bare });
  const p = plain.collection("p");
  await p.createIndex("n");
  await p.insertMany([{ _id: "x", n: 1 }, { _id: "y", n: 2 }]);
  await bare.commit({
    sets: [{ key: encodeKey(["d", "p", "x"]), value: new Uint8Array([120]) }],
    deletes: [encodeKey(["d", "p", "y"])],
  });
  const found = (await plain.verify()).problems;
  assert.deepEqual(found.map((f) => [f.collection, f.key]), [
    ["p", "x"],
    ["p", "y"],
  ]);
  assert.match(found[1]!.problem, /index 'n_1' points at no document/);
});

Deno.test("incremental backups: full then increments, restored in order, reproduce the source with its deletions and TTLs", async () => {
  const clock = new FakeClock();
  await using source = await open({ clock, tombstoneRetention: 100_000 });
  await fill(source);
  const r = source.collection<Doc>("readings");
  const full = await bytesOf(source);
  const increments: Uint8Array[] = [];
  let mark = clock.now();
  const step = async (change: () => Promise<unknown>) => {
    clock.advance(10);
    await change();
    const since = mark;
    mark = clock.now();
    increments.push(await bytesOf(source, { since }));
  };
  await step(async () => {
    await r.update({ device: "d1" }, { $set: { n: -1 } });
    await r.deleteMany({ device: "d2" });
    await source.delete("plain");
    await source.collection("notes").insert({ _id: "new", device: "d9" });
  });
  await step(async () => {
    await source.collection("notes").clear();
    await r.insert({ _id: "r16", device: "back again" }); // deleted, then new
    await r.insert({ _id: "short", device: "d1" }, { ttl: 15 });
  });
  await step(async () => {
    clock.advance(20); // "short" expires: no tombstone, its TTL travels
    await r.replace("r0", { device: "d0", n: 1000 });
  });
  await using copy = await open({ clock });
  await copy.restore(stream(full));
  let deleted = 0;
  for (const bytes of increments) {
    const result = await copy.restore(stream(bytes));
    deleted += result.deleted;
  }
  assert.ok(deleted >= 18, `${deleted} deletions applied`);
  assert.deepEqual(await contents(copy), await contents(source));
  assert.deepEqual(await copy.collection("readings").get("r16"), {
    _id: "r16",
    device: "back again",
  });
  // An increment never replaces; one older than the tombstones is refused.
  await assert.rejects(
    copy.restore(stream(increments[0]!), { mode: "replace" }),
    TypeError,
  );
  clock.advance(200_000);
  // Until tombstones are purged, every deletion is still known.
  assert.ok((await bytesOf(source, { since: 0 })).length > 0);
  await source.compact(); // purges those older than the retention
  await assert.rejects(
    source.backup(new WritableStream(), { since: mark }),
    RangeError,
  );
  assert.ok((await bytesOf(source, { since: clock.now() - 1 })).length > 0);
});

Deno.test("tombstones go after their retention, at compact", async () => {
  const { MemoryStorage } = await import("../src/storage/memory.ts");
  const { encodeKey } = await import("../src/key_codec.ts");
  const clock = new FakeClock();
  const storage = new MemoryStorage();
  await using db = await open({ clock, storage, tombstoneRetention: 1000 });
  const tomb = encodeKey(["t", "default", "a"]);
  await db.put("a", 1);
  assert.equal(await storage.get(tomb), null);
  await db.delete("a");
  assert.notEqual(await storage.get(tomb), null, "a deletion leaves one");
  clock.advance(500);
  await db.compact();
  assert.notEqual(await storage.get(tomb), null, "kept within retention");
  await db.put("a", 2);
  assert.equal(await storage.get(tomb), null, "written again: gone");
  await db.delete("a");
  clock.advance(1001);
  await db.compact();
  assert.equal(await storage.get(tomb), null, "purged after retention");
});

Deno.test("backups carry index definitions: a restore rebuilds them, unique ones hold, conflicting ones are refused first", async () => {
  await using source = await open();
  const users = source.collection<{ _id?: string; email: string }>("users");
  await users.createIndex("email", { unique: true });
  await users.insert({ _id: "a", email: "a@x" });
  const bytes = await bytesOf(source);
  await using copy = await open();
  await copy.collection("users").createIndex("stale");
  await copy.restore(stream(bytes));
  const restored = copy.collection<{ _id?: string; email: string }>("users");
  assert.deepEqual((await restored.indexes()).map((i) => i.name), ["email_1"]);
  await assert.rejects(restored.insert({ email: "a@x" }), DuplicateKeyError);
  assert.equal(
    (await restored.find({ email: "a@x" }).explain()).index,
    "email_1",
  );
  // Merging into a database whose index of that name differs: refused
  // before anything changes.
  await using other = await open();
  const o = other.collection("users");
  await o.createIndex("email", { sparse: true });
  await o.insert({ _id: "keep", email: "k@x" });
  await assert.rejects(
    other.restore(stream(bytes), { mode: "merge" }),
    TypeError,
  );
  assert.equal(await o.count(), 1);
});

Deno.test("backup and export to a missing folder: the error names the target and the folder, not a temporary file, and nothing is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using db = await open();
    await db.put("k", { a: 1 });
    const target = `${dir}/missing/y.tdbk`;
    await assert.rejects(
      db.backup(target),
      (e: Error) =>
        e instanceof Deno.errors.NotFound &&
        e.message ===
          `Cannot write backup to '${target}': the folder '${dir}/missing' does not exist`,
    );
    await assert.rejects(
      db.export(`${dir}/missing/y.ndjson`),
      (e: Error) =>
        e instanceof Deno.errors.NotFound &&
        e.message ===
          `Cannot write export to '${dir}/missing/y.ndjson': the folder '${dir}/missing' does not exist`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
