/**
 * Hostile codec headers (issue 13, item 8): every field is checked before
 * anything is derived from it, the header is authenticated by a MAC, and a
 * bad header is a typed error that names the field and writes nothing.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { IntegrityError, open, WrongKeyError } from "../mod.ts";
import { base64ToBytes, binaryString, bytesToBase64 } from "../src/bytes.ts";
import { CodecStorage } from "../src/crypto/codec_storage.ts";
import { iterationsProblem, saltProblem } from "../src/crypto/codec.ts";
import { encodeKey } from "../src/key_codec.ts";
import { MemoryStorage } from "../src/storage/memory.ts";

const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
const HEADER = encodeKey(["k", "header"]);
const SECRET = { passphrase: "hostile headers", iterations: 1000 };

/** A memory storage that keeps its data when a failed open closes it. */
class Kept extends MemoryStorage {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}

async function snapshot(inner: MemoryStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const page of inner.scan({})) {
    for (const e of page) {
      out.push(
        `${binaryString(e.key)}=${binaryString(e.value)}@${e.versionstamp}`,
      );
    }
  }
  return out;
}

async function setHeader(inner: MemoryStorage, header: unknown): Promise<void> {
  const value = typeof header === "string"
    ? new TextEncoder().encode(header)
    : new TextEncoder().encode(JSON.stringify(header));
  const r = await inner.commit({ sets: [{ key: HEADER, value }] });
  assert.ok(r.ok);
}

async function readHeader(
  inner: MemoryStorage,
): Promise<Record<string, unknown>> {
  const found = await inner.get(HEADER);
  return JSON.parse(new TextDecoder().decode(found!.value));
}

/** An encrypted database with some data, and its header. */
async function encrypted(): Promise<
  { inner: Kept; header: Record<string, unknown> }
> {
  const inner = new Kept();
  {
    await using db = await open({ storage: inner, encryption: SECRET });
    const c = db.collection("c");
    await c.createIndex("n");
    for (let i = 0; i < 10; i++) await c.put(`d${i}`, { n: i });
  }
  return { inner, header: await readHeader(inner) };
}

/**
 * Opens with the header set to `header`: must fail with `type` (and a
 * message matching `message`), having written nothing.
 */
async function refused(
  inner: MemoryStorage,
  header: unknown,
  type: typeof IntegrityError | typeof WrongKeyError,
  message?: RegExp,
): Promise<void> {
  await setHeader(inner, header);
  const before = await snapshot(inner);
  const error = await CodecStorage.open(inner, { encryption: SECRET }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(
    error instanceof type,
    `${JSON.stringify(header).slice(0, 300)}: ${error}`,
  );
  if (message !== undefined) assert.match(error.message, message);
  // Through open() too, with a write asked for (compression changes the
  // header): still nothing written.
  await assert.rejects(
    open({ storage: inner, encryption: SECRET, compression: true }),
    type,
  );
  assert.deepEqual(await snapshot(inner), before, "nothing written");
}

type Json = Record<string, unknown>;
const enc = (h: Json) => h.encryption as Json;
const wrap0 = (h: Json) => (enc(h).wraps as Json[])[0]!;

function edit(header: Json, change: (h: Json) => void): Json {
  const copy = structuredClone(header);
  change(copy);
  return copy;
}

Deno.test("hostile header: each listed variant is an IntegrityError naming the field, and writes nothing", async () => {
  const { inner, header } = await encrypted();
  // Generation 42: once the current key was undefined and values were then
  // written in plaintext; now the MAC refuses it.
  await refused(
    inner,
    edit(header, (h) => enc(h).generation = 42),
    IntegrityError,
    /MAC/,
  );
  await refused(
    inner,
    edit(header, (h) => wrap0(h).iterations = 2e9),
    IntegrityError,
    /encryption\.wraps\[0\]\.iterations must be a whole number from 1,000 to 5,000,000, got 2000000000/,
  );
  await refused(
    inner,
    edit(header, (h) => wrap0(h).iterations = -1),
    IntegrityError,
    /iterations/,
  );
  await refused(
    inner,
    edit(header, (h) => wrap0(h).salt = "not base64!"),
    IntegrityError,
    /encryption\.wraps\[0\]\.salt must be base64/,
  );
  await refused(
    inner,
    edit(header, (h) => enc(h).wraps = null),
    IntegrityError,
    /encryption\.wraps must be an array/,
  );
  // And the neighbours of those.
  const cases: [(h: Json) => void, RegExp][] = [
    [(h) => h.v = 3, /\bv must be 1 or 2/],
    [(h) => enc(h).bits = 512, /encryption\.bits/],
    [(h) => enc(h).generation = -1, /encryption\.generation/],
    [(h) => enc(h).generation = "0", /encryption\.generation/],
    [(h) => enc(h).blind = 7, /encryption\.blind/],
    [(h) => delete enc(h).mac, /encryption\.mac/],
    [(h) => enc(h).mac = "AAAA", /encryption\.mac/],
    [(h) => enc(h).wraps = [], /encryption\.wraps/],
    [(h) => enc(h).wraps = [1, 2, 3], /encryption\.wraps/],
    [(h) => enc(h).wraps = [null], /encryption\.wraps\[0\]/],
    [(h) => wrap0(h).kdf = "MD5", /encryption\.wraps\[0\]\.kdf/],
    [(h) => wrap0(h).v = 9, /encryption\.wraps\[0\]\.v/],
    [(h) => wrap0(h).iterations = 1.5, /iterations/],
    [(h) => wrap0(h).iterations = "1000", /iterations/],
    [(h) => delete wrap0(h).iterations, /iterations/],
    [(h) => wrap0(h).salt = "AAAA", /salt/],
    [(h) => wrap0(h).keys = null, /encryption\.wraps\[0\]\.keys/],
    [(h) => wrap0(h).keys = "%%%%", /encryption\.wraps\[0\]\.keys/],
    [(h) => wrap0(h).extra = 1, /unknown field "extra"/],
    [(h) => h.compression = "yes", /compression/],
    [(h) => h.compression = { minBytes: -5 }, /compression\.minBytes/],
    [(h) => h.encryption = [], /encryption must be/],
    [(h) => h.more = true, /unknown field "more"/],
  ];
  for (const [change, message] of cases) {
    await refused(inner, edit(header, change), IntegrityError, message);
  }
  await refused(inner, "{not json", IntegrityError, /not valid JSON/);
  await refused(inner, "[]", IntegrityError, /not an object/);
  await refused(inner, "null", IntegrityError, /not an object/);
  // Fields under the MAC, changed to other valid values.
  for (
    const change of [
      (h: Json) => h.compression = { minBytes: 0 },
      (h: Json) => enc(h).bits = 128,
      (h: Json) => enc(h).blind = 1,
    ]
  ) {
    await refused(inner, edit(header, change), IntegrityError, /MAC/);
  }
  // A version-2 header made to look like version 1 (no MAC to check).
  await refused(
    inner,
    edit(header, (h) => {
      h.v = 1;
      delete enc(h).mac;
      delete enc(h).blind;
    }),
    IntegrityError,
    /version/,
  );
  // Key-derivation fields changed within range: another key, so the wrap
  // does not open (a wrong secret, as far as anyone can tell).
  await refused(
    inner,
    edit(header, (h) => wrap0(h).iterations = 1001),
    WrongKeyError,
  );
  await refused(
    inner,
    edit(header, (h) => wrap0(h).salt = bytesToBase64(new Uint8Array(16))),
    WrongKeyError,
  );
  // The untouched header still opens, and the data reads back.
  await setHeader(inner, header);
  await using db = await open({ storage: inner, encryption: SECRET });
  assert.deepEqual(await db.collection("c").get("d3"), { n: 3 });
});

Deno.test("hostile header on a file: 2e9 iterations is refused at once, the file is not changed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-header-" });
  try {
    const path = `${dir}/db.tdb`;
    {
      await using db = await open({ path, encryption: SECRET });
      await db.put("k", { a: 1 });
    }
    const { FileStorage } = await import("../src/storage/file.ts");
    {
      const inner = await FileStorage.open(path);
      const found = await inner.get(HEADER);
      const header = JSON.parse(new TextDecoder().decode(found!.value));
      header.encryption.wraps[0].iterations = 2e9;
      await inner.commit({
        sets: [{
          key: HEADER,
          value: new TextEncoder().encode(JSON.stringify(header)),
        }],
      });
      await inner.close();
    }
    const before = await Deno.readFile(path);
    await assert.rejects(
      open({ path, encryption: SECRET }),
      IntegrityError,
      "Cannot open the database: its codec header's encryption.wraps[0].iterations must be a whole number from 1,000 to 5,000,000, got 2000000000",
    );
    assert.deepEqual(await Deno.readFile(path), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile header fuzz: any change to any field is a typed error, and writes nothing", async () => {
  const { inner, header } = await encrypted();
  const paths: string[][] = [
    ["v"],
    ["compression"],
    ["encryption"],
    ["encryption", "bits"],
    ["encryption", "generation"],
    ["encryption", "blind"],
    ["encryption", "mac"],
    ["encryption", "wraps"],
    ["encryption", "wraps", "0"],
    ["encryption", "wraps", "0", "kdf"],
    ["encryption", "wraps", "0", "v"],
    ["encryption", "wraps", "0", "salt"],
    ["encryption", "wraps", "0", "iterations"],
    ["encryption", "wraps", "0", "keys"],
    ["encryption", "wraps", "1"],
    ["encryption", "other"],
  ];
  const values = fc.oneof(
    fc.constantFrom(
      null,
      true,
      0,
      -1,
      1,
      2,
      128,
      255,
      256,
      1000,
      2e9,
      4e9,
      1e300,
      -0,
      1.5,
      "",
      "AAAA",
      "not base64!",
      "PBKDF2-SHA256",
      "HKDF-SHA256",
      bytesToBase64(new Uint8Array(16)),
      bytesToBase64(new Uint8Array(32)),
      bytesToBase64(new Uint8Array(80)),
      [],
      {},
      { minBytes: 1 },
    ),
    fc.integer(),
    fc.string(),
    fc.base64String(),
    fc.jsonValue({ maxDepth: 2 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom(...paths), values), {
        minLength: 1,
        maxLength: 3,
      }),
      async (changes) => {
        const hostile = structuredClone(header) as Json;
        for (const [path, value] of changes) {
          let at: unknown = hostile;
          for (const part of path.slice(0, -1)) {
            at = (at as Json | null)?.[part];
          }
          if (typeof at === "object" && at !== null) {
            // A copy: the constants (`[]`, `{}`) are shared instances, and
            // one set inside itself made a cycle no header can hold (the
            // test's own JSON.stringify failed, seed -1147726813).
            (at as Json)[path.at(-1)!] = structuredClone(value);
          }
        }
        await setHeader(inner, hostile);
        const before = await snapshot(inner);
        const same = JSON.stringify(hostile) === JSON.stringify(header);
        try {
          const s = await CodecStorage.open(inner, { encryption: SECRET });
          assert.ok(same, `opened: ${JSON.stringify(hostile)}`);
          await s.close();
        } catch (e) {
          assert.ok(
            e instanceof IntegrityError || e instanceof WrongKeyError,
            `${JSON.stringify(hostile)}: ${e}`,
          );
          // Never a stored value or secret in the message.
          assert.ok(!(e as Error).message.includes(SECRET.passphrase));
        }
        assert.deepEqual(await snapshot(inner), before);
      },
    ),
    { numRuns: TORTURE ? 5000 : 150 },
  );
});

Deno.test("header validators shared with backups: iteration counts and salts", () => {
  assert.equal(iterationsProblem(1000), undefined);
  assert.equal(iterationsProblem(5_000_000), undefined);
  for (const bad of [999, 5_000_001, -1, 1.5, NaN, "1000", null, 2e9, 4e9]) {
    assert.match(iterationsProblem(bad)!, /from 1,000 to 5,000,000/);
  }
  assert.equal(saltProblem(bytesToBase64(new Uint8Array(16))), undefined);
  for (
    const bad of [
      "not base64!",
      "AAAA",
      null,
      16,
      bytesToBase64(new Uint8Array(65)),
    ]
  ) {
    assert.match(saltProblem(bad)!, /base64/);
  }
  assert.equal(base64ToBytes(bytesToBase64(new Uint8Array(16))).length, 16);
});

Deno.test("options: iterations outside 1,000..5,000,000 are a RangeError before anything is written", async () => {
  const inner = new Kept();
  for (const iterations of [1, 999, 5_000_001, 2e9]) {
    await assert.rejects(
      open({ storage: inner, encryption: { passphrase: "x", iterations } }),
      RangeError,
    );
  }
  assert.deepEqual(await snapshot(inner), []);
});
