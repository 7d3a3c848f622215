import assert from "node:assert/strict";
import { type FileStorageStats, open, TooLargeError } from "../mod.ts";
import { FakeClock } from "./conformance/database_suite.ts";

async function tempPath(): Promise<
  { path: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-file-" });
  return {
    path: `${dir}/sub/app.tdb`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function fileStats(
  db: { stats(): { storageStats: unknown } },
): FileStorageStats {
  return db.stats().storageStats as FileStorageStats;
}

Deno.test("open({ path }) creates the directory and file, and reopens with everything", async () => {
  await using tmp = await tempPath();
  const clock = new FakeClock();
  {
    await using db = await open({ path: tmp.path, clock });
    await db.put("a", { n: 1, at: new Date(5) }, { ttl: 1000, tags: ["t"] });
    await db.put("a", { n: 2, at: new Date(6) }, { ttl: 1000, tags: ["t"] });
    const users = db.collection("users", {
      indexes: [{ fields: "email", unique: true }],
    });
    await users.insert({ _id: "u1", email: "a@b.c", age: 30 });
    await users.createIndex(["age"]);
    assert.equal(fileStats(db).durability, "strict");
    // Strict: each commit written before it resolves, its frame let go.
    assert.equal(fileStats(db).queued, 0);
    assert.equal(fileStats(db).unwrittenFrames, 0);
  }
  await using db = await open({ path: tmp.path, clock });
  const entry = await db.getEntry("a");
  assert.deepEqual(entry?.value, { n: 2, at: new Date(6) });
  assert.equal(entry?.version, 2);
  assert.deepEqual(entry?.tags, ["t"]);
  assert.equal(entry?.expiresAt, clock.now() + 1000);
  const users = db.collection("users");
  assert.deepEqual(
    (await users.indexes()).map((i) => i.name).sort(),
    ["age_1", "email_1"],
  );
  assert.equal(
    (await users.find({ age: 30 }).explain()).index,
    "age_1",
  );
  await assert.rejects(
    users.insert({ _id: "u2", email: "a@b.c" }),
    /unique index 'email_1'/,
  );
  clock.advance(1000);
  assert.equal(await db.get("a"), null);
  await db.cleanup();
  assert.equal(await db.count(), 0);
  assert.equal(db.stats().ttlItems, 0);
});

Deno.test("an expired item stays expired after a reopen, and compaction drops it", async () => {
  await using tmp = await tempPath();
  const clock = new FakeClock();
  {
    await using db = await open({
      path: tmp.path,
      clock,
      ttlCheckInterval: Infinity,
    });
    await db.put("short", 1, { ttl: 10 });
    await db.put("long", 2);
  }
  clock.advance(10);
  {
    await using db = await open({ path: tmp.path, clock });
    assert.equal(await db.get("short"), null);
    assert.equal(await db.count(), 1);
    assert.equal(await db.compact(), true);
    // "long", and the expiry marker of "short" (the change feed's, kept
    // tombstoneRetention).
    assert.equal(fileStats(db).keys, 2);
  }
  await using db = await open({ path: tmp.path, clock });
  assert.deepEqual(await db.query({}), [2]);
});

Deno.test("concurrent strict puts share fsyncs (group commit); sequential ones do not", async () => {
  await using tmp = await tempPath();
  await using db = await open({ path: tmp.path });
  const before = fileStats(db).syncs;
  for (let i = 0; i < 20; i++) await db.put(`s${i}`, i);
  assert.equal(fileStats(db).syncs - before, 20);
  const mid = fileStats(db).syncs;
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => db.put(`c${i}`, i)),
  );
  const shared = fileStats(db).syncs - mid;
  assert.ok(shared >= 1 && shared < 200, `200 puts took ${shared} fsyncs`);
  assert.equal(await db.count(), 220);
  assert.equal(fileStats(db).queued, 0);
});

Deno.test("batched durability acknowledges at once and writes on close", async () => {
  await using tmp = await tempPath();
  {
    await using db = await open({
      path: tmp.path,
      durability: "batched",
      flushInterval: 60_000,
    });
    for (let i = 0; i < 10; i++) await db.put(`k${i}`, i);
    assert.ok(fileStats(db).queued > 0);
  }
  await using db = await open({ path: tmp.path, durability: "none" });
  assert.equal(await db.count(), 10);
  assert.equal(fileStats(db).durability, "none");
});

Deno.test("readOnly sees the writer's commits at open and after refresh, and refuses writes", async () => {
  await using tmp = await tempPath();
  await using writer = await open({ path: tmp.path });
  await writer.put("a", 1);
  await using reader = await open({ path: tmp.path, readOnly: true });
  assert.equal(await reader.get("a"), 1);
  await assert.rejects(reader.put("b", 2), TypeError);
  await writer.put("b", 2);
  await writer.collection("c").createIndex("x");
  await writer.collection("c").insert({ x: 1 });
  assert.equal(await reader.count(), 1);
  assert.equal(await reader.refresh(), true);
  assert.equal(await reader.count(), 2);
  assert.equal(await reader.get("b"), 2);
  assert.equal((await reader.collection("c").indexes()).length, 1);
  assert.equal(await reader.refresh(), false);
  // A compaction replaces the file; the reader starts over from the new one.
  await writer.delete("a");
  await writer.compact();
  assert.equal(await reader.refresh(), true);
  assert.equal(await reader.get("a"), null);
  assert.equal(await reader.count(), 1);
  assert.equal(await writer.refresh(), false);
});

Deno.test("open checks its file options", async () => {
  await using tmp = await tempPath();
  await assert.rejects(open({ durability: "strict" }), /give a path too/);
  await assert.rejects(
    open({ path: tmp.path, durability: "always" as "strict" }),
    TypeError,
  );
  await assert.rejects(open({ path: tmp.path, lockTimeout: -1 }), RangeError);
  await assert.rejects(open({ path: "" }), TypeError);
  await assert.rejects(
    open({ path: tmp.path, readOnly: true }),
    /does not exist/,
  );
  await assert.rejects(
    open({ path: tmp.path, readOnly: true, repair: true }),
    TypeError,
  );
});

Deno.test("a value over maxValueBytes is refused before the log sees it", async () => {
  await using tmp = await tempPath();
  await using db = await open({ path: tmp.path, maxValueBytes: 100 });
  await assert.rejects(db.put("big", "x".repeat(200)), TooLargeError);
  assert.equal(fileStats(db).commits, 0);
});

Deno.test("compaction with commits still queued (batched) keeps the log readable and complete", async () => {
  await using tmp = await tempPath();
  {
    await using db = await open({
      path: tmp.path,
      durability: "batched",
      flushInterval: 60_000,
    });
    for (let i = 0; i < 50; i++) await db.put(`k${i % 10}`, i);
    assert.ok(fileStats(db).queued > 0);
    // One frame held per unwritten commit (not one per key).
    assert.equal(fileStats(db).unwrittenFrames, fileStats(db).queued);
    assert.equal(await db.compact(), true);
    // The snapshot holds them: written, and their frames let go.
    assert.equal(fileStats(db).queued, 0);
    assert.equal(fileStats(db).unwrittenFrames, 0);
    for (let i = 50; i < 60; i++) await db.put(`k${i % 10}`, i);
    assert.equal(await db.get("k9"), 59); // read from its unwritten frame
    assert.ok(fileStats(db).unwrittenFrames > 0);
  }
  await using db = await open({ path: tmp.path });
  assert.equal(fileStats(db).tornBytes, 0);
  assert.deepEqual(
    await db.query({}),
    Array.from({ length: 10 }, (_, i) => 50 + i),
  );
});

Deno.test("the log compacts on its own once it passes compactRatio times the live data", async () => {
  await using tmp = await tempPath();
  const value = "x".repeat(1000);
  {
    await using db = await open({
      path: tmp.path,
      compactMinBytes: 20_000,
      compactRatio: 2,
    });
    for (let i = 0; i < 200; i++) await db.put("same", `${i}${value}`);
  }
  // 200 KB were written for one live 1 KB value.
  assert.ok((await Deno.stat(tmp.path)).size < 20_000 * 2 + 2_000);
  await using db = await open({ path: tmp.path });
  assert.equal(await db.get("same"), `199${value}`);
});

Deno.test("file: deleting keys that are not there (a new key's tombstone) writes nothing to the log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-file-" });
  try {
    await using db = await open({ path: `${dir}/db.tdb` });
    const sizes = () =>
      db.stats().storageStats as { fileBytes: number; liveBytes: number };
    const before = sizes();
    await db.putBatch(
      new Map(Array.from({ length: 1000 }, (_, i) => [`k${i}`, { n: i }])),
    );
    const after = sizes();
    const file = after.fileBytes - before.fileBytes;
    const live = after.liveBytes - before.liveBytes;
    // One frame's header and checksums beyond the live bytes, no deletes.
    assert.ok(file - live < 200, `${file - live} bytes beyond the data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
