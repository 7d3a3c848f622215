// Issue 13, item 13: keys are strings, a document's _id is its key, and
// every public entry point refuses option names it does not know (naming
// the nearest known one) and options it does not implement.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { editDistance, nearestName, OPTIONS } from "../src/options.ts";

/** Asserts a TypeError whose message contains every fragment. */
function typeError(...fragments: string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof TypeError, `not a TypeError: ${e}`);
    for (const f of fragments) {
      assert.ok(
        e.message.includes(f),
        `'${e.message}' does not contain '${f}'`,
      );
    }
    return true;
  };
}

Deno.test("input: put(5, { a: 1 }) is a TypeError, not a value stored under a new key", async () => {
  await using db = await open();
  await assert.rejects(
    db.put(5 as unknown as string, { a: 1 }),
    typeError("the key must be a string, got number 5"),
  );
  await assert.rejects(
    db.put(true as unknown as string, [1, 2]),
    typeError("the key must be a string, got boolean true"),
  );
  await assert.rejects(
    db.put(7 as unknown as string, "x" as unknown as never),
    typeError("the key must be a string, got number 7"),
  );
  await assert.rejects(
    db.put(null as unknown as string, { a: 1 }, { ttl: 10 }),
    typeError("the key must be a string, got null"),
  );
  await assert.rejects(
    db.put(5 as unknown as string, { a: 1 }, {}),
    typeError("the key must be a string, got number 5"),
  );
  assert.equal(await db.count(), 0);
});

Deno.test("input: put's documented overloads still work", async () => {
  await using db = await open();
  const auto = await db.put(5);
  assert.equal(await db.get(auto), 5);
  const withTtl = await db.put(6, { ttl: 60_000, tags: ["n"] });
  assert.equal(await db.get(withTtl), 6);
  assert.deepEqual((await db.getEntry(withTtl))?.tags, ["n"]);
  const object = await db.put({ a: 1 }, { ttl: 60_000 });
  assert.deepEqual(await db.get(object), { a: 1 });
  const empty = await db.put(7, {});
  assert.equal(await db.get(empty), 7);
  assert.equal(await db.put("k", { a: 1 }), "k");
  assert.equal(await db.put("k2", { a: 1 }, { tags: ["t"] }), "k2");
  assert.equal(await db.put("k3", { _id: "k3", a: 1 }), "k3");
  const one = await db.put("just a value");
  assert.equal(await db.get(one), "just a value");
  assert.equal(await db.count(), 8);
});

Deno.test("input: a document whose _id is not its key is refused, and the one that is updates", async () => {
  await using db = await open();
  const c = db.collection<Record<string, unknown>>("c");
  await assert.rejects(
    c.put("k", { _id: "other", a: 1 }),
    typeError("_id", "differs from the key 'k'"),
  );
  await assert.rejects(
    c.put("k", { _id: 5, a: 1 }),
    typeError("_id", "differs from the key 'k'"),
  );
  await assert.rejects(
    c.put({ _id: "x", a: 1 }),
    typeError("_id", "no key was given", "insert()"),
  );
  await assert.rejects(
    c.putBatch(new Map([["a", { a: 1 }], ["b", { _id: "c" }]])),
    typeError("item 1", "differs from the key 'b'"),
  );
  await assert.rejects(
    c.putBatch([{ a: 1 }, { _id: "y" }]),
    typeError("item 1", "_id"),
  );
  assert.equal(await c.count(), 0);
  // What is accepted can be updated later (the refused one broke updates).
  await c.put("k", { _id: "k", a: 1 });
  await c.put("m", { a: 1 });
  assert.equal(await c.update({ a: 1 }, { $set: { b: 2 } }), 2);
  assert.deepEqual(await c.get("k"), { _id: "k", a: 1, b: 2 });
});

Deno.test("input: nearest-name suggestions", () => {
  assert.equal(editDistance("patth", "path"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("TTL", "ttl"), 0);
  assert.equal(nearestName("patth", OPTIONS.open.known), "path");
  assert.equal(
    nearestName("ttlCheckIntervall", OPTIONS.open.known),
    "ttlCheckInterval",
  );
  assert.equal(
    nearestName("expectedVersoin", OPTIONS.update.known),
    "expectedVersion",
  );
  assert.equal(nearestName("qqqqqqqq", OPTIONS.put.known), undefined);
});

Deno.test("input: open() refuses unknown options, naming the nearest known one", async () => {
  const cases: [Record<string, unknown>, string, string | undefined][] = [
    [{ patth: "x.tdb" }, "patth", "path"],
    [{ ttlCheckInteval: 5 }, "ttlCheckInteval", "ttlCheckInterval"],
    [{ durabilty: "strict" }, "durabilty", "durability"],
    [{ lockTimout: 5 }, "lockTimout", "lockTimeout"],
    [{ loglevel: "info" }, "loglevel", "logLevel"],
    [{ memorylimit: 5 }, "memorylimit", "memoryLimit"],
    [{ encrypt: { key: new Uint8Array(32) } }, "encrypt", "encryption"],
    [{ zzzzzzzzz: 1 }, "zzzzzzzzz", undefined],
  ];
  for (const [options, name, near] of cases) {
    await assert.rejects(
      open(options),
      typeError(
        "Cannot open the database",
        `unknown option '${name}' of open()`,
        near === undefined
          ? "the options are 'path'"
          : `did you mean '${near}'?`,
      ),
    );
  }
  await assert.rejects(
    open({ encryption: { pasphrase: "secret" } } as never),
    typeError("unknown option 'pasphrase' of encryption", "'passphrase'"),
  );
  await assert.rejects(
    open({ compression: { minbytes: 10 } } as never),
    typeError("unknown option 'minbytes' of compression", "'minBytes'"),
  );
  // Every documented option is known (the file ones need a path).
  const dir = await Deno.makeTempDir();
  try {
    await using _file = await open({
      path: `${dir}/a.tdb`,
      durability: "strict",
      lockTimeout: 100,
      readOnly: false,
      repair: false,
      flushInterval: 50,
      compactRatio: 2,
      compactMinBytes: 1024,
      logger: console,
      logLevel: "error",
      ttlCheckInterval: 1000,
      cleanupInterval: 1000,
      maxValueBytes: 1024,
      memoryLimit: 1 << 20,
      signal: new AbortController().signal,
      clock: Date,
      maxRetries: 1,
      retryDelay: 1,
      tombstoneRetention: 1000,
      compression: { minBytes: 10 },
      feed: false,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("input: every entry point with options refuses unknown ones", async () => {
  await using db = await open();
  await db.put("k", { a: 1 });
  const c = db.collection("c");
  const sink = () => new WritableStream<Uint8Array>();
  const checks: [string, () => unknown, string, string][] = [
    ["put(key)", () => db.put("k", 1, { tll: 5 } as never), "tll", "ttl"],
    [
      "put(value)",
      () => db.put({ a: 1 }, { tags: ["x"], tgs: [] } as never),
      "tgs",
      "tags",
    ],
    ["putBatch", () => db.putBatch([1], { ttls: [1] } as never), "ttls", "ttl"],
    [
      "insert",
      () => c.insert({ a: 1 }, { tag: ["x"] } as never),
      "tag",
      "tags",
    ],
    [
      "insertMany",
      () => c.insertMany([{ a: 1 }], { tll: 1 } as never),
      "tll",
      "ttl",
    ],
    ["find", () => db.find({}, { limt: 1 } as never), "limt", "limit"],
    [
      "findOne",
      () => db.findOne({}, { sortt: { a: 1 } } as never),
      "sortt",
      "sort",
    ],
    [
      "update",
      () => db.update({}, { a: 2 }, { expectedVersoin: 1 } as never),
      "expectedVersoin",
      "expectedVersion",
    ],
    [
      "replace",
      () => db.replace("k", { a: 2 }, { expectedversion: 1 } as never),
      "expectedversion",
      "expectedVersion",
    ],
    ["watch", () => db.watch({ signl: undefined } as never), "signl", "signal"],
    [
      "createIndex",
      () => db.createIndex("a", { uniqe: true } as never),
      "uniqe",
      "unique",
    ],
    [
      "collection",
      () => db.collection("d", { index: [] } as never),
      "index",
      "indexes",
    ],
    [
      "collection indexes",
      () =>
        db.collection("e", { indexes: [{ fields: "a", uniq: true }] } as never),
      "uniq",
      "unique",
    ],
    [
      "export",
      () => db.export(sink(), { collection: ["c"] } as never),
      "collection",
      "collections",
    ],
    [
      "import",
      () => db.import(new Blob([""]).stream(), { mod: "merge" } as never),
      "mod",
      "mode",
    ],
    [
      "backup",
      () => db.backup(sink(), { sinse: 0 } as never),
      "sinse",
      "since",
    ],
    [
      "backup encryption",
      () =>
        db.backup(sink(), { encryption: { kee: new Uint8Array(32) } } as never),
      "kee",
      "key",
    ],
    [
      "restore",
      () =>
        db.restore(
          new Blob([""]).stream(),
          { mode: "merge", encription: {} } as never,
        ),
      "encription",
      "encryption",
    ],
  ];
  for (const [entry, call, name, near] of checks) {
    let error: unknown;
    try {
      await call();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof TypeError, `${entry}: ${error}`);
    assert.match(
      error.message,
      new RegExp(`unknown option '${name}' of .*did you mean '${near}'\\?`),
      entry,
    );
  }
  // Nothing changed.
  assert.deepEqual(await db.get("k"), { a: 1 });
  assert.equal(await db.count(), 1);
  assert.deepEqual(await db.collections(), ["default"]);
  assert.deepEqual(await db.indexes(), []);
});

Deno.test("input: options the code does not implement are refused, never ignored", async () => {
  await using db = await open();
  await db.put("k", { a: 1 });
  await assert.rejects(
    db.update({ a: 5 }, { $set: { b: 1 } }, { upsert: true } as never),
    typeError("option 'upsert' of update() is not implemented"),
  );
  await assert.rejects(
    db.replace("nope", { a: 1 }, { upsert: true } as never),
    typeError("option 'upsert' of replace() is not implemented"),
  );
  assert.throws(
    () => db.find({}, { projection: { a: 1 } } as never),
    typeError("option 'projection' of find() is not implemented", "'fields'"),
  );
  await assert.rejects(
    db.findOne({}, { limit: 2 } as never),
    typeError("option 'limit' of findOne() is not implemented"),
  );
  await assert.rejects(
    db.update({}, { $set: { b: 1 } }, { multi: true } as never),
    typeError("option 'multi' of update() is not implemented"),
  );
  assert.deepEqual(await db.find({}).toArray(), [{ a: 1 }]);
  // `false` asks for what the code does anyway.
  assert.equal(
    await db.update({ a: 5 }, { $set: { b: 1 } }, { upsert: false } as never),
    0,
  );
});

Deno.test("input: options must be objects", async () => {
  await using db = await open();
  await assert.rejects(
    db.put("k", 1, 5 as never),
    typeError("the options of put() must be an object, got number 5"),
  );
  assert.throws(
    () => db.find({}, "x" as never),
    typeError("the options of find() must be an object"),
  );
  await assert.rejects(
    db.update({}, { a: 1 }, [] as never),
    typeError("the options of update() must be an object, got an array"),
  );
  assert.throws(
    () => db.watch(null as never),
    typeError("the options of watch() must be an object, got null"),
  );
});
