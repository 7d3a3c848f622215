/**
 * Key derivation and blind digests (issue 13, item 10): one 256-bit PBKDF2
 * master expanded with HKDF (checked against node:crypto), blind digests
 * bound to collection and field, and databases written by the old
 * derivation (tests/fixtures/crypto_v1.json) still open, answer by blind
 * index, and move to the new derivation on rekey.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  createDecipheriv,
  createHmac,
  hkdfSync,
  pbkdf2Sync,
} from "node:crypto";
import { open, WrongKeyError } from "../mod.ts";
import { base64ToBytes } from "../src/bytes.ts";
import { blindInput } from "../src/crypto/blind_index.ts";
import { openWithSecret, sealWithSecret } from "../src/crypto/codec_wrap.ts";
import { decodeKey, encodeKey } from "../src/key_codec.ts";
import { encodeIndexKey } from "../src/index_key_codec.ts";
import { MemoryStorage } from "../src/storage/memory.ts";

const HEADER = encodeKey(["k", "header"]);

class Kept extends MemoryStorage {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}

// deno-lint-ignore no-explicit-any
async function header(inner: MemoryStorage): Promise<any> {
  const found = await inner.get(HEADER);
  return JSON.parse(new TextDecoder().decode(found!.value));
}

/** Opens a wrap's sealed bytes with node:crypto, given its two keys. */
function nodeUnwrap(sealed: Buffer, enc: Buffer, mac: Buffer): Buffer {
  const identity = Buffer.from("tether-db keys");
  const iv = sealed.subarray(3, 19);
  const ciphertext = sealed.subarray(19, sealed.length - 32);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(identity.length);
  const tag = createHmac("sha256", mac).update(sealed.subarray(0, 3))
    .update(iv).update(ciphertext).update(len).update(identity).digest();
  assert.deepEqual(tag, sealed.subarray(sealed.length - 32), "wrap tag");
  const d = createDecipheriv("aes-256-cbc", enc, iv);
  return Buffer.concat([d.update(ciphertext), d.final()]);
}

Deno.test("derivation 2 known answers: PBKDF2-SHA256 to 32 bytes, then HKDF-SHA256 per key (node:crypto)", async () => {
  const data = new TextEncoder().encode("the data keys");
  // A passphrase.
  const secret = { passphrase: "known answer", iterations: 1234 };
  const wrap = await sealWithSecret(secret, data);
  assert.equal(wrap.kdf, "PBKDF2-SHA256");
  assert.equal(wrap.v, 2);
  assert.equal(wrap.iterations, 1234);
  const salt = Buffer.from(wrap.salt, "base64");
  assert.equal(salt.length, 16);
  const master = pbkdf2Sync(secret.passphrase, salt, 1234, 32, "sha256");
  const expand = (ikm: Buffer | Uint8Array, info: string) =>
    Buffer.from(hkdfSync("sha256", ikm, salt, info, 32));
  assert.deepEqual(
    nodeUnwrap(
      Buffer.from(wrap.keys, "base64"),
      expand(master, "tether-db wrap enc"),
      expand(master, "tether-db wrap mac"),
    ),
    Buffer.from(data),
  );
  // Not the old split: the first 32 bytes of 64 do not open it.
  const old = pbkdf2Sync(secret.passphrase, salt, 1234, 64, "sha256");
  assert.throws(() =>
    nodeUnwrap(
      Buffer.from(wrap.keys, "base64"),
      old.subarray(0, 32),
      old.subarray(32),
    )
  );
  // A raw key: HKDF of the key itself.
  const key = new Uint8Array(32).map((_, i) => 255 - i);
  const raw = await sealWithSecret({ key }, data);
  assert.equal(raw.kdf, "HKDF-SHA256");
  assert.equal(raw.v, 2);
  assert.equal(raw.iterations, undefined);
  const rawSalt = Buffer.from(raw.salt, "base64");
  const rawExpand = (info: string) =>
    Buffer.from(hkdfSync("sha256", key, rawSalt, info, 32));
  assert.deepEqual(
    nodeUnwrap(
      Buffer.from(raw.keys, "base64"),
      rawExpand("tether-db wrap enc"),
      rawExpand("tether-db wrap mac"),
    ),
    Buffer.from(data),
  );
  assert.deepEqual(await openWithSecret({ key }, raw), data);
  assert.equal(await openWithSecret(secret, raw), undefined);
});

/** The digest parts of a collection's index keys, per index. */
async function digests(
  inner: MemoryStorage,
  collection: string,
): Promise<Map<string, Uint8Array[]>> {
  const out = new Map<string, Uint8Array[]>();
  for await (const page of inner.scan({ prefix: encodeKey(["i"]) })) {
    for (const e of page) {
      const parts = decodeKey(e.key);
      if (parts[1] !== collection) continue;
      const name = String(parts[2]);
      const list = out.get(name) ?? [];
      list.push(parts[3] as Uint8Array);
      out.set(name, list);
    }
  }
  return out;
}

Deno.test("blind digests are bound to collection and field: equal values in two fields differ (node:crypto)", async () => {
  const inner = new Kept();
  const secret = { passphrase: "blind", iterations: 1000 };
  {
    await using db = await open({ storage: inner, encryption: secret });
    for (const name of ["a", "b"]) {
      const c = db.collection(name);
      await c.createIndex("city");
      await c.createIndex("home");
      await c.put("x", { city: "Oslo", home: "Oslo" });
    }
    assert.equal(await db.collection("a").count({ home: "Oslo" }), 1);
    assert.equal(await db.collection("b").count({ city: "Oslo" }), 1);
    assert.equal(await db.collection("b").count({ city: "Lima" }), 0);
  }
  const h = await header(inner);
  assert.equal(h.v, 2);
  assert.equal(h.encryption.blind, 2);
  const a = await digests(inner, "a");
  const b = await digests(inner, "b");
  const all = [
    a.get("city_1")![0]!,
    a.get("home_1")![0]!,
    b.get("city_1")![0]!,
  ];
  assert.equal(new Set(all.map((d) => Buffer.from(d).toString("hex"))).size, 3);
  // HMAC-SHA256 under the blind key of (collection, field, value), 16 bytes.
  const material = JSON.parse(
    new TextDecoder().decode(
      (await openWithSecret(secret, h.encryption.wraps[0]))!,
    ),
  );
  const expected = createHmac("sha256", base64ToBytes(material.b))
    .update(blindInput("a", "home", encodeIndexKey(["Oslo"])))
    .digest().subarray(0, 16);
  assert.deepEqual(Buffer.from(a.get("home_1")![0]!), expected);
  // The input: uint32 length ‖ collection ‖ uint32 length ‖ field ‖ value.
  assert.deepEqual(
    blindInput("a", "home", encodeIndexKey(["Oslo"])),
    new Uint8Array([
      0,
      0,
      0,
      1,
      97,
      0,
      0,
      0,
      4,
      ...new TextEncoder().encode("home"),
      ...encodeIndexKey(["Oslo"]),
    ]),
  );
});

interface Fixture {
  secret: { passphrase?: string; iterations?: number; key?: string };
  entries: [string, string][];
}

async function loadFixture(which: "passphrase" | "key"): Promise<{
  inner: Kept;
  secret: { passphrase: string; iterations: number } | { key: Uint8Array };
}> {
  const all = JSON.parse(
    await Deno.readTextFile(
      new URL("./fixtures/crypto_v1.json", import.meta.url),
    ),
  );
  const fixture = all[which] as Fixture;
  const inner = new Kept();
  const r = await inner.commit({
    sets: fixture.entries.map(([k, v]) => ({
      key: base64ToBytes(k),
      value: base64ToBytes(v),
    })),
  });
  assert.ok(r.ok);
  const secret = fixture.secret.key !== undefined
    ? { key: base64ToBytes(fixture.secret.key) }
    : {
      passphrase: fixture.secret.passphrase!,
      iterations: fixture.secret.iterations!,
    };
  return { inner, secret };
}

async function checkPeople(
  db: Awaited<ReturnType<typeof open>>,
  where: string,
): Promise<void> {
  const people = db.collection("people");
  assert.equal(await people.count({ city: "Oslo" }), 4, where);
  assert.equal(await people.count({ home: "Oslo" }), 4, where);
  assert.equal(await people.count({ city: { $in: ["Lima", "Pune"] } }), 8);
  const plan = await people.find({ city: "Lima" }).explain();
  assert.match(JSON.stringify(plan), /city_1/, where);
  assert.deepEqual(
    (await people.findOne({ email: "p7@example.org" }) as { name: string })
      ?.name,
    "person 7",
    where,
  );
  assert.deepEqual(await db.get("k1"), { a: 1 }, where);
  assert.equal(await db.get("k2"), "two", where);
}

for (const which of ["passphrase", "key"] as const) {
  Deno.test(`an old-derivation database (${which}) opens, answers by blind index, and moves to derivation 2 on rekey`, async () => {
    const { inner, secret } = await loadFixture(which);
    const v1 = await header(inner);
    assert.equal(v1.v, 1);
    assert.equal(v1.encryption.wraps[0].v, undefined);
    {
      await using db = await open({ storage: inner, encryption: secret });
      await checkPeople(db, "v1");
      // New writes keep the database's blind scheme: the index finds them.
      await db.collection("people").put("p12", {
        city: "Oslo",
        home: "Rome",
        email: "p12@example.org",
      });
      assert.equal(await db.collection("people").count({ city: "Oslo" }), 5);
      await db.collection("people").delete("p12");
    }
    // Opening (without a change of options) leaves the old header.
    assert.deepEqual(await header(inner), v1);
    const next = { passphrase: `rekeyed ${which}`, iterations: 1000 };
    {
      await using db = await open({ storage: inner, encryption: secret });
      assert.ok(await db.rekey(next) > 0);
      await checkPeople(db, "after rekey");
    }
    const v2 = await header(inner);
    assert.equal(v2.v, 2);
    assert.equal(v2.encryption.wraps.length, 1);
    assert.equal(v2.encryption.wraps[0].v, 2);
    assert.equal(v2.encryption.wraps[0].kdf, "PBKDF2-SHA256");
    assert.equal(typeof v2.encryption.mac, "string");
    // Its blind indexes keep the scheme they were built with.
    assert.equal(v2.encryption.blind, 1);
    await assert.rejects(
      open({ storage: inner, encryption: secret }),
      WrongKeyError,
    );
    await using db = await open({ storage: inner, encryption: next });
    await checkPeople(db, "reopened");
  });
}
