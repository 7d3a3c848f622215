/**
 * Format 3 of the file log: binary records (file_record.ts), the version-2
 * fixture written by the previous release, and the size of a compacted file.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { IntegrityError, open } from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";
import {
  decodeHeader,
  encodeFrame,
  FILE_FORMAT_VERSION,
  type FileHeader,
  readFrame,
} from "../src/storage/file_format.ts";
import {
  joinValue,
  putVarint,
  Reader,
  readRecord,
  REC_ENVELOPE,
  type RecordParts,
  recordParts,
  recordSize,
  splitValue,
  varintSize,
  writeRecord,
} from "../src/storage/file_record.ts";
import { encodeUtf8Tail } from "../src/bytes.ts";
import { faults, writeLog } from "../src/storage/file_io.ts";
import { encodeRecord, type StoredRecord } from "../src/value_codec.ts";
import { encodeKey } from "../src/key_codec.ts";

const FIXTURE = new URL("./fixtures/file_v2.tdb", import.meta.url);

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-f3-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function versionOf(bytes: Uint8Array): number {
  return (decodeHeader(bytes) as FileHeader).version;
}

/** What the fixture holds (tests/fixtures/file_v2.tdb, written by format 2). */
async function checkFixtureContents(
  db: Awaited<ReturnType<typeof open>>,
): Promise<void> {
  const users = db.collection<Record<string, unknown>>("users");
  const all = await users.find({}).toArray();
  assert.equal(all.length, 19);
  for (const doc of all) {
    const i = Number(String(doc._id).slice(1));
    assert.notEqual(i, 4);
    assert.deepEqual(doc, {
      _id: `u${i}`,
      email: `u${i}@x.io`,
      age: i === 3 ? 99 : 20 + i,
      name: `Ünïcode ${i} "q"`,
    });
  }
  assert.equal(
    (await users.find({ email: "u7@x.io" }).explain()).index,
    "email_1",
  );
  await assert.rejects(
    users.insert({ _id: "dup", email: "u7@x.io" }),
    /unique index 'email_1'/,
  );
  const plain = await db.getEntry("plain");
  assert.deepEqual(plain?.value, { n: 1, at: new Date(5) });
  assert.deepEqual(plain?.tags, ["t", "ü"]);
  const ttl = await db.getEntry("ttl");
  assert.deepEqual(ttl?.value, { n: 2 });
  assert.equal(typeof ttl?.expiresAt, "number");
  assert.equal(await db.get("num"), 42);
  assert.equal(await db.get("gone"), null);
  assert.deepEqual(await db.get("after"), { list: [1, 2, { deep: null }] });
}

Deno.test("a version-2 file (fixture) reads whole, takes writes as version 2, compacts into version 3 and reopens the same", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/v2.tdb`;
  await Deno.copyFile(FIXTURE, path);
  assert.equal(versionOf(await Deno.readFile(path)), 2);
  {
    await using db = await open({ path });
    await checkFixtureContents(db);
    await db.put("new", { x: "written to a version-2 file" });
  }
  // Appended in place, still version 2.
  assert.equal(versionOf(await Deno.readFile(path)), 2);
  {
    await using db = await open({ path });
    await checkFixtureContents(db);
    assert.deepEqual(await db.get("new"), { x: "written to a version-2 file" });
    await db.compact();
  }
  const after = await Deno.readFile(path);
  assert.equal(versionOf(after), FILE_FORMAT_VERSION);
  {
    await using db = await open({ path });
    await checkFixtureContents(db);
    assert.deepEqual(await db.get("new"), { x: "written to a version-2 file" });
    assert.deepEqual(await db.verify(), await db.verify());
    await db.put("newer", 1);
  }
  await using db = await open({ path, readOnly: true });
  await checkFixtureContents(db);
  assert.equal(await db.get("newer"), 1);
});

const recordArb = fc.record({
  value: fc.jsonValue(),
  tags: fc.option(fc.array(fc.string()), { nil: undefined }),
  expiresAt: fc.option(fc.nat({ max: 2 ** 50 }), { nil: undefined }),
  createdAt: fc.nat({ max: 2 ** 45 }),
  updatedAt: fc.nat({ max: 2 ** 45 }),
  version: fc.nat(),
  seq: fc.nat({ max: 2 ** 40 }),
  feed: fc.option(fc.nat({ max: 2 ** 40 }), { nil: undefined }),
  // A record lists its typed values' paths only when it has some.
  dates: fc.option(
    fc.array(fc.array(fc.oneof(fc.string(), fc.nat())), { minLength: 1 }),
    { nil: undefined },
  ),
});

Deno.test("format-3 records: every record envelope is split into binary fields and rebuilt byte for byte, with or without its memo", () => {
  fc.assert(
    fc.property(
      recordArb,
      fc.boolean(),
      fc.string(),
      fc.boolean(),
      (r, withMemo, id, withId) => {
        const record =
          (withId && typeof r.value === "object" && r.value !== null &&
              !Array.isArray(r.value)
            ? { ...r, value: { _id: id, ...r.value } }
            : r) as unknown as StoredRecord;
        const bytes = encodeRecord(record);
        const key = encodeKey(["d", "c", id]);
        const parts = splitValue(bytes, withMemo ? record : undefined, key);
        assert.equal(parts.flags & REC_ENVELOPE, REC_ENVELOPE);
        const out = new Uint8Array(recordSize(key, parts));
        assert.equal(writeRecord(out, 0, key, parts), out.length);
        const view = readRecord(new Reader(out, 0, out.length));
        assert(typeof view !== "string");
        assert.equal(view.end, out.length);
        assert.deepEqual(joinValue(view.parts, key), bytes);
        // Smaller than the envelope it stands for (key and lengths aside).
        assert(out.length <= bytes.length + 3);
      },
    ),
    { numRuns: 300 },
  );
});

/**
 * Parts made from a record and parts split from its envelope: the same
 * fields, and the same bytes once written (the first may hold its value as
 * ASCII text rather than bytes).
 */
function sameRecord(key: Uint8Array, direct: RecordParts, split: RecordParts) {
  const fields = (p: RecordParts) => {
    const { value: _, text: _t, textFrom: _f, ...rest } = p;
    return rest;
  };
  assert.deepEqual(fields(direct), fields(split));
  const a = new Uint8Array(recordSize(key, direct));
  const b = new Uint8Array(recordSize(key, split));
  assert.equal(writeRecord(a, 0, key, direct), a.length);
  writeRecord(b, 0, key, split);
  assert.deepEqual(a, b);
}

/** A record of `value` with no tags, expiry or typed values. */
function plainRecord(value: unknown): StoredRecord {
  return {
    value,
    tags: undefined,
    expiresAt: undefined,
    createdAt: 1,
    updatedAt: 2,
    version: 1,
    seq: 1,
    feed: 3,
    dates: undefined,
  } as unknown as StoredRecord;
}

/**
 * {@linkcode sameRecord} of a record's parts made from it and split from its
 * envelope.
 *
 * @returns The parts made from it.
 */
function sameFromText(key: Uint8Array, record: StoredRecord): RecordParts {
  const direct = recordParts(record, key)!;
  sameRecord(key, direct, splitValue(encodeRecord(record), record, key));
  return direct;
}

Deno.test("format-3 records: a record written from itself (a lazy set: no envelope made) is byte for byte the record split from its envelope", () => {
  fc.assert(
    fc.property(
      recordArb,
      fc.string(),
      fc.boolean(),
      (r, id, withId) => {
        const record =
          (withId && typeof r.value === "object" && r.value !== null &&
              !Array.isArray(r.value)
            ? { ...r, value: { _id: id, ...r.value } }
            : r) as unknown as StoredRecord;
        const key = encodeKey(["d", "c", id]);
        const direct = recordParts(record, key);
        const split = splitValue(encodeRecord(record), record, key);
        if (record.dates !== undefined) {
          // Typed values: written from their envelope's bytes.
          assert.equal(direct, undefined);
          return;
        }
        assert(direct !== undefined);
        sameRecord(key, direct, split);
      },
    ),
    { numRuns: 400 },
  );
  // Any UTF-16 code units (lone surrogates, astral pairs, non-ASCII ids).
  const units = fc.string({
    unit: fc.integer({ min: 0, max: 0xffff }).map((c) =>
      String.fromCharCode(c)
    ),
    maxLength: 12,
  });
  fc.assert(
    // Keys refuse lone surrogates: ids are well-formed (any code point).
    fc.property(
      fc.string({ unit: "binary", maxLength: 8 }),
      fc.oneof(units, fc.string({ unit: "binary", maxLength: 12 })),
      fc.boolean(),
      (id, text, withId) => {
        const record = {
          value: withId
            ? (text.length % 2 === 0 ? { _id: id } : { _id: id, t: text })
            : { t: text, [text]: 1 },
          tags: [text],
          expiresAt: undefined,
          createdAt: 1,
          updatedAt: 2,
          version: 1,
          seq: 1,
          feed: 1,
          dates: undefined,
        } as unknown as StoredRecord;
        const key = encodeKey(["d", "c", id]);
        const direct = recordParts(record, key)!;
        const split = splitValue(encodeRecord(record), record, key);
        sameRecord(key, direct, split);
      },
    ),
    { numRuns: 500 },
  );
  // `_id` equal to the key's id or not (a prefix of it, longer, another
  // string, not a string), first member or not: the text's verdict is the
  // bytes' (the id is left out exactly when the bytes say so).
  fc.assert(
    fc.property(
      fc.string({ maxLength: 6 }),
      fc.oneof(
        fc.constant("same"),
        fc.constant("prefix"),
        fc.constant("longer"),
        fc.constant("number"),
        fc.string({ maxLength: 6 }),
      ),
      fc.boolean(),
      fc.boolean(),
      (id, which, rest, first) => {
        const other = which === "same"
          ? id
          : which === "prefix"
          ? id.slice(0, -1)
          : which === "longer"
          ? id + "x"
          : which === "number"
          ? 7
          : which;
        const members = rest ? { a: 1, s: "é" } : {};
        const value = first
          ? { _id: other, ...members }
          : { ...members, _id: other };
        const key = encodeKey(["d", "c", id]);
        sameFromText(key, plainRecord(value));
      },
    ),
    { numRuns: 500 },
  );
  // Not a record: the caller splits the bytes.
  assert.equal(recordParts({ n: 1 }, new Uint8Array([1])), undefined);
  assert.equal(
    recordParts(
      {
        value: 1,
        createdAt: -1,
        updatedAt: 1,
        version: 1,
        seq: 1,
        tags: undefined,
        expiresAt: undefined,
        dates: undefined,
      },
      new Uint8Array([1]),
    ),
    undefined,
  );
});

Deno.test("varints: every safe integer, at the edges of each byte count and of 32-bit arithmetic, is written in varintSize bytes and read back", () => {
  const edges = [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21];
  for (let bits = 28; bits <= 53; bits++) edges.push(2 ** bits - 1, 2 ** bits);
  edges.push(0x7fffffff, 0x80000000, 0xffffffff, Number.MAX_SAFE_INTEGER);
  const check = (n: number) => {
    if (!Number.isSafeInteger(n)) return;
    const out = new Uint8Array(10);
    const end = putVarint(out, 0, n);
    assert.equal(end, varintSize(n), `size of ${n}`);
    const r = new Reader(out, 0, end);
    assert.equal(r.varint(), n);
    assert.equal(r.at, end);
  };
  for (const n of edges) check(n);
  fc.assert(fc.property(fc.maxSafeNat(), (n) => check(n)), { numRuns: 2000 });
});

Deno.test("encodeUtf8Tail gives TextEncoder's bytes of the lead byte and the text from an index, for any well-formed text", () => {
  const text = fc.string({ unit: "grapheme", maxLength: 40 });
  fc.assert(
    fc.property(text, fc.nat(), fc.boolean(), (t, at, lead) => {
      const from = t.length === 0 ? 0 : at % (t.length + 1);
      // Never inside a surrogate pair.
      const start = from > 0 && from < t.length &&
          t.charCodeAt(from) >= 0xdc00 && t.charCodeAt(from) < 0xe000
        ? from - 1
        : from;
      const expected = new TextEncoder().encode(
        (lead ? "{" : "") + t.slice(start),
      );
      assert.deepEqual(
        encodeUtf8Tail(t, start, lead ? 0x7b : -1),
        expected,
      );
    }),
    { numRuns: 1000 },
  );
  // Past the pooled size: the same bytes.
  const big = "é".repeat(5000) + "x".repeat(5000);
  assert.deepEqual(
    encodeUtf8Tail(big, 3, 0x7b),
    new TextEncoder().encode("{" + big.slice(3)),
  );
});

Deno.test("writeLog: a write that fails rejects its promise (never throws), synchronous or not, and a write that works writes every byte", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/log`;
  await Deno.writeFile(path, new Uint8Array(0));
  const bytes = new Uint8Array(1000).map((_, i) => i % 251);
  for (const strict of [true, false]) {
    using readOnly = await Deno.open(path, { read: true });
    let promise: Promise<number> | undefined;
    assert.doesNotThrow(() => {
      promise = writeLog(readOnly, bytes, strict);
    });
    await assert.rejects(promise!);
  }
  for (const strict of [true, false]) {
    await Deno.writeFile(path, new Uint8Array(0));
    using file = await Deno.open(path, { write: true, append: true });
    await writeLog(file, bytes, strict);
    assert.deepEqual(await Deno.readFile(path), bytes);
  }
});

Deno.test("a strict flush's synchronous write that holds the event loop 20 ms or more is a slow-write warning; batched flushes write asynchronously", async () => {
  await using tmp = await tempDir();
  const warnings: { message: string; data: Record<string, unknown> }[] = [];
  const logger = {
    warn: (message: string, data: Readonly<Record<string, unknown>>) =>
      warnings.push({ message, data: { ...data } }),
  };
  let calls = 0;
  let slow = true;
  faults.syncWrite = () => {
    calls++;
    if (!slow) return;
    const until = performance.now() + 25;
    while (performance.now() < until) { /* a slow disk */ }
  };
  try {
    {
      await using db = await open({ path: `${tmp.dir}/strict.tdb`, logger });
      await db.put("a", { n: 1 });
      assert(calls >= 1);
      const slowWrites = warnings.filter((w) => w.data.event === "slow-write");
      assert.equal(slowWrites.length, calls);
      assert((slowWrites[0]!.data.ms as number) >= 20);
      assert.match(slowWrites[0]!.message, /held the event loop \d+ ms/);
      slow = false;
      await db.put("b", { n: 2 });
      assert.equal(
        warnings.filter((w) => w.data.event === "slow-write").length,
        slowWrites.length,
      );
      assert.deepEqual(await db.get("a"), { n: 1 });
    }
    calls = 0;
    const db = await open({
      path: `${tmp.dir}/batched.tdb`,
      durability: "batched",
      logger,
    });
    await db.put("a", { n: 1 });
    await db.close(); // writes what waits
    assert.equal(calls, 0);
    assert((await Deno.stat(`${tmp.dir}/batched.tdb`)).size > 0);
  } finally {
    faults.syncWrite = undefined;
  }
});

Deno.test("format-3 records: any other value (not an envelope, or one whose memo disagrees) is kept as raw bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (value) => {
      const parts = splitValue(value);
      const key = new Uint8Array([1, 2]);
      const out = new Uint8Array(recordSize(key, parts));
      writeRecord(out, 0, key, parts);
      const view = readRecord(new Reader(out, 0, out.length));
      assert(typeof view !== "string");
      assert.deepEqual(joinValue(view.parts, key), value);
    }),
    { numRuns: 300 },
  );
  const enc = (s: string) => new TextEncoder().encode(s);
  for (
    const text of [
      '{"v":1,"c":1,"u":1,"n":1,"s":1,"z":2}', // unknown field
      '{"v":1,"c":1.5,"u":1,"n":1,"s":1}', // not an integer
      '{"v":1,"c":-1,"u":1,"n":1,"s":1}', // negative
      '{"v":1, "c":1,"u":1,"n":1,"s":1}', // not the engine's spacing
      '{"v":1,"u":1,"c":1,"n":1,"s":1}', // not the engine's order
      '{"v":1,"c":1e3,"u":1,"n":1,"s":1}', // not the engine's digits
    ]
  ) {
    const bytes = enc(text);
    const parts = splitValue(bytes);
    assert.equal(parts.flags, 0, text);
    assert.deepEqual(joinValue(parts, new Uint8Array()), bytes);
  }
  // A memo that disagrees with the bytes: the bytes win.
  const record: StoredRecord = {
    value: { a: 1 },
    tags: undefined,
    expiresAt: undefined,
    createdAt: 5,
    updatedAt: 5,
    version: 1,
    seq: 1,
    dates: undefined,
  };
  const bytes = encodeRecord(record);
  const parts = splitValue(bytes, { ...record, version: 2 });
  assert.deepEqual(joinValue(parts, new Uint8Array()), bytes);
});

Deno.test("format-3 frames: sets and deletes read back as written, and the payload does not read as the old format", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const record: StoredRecord = {
    value: { a: "é" },
    tags: ["x"],
    expiresAt: 99,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_005,
    version: 3,
    seq: 7,
    feed: 12,
    dates: undefined,
  };
  const sets = [
    { key: enc("doc"), value: encodeRecord(record), memo: record },
    { key: enc("raw"), value: new Uint8Array([0, 255, 7]) },
  ];
  const frame = encodeFrame(9, sets, [enc("gone")], 3);
  const read = readFrame(frame, 0, 0, 3);
  assert("frame" in read, JSON.stringify(read));
  assert.equal(read.frame.seq, 9);
  assert.deepEqual(read.frame.sets.map((s) => [s.key, s.value]), [
    [sets[0]!.key, sets[0]!.value],
    [sets[1]!.key, sets[1]!.value],
  ]);
  assert.deepEqual(read.frame.deletes, [enc("gone")]);
  // Read as the old payload format it is not a commit.
  assert(!("frame" in readFrame(frame, 0, 0, 2)));
});

Deno.test("a compacted file of small documents is at most 1.5x their NDJSON (with _id)", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/size.tdb`;
  const docs = Array.from({ length: 2000 }, (_, i) => ({
    _id: `p${i}`,
    name: `person ${i}`,
    age: 20 + (i % 60),
    city: ["Oslo", "Lima", "Pune", "Kyiv"][i % 4]!,
  }));
  let ndjson = 0;
  for (const d of docs) {
    ndjson += new TextEncoder().encode(JSON.stringify(d)).length + 1;
  }
  {
    await using db = await open({ path, durability: "none" });
    const people = db.collection("people");
    await people.insertMany(docs);
    await db.compact();
  }
  const size = (await Deno.stat(path)).size;
  assert(
    size <= 1.5 * ndjson,
    `${size} bytes for ${ndjson} of NDJSON (${(size / ndjson).toFixed(2)}x)`,
  );
  const storage = await FileStorage.open(path, { readOnly: true });
  assert.equal(storage.stats().keys >= 2000, true);
  await storage.close();
});

/** A seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("format-3 fuzz: a flipped byte or a cut anywhere in a log is an IntegrityError naming an offset, a torn tail, or exactly an earlier state; never other data", async () => {
  const torture = Deno.env.get("TETHER_TORTURE") === "1";
  await using tmp = await tempDir();
  const path = `${tmp.dir}/fuzz.tdb`;
  const next = rng(1234);
  const states: Map<string, string>[] = [];
  const model = new Map<string, string>();
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16)).join(",");
  {
    const s = await FileStorage.open(path);
    for (let i = 0; i < 60; i++) {
      const sets = [];
      const deletes: Uint8Array[] = [];
      for (let j = 0; j < 1 + Math.floor(next() * 4); j++) {
        const id = `d${Math.floor(next() * 30)}`;
        const key = encodeKey(["d", "c", id]);
        const record: StoredRecord = {
          value: next() < 0.7 ? { _id: id, n: i, s: "é".repeat(j) } : [i, j],
          tags: next() < 0.3 ? ["a", "ü"] : undefined,
          expiresAt: next() < 0.3 ? 1e12 + i : undefined,
          createdAt: 1_700_000_000_000 + i,
          updatedAt: 1_700_000_000_000 + 2 * i,
          version: 1 + j,
          seq: i,
          feed: next() < 0.8 ? i * 3 : undefined,
          dates: undefined,
        };
        const raw = next() < 0.2;
        const value = raw
          ? new Uint8Array([i, j, 0, 255])
          : encodeRecord(record);
        sets.push({ key, value, memo: raw ? undefined : record });
      }
      for (const [k] of model) {
        if (next() < 0.05 && !sets.some((x) => hex(x.key) === k)) {
          deletes.push(
            new Uint8Array(k.split(",").map((x) => parseInt(x, 16))),
          );
        }
      }
      // One value per key in a commit.
      const unique = [...new Map(sets.map((x) => [hex(x.key), x])).values()];
      const r = await s.commit({ sets: unique, deletes });
      assert(r.ok);
      await r.durable;
      for (const x of unique) model.set(hex(x.key), hex(x.value));
      for (const k of deletes) model.delete(hex(k));
      states.push(new Map(model));
      if (i === 30) await s.compact();
    }
    await s.close();
  }
  const bytes = await Deno.readFile(path);
  assert.equal(versionOf(bytes), FILE_FORMAT_VERSION);
  const contents = async (p: string) => {
    const s = await FileStorage.open(p, { readOnly: true });
    try {
      const out = new Map<string, string>();
      for await (const page of s.scan({})) {
        for (const e of page) out.set(hex(e.key), hex(e.value));
      }
      return out;
    } finally {
      await s.close();
    }
  };
  const same = (a: Map<string, string>, b: Map<string, string>) =>
    a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
  const copy = `${tmp.dir}/damaged.tdb`;
  const runs = torture ? 3000 : 150;
  let refused = 0;
  for (let n = 0; n < runs; n++) {
    const damaged = bytes.slice();
    const cut = next() < 0.3;
    let len = damaged.length;
    if (cut) len = 1 + Math.floor(next() * (damaged.length - 1));
    else {
      const at = Math.floor(next() * damaged.length);
      damaged[at]! ^= 1 << Math.floor(next() * 8);
    }
    await Deno.writeFile(copy, damaged.subarray(0, len));
    try {
      const got = await contents(copy);
      // (A file cut inside its first 11 bytes is a creation cut short: it
      // opens empty, as FORMAT.md says.)
      assert(
        states.some((st) => same(st, got)) ||
          (cut && len <= 10 && got.size === 0),
        `${
          cut ? "cut at" : "flip in"
        } ${len}: the log opened with data that no commit left`,
      );
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      assert.match(e.message, /byte \d+/);
      refused++;
    }
  }
  assert(refused > 0);
});

Deno.test("an entry read from a version-2 file before a compaction upgrades it still gives its value afterwards (the bytes read are decoded as what they were)", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/v2.tdb`;
  await Deno.copyFile(FIXTURE, path);
  const s = await FileStorage.open(path);
  try {
    const key = new TextEncoder().encode("raw");
    const value = new TextEncoder().encode("a raw value of a version-2 log");
    const written = await s.commit({ sets: [{ key, value }] });
    assert(written.ok);
    await written.durable;
    // Its bytes are read now (as a write reads the items it replaces) and
    // decoded only after the compaction below moved and upgraded it.
    const [held] = await s.getMany([key]);
    await s.compact();
    assert.equal(versionOf(await Deno.readFile(path)), FILE_FORMAT_VERSION);
    assert.deepEqual(held!.value, value);
    assert.equal((held as { memo?: unknown }).memo, undefined);
    const [again] = await s.getMany([key]);
    assert.deepEqual(again!.value, value);
  } finally {
    await s.close();
  }
});

Deno.test("format-3 records: characters at the edge of ASCII (U+007F, U+0080, U+00FF, a surrogate pair) write the same bytes from the text as from the envelope", () => {
  for (const t of ["\u007f", "\u0080", "a\u00ffb", "\ud83d\ude00", "\ud800"]) {
    const direct = sameFromText(
      encodeKey(["d", "c", "k"]),
      plainRecord({ _id: "k", t }),
    );
    // Past ASCII, the text is not taken as bytes.
    assert.equal(direct.text !== undefined, t === "\u007f" || t === "\ud800");
  }
});
