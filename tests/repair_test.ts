// repair(): copies every intact record of a damaged database into a new
// one, reports each lost key or byte range, and never touches the original.

import assert from "node:assert/strict";
import {
  type Database,
  IntegrityError,
  open,
  repair,
  WrongKeyError,
} from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";
import { encodeKey } from "../src/key_codec.ts";

const SECRET = { passphrase: "correct horse", iterations: 1000 };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-repair-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return Array.from(new Uint8Array(digest), (b) => b.toString(16)).join(",");
}

/**
 * Every live document with its metadata, as export writes it, without the
 * insertion sequence number (`s`) and change feed position (`f`), both
 * renumbered by a copy, by collection/key.
 */
async function model(db: Database): Promise<Map<string, unknown>> {
  let text = "";
  await db.export(
    new WritableStream({
      write: (c) => void (text += new TextDecoder().decode(c)),
    }),
  );
  const out = new Map<string, unknown>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const { s: _, f: _f, ...rest } = JSON.parse(line);
    if (rest.index !== undefined) continue; // index definitions: below
    out.set(`${rest.col}/${rest.id}`, rest);
  }
  return out;
}

/** Names of index definitions, per collection. */
async function indexes(db: Database): Promise<string[]> {
  const out: string[] = [];
  for (const name of await db.collections()) {
    for (const i of await db.collection(name).indexes()) {
      out.push(`${name}.${i.name}${i.unique ? " unique" : ""}`);
    }
  }
  return out.sort();
}

/** A database with documents in two collections, TTLs, tags, versions. */
async function fill(db: Database): Promise<void> {
  const users = db.collection("users");
  await users.createIndex("email", { unique: true });
  await users.createIndex(["city", "age"]);
  for (let i = 0; i < 40; i++) {
    await users.insert({
      _id: `u${i}`,
      email: `u${i}@example.com`,
      city: i % 2 ? "Oslo" : "Rome",
      age: 20 + i,
      born: new Date(Date.UTC(1990, 0, 1 + i)),
    });
  }
  await users.update({ _id: "u3" }, { $set: { age: 99 } });
  await users.update({ _id: "u3" }, { $inc: { age: 1 } });
  for (let i = 0; i < 10; i++) {
    await db.put(`k${i}`, { n: i, text: "x".repeat(300) }, {
      ttl: 3_600_000,
      tags: ["sensor", `s${i % 3}`],
    });
  }
  await db.put("gone", 1, { ttl: 1 });
  await new Promise((r) => setTimeout(r, 5));
}

/**
 * Rewrites the stored value of one document through the raw file storage:
 * a valid log frame holding an envelope that fails its MAC.
 */
async function flipRecord(
  path: string,
  collection: string,
  id: string,
): Promise<void> {
  const raw = await FileStorage.open(path);
  try {
    const key = encodeKey(["d", collection, id]);
    const entry = await raw.get(key);
    assert(entry !== null, `${collection}/${id} is stored`);
    const value = entry.value.slice();
    value[25]! ^= 0x01; // inside the ciphertext
    const result = await raw.commit({ sets: [{ key, value }] });
    assert(result.ok);
    await result.durable;
  } finally {
    await raw.close();
  }
}

Deno.test("repair: an encrypted database with one record failing its MAC is copied whole but that key, which is reported; the original is unchanged", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    const out = `${dir}/new.tdb`;
    let expected: Map<string, unknown>;
    let expectedIndexes: string[];
    {
      await using db = await open({ path, encryption: SECRET });
      await fill(db);
      expected = await model(db);
      expectedIndexes = await indexes(db);
    }
    await flipRecord(path, "users", "u7");
    expected.delete("users/u7");
    // Today's behaviour: the database does not open at all.
    await assert.rejects(open({ path, encryption: SECRET }), IntegrityError);
    const before = await sha256(path);
    const listing = async () =>
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    const files = await listing();

    // Without a target: a report of what a repair would do, nothing written.
    const dry = await repair({ path, encryption: SECRET });
    assert.equal(dry.target, undefined);
    assert.deepEqual(await listing(), files);

    const logged: [string, Record<string, unknown>][] = [];
    const logger = {
      warn: (_: string, data: Record<string, unknown>) =>
        void logged.push(["warn", data]),
      info: (_: string, data: Record<string, unknown>) =>
        void logged.push(["info", data]),
    };
    const report = await repair({ path, encryption: SECRET }, { path: out }, {
      logger,
    });
    assert.deepEqual(
      logged.map(([level, d]) => [level, d.event, d.key ?? d.copied]),
      [["warn", "repair-lost", "u7"], ["info", "repair", expected.size]],
    );
    assert.equal(report.target, out);
    assert.equal(report.lost.length, 1, JSON.stringify(report.lost));
    const [lost] = report.lost;
    assert.equal(lost!.collection, "users");
    assert.equal(lost!.key, "u7");
    assert.match(lost!.reason, /MAC/);
    assert.equal(lost!.offset, undefined);
    assert.equal(report.copied, expected.size);
    assert.equal(report.expired, 1); // "gone"
    assert.equal(report.indexes, 2);
    assert.deepEqual(report.damagedRanges, []);
    assert.equal(report.tornBytes, 0);
    assert.deepEqual(
      { ...dry, target: out },
      report,
      "the dry run reports the same",
    );
    // Never secret values in the report.
    assert.doesNotMatch(JSON.stringify(report), /example\.com|Oslo|Rome/);

    assert.equal(await sha256(path), before, "the original is unchanged");
    assert.deepEqual(
      (await listing()).filter((n) => !files.includes(n)),
      ["new.tdb"],
      "no work directory left behind",
    );

    await assert.rejects(open({ path: out }), WrongKeyError);
    await using copy = await open({ path: out, encryption: SECRET });
    assert.deepEqual(await model(copy), expected);
    assert.deepEqual(await indexes(copy), expectedIndexes);
    assert.deepEqual((await copy.verify()).problems, []);
    // The indexes are rebuilt and enforced.
    const users = copy.collection("users");
    assert.deepEqual(
      (await users.find({ city: "Oslo", age: { $gte: 55 } }).toArray())
        .map((d) => (d as { _id: string })._id).sort(),
      ["u3", "u35", "u37", "u39"],
    );
    await assert.rejects(
      users.insert({ _id: "dup", email: "u1@example.com" }),
      (e: Error) => e.name === "DuplicateKeyError",
    );
    // Insertion order survives.
    assert.deepEqual(
      (await users.first(3)).map((d) => (d as { _id: string })._id),
      ["u0", "u1", "u2"],
    );
    assert.equal((await users.getEntry("u3"))?.version, 3);
    assert.ok((await users.get("u0") as { born: Date }).born instanceof Date);
  });
});

Deno.test("repair: wrong or missing secret is a WrongKeyError, an existing target a TypeError; nothing is written", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    {
      await using db = await open({ path, encryption: SECRET });
      await db.put("a", 1);
    }
    const before = await sha256(path);
    await assert.rejects(
      repair({ path, encryption: { ...SECRET, passphrase: "wrong" } }, {
        path: `${dir}/new.tdb`,
      }),
      WrongKeyError,
    );
    await assert.rejects(
      repair({ path }, { path: `${dir}/new.tdb` }),
      WrongKeyError,
    );
    await Deno.writeTextFile(`${dir}/taken.tdb`, "mine");
    await assert.rejects(
      repair({ path, encryption: SECRET }, { path: `${dir}/taken.tdb` }),
      (e: Error) => e instanceof TypeError && /already exists/.test(e.message),
    );
    await assert.rejects(
      repair({ path, encryption: SECRET }, { path }),
      TypeError,
    );
    await assert.rejects(
      repair({ path, encryption: SECRET, patth: "x" } as never),
      (e: Error) => e instanceof TypeError && /'patth'/.test(e.message),
    );
    await assert.rejects(
      repair({ path: `${dir}/missing.tdb` }, { path: `${dir}/new.tdb` }),
      TypeError,
    );
    assert.equal(await Deno.readTextFile(`${dir}/taken.tdb`), "mine");
    assert.equal(await sha256(path), before);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name)
        .filter((n) => n.startsWith("new") || n.includes("repair")),
      [],
    );
  });
});

Deno.test("repair: a plain compressed database is copied whole, compressed, and a new secret can be given", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    let expected: Map<string, unknown>;
    {
      await using db = await open({ path, compression: { minBytes: 64 } });
      await fill(db);
      expected = await model(db);
    }
    const report = await repair({ path }, { path: `${dir}/plain.tdb` });
    assert.deepEqual(report.lost, []);
    assert.equal(report.copied, expected.size);
    {
      await using copy = await open({ path: `${dir}/plain.tdb` });
      assert.deepEqual(await model(copy), expected);
      assert.equal(copy.stats().storageStats?.compression, 64);
    }
    const secret = { key: new Uint8Array(32).fill(7) };
    await repair({ path }, { path: `${dir}/sealed.tdb`, encryption: secret });
    await assert.rejects(open({ path: `${dir}/sealed.tdb` }), WrongKeyError);
    await using sealed = await open({
      path: `${dir}/sealed.tdb`,
      encryption: secret,
    });
    assert.deepEqual(await model(sealed), expected);
  });
});

Deno.test("repair: a file with a damaged log range in the middle: every intact commit is copied, the range is reported", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    const fileBytes = (db: Database) =>
      db.stats().storageStats?.fileBytes as number;
    let range: { offset: number; bytes: number };
    let expected: Map<string, unknown>;
    {
      await using db = await open({ path });
      for (let i = 0; i < 10; i++) await db.put(`k${i}`, { n: i });
      const offset = fileBytes(db);
      await db.put("k10", { n: 10 }); // this commit's frame is damaged below
      range = { offset, bytes: fileBytes(db) - offset };
      for (let i = 11; i < 20; i++) await db.put(`k${i}`, { n: i });
      await db.put("k3", { n: 3, again: true }); // version 2, after the damage
      expected = await model(db);
    }
    expected.delete("default/k10");
    const bytes = await Deno.readFile(path);
    bytes[range.offset + Math.floor(range.bytes / 2)]! ^= 0x5a;
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      open({ path }),
      (e: Error) =>
        e instanceof IntegrityError &&
        e.message.includes(`byte ${range.offset}`),
    );
    const before = await sha256(path);

    const report = await repair({ path }, { path: `${dir}/new.tdb` });
    assert.equal(await sha256(path), before, "the original is unchanged");
    assert.deepEqual(
      report.damagedRanges.map((d) => [d.offset, d.bytes]),
      [[range.offset, range.bytes]],
    );
    assert.equal(report.lost.length, 1);
    assert.equal(report.lost[0]!.offset, range.offset);
    assert.equal(report.lost[0]!.bytes, range.bytes);
    assert.equal(report.lost[0]!.reason, report.damagedRanges[0]!.reason);
    assert.equal(report.copied, 19);
    await using copy = await open({ path: `${dir}/new.tdb` });
    assert.deepEqual(await model(copy), expected);
    assert.equal((await copy.getEntry("k3"))?.version, 2);
  });
});

Deno.test("repair: a kill mid-repair leaves no file under the target's name, and the repair can be run again", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    const out = `${dir}/new.tdb`;
    const n = Deno.env.get("TETHER_TORTURE") ? 50_000 : 10_000;
    {
      await using db = await open({ path });
      const docs = Array.from({ length: n }, (_, i) => ({
        _id: `d${i}`,
        i,
        pad: "p".repeat(200),
      }));
      for (let i = 0; i < n; i += 1000) {
        await db.collection("c").insertMany(docs.slice(i, i + 1000));
      }
    }
    const before = await sha256(path);
    const script = `${dir}/run.ts`;
    await Deno.writeTextFile(
      script,
      `import { repair } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };\nawait repair({ path: ${JSON.stringify(path)} }, { path: ${
        JSON.stringify(out)
      } });\n`,
    );
    const runs = Deno.env.get("TETHER_TORTURE") ? 10 : 2;
    for (let run = 0; run < runs; run++) {
      const initial: string[] = [];
      for await (const e of Deno.readDir(dir)) initial.push(e.name);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", script],
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => exited = true);
      // Wait until the repair has written something, then kill.
      while (!exited) {
        const names = [];
        for await (const e of Deno.readDir(dir)) names.push(e.name);
        if (names.some((name) => !initial.includes(name))) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      if (run > 0) await new Promise((r) => setTimeout(r, 20 * run));
      try {
        child.kill("SIGKILL");
      } catch {
        // It had already finished.
      }
      const status = await child.status;
      const exists = await Deno.lstat(out).then(() => true, () => false);
      if (status.success) {
        // Finished before the kill: the target is complete.
        await using done = await open({ path: out, readOnly: true });
        assert.equal(await done.collection("c").count(), n);
        await Deno.remove(out);
      } else {
        assert.equal(exists, false, `run ${run}: a target after a kill`);
      }
    }
    assert.equal(await sha256(path), before);
    const report = await repair({ path }, { path: out });
    assert.equal(report.copied, n);
    await using copy = await open({ path: out });
    assert.equal(await copy.collection("c").count(), n);
  });
});

Deno.test("repair: a record or an index definition that does not decode is reported by collection and key or name", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    let expected: Map<string, unknown>;
    {
      await using db = await open({ path });
      await fill(db);
      expected = await model(db);
    }
    const raw = await FileStorage.open(path);
    const bad = new TextEncoder().encode("{not json");
    await raw.commit({
      sets: [
        { key: encodeKey(["d", "users", "u5"]), value: bad },
        { key: encodeKey(["m", "users", "index", "email_1"]), value: bad },
      ],
    });
    await raw.close();
    expected.delete("users/u5");
    await assert.rejects(open({ path }), IntegrityError);
    const report = await repair({ path }, { path: `${dir}/new.tdb` });
    assert.deepEqual(
      report.lost.map((l) => [l.collection, l.key ?? l.index]),
      [["users", "u5"], ["users", "email_1"]],
    );
    for (const l of report.lost) assert.match(l.reason, /does not decode/);
    assert.equal(report.indexes, 1);
    await using copy = await open({ path: `${dir}/new.tdb` });
    assert.deepEqual(await model(copy), expected);
    assert.deepEqual(await indexes(copy), ["users.city_1_age_1"]);
  });
});
