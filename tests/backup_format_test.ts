/**
 * Backup format 2 and restore's guarantees without crashes: the keyed chain
 * (an encrypted backup cannot be cut, reordered or spliced without its
 * secret), hostile headers refused before any key derivation, format-1
 * backups still restoring, the backup read once, and a restore that fails
 * half way changing nothing.
 */

import assert from "node:assert/strict";
import {
  type Database,
  DuplicateKeyError,
  IntegrityError,
  open,
} from "../mod.ts";
import { concatBytes, encodeUtf8 } from "../src/bytes.ts";
import { open as openEnvelope, seal } from "../src/crypto/codec.ts";
import { FakeClock } from "./conformance/database_suite.ts";

const SECRET = { passphrase: "backup secret", iterations: 1000 };
const MAGIC = encodeUtf8("TETHERBK");

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function readU32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at);
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      concatBytes(parts) as Uint8Array<ArrayBuffer>,
    ),
  );
}

/** A backup taken apart: header bytes, block envelopes, summary bytes. */
interface Parts {
  header: Uint8Array;
  blocks: Uint8Array[];
  summary: Uint8Array;
}

function parse(bytes: Uint8Array): Parts {
  let at = MAGIC.length;
  const headerLength = readU32(bytes, at);
  const header = bytes.slice(at + 4, at + 4 + headerLength);
  at += 4 + headerLength;
  const blocks: Uint8Array[] = [];
  for (;;) {
    const length = readU32(bytes, at);
    at += 4;
    if (length === 0) break;
    blocks.push(bytes.slice(at, at + length));
    at += length;
  }
  const summaryLength = readU32(bytes, at);
  const summary = bytes.slice(at + 4, at + 4 + summaryLength);
  return { header, blocks, summary };
}

/**
 * Puts a backup together as someone without any secret can: SHA-256 chain
 * recomputed over whatever header, blocks and summary are given.
 */
async function assemble(parts: Parts): Promise<Uint8Array> {
  let chain = await sha256(MAGIC, u32(parts.header.length), parts.header);
  const out: Uint8Array[] = [MAGIC, u32(parts.header.length), parts.header];
  for (const block of parts.blocks) {
    chain = await sha256(chain, u32(block.length), block);
    out.push(u32(block.length), block);
  }
  const end = concatBytes([u32(0), u32(parts.summary.length), parts.summary]);
  chain = await sha256(chain, end);
  out.push(end, chain);
  return concatBytes(out);
}

/** A plain backup made of the given NDJSON lines, with a header as given. */
async function plainBackup(
  lines: readonly string[],
  header: Record<string, unknown> = {},
): Promise<Uint8Array> {
  const headerBytes = encodeUtf8(JSON.stringify({
    format: 2,
    createdAt: 1_700_000_000_000,
    source: "MemoryStorage",
    collections: null,
    since: null,
    encryption: null,
    ...header,
  }));
  const headerId = await sha256(headerBytes);
  const blocks = lines.length === 0 ? [] : [
    await seal(
      encodeUtf8(lines.map((l) => l + "\n").join("")),
      concatBytes([headerId, u32(0)]),
      { minBytes: 0 },
    ),
  ];
  return await assemble({
    header: headerBytes,
    blocks,
    summary: encodeUtf8(
      JSON.stringify({ lines: lines.length, blocks: blocks.length }),
    ),
  });
}

async function bytesOf(db: Database, options = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await db.backup(
    new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    options,
  );
  return concatBytes(chunks);
}

function stream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

/** Every document of the named collections, with counts and indexes. */
async function contents(
  db: Database,
  names = ["readings", "notes", "default"],
): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const c = db.collection(name);
    const docs = await c.find({}, { sort: { _id: 1 } }).toArray();
    out[name] = {
      count: await c.count(),
      docs,
      indexes: (await c.indexes()).map((i) => i.name),
    };
  }
  return out;
}

async function fillMany(db: Database, n: number, tag: string): Promise<void> {
  const r = db.collection("readings");
  await r.createIndex("device");
  const docs = [];
  for (let i = 0; i < n; i++) {
    docs.push({
      _id: `r${String(i).padStart(5, "0")}`,
      device: `d${i % 13}`,
      tag,
      payload: "x".repeat(180),
      n: i,
    });
  }
  await r.insertMany(docs);
}

Deno.test("an encrypted backup cut at a block boundary, with its unkeyed chain and summary recomputed, is refused and changes nothing", async () => {
  await using source = await open();
  await fillMany(source, 4000, "source");
  const encrypted = parse(await bytesOf(source, { encryption: SECRET }));
  const plain = parse(await bytesOf(source));
  assert.ok(encrypted.blocks.length >= 3, `${encrypted.blocks.length} blocks`);
  // Blocks hold the same lines in both (the split is by text length), so
  // the attacker's line count can be read off the plain one.
  const linesIn = async (block: Uint8Array, i: number) => {
    const id = concatBytes([await sha256(plain.header), u32(i)]);
    const text = new TextDecoder().decode(
      await openEnvelope(block, id, () => undefined, false),
    );
    return text.split("\n").filter((l) => l.trim() !== "").length;
  };
  const keep = encrypted.blocks.length - 1;
  let lines = 0;
  for (let i = 0; i < keep; i++) lines += await linesIn(plain.blocks[i]!, i);
  const summary = encodeUtf8(JSON.stringify({ lines, blocks: keep }));

  await using db = await open();
  await fillMany(db, 10, "mine");
  const before = await contents(db);
  const cut = await assemble({
    header: encrypted.header,
    blocks: encrypted.blocks.slice(0, keep),
    summary,
  });
  await assert.rejects(
    db.restore(stream(cut), { encryption: SECRET }),
    (e: Error) =>
      e instanceof IntegrityError && /keyed checksum/.test(e.message),
  );
  assert.deepEqual(await contents(db), before);
  // The same cut of the plain backup restores: its chain only finds
  // accidents (as FORMAT.md says), which shows the cut is well made.
  const plainCut = await assemble({
    header: plain.header,
    blocks: plain.blocks.slice(0, keep),
    summary,
  });
  assert.equal((await db.restore(stream(plainCut))).documents, lines - 1);
  // Without the secret the chain cannot be redone: the intact backup with
  // its chain recomputed unkeyed is refused; as written, it restores.
  await assert.rejects(
    db.restore(stream(await assemble(encrypted)), { encryption: SECRET }),
    IntegrityError,
  );
  const whole = await bytesOf(source, { encryption: SECRET });
  assert.equal(
    (await db.restore(stream(whole), { encryption: SECRET })).documents,
    4000,
  );
});

Deno.test("blocks of an encrypted backup reordered, or spliced in from another backup under the same secret, are refused", async () => {
  await using source = await open();
  await fillMany(source, 4000, "one");
  await using other = await open();
  await fillMany(other, 4000, "two");
  const a = parse(await bytesOf(source, { encryption: SECRET }));
  const b = parse(await bytesOf(other, { encryption: SECRET }));
  assert.ok(a.blocks.length >= 3 && b.blocks.length >= 3);
  await using db = await open();
  await db.put("mine", 1);
  const forged = [
    // Two blocks swapped.
    { ...a, blocks: [a.blocks[1]!, a.blocks[0]!, ...a.blocks.slice(2)] },
    // The second block taken from the other backup.
    { ...a, blocks: [a.blocks[0]!, b.blocks[1]!, ...a.blocks.slice(2)] },
    // The other backup's header over this one's blocks.
    { ...a, header: b.header },
  ];
  for (const parts of forged) {
    for (const bytes of [await assemble(parts)]) {
      await assert.rejects(
        db.restore(stream(bytes), { encryption: SECRET }),
        IntegrityError,
      );
      assert.equal(await db.get("mine"), 1);
      assert.equal(await db.collection("readings").count(), 0);
    }
  }
});

Deno.test("format-1 backups (committed fixtures, plain and encrypted) still restore", async () => {
  for (const name of ["plain", "encrypted"]) {
    const path = new URL(`./fixtures/backup_v1_${name}.tbk`, import.meta.url);
    const bytes = await Deno.readFile(path);
    assert.match(
      new TextDecoder().decode(bytes.subarray(0, 40)),
      /"format":1/,
    );
    await using db = await open();
    await db.put("gone", 1);
    const options = name === "encrypted"
      ? { encryption: { passphrase: "fixture", iterations: 1000 } }
      : {};
    const result = await db.restore(stream(bytes), options);
    assert.deepEqual(result, { documents: 6, expired: 0, deleted: 0 }, name);
    assert.equal(await db.get("gone"), null);
    const r = db.collection<{ _id?: string; device: string; n: number }>(
      "readings",
    );
    assert.deepEqual(
      (await r.find({ device: "d1" }).toArray()).map((d) => d.n),
      [1, 3],
    );
    assert.equal((await r.find({ device: "d1" }).explain()).index, "device_1");
    assert.deepEqual(await db.get("k"), { v: "kept" });
    const entry = await db.getEntry("k");
    assert.deepEqual(entry?.tags, ["t"]);
    assert.ok(entry?.expiresAt !== undefined);
  }
});

Deno.test("an encrypted format-1 backup emptied of its blocks is refused (nothing in it is bound to the secret)", async () => {
  const path = new URL("./fixtures/backup_v1_encrypted.tbk", import.meta.url);
  const v1 = parse(await Deno.readFile(path));
  const emptied = await assemble({
    header: v1.header,
    blocks: [],
    summary: encodeUtf8(JSON.stringify({ lines: 0, blocks: 0 })),
  });
  await using db = await open();
  await db.put("mine", 1);
  await assert.rejects(
    db.restore(stream(emptied), {
      encryption: { passphrase: "fixture", iterations: 1000 },
    }),
    (e: Error) => e instanceof IntegrityError && /format 1/.test(e.message),
  );
  assert.equal(await db.get("mine"), 1);
  // A format-2 header set back to format 1 no longer opens its blocks.
  await using source = await open();
  await source.put("a", 1);
  const v2 = parse(await bytesOf(source, { encryption: SECRET }));
  const header = JSON.parse(new TextDecoder().decode(v2.header));
  const downgraded = await assemble({
    ...v2,
    header: encodeUtf8(JSON.stringify({ ...header, format: 1 })),
  });
  await assert.rejects(
    db.restore(stream(downgraded), { encryption: SECRET }),
    IntegrityError,
  );
  assert.equal(await db.get("mine"), 1);
});

Deno.test("a hostile backup header is refused naming its field, before any key derivation", async () => {
  await using source = await open();
  await source.put("a", 1);
  const good = parse(await bytesOf(source, { encryption: SECRET }));
  const header = JSON.parse(new TextDecoder().decode(good.header));
  const wrap = header.encryption;
  const cases: [string, Record<string, unknown>][] = [
    ["encryption.iterations", { ...wrap, iterations: 4e9 }],
    ["encryption.iterations", { ...wrap, iterations: -1 }],
    ["encryption.iterations", { ...wrap, iterations: 999 }],
    ["encryption.iterations", { ...wrap, iterations: 1500.5 }],
    ["encryption.iterations", { ...wrap, iterations: "600000" }],
    ["encryption.iterations", { ...wrap, kdf: "HKDF-SHA256" }],
    ["encryption.salt", { ...wrap, salt: "not base64!" }],
    ["encryption.salt", { ...wrap, salt: "AAAA" }],
    ["encryption.salt", { ...wrap, salt: null }],
    ["encryption.keys", { ...wrap, keys: null }],
    ["encryption.keys", { ...wrap, keys: "%%%%" }],
    ["encryption.kdf", { ...wrap, kdf: "MD5" }],
    ["encryption.wraps", { ...wrap, wraps: null }],
  ];
  await using db = await open();
  await db.put("mine", 1);
  const attempt = async (bytes: Uint8Array, field: string) => {
    await assert.rejects(
      db.restore(stream(bytes), { encryption: SECRET }),
      (e: Error) => {
        assert.ok(e instanceof IntegrityError, `${field}: ${e}`);
        assert.ok(e.message.includes(field), `${field}: ${e.message}`);
        return true;
      },
    );
    assert.equal(await db.get("mine"), 1);
  };
  for (const [field, encryption] of cases) {
    const bytes = await assemble({
      ...good,
      header: encodeUtf8(JSON.stringify({ ...header, encryption })),
    });
    await attempt(bytes, field);
  }
  const top: [string, Record<string, unknown>][] = [
    ['"encryption"', { encryption: "yes" }],
    ['"encryption"', { encryption: [] }],
    ['"createdAt"', { createdAt: "today" }],
    ['"since"', { since: "yesterday" }],
    ['"collections"', { collections: ["../x"] }],
    ['"source"', { source: 5 }],
    ['"extra"', { extra: 1 }],
    ["format 3", { format: 3 }],
    ['"format"', { format: "2" }],
  ];
  for (const [field, change] of top) {
    const bytes = await assemble({
      ...good,
      header: encodeUtf8(JSON.stringify({ ...header, ...change })),
    });
    await attempt(bytes, field);
  }
  // A backup cannot be written that a restore would refuse.
  await assert.rejects(
    source.backup(new WritableStream(), {
      encryption: { passphrase: "p", iterations: 500 },
    }),
    RangeError,
  );
  // Nor can a database be opened with a count a restore would refuse.
  await assert.rejects(
    open({ encryption: { passphrase: "p", iterations: 10 } }),
    RangeError,
  );
  // A plain backup where a secret was given is refused.
  await attempt(await plainBackup([]), "not encrypted");
});

Deno.test("restore reads its backup once: a file replaced after it was read is not what gets applied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-once-" });
  const path = `${dir}/b.tbk`;
  await using first = await open();
  await first.put("which", "first");
  await first.backup(path);
  await using second = await open();
  await second.put("which", "second");
  const replacement = await bytesOf(second);
  const realOpen = Deno.open;
  let opens = 0;
  // Every time the backup file has been read to its end, it is replaced.
  Deno.open = async (target, options) => {
    const file = await realOpen(target, options);
    if (String(target) !== path) return file;
    opens++;
    const readable = file.readable.pipeThrough(
      new TransformStream({
        flush: async () => await Deno.writeFile(path, replacement),
      }),
    );
    return new Proxy(file, {
      get: (f, p) => p === "readable" ? readable : Reflect.get(f, p, f),
    });
  };
  try {
    await using db = await open();
    await db.restore(path);
    assert.equal(opens, 1);
    assert.equal(await db.get("which"), "first");
  } finally {
    Deno.open = realOpen;
    await Deno.remove(dir, { recursive: true });
  }
  // A stream is pulled through once.
  let pulls = 0;
  const bytes = await bytesOf(first);
  let sent = false;
  const counted = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      if (sent) controller.close();
      else controller.enqueue(bytes);
      sent = true;
    },
  });
  await using db = await open();
  await db.restore(counted);
  assert.equal(await db.get("which"), "first");
  assert.equal(pulls, 2);
});

Deno.test("a restore that fails while applying (a duplicate under a unique index) changes nothing", async () => {
  const bytes = await plainBackup([
    '{"col":"users","index":{"name":"email_1","fields":["email"],"unique":true,"sparse":false}}',
    '{"col":"users","id":"a","v":{"email":"x@y"},"c":1,"u":1,"n":1}',
    '{"col":"users","id":"b","v":{"email":"x@y"},"c":1,"u":1,"n":1}',
  ], { format: 1 });
  for (const mode of ["replace", "merge"] as const) {
    await using db = await open();
    await db.collection("users").insert({ _id: "old", email: "o@y" });
    await db.put("mine", 1);
    const before = await contents(db, ["users", "default"]);
    await assert.rejects(
      db.restore(stream(bytes), { mode }),
      DuplicateKeyError,
    );
    assert.deepEqual(await contents(db, ["users", "default"]), before, mode);
  }
});

Deno.test("after a restore the counts, TTL schedule, indexes and watchers follow the restored data", async () => {
  const clock = new FakeClock();
  await using source = await open({ clock });
  const r = source.collection("readings");
  await r.createIndex("device");
  await r.insert({ _id: "long", device: "a" }, { ttl: 10_000 });
  await r.insert({ _id: "short", device: "b" }, { ttl: 100 });
  await r.insert({ _id: "kept", device: "b" });
  const bytes = await bytesOf(source);
  await using db = await open({ clock });
  await db.collection("readings").insert({ _id: "old", device: "z" }, {
    ttl: 50,
  });
  await db.put("gone", 1);
  const seen: string[] = [];
  const controller = new AbortController();
  const watching = (async () => {
    for await (
      const change of db.collection("readings").watch({
        signal: controller.signal,
      })
    ) {
      seen.push(`${change.type} ${change.key}`);
      if (seen.length === 4) break;
    }
  })();
  await db.restore(stream(bytes));
  await watching;
  controller.abort();
  assert.deepEqual(seen.sort(), [
    "delete old",
    "put kept",
    "put long",
    "put short",
  ]);
  const readings = db.collection("readings");
  assert.equal(await readings.count(), 3);
  assert.equal(db.stats().items, 3);
  assert.equal(db.stats().ttlItems, 2);
  assert.equal(
    (await readings.find({ device: "b" }).explain()).index,
    "device_1",
  );
  clock.advance(200);
  assert.equal(await readings.count(), 2);
  assert.equal(await db.cleanup(), 1);
  assert.deepEqual(
    (await readings.find({}, { sort: { _id: 1 } }).toArray()).map((d) =>
      (d as { _id: string })._id
    ),
    ["kept", "long"],
  );
  await readings.insert({ _id: "new", device: "b" });
  assert.equal(await readings.count({ device: "b" }), 2);
});

Deno.test("restore into Deno KV: one atomic commit when it fits, in steps (and a warning) when it does not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const logged: { level: string; event: unknown; commits: unknown }[] = [];
    const record =
      (level: string) => (_: string, data: Record<string, unknown>) =>
        void logged.push({ level, event: data.event, commits: data.commits });
    await using db = await open({
      kv,
      logger: { info: record("info"), warn: record("warn") },
    });
    await db.put("old", 1);
    await using small = await open();
    await small.collection("c").insertMany([{ _id: "a" }, { _id: "b" }]);
    await db.restore(stream(await bytesOf(small)));
    assert.deepEqual(logged, [{ level: "info", event: "restore", commits: 1 }]);
    assert.equal(await db.get("old"), null);
    assert.equal(await db.collection("c").count(), 2);
    logged.length = 0;
    await using big = await open();
    await fillMany(big, 1500, "big");
    await db.restore(stream(await bytesOf(big)));
    assert.equal(logged[0]?.level, "warn");
    assert.equal(logged[0]?.event, "restore-steps");
    assert.ok((logged[0]?.commits as number) > 1);
    assert.deepEqual(await contents(db), await contents(big));
  } finally {
    kv.close();
  }
});
