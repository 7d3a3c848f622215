/**
 * Compression and encryption at rest: the conformance suites through the
 * codec on every storage, secrets, tampering, rekey, and known-answer tests
 * against node:crypto following FORMAT.md.
 */

import assert from "node:assert/strict";
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  pbkdf2Sync,
  randomBytes,
} from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { IntegrityError, open, type Storage, WrongKeyError } from "../mod.ts";
import {
  type CodecOptions,
  CodecStorage,
} from "../src/crypto/codec_storage.ts";
import { FileStorage } from "../src/storage/file.ts";
import { KvStorage } from "../src/storage/kv.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import { encodeKey } from "../src/key_codec.ts";
import { collectionSuite } from "./conformance/collection_suite.ts";
import { databaseSuite } from "./conformance/database_suite.ts";
import {
  type StorageFactory,
  storageSuite,
} from "./conformance/storage_suite.ts";

const ENCRYPTED = {
  encryption: { passphrase: "correct horse battery staple", iterations: 1000 },
} satisfies CodecOptions;
const COMPRESSED = { compression: { minBytes: 0 } } satisfies CodecOptions;
const BOTH = { ...ENCRYPTED, ...COMPRESSED } satisfies CodecOptions;
const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
/**
 * The property tests run a quarter of their cases here, and the load tests
 * (auto keys, large scans) a quarter of their items, down to the floor each
 * needs (all of them under `deno task torture`): the plain storages run them
 * in full, and what the codec adds (sealing each value) is the same on every
 * path.
 */
const SCALE = TORTURE ? 1 : 0.25;

function memory(name: string, options: CodecOptions): StorageFactory {
  return {
    name,
    blind: options.encryption !== undefined,
    propertyScale: SCALE,
    loadScale: SCALE,
    create: () => CodecStorage.open(new MemoryStorage(), options),
  };
}

function file(
  name: string,
  options: CodecOptions,
  reopen: boolean,
): StorageFactory {
  let dir: string | undefined;
  let path = "";
  const factory: StorageFactory = {
    name,
    blind: options.encryption !== undefined,
    propertyScale: SCALE,
    loadScale: SCALE,
    create: async () => {
      dir = await Deno.makeTempDir({ prefix: "tether-codec-" });
      path = `${dir}/db.tdb`;
      return await CodecStorage.open(await FileStorage.open(path), options);
    },
    cleanup: async () => {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
      dir = undefined;
    },
  };
  if (!reopen) return factory;
  return {
    ...factory,
    reopen: async () =>
      await CodecStorage.open(await FileStorage.open(path), options),
  };
}

function kv(name: string, options: CodecOptions): StorageFactory {
  return {
    name,
    shared: true,
    blind: options.encryption !== undefined,
    propertyScale: SCALE,
    loadScale: SCALE,
    create: async () =>
      await CodecStorage.open(
        new KvStorage(await Deno.openKv(":memory:"), { closeKv: true }),
        options,
      ),
  };
}

// The codec sits between the engine and any storage, unchanged: the normal
// suite runs every conformance suite over it with both features on memory
// and Deno KV (a local and a shared storage), the storage suite over it on a
// file, and the storage suite over each feature alone in memory.
// `deno task torture` (TETHER_TORTURE=1) runs all nine combinations through
// every suite, and the file one again reopened after every write.
const FULL = [
  memory("memory, encrypted and compressed", BOTH),
  kv("kv, encrypted and compressed", BOTH),
];
const STORAGE_ONLY = [
  file("file, encrypted and compressed", BOTH, false),
  memory("memory, encrypted", ENCRYPTED),
  memory("memory, compressed", COMPRESSED),
];
const TORTURE_ONLY = [
  file("file, encrypted and compressed, reopened", BOTH, true),
  file("file, encrypted", ENCRYPTED, false),
  file("file, compressed", COMPRESSED, false),
  kv("kv, encrypted", ENCRYPTED),
  kv("kv, compressed", COMPRESSED),
];
for (
  const factory of [
    ...FULL,
    ...(TORTURE ? [...STORAGE_ONLY, ...TORTURE_ONLY] : []),
  ]
) {
  storageSuite(factory);
  databaseSuite(factory);
  collectionSuite(factory);
}
if (!TORTURE) { for (const factory of STORAGE_ONLY) storageSuite(factory); }

/** The raw value stored under a document key, below the codec. */
async function rawDoc(
  inner: Storage,
  collection: string,
  id: string,
): Promise<Uint8Array> {
  const entry = await inner.get(encodeKey(["d", collection, id]));
  assert.ok(entry !== null);
  return entry.value;
}

async function setRaw(
  inner: Storage,
  collection: string,
  id: string,
  value: Uint8Array,
): Promise<void> {
  const r = await inner.commit({
    sets: [{ key: encodeKey(["d", collection, id]), value }],
  });
  assert.ok(r.ok);
}

Deno.test("codec: a wrong, missing or unexpected secret is a WrongKeyError at open", async () => {
  const inner = new MemoryStorage();
  const db = await open({ storage: inner, ...ENCRYPTED });
  await db.put("k", { secret: "value" });
  // Close only the engine's view: reopen over the same memory storage.
  const reopen = (options: CodecOptions) => CodecStorage.open(inner, options);
  await assert.rejects(
    reopen({ encryption: { passphrase: "wrong", iterations: 1000 } }),
    (e: Error) =>
      e instanceof WrongKeyError && /passphrase is wrong/.test(e.message),
  );
  await assert.rejects(
    reopen({ encryption: { key: new Uint8Array(32) } }),
    WrongKeyError,
  );
  await assert.rejects(
    reopen({}),
    (e: Error) =>
      e instanceof WrongKeyError && /it is encrypted/.test(e.message),
  );
  const opened = await reopen(ENCRYPTED);
  assert.ok(opened instanceof CodecStorage);
  await db.close();
  // A plain database with data refuses a key.
  const plain = new MemoryStorage();
  await plain.commit({
    sets: [{ key: new Uint8Array([1]), value: new Uint8Array([1]) }],
  });
  await assert.rejects(
    CodecStorage.open(plain, ENCRYPTED),
    (e: Error) => e instanceof WrongKeyError && /not encrypted/.test(e.message),
  );
  await assert.rejects(CodecStorage.open(plain, COMPRESSED), TypeError);
  await assert.rejects(
    open({ encryption: { passphrase: "" } }),
    TypeError,
  );
  await assert.rejects(
    open({ encryption: { key: new Uint8Array(20) } }),
    TypeError,
  );
});

Deno.test("codec: nothing of a document reaches the storage in plaintext", async () => {
  const inner = new MemoryStorage();
  await using db = await open({ storage: inner, ...BOTH });
  await db.put("k", { secret: "hunter2-hunter2-hunter2" });
  const raw = await rawDoc(inner, "default", "k");
  const text = new TextDecoder("latin1").decode(raw);
  assert.ok(!text.includes("hunter2"));
  assert.ok(!text.includes("secret"));
  assert.equal(raw[0], 1); // format version
  assert.equal(raw[1]! & 2, 2); // encrypted
});

Deno.test("codec: nothing of a document reaches a file in plaintext, by put, putBatch, insert or update", async () => {
  for (const codec of [ENCRYPTED, BOTH]) {
    const dir = await Deno.makeTempDir({ prefix: "tether-codec-file-" });
    try {
      const path = `${dir}/db.tdb`;
      {
        await using db = await open({ path, ...codec });
        await db.put("k", { secret: "hunter2-hunter2-hunter2" });
        await db.putBatch(
          new Map([["b", { secret: "swordfish-swordfish" }]]),
        );
        const c = db.collection("c");
        await c.insert({ _id: "i", secret: "correcthorse-battery" });
        await c.update({ _id: "i" }, {
          $set: { more: "staple-staple-staple" },
        });
      }
      const text = new TextDecoder("latin1").decode(await Deno.readFile(path));
      for (
        const word of [
          "hunter2",
          "swordfish",
          "correcthorse",
          "staple",
          "secret",
        ]
      ) {
        assert.ok(!text.includes(word), `'${word}' is in the file`);
      }
      await using db = await open({ path, ...codec });
      assert.deepEqual(await db.get("b"), { secret: "swordfish-swordfish" });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("codec: tampering is an IntegrityError naming the record; others stay readable", async () => {
  const inner = new MemoryStorage();
  await using db = await open({ storage: inner, ...ENCRYPTED });
  const c = db.collection("readings");
  await c.insert({ _id: "a", t: 1 });
  await c.insert({ _id: "b", t: 2 });
  await c.insert({ _id: "c", t: 3 });
  const a = await rawDoc(inner, "readings", "a");
  const b = await rawDoc(inner, "readings", "b");
  const fields = [
    ["version", 0],
    ["flags", 1],
    ["generation", 2],
    ["IV", 5],
    ["ciphertext", 3 + 16 + 2],
    ["tag", a.length - 1],
  ] as const;
  for (const [what, at] of fields) {
    const bad = a.slice();
    bad[at]! ^= 1;
    await setRaw(inner, "readings", "a", bad);
    await assert.rejects(
      c.get("a"),
      (e: Error) =>
        e instanceof IntegrityError && /'a' in 'readings'/.test(e.message),
      `a flipped bit in the ${what}`,
    );
    assert.deepEqual(await c.get("c"), { _id: "c", t: 3 });
  }
  // Truncated, and swapped with another record.
  await setRaw(inner, "readings", "a", a.subarray(0, a.length - 20));
  await assert.rejects(c.get("a"), IntegrityError);
  await setRaw(inner, "readings", "a", b);
  await assert.rejects(c.get("a"), IntegrityError);
  // A plain envelope slipped into an encrypted database.
  await setRaw(inner, "readings", "a", new Uint8Array([1, 0, 123, 125]));
  await assert.rejects(c.get("a"), IntegrityError);
  await setRaw(inner, "readings", "a", a);
  assert.deepEqual(await c.get("a"), { _id: "a", t: 1 });
  // A scan meets the damaged record and says so, never skips it.
  await setRaw(inner, "readings", "b", a);
  await assert.rejects(c.find({}).toArray(), IntegrityError);
});

Deno.test("codec: compression only when it helps, and either way reads back", async () => {
  const inner = new MemoryStorage();
  await using db = await open({
    storage: inner,
    compression: { minBytes: 128 },
  });
  await db.put("small", { n: 1 });
  await db.put("big", { s: "ab".repeat(2000) });
  await db.put("random", { s: Array.from(randomBytes(200)).join(",") });
  assert.equal((await rawDoc(inner, "default", "small"))[1], 0);
  const big = await rawDoc(inner, "default", "big");
  assert.equal(big[1], 1);
  assert.ok(big.length < 400, `compressed to ${big.length} bytes`);
  assert.deepEqual(await db.get("big"), { s: "ab".repeat(2000) });
  assert.ok(((await db.get("random")) as { s: string }).s.length > 0);
});

Deno.test("codec: rekey re-encrypts everything; the old secret stops working", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-codec-" });
  try {
    const path = `${dir}/db.tdb`;
    const old = { passphrase: "old", iterations: 1000 };
    const next = { passphrase: "new", iterations: 1000 };
    {
      await using db = await open({ path, encryption: old });
      const c = db.collection("c");
      await c.createIndex("n");
      for (let i = 0; i < 50; i++) await c.insert({ _id: `d${i}`, n: i % 5 });
      assert.ok(await db.rekey(next) >= 50);
      assert.equal(await c.count({ n: 3 }), 10);
    }
    await assert.rejects(open({ path, encryption: old }), WrongKeyError);
    await using db = await open({ path, encryption: next });
    assert.equal(await db.collection("c").count({ n: 3 }), 10);
    await assert.rejects(
      open({ path: `${dir}/p.tdb` }).then((p) => p.rekey(next)),
      TypeError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Fails every commit once `budget` commits have passed; `close` leaves the
 * data (the test opens it again and again).
 */
class FailAfter extends MemoryStorage {
  budget = Infinity;
  override close(): Promise<void> {
    return Promise.resolve();
  }
  override commit(
    commit: Parameters<MemoryStorage["commit"]>[0],
  ): ReturnType<MemoryStorage["commit"]> {
    if (this.budget-- <= 0) {
      return Promise.reject(new Error("power cut"));
    }
    return super.commit(commit);
  }
}

Deno.test("codec: a rekey interrupted at any step opens with the old or the new secret", async () => {
  const old = { passphrase: "old", iterations: 1000 };
  const next = { passphrase: "new", iterations: 1000 };
  for (let cut = 0; cut < 6; cut++) {
    const inner = new FailAfter();
    const db = await open({ storage: inner, encryption: old });
    for (let i = 0; i < 30; i++) await db.put(`k${i}`, { i });
    inner.budget = cut;
    const done = await db.rekey(next).then(() => true, () => false);
    inner.budget = Infinity;
    let opened = 0;
    for (const secret of [old, next]) {
      try {
        const s = await CodecStorage.open(inner, { encryption: secret });
        // Every value reads back with whichever secret opens it.
        await using again = await open({ storage: s });
        for (let i = 0; i < 30; i++) {
          assert.deepEqual(await again.get(`k${i}`), { i });
        }
        opened++;
        if (!done) {
          // Finishing the job from here works.
          await again.rekey(next);
        }
      } catch (e) {
        if (!(e instanceof WrongKeyError)) throw e;
      }
    }
    assert.ok(opened >= 1, `cut after ${cut} commits: no secret opens it`);
    if (done) assert.equal(opened, 1);
  }
});

// Known-answer tests: FORMAT.md followed with node:crypto alone.

function b64(text: string): Buffer {
  return Buffer.from(text, "base64");
}

/** Opens an envelope with node:crypto (FORMAT.md, "Record codec"). */
function nodeOpen(
  envelope: Uint8Array,
  identity: Uint8Array,
  enc: Buffer,
  mac: Buffer,
): Buffer {
  const flags = envelope[1]!;
  assert.equal(envelope[0], 1);
  assert.equal(flags & 2, 2);
  const iv = envelope.subarray(3, 19);
  const ciphertext = envelope.subarray(19, envelope.length - 32);
  const tag = envelope.subarray(envelope.length - 32);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(identity.length);
  const expect = createHmac("sha256", mac)
    .update(envelope.subarray(0, 3)).update(iv).update(ciphertext)
    .update(len).update(identity).digest();
  assert.deepEqual(Buffer.from(tag), expect, "tag");
  const decipher = createDecipheriv(
    enc.length === 16 ? "aes-128-cbc" : "aes-256-cbc",
    enc,
    iv,
  );
  const payload = Buffer.concat([
    decipher.update(ciphertext),
    decipher.final(),
  ]);
  return flags & 1 ? inflateRawSync(payload) : payload;
}

function nodeSeal(
  plain: Buffer,
  identity: Uint8Array,
  enc: Buffer,
  mac: Buffer,
  generation: number,
  compress: boolean,
): Uint8Array {
  const payload = compress ? deflateRawSync(plain) : plain;
  const head = Buffer.from([1, (compress ? 1 : 0) | 2, generation]);
  const iv = randomBytes(16);
  const cipher = createCipheriv(
    enc.length === 16 ? "aes-128-cbc" : "aes-256-cbc",
    enc,
    iv,
  );
  const ciphertext = Buffer.concat([cipher.update(payload), cipher.final()]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(identity.length);
  const tag = createHmac("sha256", mac).update(head).update(iv)
    .update(ciphertext).update(len).update(identity).digest();
  return Buffer.concat([head, iv, ciphertext, tag]);
}

/** Unlocks the data keys from the header with node:crypto. */
async function nodeKeys(
  inner: Storage,
  passphrase: string,
): Promise<{ enc: Buffer; mac: Buffer; generation: number }> {
  const header = JSON.parse(
    new TextDecoder().decode(
      (await inner.get(encodeKey(["k", "header"])))!.value,
    ),
  );
  assert.equal(header.v, 2);
  const wrap = header.encryption.wraps[0];
  assert.equal(wrap.kdf, "PBKDF2-SHA256");
  assert.equal(wrap.v, 2);
  // One 256-bit master, expanded with HKDF into the wrap's two keys.
  const master = pbkdf2Sync(
    passphrase,
    b64(wrap.salt),
    wrap.iterations,
    32,
    "sha256",
  );
  const expand = (info: string) =>
    Buffer.from(hkdfSync("sha256", master, b64(wrap.salt), info, 32));
  const keys = JSON.parse(
    nodeOpen(
      b64(wrap.keys),
      new TextEncoder().encode("tether-db keys"),
      expand("tether-db wrap enc"),
      expand("tether-db wrap mac"),
    ).toString("utf8"),
  );
  // The header's MAC: HMAC-SHA256 under `h` of its JSON without `mac`.
  const { mac, ...rest } = header.encryption;
  const body = JSON.stringify({ ...header, encryption: rest });
  assert.equal(
    createHmac("sha256", b64(keys.h)).update(body).digest("base64"),
    mac,
  );
  const generation = header.encryption.generation;
  const material = b64(keys[String(generation)]);
  const split = material.length - 32;
  return {
    enc: material.subarray(0, split),
    mac: material.subarray(split),
    generation,
  };
}

Deno.test("codec known answers: node:crypto opens what we wrote, and we read what it wrote", async () => {
  const inner = new MemoryStorage();
  const passphrase = "known answers";
  await using db = await open({
    storage: inner,
    encryption: { passphrase, iterations: 2000 },
    compression: { minBytes: 10 },
  });
  const doc = { device: "esp32-7", temp: 21.5, note: "x".repeat(100) };
  await db.collection("r").insert({ _id: "one", ...doc });
  const { enc, mac, generation } = await nodeKeys(inner, passphrase);
  assert.equal(enc.length, 32);
  const key = encodeKey(["d", "r", "one"]);
  const plain = nodeOpen(await rawDoc(inner, "r", "one"), key, enc, mac);
  const record = JSON.parse(plain.toString("utf8"));
  assert.deepEqual(record.v, { _id: "one", ...doc });
  assert.equal(record.n, 1);
  // The other way: a record sealed by node:crypto, read through the database.
  const mine = { ...record, v: { _id: "two", device: "node", temp: 1 } };
  for (const compress of [false, true]) {
    await setRaw(
      inner,
      "r",
      "two",
      nodeSeal(
        Buffer.from(JSON.stringify(mine)),
        encodeKey(["d", "r", "two"]),
        enc,
        mac,
        generation,
        compress,
      ),
    );
    assert.deepEqual(await db.collection("r").findOne({ _id: "two" }), {
      _id: "two",
      device: "node",
      temp: 1,
    });
  }
  // Sealed for another key, it is refused.
  await setRaw(
    inner,
    "r",
    "two",
    nodeSeal(
      Buffer.from(JSON.stringify(mine)),
      key,
      enc,
      mac,
      generation,
      false,
    ),
  );
  await assert.rejects(
    db.collection("r").findOne({ _id: "two" }),
    IntegrityError,
  );
});

Deno.test("codec: a raw 16-byte key means AES-128, and 32 AES-256", async () => {
  for (const size of [16, 32]) {
    const key = crypto.getRandomValues(new Uint8Array(size));
    const inner = new MemoryStorage();
    await using db = await open({ storage: inner, encryption: { key } });
    await db.put("k", 1);
    const header = JSON.parse(new TextDecoder().decode(
      (await inner.get(encodeKey(["k", "header"])))!.value,
    ));
    assert.equal(header.encryption.bits, size * 8);
    assert.equal(header.encryption.wraps[0].kdf, "HKDF-SHA256");
    const s = await CodecStorage.open(inner, { encryption: { key } });
    assert.deepEqual(await (await open({ storage: s })).get("k"), 1);
  }
});

Deno.test("codec: blind indexes keep indexed values out of the keys, serve equality and $in, and say why ranges scan", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, ...ENCRYPTED });
  const c = db.collection<{ _id?: string; email: string; age: number }>("u");
  await c.createIndex("email", { unique: true });
  await c.createIndex(["age", "email"]);
  await c.insertMany([
    { _id: "a", email: "alice@example.com", age: 31 },
    { _id: "b", email: "bob@example.com", age: 42 },
    { _id: "c", email: "carol@example.com", age: 42 },
  ]);
  for await (const entry of kv.list({ prefix: [] })) {
    const bytes = new TextDecoder("latin1").decode(
      entry.key.map((p) =>
        p instanceof Uint8Array ? p : new TextEncoder().encode(String(p))
      )
        .reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
    );
    assert.ok(!bytes.includes("example.com"), "an email in a KV key");
    assert.ok(!bytes.includes("alice"), "a name in a KV key");
  }
  const eq = await c.find({ email: "bob@example.com" }).explain();
  assert.equal(eq.index, "email_1");
  assert.equal(eq.returned, 1);
  assert.match(eq.description, /blind/);
  const any = c.find({
    email: { $in: ["alice@example.com", "carol@example.com"] },
  });
  assert.equal((await any.explain()).index, "email_1");
  assert.deepEqual((await any.toArray()).map((d) => d._id).sort(), ["a", "c"]);
  const compound = await c.find({ age: 42, email: "carol@example.com" })
    .explain();
  assert.equal(compound.index, "age_1_email_1");
  assert.equal(compound.docsExamined, 1);
  const range = await c.find({ age: { $gt: 40 } }).explain();
  assert.equal(range.kind, "scan");
  assert.match(range.description, /blind index age_1_email_1/);
  assert.equal(range.returned, 2);
  await assert.rejects(
    c.insert({ email: "bob@example.com", age: 1 }),
    (e: Error) =>
      e.name === "DuplicateKeyError" && /email_1/.test(e.message) &&
      !e.message.includes("bob@example.com"),
  );
  kv.close();
});

Deno.test("codec on Deno KV: a record just under maxValueBytes still fits once sealed", async () => {
  await using db = await open({ kv: ":memory:", ...ENCRYPTED });
  const text = Array.from(randomBytes(40_000)).map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  const value = { s: text.slice(0, 65_440) };
  await db.put("big", value);
  assert.deepEqual(await db.get("big"), value);
});
