// Group commit of single puts (src/engine/put_group.ts): puts waiting in the
// write queue together commit as one, and each caller still gets its own
// result or error, in the order of the calls.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Database,
  DuplicateKeyError,
  IntegrityError,
  open,
  QuotaError,
  TooLargeError,
} from "../mod.ts";
import {
  MemoryStorage,
  type ScanOptions,
  type Storage,
  type StorageCommit,
  type StorageCommitResult,
  type StorageEntry,
} from "../storage.ts";

const timers = { ttlCheckInterval: Infinity, cleanupInterval: Infinity };

async function withFile(
  fn: (db: Database<unknown>, path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/app.tdb`;
    {
      await using db = await open({ path, durability: "strict", ...timers });
      await fn(db, path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fileStats(db: Database<unknown>): { commits: number; syncs: number } {
  const s = db.stats().storageStats as { commits: number; syncs: number };
  return { commits: s.commits, syncs: s.syncs };
}

Deno.test("put group: 300 concurrent strict puts on a file are one commit and one fsync; each caller gets its key, and all of them survive a reopen", async () => {
  await withFile(async (db, path) => {
    await db.put("first", 0);
    const before = fileStats(db);
    const keys = await Promise.all(
      Array.from({ length: 300 }, (_, i) => db.put(`k${i}`, { i })),
    );
    assert.deepEqual(keys, Array.from({ length: 300 }, (_, i) => `k${i}`));
    const after = fileStats(db);
    assert.equal(after.commits - before.commits, 1);
    assert.equal(after.syncs - before.syncs, 1);
    await db.close();
    await using again = await open({ path, ...timers });
    assert.equal(await again.count(), 301);
    assert.deepEqual(await again.get("k299"), { i: 299 });
  });
});

Deno.test("put group: a put that fails (too large; a taken unique value) fails alone with its own message; the others are stored", async () => {
  for (const name of ["file", "memory, queue busy"]) {
    const dir = name === "file" ? await Deno.makeTempDir() : undefined;
    const db = await open({
      ...(dir === undefined ? {} : { path: `${dir}/app.tdb` }),
      maxValueBytes: 1_000,
      ...timers,
    });
    try {
      const users = db.collection<{ email: string; bio?: string }>("users");
      await users.createIndex("email", { unique: true });
      await users.put("ann", { email: "ann@x" });
      // On the memory storage puts are applied at once unless the write
      // queue is busy: an index build holds it.
      const busy = users.createIndex("bio");
      const results = await Promise.allSettled([
        users.put("bob", { email: "bob@x" }),
        users.put("big", { email: "big@x", bio: "x".repeat(2_000) }),
        users.put("eve", { email: "ann@x" }), // taken by ann
        users.put("cid", { email: "cid@x" }),
      ]);
      await busy;
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "rejected", "fulfilled"],
        name,
      );
      const big = (results[1] as PromiseRejectedResult).reason;
      assert(big instanceof TooLargeError, `${name}: ${big}`);
      assert.match(big.message, /'big'/);
      const eve = (results[2] as PromiseRejectedResult).reason;
      assert(eve instanceof DuplicateKeyError, `${name}: ${eve}`);
      assert.match(eve.message, /'eve'/);
      assert.deepEqual(await users.get("bob"), { email: "bob@x" });
      assert.deepEqual(await users.get("cid"), { email: "cid@x" });
      assert.equal(await users.get("big"), null);
      assert.equal(await users.get("eve"), null);
      assert.equal(await users.count(), 3);
      assert.equal(db.stats().items, 3);
      assert.deepEqual(
        (await users.find({ email: "ann@x" }).toArray()).length,
        1,
      );
    } finally {
      await db.close();
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("put group: writes keep the order of the calls (a delete or another put of the same key between puts is not overtaken)", async () => {
  await withFile(async (db) => {
    await db.put("y", 0);
    await db.put("w", 0);
    const calls = [
      db.put("x", 1),
      db.delete("y"), // queued after the group of x
      db.put("y", 2), // so this one may not join that group
      db.put("z", 1),
      db.put("z", 2), // the same key: a group of its own
      db.put("x", 3),
      db.delete("w"),
      db.put("v", 1),
      db.put("w", 1),
    ];
    await Promise.all(calls);
    assert.equal(await db.get("x"), 3);
    assert.equal(await db.get("y"), 2);
    assert.equal(await db.get("z"), 2);
    assert.equal(await db.get("w"), 1);
    const versions = new Map(
      (await Array.fromAsync(db.find({}).entries())).map((e) => [
        e.key,
        e.version,
      ]),
    );
    // y and w were deleted, then put anew: version 1 again.
    assert.deepEqual(
      versions,
      new Map([["v", 1], ["w", 1], ["x", 2], ["y", 1], ["z", 2]]),
    );
  });
});

Deno.test("put group: past memoryLimit the puts that fit are stored, in call order, and the rest fail with QuotaError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Measure what one item costs, then allow about five more.
    let limit: number;
    {
      await using probe = await open({ path: `${dir}/probe.tdb`, ...timers });
      const empty = probe.stats().bytes;
      await probe.put("k00", "x".repeat(100));
      limit = empty + 5.5 * (probe.stats().bytes - empty);
    }
    await using db = await open({
      path: `${dir}/app.tdb`,
      memoryLimit: Math.ceil(limit),
      ...timers,
    });
    const results = await Promise.allSettled(
      Array.from(
        { length: 12 },
        (_, i) => db.put(`k${String(i).padStart(2, "0")}`, "x".repeat(100)),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert(ok >= 1 && ok < 12, `${ok} stored`);
    results.forEach((r, i) =>
      assert.equal(r.status, i < ok ? "fulfilled" : "rejected", `put ${i}`)
    );
    for (const r of results.slice(ok)) {
      assert((r as PromiseRejectedResult).reason instanceof QuotaError);
    }
    assert.equal(await db.count(), ok);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("put group: a put waiting in a group when the database closes is still written (close waits for the queue)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/app.tdb`;
    const db = await open({ path, ...timers });
    const pending = [db.put("a", 1), db.put("b", 2)];
    await db.close();
    assert.deepEqual(await Promise.all(pending), ["a", "b"]);
    await using again = await open({ path, ...timers });
    assert.deepEqual([await again.get("a"), await again.get("b")], [1, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("put group: concurrent inserts and deletes of one item each group too; an insert of a taken id fails alone", async () => {
  await withFile(async (db) => {
    const users = db.collection<{ _id?: string; n: number }>("users");
    await users.insert({ _id: "taken", n: 0 });
    await users.insert({ _id: "gone", n: 0 });
    const before = fileStats(db);
    const results = await Promise.allSettled([
      users.insert({ _id: "a", n: 1 }),
      users.insert({ _id: "taken", n: 2 }),
      users.insert({ _id: "b", n: 3 }),
      users.delete("gone"),
      users.insert({ n: 4 }), // a generated id
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    const taken = (results[1] as PromiseRejectedResult).reason;
    assert(taken instanceof DuplicateKeyError, String(taken));
    assert.match(taken.message, /'taken'/);
    assert.equal((results[3] as PromiseFulfilledResult<boolean>).value, true);
    assert.deepEqual(await users.get("taken"), { _id: "taken", n: 0 });
    assert.equal(await users.get("gone"), null);
    assert.equal(await users.count(), 4);
    // The failed group (one commit tried, none made), then each alone: one
    // commit each for the four that succeeded.
    assert.equal(fileStats(db).commits - before.commits, 4);
    // Without a failure: one commit for all of them.
    const again = fileStats(db);
    await Promise.all(
      ["c", "d", "e", "f"].map((id, n) => users.insert({ _id: id, n })),
    );
    assert.equal(fileStats(db).commits - again.commits, 1);
    assert.equal(await users.count(), 8);
  });
});

/**
 * A memory storage seen through its byte contract only (the engine takes
 * the queued path), whose next commit can be made to fail.
 */
class FailingStorage implements Storage {
  readonly #inner = new MemoryStorage();
  readonly capabilities = this.#inner.capabilities;
  commits = 0;
  failNext: Error | undefined;
  get(key: Uint8Array): Promise<StorageEntry | null> {
    return this.#inner.get(key);
  }
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    return this.#inner.getMany(keys);
  }
  scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    return this.#inner.scan(options);
  }
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    this.commits++;
    const e = this.failNext;
    this.failNext = undefined;
    return e === undefined ? this.#inner.commit(commit) : Promise.reject(e);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

Deno.test("put group: a failure of the storage's commit is every write's of the group (as for one write), and nothing is tried again", async () => {
  const storage = new FailingStorage();
  await using db = await open({ storage, ...timers });
  await db.put("k0", 0);
  const error = new IntegrityError("the disk lies");
  storage.failNext = error;
  const before = storage.commits;
  const results = await Promise.allSettled(
    ["k1", "k2", "k3"].map((k, i) => db.put(k, i)),
  );
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal((r as PromiseRejectedResult).reason, error);
  }
  assert.equal(storage.commits - before, 1, "one commit tried, no retries");
  assert.equal(await db.count(), 1);
  assert.equal(db.stats().items, 1);
  // Later writes go on.
  await Promise.all(["k1", "k2"].map((k, i) => db.put(k, i)));
  assert.equal(await db.count(), 3);
});

Deno.test("put group: concurrent writes on a file give each call the outcome, and leave the documents, that the same calls made one by one give (property, against the memory storage)", async () => {
  type Op =
    | { kind: "put"; k: string; n: number; u: number; big: boolean }
    | { kind: "insert"; k: string; n: number; u: number }
    | { kind: "delete"; k: string };
  const key = fc.constantFrom("a", "b", "c", "d", "e");
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant("put" as const),
      k: key,
      n: fc.integer({ min: 0, max: 9 }),
      u: fc.integer({ min: 0, max: 6 }),
      big: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
    }),
    fc.record({
      kind: fc.constant("insert" as const),
      k: key,
      n: fc.integer({ min: 0, max: 9 }),
      u: fc.integer({ min: 0, max: 6 }),
    }),
    fc.record({ kind: fc.constant("delete" as const), k: key }),
  );
  const dir = await Deno.makeTempDir();
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        async (ops, unique) => {
          const options = { maxValueBytes: 300, ...timers };
          await using file = await open({
            path: `${dir}/p${run++}.tdb`,
            durability: "strict",
            ...options,
          });
          await using memory = await open(options);
          const call = (db: Database<unknown>, o: Op): Promise<unknown> => {
            const c = db.collection<{ _id?: string; n: number; u: number }>(
              "c",
            );
            switch (o.kind) {
              case "put":
                return c.put(o.k, {
                  n: o.n,
                  u: o.u,
                  ...(o.big ? { pad: "x".repeat(400) } : {}),
                } as { n: number; u: number });
              case "insert":
                return c.insert({ _id: o.k, n: o.n, u: o.u });
              case "delete":
                return c.delete(o.k);
            }
          };
          // The writes on the file are grouped, with a unique index too
          // (a group where one takes a value a later one frees runs one
          // by one).
          for (const db of [file, memory]) {
            await db.collection("c").createIndex("u", { unique });
          }
          const outcome = (r: PromiseSettledResult<unknown>) =>
            r.status === "fulfilled"
              ? ["ok", r.value]
              : ["error", (r.reason as Error).constructor.name];
          // All at once on the file (groups), one by one on memory.
          const together = (await Promise.allSettled(
            ops.map((o) => call(file, o)),
          )).map(outcome);
          const alone: unknown[] = [];
          for (const o of ops) {
            alone.push(
              outcome((await Promise.allSettled([call(memory, o)]))[0]!),
            );
          }
          assert.deepEqual(together, alone);
          const all = async (db: Database<unknown>) =>
            await db.collection("c").find({}).toArray();
          assert.deepEqual(await all(file), await all(memory));
          assert.equal(file.stats().items, memory.stats().items);
        },
      ),
      { numRuns: 100 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("put group: 200 concurrent strict puts into a collection with a unique index are one commit; a put of a value taken meanwhile fails alone", async () => {
  await withFile(async (db) => {
    const users = db.collection<{ email: string }>("users");
    await users.createIndex("email", { unique: true });
    await users.put("first", { email: "first@x" });
    const before = fileStats(db);
    const results = await Promise.allSettled(
      Array.from(
        { length: 200 },
        (_, i) => users.put(`u${i}`, { email: i === 150 ? "u7@x" : `u${i}@x` }),
      ),
    );
    assert.deepEqual(
      results.flatMap((r, i) => r.status === "rejected" ? [i] : []),
      [150],
    );
    const taken = (results[150] as PromiseRejectedResult).reason;
    assert(taken instanceof DuplicateKeyError, String(taken));
    assert.match(taken.message, /'u150'/);
    // The group's commit was refused by the taken value: each write ran
    // alone then (one commit each); without it, one commit for all.
    const again = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => users.put(`w${i}`, { email: `w${i}@x` }),
      ),
    );
    assert.equal(again.length, 200);
    const after = fileStats(db);
    assert.equal(after.commits - before.commits, 199 + 1);
    assert.equal(await users.count(), 1 + 199 + 200);
    assert.deepEqual((await db.verify()).problems, []);
  });
});

Deno.test("put group: with a unique index, a group where an earlier write takes a value a later write gives up runs one by one: the insert is checked against the values as they were when it was called", async () => {
  await withFile(async (db) => {
    const c = db.collection<{ _id?: string; u: number }>("c");
    await c.createIndex("u", { unique: true });
    const results = await Promise.allSettled([
      c.put("b", { u: 4 }),
      c.delete("a"),
      c.insert({ _id: "a", u: 4 }), // b holds 4 at this point
      c.put("b", { u: 0 }), // frees 4, but after the insert
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    const taken = (results[2] as PromiseRejectedResult).reason;
    assert(taken instanceof DuplicateKeyError, String(taken));
    assert.equal(await c.get("a"), null);
    assert.deepEqual(await c.get("b"), { u: 0 });
  });
});
