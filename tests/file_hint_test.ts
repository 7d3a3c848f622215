/**
 * The key directory hint (`<log>.hint`): a clean close writes it, an open
 * loads keys and offsets from it and reads only the log after it, and the
 * storage it opens is the same, entry for entry (value, versionstamp,
 * metadata), as one that read the whole log. A hint that is damaged, cut
 * short, written for another log or for the log before a compaction is
 * ignored (and removed by a writer); commits appended after it (a crash
 * before the next close) and a torn tail after it read as without a hint.
 *
 * @module
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";
import {
  encodeHint,
  HINT_MIN_KEYS,
  hintPath,
  loadHint,
} from "../src/storage/file_hint.ts";
import { KeyDir, type KeyEntry, keyEntry } from "../src/storage/file_keydir.ts";

const N = HINT_MIN_KEYS + 500;

/** Every entry of a file storage: key, value, versionstamp, metadata. */
async function dump(path: string, readOnly = false): Promise<{
  entries: string[];
  hintKeys: number;
  warnings: string[];
}> {
  const warnings: string[] = [];
  const storage = await FileStorage.open(path, {
    readOnly,
    logger: { warn: (m: string) => warnings.push(m) },
  });
  const entries: string[] = [];
  const hex = (b: Uint8Array) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  try {
    for await (const page of storage.scan({})) {
      for (const e of page) {
        const meta = (e as { meta?: unknown }).meta;
        entries.push(
          `${hex(e.key)} ${hex(e.value)} ${e.versionstamp} ${
            JSON.stringify(meta)
          }`,
        );
      }
    }
    return { entries, hintKeys: storage.stats().hintKeys, warnings };
  } finally {
    await storage.close();
  }
}

/** A database of N documents with overwrites, deletes, expiries and tags. */
async function buildFresh(path: string): Promise<void> {
  const db = await open({ path, ttlCheckInterval: Infinity });
  for (let s = 0; s < N; s += 2_000) {
    await db.putBatch(
      new Map(
        Array.from(
          { length: Math.min(2_000, N - s) },
          (_, i) => [`k${String(s + i).padStart(6, "0")}`, { n: s + i }],
        ),
      ),
    );
  }
  const c = db.collection("other");
  for (let i = 0; i < 50; i++) {
    await c.put(`o${i}`, { i }, { ttl: 86_400_000, tags: ["t", `t${i % 3}`] });
  }
  for (let i = 0; i < N; i += 97) {
    await db.delete(`k${String(i).padStart(6, "0")}`);
  }
  for (let i = 1; i < N; i += 89) {
    await db.put(`k${String(i).padStart(6, "0")}`, { n: -i, again: true });
  }
  await db.close();
}

/**
 * The database {@linkcode buildFresh} writes, built once per run: each test
 * gets a copy of its files (the log and its hint), so that eight tests do
 * not each write the same 10,500 documents again. A test that needs another
 * log (not a copy) calls `buildFresh`.
 */
let template: Promise<string> | undefined;

async function build(path: string): Promise<void> {
  template ??= (async () => {
    const dir = await Deno.makeTempDir();
    const base = `${dir}/template.tdb`;
    await buildFresh(base);
    addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    return base;
  })();
  const base = await template;
  const dir = base.slice(0, base.lastIndexOf("/"));
  let copied = 0;
  for await (const f of Deno.readDir(dir)) {
    if (!f.isFile || !f.name.startsWith("template.tdb")) continue;
    await Deno.copyFile(`${dir}/${f.name}`, path + f.name.slice(12));
    copied++;
  }
  assert(copied >= 2, `template: ${copied} files (the log and its hint)`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("hint: a clean close writes it; an open loads it and holds exactly what reading the whole log gives", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    assert(await exists(hintPath(path)), "no hint after close");
    const hinted = await dump(path);
    assert(hinted.hintKeys > N / 2, `hintKeys ${hinted.hintKeys}`);
    assert.deepEqual(hinted.warnings, []);
    // Without it: the whole log is read; the same entries.
    const saved = await Deno.readFile(hintPath(path));
    await Deno.remove(hintPath(path));
    const whole = await dump(path, true);
    assert.equal(whole.hintKeys, 0);
    assert.deepEqual(hinted.entries, whole.entries);
    // A read-only open uses it too.
    await Deno.writeFile(hintPath(path), saved);
    const readOnly = await dump(path, true);
    assert.equal(readOnly.hintKeys, hinted.hintKeys);
    assert.deepEqual(readOnly.entries, whole.entries);
    // The database reads back through it.
    const db = await open({ path });
    try {
      assert.deepEqual(await db.get("k000001"), { n: -1, again: true });
      assert.equal(await db.get("k000097"), null);
      assert.deepEqual(await db.get("k000098"), { n: 98 });
      assert.equal(await db.collection("other").count({ tags: "t1" }), 17);
    } finally {
      await db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: commits appended after it (a crash before the next close) and a torn tail after them read as without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    const db = await open({ path, ttlCheckInterval: Infinity });
    try {
      await db.put("k000002", { n: 2, later: true });
      await db.delete("k000003");
      await db.put("new", { fresh: 1 });
      // The files as a crash now would leave them: the hint of the last
      // close, the log with the commits made since.
      const crashed = `${dir}/crashed.tdb`;
      await Deno.copyFile(path, crashed);
      await Deno.copyFile(hintPath(path), hintPath(crashed));
      const hinted = await dump(crashed, true);
      assert(hinted.hintKeys > 0);
      const plain = `${dir}/plain.tdb`;
      await Deno.copyFile(path, plain);
      const whole = await dump(plain, true);
      assert.deepEqual(hinted.entries, whole.entries);
      assert(hinted.entries.some((e) => e.includes("6e6577")), "new key");
      // A torn tail after them: cut off as always.
      const log = await Deno.readFile(crashed);
      await Deno.writeFile(
        crashed,
        new Uint8Array([...log, 40, 0, 0, 0, 9, 9, 9]),
      );
      const torn = await dump(crashed);
      assert(torn.hintKeys > 0);
      assert.deepEqual(torn.entries, whole.entries);
      assert.equal((await Deno.stat(crashed)).size, log.length);
    } finally {
      await db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: damaged, cut short, another log's, or the log's before a compaction: ignored, reported and removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    const good = await Deno.readFile(hintPath(path));
    const whole = await dump(`${path}`, true);
    const variants: [string, Uint8Array][] = [];
    for (const at of [3, 20, 60, 130, good.length >> 1, good.length - 2]) {
      const bad = good.slice();
      bad[at] = bad[at]! ^ 0x10;
      variants.push([`byte ${at} flipped`, bad]);
    }
    variants.push(["cut short", good.subarray(0, good.length - 100)]);
    variants.push(["empty", new Uint8Array(0)]);
    for (const [what, bytes] of variants) {
      await Deno.writeFile(hintPath(path), bytes);
      const got = await dump(path);
      assert.equal(got.hintKeys, 0, what);
      assert.deepEqual(got.entries, whole.entries, what);
      assert.equal(got.warnings.length, 1, what);
      assert.match(got.warnings[0]!, /hint .* was not used/, what);
      // The writer's close wrote a good one again.
      assert.deepEqual(await Deno.readFile(hintPath(path)), good, what);
    }
    // Another database's hint beside this log.
    const otherPath = `${dir}/other.tdb`;
    await buildFresh(otherPath);
    await Deno.copyFile(hintPath(otherPath), hintPath(path));
    const other = await dump(path, true);
    assert.equal(other.hintKeys, 0);
    assert.match(other.warnings[0]!, /another log/);
    await Deno.writeFile(hintPath(path), good);
    // Compaction removes the hint; the old one brought back is not used.
    const db = await open({ path, ttlCheckInterval: Infinity });
    await db.put("k000005", { n: 5, moved: true });
    await db.compact();
    assert(!(await exists(hintPath(path))), "hint left by compaction");
    const afterCompact = `${dir}/compacted.tdb`;
    await Deno.copyFile(path, afterCompact);
    await db.close();
    const plainCopy = `${dir}/compacted-plain.tdb`;
    await Deno.copyFile(afterCompact, plainCopy);
    await Deno.writeFile(hintPath(afterCompact), good);
    const stale = await dump(afterCompact);
    assert.equal(stale.hintKeys, 0);
    const plain = await dump(plainCopy, true);
    assert.deepEqual(stale.entries, plain.entries);
    // The hint its close wrote holds the same keys, values and metadata; its
    // versionstamps are the ones the database handed out before the close,
    // where a whole read of a compacted log gives each record of the
    // snapshot the snapshot's sequence number.
    const hinted = await dump(path, true);
    assert(hinted.hintKeys > 0);
    const noStamp = (e: string) => e.replace(/ [0-9a-f]{16} /, " ");
    assert.deepEqual(hinted.entries.map(noStamp), plain.entries.map(noStamp));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: none for a small database (an old one is removed at its close), and a hint cut short by a crash while being written is cleared", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    const good = await Deno.readFile(hintPath(path));
    // A crash while the next one was being written leaves its temporary.
    await Deno.writeFile(`${hintPath(path)}.tmp`, good.subarray(0, 50));
    const db = await open({ path, tombstoneRetention: 1 });
    assert(!(await exists(`${hintPath(path)}.tmp`)));
    assert(
      (db.stats().storageStats as { hintKeys: number }).hintKeys > 0,
      "hint not used",
    );
    // Shrunk below the threshold: no hint at close, the old one removed.
    await db.deleteMany({});
    await db.collection("other").clear();
    await new Promise((r) => setTimeout(r, 20)); // past the retention
    await db.compact();
    await db.put("left", { one: 1 });
    await db.close();
    assert(!(await exists(hintPath(path))), "hint kept for a small database");
    const again = await open({ path });
    try {
      assert.deepEqual(await again.get("left"), { one: 1 });
      assert.equal(await again.count(), 1);
    } finally {
      await again.close();
    }
    // A small database never gets one.
    const small = `${dir}/small.tdb`;
    const s = await open({ path: small });
    await s.putBatch(new Map([["a", 1], ["b", 2]]));
    await s.close();
    assert(!(await exists(hintPath(small))));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: bound to the bytes it covers: a change in the log's last 4 KiB before its end makes it unused, and the damage is found as without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    const log = await Deno.readFile(path);
    const bad = log.slice();
    bad[log.length - 300] = bad[log.length - 300]! ^ 0x20;
    await Deno.writeFile(path, bad);
    const warnings: string[] = [];
    await assert.rejects(
      FileStorage.open(path, {
        readOnly: true,
        logger: { warn: (m: string) => warnings.push(m) },
      }),
      (e: Error) => e.name === "IntegrityError",
    );
    assert.match(warnings.join("\n"), /another log/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: an entry that points outside the log it covers, or repeats a key, makes it unused (even with a right checksum)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    const db = await open({ path });
    await db.put("a", 1);
    await db.close();
    const log = await Deno.readFile(path);
    const reader = {
      gen: 0,
      path,
      read: (at: number, len: number) => log.subarray(at, at + len),
    };
    const source = {
      header: log.subarray(0, 64),
      covered: log.length,
      seq: 5,
      read: reader.read,
    };
    const hintOf = async (entries: [string, KeyEntry][]) => {
      const d = new KeyDir(reader);
      for (const [id, e] of entries) d.put(id, e);
      const parts: Uint8Array[] = [];
      await encodeHint(d, source, (b) => {
        parts.push(b.slice());
        return Promise.resolve();
      });
      const bytes = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
      let at = 0;
      for (const b of parts) {
        bytes.set(b, at);
        at += b.length;
      }
      let read = 0;
      const target = new KeyDir(reader);
      const got = loadHint(
        target,
        {
          size: bytes.length,
          next: (len) => bytes.subarray(read, read += len),
        },
        { size: log.length, read: reader.read },
        0,
      );
      return { got, keys: target.size };
    };
    const entry = (at: number, len: number, seq = 1) =>
      keyEntry(seq, at, len, 0, 0, false, -1, -1, 0);
    const fine = await hintOf([["x", entry(64, 10)], ["y", entry(80, 4)]]);
    assert.deepEqual(fine.got, { at: log.length, seq: 5, keys: 2 });
    assert.equal(fine.keys, 2);
    for (
      const [what, e] of [
        ["past its end", entry(log.length - 2, 10)],
        ["inside the header", entry(10, 4)],
        ["a later commit", entry(64, 4, 9)],
      ] as const
    ) {
      const bad = await hintOf([["x", entry(64, 10)], ["y", e]]);
      assert.equal(typeof bad.got, "string", what);
      assert.match(bad.got as string, /outside the log/, what);
      assert.equal(bad.keys, 0, `${what}: the directory is left empty`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint: an open from it does not read the frames it covers; verify() does, and finds a flipped byte there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/db.tdb`;
    await build(path);
    const healthy = await open({ path });
    try {
      assert.deepEqual((await healthy.verify()).problems, []);
    } finally {
      await healthy.close();
    }
    const log = await Deno.readFile(path);
    const bad = log.slice();
    const at = log.length >> 1; // far from the last 4 KiB
    bad[at] = bad[at]! ^ 0x01;
    await Deno.writeFile(path, bad);
    const db = await open({ path });
    try {
      const stats = db.stats().storageStats as { hintKeys: number };
      assert(stats.hintKeys > 0, "the hint was used");
      const report = await db.verify();
      const found = report.problems.find((p) => p.collection === "");
      assert(found !== undefined, JSON.stringify(report.problems));
      assert.match(found.problem, /damaged at byte \d+/);
    } finally {
      await db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hint and log replay: inserts after a reopen come after every earlier one in insertion order, in every collection (the key directory keeps only the highest insertion sequence)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // One millisecond for every write: only the insertion sequence orders.
    const clock = { now: () => 1_700_000_000_000 };
    const timers = { ttlCheckInterval: Infinity, cleanupInterval: Infinity };
    const path = `${dir}/order.tdb`;
    {
      await using db = await open({ path, clock, ...timers });
      const a = db.collection("a");
      for (const k of ["a1", "a2", "a3"]) await a.put(k, { k });
      // Another collection numbers far past it (and makes a hint).
      await db.collection("b").putBatch(
        Array.from({ length: HINT_MIN_KEYS }, (_, i) => ({ i })),
      );
      assert.deepEqual(await a.first(1), [{ k: "a1" }]); // order built
    }
    const saved = await Deno.readFile(hintPath(path));
    for (const viaHint of [true, false, true]) {
      if (viaHint) await Deno.writeFile(hintPath(path), saved);
      else await Deno.remove(hintPath(path));
      await using db = await open({ path, clock, ...timers });
      const hintKeys = db.stats().storageStats?.hintKeys as number;
      assert.equal(hintKeys > 0, viaHint);
      const a = db.collection("a");
      const before = (await a.first(100)).map((d) => (d as { k: string }).k);
      const k = `a${before.length + 1}`;
      await a.put(k, { k });
      assert.deepEqual(
        (await a.first(100)).map((d) => (d as { k: string }).k),
        [...before, k],
        `via hint: ${viaHint}`,
      );
      assert.deepEqual(await a.last(1), [{ k }]);
      const b = db.collection("b");
      await b.put(`b-${k}`, { i: -1 });
      assert.deepEqual(await b.last(1), [{ i: -1 }]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
