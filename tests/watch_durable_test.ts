/**
 * `watch()` tells only what happened: a commit's changes are told once it is
 * durable under the database's durability, in commit order, and never for a
 * commit the storage took back; the engine's counts, sizes, TTL schedule and
 * index bookkeeping go back with such a commit.
 */

import assert from "node:assert/strict";
import { type Change, type Database, open, QuotaError } from "../mod.ts";
import { faults } from "../src/storage/file.ts";
import { KeyTable, type Undo } from "../src/engine/key_table.ts";
import type {
  ScanOptions,
  Storage,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
} from "../src/storage/contract.ts";

// --- Helpers ---------------------------------------------------------------

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-watch-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Lets timers and I/O run a few times. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Collects the changes of a collection until `stop()`. */
function watcher(db: Database<unknown>, collection: string): {
  seen: string[];
  stop(): Promise<void>;
} {
  const controller = new AbortController();
  const seen: string[] = [];
  const c = db.collection(collection);
  const iterator = c.watch({ signal: controller.signal });
  const done = (async () => {
    for await (const change of iterator) seen.push(describe(change));
  })();
  return {
    seen,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

function describe(change: Change): string {
  return change.key === undefined
    ? change.type
    : `${change.type} ${change.key}${
      change.version === undefined ? "" : ` v${change.version}`
    }`;
}

type Doc = { _id: string; email: string; city: string; n: number };

/** What the database says must agree with the model, index reads included. */
async function agrees(
  db: Database<unknown>,
  model: Map<string, Doc>,
  ids: readonly string[],
  what: string,
): Promise<void> {
  const users = db.collection<Doc>("users");
  assert.equal(await users.count(), model.size, `${what}: count`);
  for (const id of ids) {
    assert.deepEqual(
      await users.get(id),
      model.get(id) ?? null,
      `${what}: ${id}`,
    );
  }
  for (const city of ["Oslo", "Rome", "Lima"]) {
    const expected = [...model.values()].filter((d) => d.city === city)
      .sort((a, b) => a._id < b._id ? -1 : 1);
    const found = (await users.find({ city }).toArray())
      .sort((a, b) => a._id < b._id ? -1 : 1);
    assert.deepEqual(found, expected, `${what}: find city ${city}`);
  }
  for (const doc of model.values()) {
    assert.deepEqual(
      await users.findOne({ email: doc.email }),
      doc,
      `${what}: email ${doc.email}`,
    );
  }
}

/**
 * A storage that acknowledges commits at apply and makes them durable only
 * when the test says so, with the contract's semantics: `fail()` takes back
 * every commit not yet durable and rejects their `durable`.
 */
class HeldStorage implements Storage {
  readonly capabilities = { nativeExpiry: false, shared: false };
  #table = new KeyTable();
  #version = 0;
  #held: {
    undo: Undo[];
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];

  get(key: Uint8Array): Promise<StorageEntry | null> {
    return Promise.resolve(this.#table.get(key) ?? null);
  }
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    return Promise.resolve(this.#table.getMany(keys));
  }
  scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    return this.#table.scan(options, () => {});
  }
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    if (!this.#table.check(commit.checks)) {
      return Promise.resolve({ ok: false });
    }
    const versionstamp = String(++this.#version).padStart(20, "0");
    const undo: Undo[] = [];
    this.#table.apply(
      commit.sets ?? [],
      commit.deletes ?? [],
      versionstamp,
      undo,
    );
    const durable = new Promise<void>((resolve, reject) => {
      this.#held.push({ undo, resolve, reject });
    });
    return Promise.resolve({ ok: true, versionstamp, durable });
  }
  /** Commits not yet durable. */
  get held(): number {
    return this.#held.length;
  }
  /** Makes the commit at `index` of the held ones durable (others wait). */
  settle(index = 0): void {
    const [one] = this.#held.splice(index, 1);
    one!.resolve();
  }
  /** Makes every held commit durable, oldest first. */
  flush(): void {
    while (this.#held.length > 0) this.settle(0);
  }
  /** Takes back every held commit, newest first, and rejects them. */
  fail(error: Error): void {
    const held = this.#held.splice(0);
    for (let i = held.length - 1; i >= 0; i--) {
      this.#table.revert(held[i]!.undo);
    }
    for (const h of held) h.reject(error);
  }
  close(): Promise<void> {
    this.flush();
    return Promise.resolve();
  }
}

/** Runs `write` while the storage makes everything durable as it comes. */
async function durably<R>(
  storage: HeldStorage,
  write: () => Promise<R>,
): Promise<R> {
  let done = false;
  const pump = (async () => {
    while (!done) {
      storage.flush();
      await new Promise((r) => setTimeout(r, 0));
    }
  })();
  try {
    return await write();
  } finally {
    done = true;
    await pump;
    storage.flush();
  }
}

// --- File storage, strict durability ----------------------------------------

Deno.test("strict file database: a commit whose write fails tells no change; later commits are told in order, and counts, sizes and indexes go back", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  try {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    const users = db.collection<Doc>("users");
    await users.createIndex("email", { unique: true });
    await users.createIndex("city");
    const model = new Map<string, Doc>();
    const doc = (i: number): Doc => ({
      _id: `u${i}`,
      email: `u${i}@example.com`,
      city: ["Oslo", "Rome", "Lima"][i % 3]!,
      n: i,
    });
    const w = watcher(db, "users");
    for (let i = 0; i < 5; i++) {
      await users.insert(doc(i), i % 2 === 0 ? { ttl: 3_600_000 } : {});
      model.set(`u${i}`, doc(i));
    }
    const ids = Array.from({ length: 30 }, (_, i) => `u${i}`);
    await agrees(db, model, ids, "before");
    const before = db.stats();

    faults.beforeWrite = () => {
      throw Object.assign(new Error("No space left on device (os error 28)"), {
        code: "ENOSPC",
      });
    };
    const failed: [string, () => Promise<unknown>][] = [
      [
        "insertMany of 20",
        () =>
          users.insertMany(
            Array.from({ length: 20 }, (_, i) => doc(10 + i)),
            { ttl: 60_000 },
          ),
      ],
      ["update", () => users.update({ _id: "u1" }, { $set: { city: "Lima" } })],
      ["delete", () => users.delete("u2")],
      ["put", () => users.put("u3", { ...doc(3), email: "moved@example.com" })],
    ];
    for (const [name, write] of failed) {
      await assert.rejects(write(), QuotaError, name);
      // Right as the write rejects: nothing of it is left anywhere.
      const now = db.stats();
      assert.equal(now.items, before.items, `${name}: items`);
      assert.equal(now.ttlItems, before.ttlItems, `${name}: ttlItems`);
      assert.equal(now.bytes, before.bytes, `${name}: bytes`);
      await agrees(db, model, ids, name);
    }
    faults.beforeWrite = undefined;

    await users.insert(doc(5));
    model.set("u5", doc(5));
    await users.update({ _id: "u1" }, { $set: { city: "Lima" } });
    model.set("u1", { ...doc(1), city: "Lima" });
    await users.delete("u2");
    model.delete("u2");
    await agrees(db, model, ids, "after");
    await turns();
    await w.stop();
    assert.deepEqual(w.seen, [
      "put u0 v1",
      "put u1 v1",
      "put u2 v1",
      "put u3 v1",
      "put u4 v1",
      "put u5 v1",
      "put u1 v2",
      "delete u2",
    ]);
    await db.close();
    await using again = await open({ path, ttlCheckInterval: Infinity });
    await agrees(again, model, ids, "reopened");
  } finally {
    faults.beforeWrite = undefined;
  }
});

Deno.test("batched file database: changes are told at apply, as the write is acknowledged", async () => {
  await using tmp = await tempDir();
  await using db = await open({
    path: `${tmp.dir}/app.tdb`,
    durability: "batched",
    flushInterval: 60_000,
    ttlCheckInterval: Infinity,
  });
  const w = watcher(db, "default");
  await turns(1);
  await db.put("a", 1);
  await db.delete("a");
  await turns(1);
  assert.deepEqual(w.seen, ["put a v1", "delete a"]);
  await w.stop();
});

// --- A storage whose durability the test controls ---------------------------

Deno.test("a change is told only once its commit is durable", async () => {
  const storage = new HeldStorage();
  await using db = await open({ storage, ttlCheckInterval: Infinity });
  const w = watcher(db, "default");
  await turns(1);
  const put = db.put("a", 1);
  await turns();
  assert.equal(storage.held, 1);
  assert.deepEqual(w.seen, [], "told before it was durable");
  storage.settle();
  await put;
  await turns(1);
  assert.deepEqual(w.seen, ["put a v1"]);
  await w.stop();
});

Deno.test("changes are told in commit order even when a later commit is durable first", async () => {
  const storage = new HeldStorage();
  await using db = await open({ storage, ttlCheckInterval: Infinity });
  const w = watcher(db, "default");
  await turns(1);
  const first = db.put("a", 1);
  // Once "a" is committed (writes waiting together would commit as one).
  await turns();
  assert.equal(storage.held, 1);
  const second = db.put("b", 2);
  await turns();
  assert.equal(storage.held, 2);
  storage.settle(1); // "b" is durable, "a" is not yet
  await second;
  await turns();
  assert.deepEqual(w.seen, [], "b overtook a");
  storage.settle(0);
  await first;
  await turns(1);
  assert.deepEqual(w.seen, ["put a v1", "put b v1"]);
  await w.stop();
});

Deno.test("commits taken back tell nothing and leave no trace in counts, TTLs, sizes or indexes", async () => {
  const storage = new HeldStorage();
  await using db = await open({ storage, ttlCheckInterval: Infinity });
  const users = db.collection<Doc>("users");
  const doc = (i: number, city = "Oslo"): Doc => ({
    _id: `u${i}`,
    email: `u${i}@example.com`,
    city,
    n: i,
  });
  const model = new Map<string, Doc>();
  await durably(storage, async () => {
    await users.createIndex("email", { unique: true });
    await users.createIndex("city");
    for (let i = 0; i < 4; i++) {
      await users.insert(doc(i), { ttl: 3_600_000 });
      model.set(`u${i}`, doc(i));
    }
  });
  const ids = Array.from({ length: 12 }, (_, i) => `u${i}`);
  const w = watcher(db, "users");
  await turns(1);
  const before = db.stats();

  // Three commits in flight; the first fails, taking the others with it.
  const writes = [
    users.insertMany([doc(4, "Rome"), doc(5, "Lima")], { ttl: 60_000 }),
    users.update({ _id: "u0" }, { $set: { city: "Rome" } }),
    users.delete("u1"),
  ];
  await turns();
  assert.equal(storage.held, 3);
  const error = new QuotaError("disk full");
  storage.fail(error);
  const results = await Promise.allSettled(writes);
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal((r as PromiseRejectedResult).reason, error);
  }
  const after = db.stats();
  assert.equal(after.items, before.items);
  assert.equal(after.ttlItems, before.ttlItems);
  assert.equal(after.bytes, before.bytes);
  await agrees(db, model, ids, "taken back");

  // A later write is told, and the index still refuses a duplicate.
  await durably(storage, async () => {
    await users.insert(doc(6, "Lima"));
    await assert.rejects(users.insert({ ...doc(7), email: "u0@example.com" }));
  });
  model.set("u6", doc(6, "Lima"));
  await agrees(db, model, ids, "later");
  await turns(1);
  await w.stop();
  assert.deepEqual(w.seen, ["put u6 v1"]);
});
