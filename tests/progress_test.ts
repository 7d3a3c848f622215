// onProgress(done, total) of verify(), compact(), repair() and rekey(): the total is
// known from the first call, done never decreases nor passes it, the last
// call has done === total, and calls come now and then, not per value.

import assert from "node:assert/strict";
import { type Database, open, repair } from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";

const SECRET = { passphrase: "correct horse", iterations: 1000 };
/**
 * Documents of the verify, repair and rekey tests: about a thousand, so that
 * every pass reports several pages (6 to 17 calls) and calls per value would
 * pass the N / 10 bound.
 */
const N = 1000;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-progress-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Collects the calls of an onProgress. */
function recorder(): {
  calls: [number, number][];
  onProgress: (done: number, total: number) => void;
} {
  const calls: [number, number][] = [];
  return { calls, onProgress: (done, total) => void calls.push([done, total]) };
}

/** Checks the calls keep the promise; returns the final total. */
function checkCalls(calls: readonly [number, number][], what: string): number {
  assert(calls.length > 0, `${what}: never called`);
  let done = 0;
  let total = calls[0]![1];
  for (const [d, t] of calls) {
    assert.equal(typeof t, "number", `${what}: a total in every call`);
    assert(Number.isFinite(t) && t >= 0, `${what}: total ${t}`);
    assert(d >= done, `${what}: done went back from ${done} to ${d}`);
    assert(d <= t, `${what}: done ${d} passed the total ${t}`);
    done = d;
    total = t;
  }
  assert.deepEqual(calls.at(-1), [total, total], `${what}: ends at the total`);
  return total;
}

async function fill(db: Database): Promise<void> {
  const c = db.collection("c");
  await c.createIndex("n");
  // Groups small enough for one atomic write of Deno KV.
  for (let at = 0; at < N; at += 25) {
    await c.insertMany(
      Array.from({ length: 25 }, (_, i) => ({ _id: `k${at + i}`, n: i % 7 })),
    );
  }
}

Deno.test("progress: verify reports stored values checked, in pages, ending at the total, on memory, file, encrypted file and Deno KV", async () => {
  await withDir(async (dir) => {
    const cases: [string, () => Promise<Database>][] = [
      ["memory", () => open()],
      ["file", () => open({ path: `${dir}/plain.tdb` })],
      [
        "encrypted file",
        () => open({ path: `${dir}/sealed.tdb`, encryption: SECRET }),
      ],
      ["kv", () => open({ kv: ":memory:" })],
    ];
    for (const [name, opening] of cases) {
      await using db = await opening();
      await fill(db);
      const { calls, onProgress } = recorder();
      const report = await db.verify({ onProgress });
      assert.deepEqual(report.problems, [], name);
      const total = checkCalls(calls, name);
      // Documents and index entries at least (a sealed pass reads more).
      assert(total >= 2 * N, `${name}: total ${total}`);
      assert(calls.length > 2, `${name}: ${calls.length} calls`);
      assert(calls.length < N / 10, `${name}: ${calls.length} calls`);
      // The first call comes before any value is read: 0 of the total.
      assert.deepEqual(calls[0], [0, total], name);
      // The same without a callback, and with undefined.
      assert.deepEqual(await db.verify({ onProgress: undefined }), report);
    }
  });
});

Deno.test("progress: verify of an empty database reports 0 of 0", async () => {
  await using db = await open();
  const { calls, onProgress } = recorder();
  await db.verify({ onProgress });
  assert.deepEqual(calls, [[0, 0]]);
});

Deno.test("progress: compact of a file reports the bytes of live records copied, ending at their total", async () => {
  await withDir(async (dir) => {
    await using db = await open({ path: `${dir}/app.tdb` });
    const c = db.collection("c");
    const blob = "x".repeat(2000);
    // About 6 MiB live: enough for a report between the first and the last.
    await c.insertMany(
      Array.from(
        { length: 3000 },
        (_, i) => ({ _id: `k${i}`, round: 0, blob }),
      ),
    );
    // Dead data for the compaction to drop.
    for (let round = 1; round < 3; round++) {
      await c.updateMany({}, { $set: { round } });
    }
    const live = db.stats().storageStats?.liveBytes as number;
    const { calls, onProgress } = recorder();
    assert.equal(await db.compact({ onProgress }), true);
    const total = checkCalls(calls, "compact");
    // Every live record's bytes (about 6 MiB): reported more than once.
    assert(total > 0 && total <= live, `total ${total}, live ${live}`);
    assert(calls.length >= 2, `${calls.length} calls`);
    // Nothing written since: nothing to rewrite, 0 of 0.
    const again = recorder();
    assert.equal(await db.compact({ onProgress: again.onProgress }), false);
    assert.deepEqual(again.calls, [[0, 0]]);
  });
});

Deno.test("progress: compact of memory storage only sweeps and reports 0 of 0", async () => {
  await using db = await open();
  await db.put("k", 1);
  const { calls, onProgress } = recorder();
  assert.equal(await db.compact({ onProgress }), false);
  assert.deepEqual(calls, [[0, 0]]);
});

Deno.test("progress: a compaction joined while under way tells the joiner of the rest of it", async () => {
  await withDir(async (dir) => {
    const storage = await FileStorage.open(`${dir}/app.tdb`);
    try {
      for (let i = 0; i < 100; i++) {
        await storage.commit({
          sets: [{ key: new Uint8Array([i]), value: new Uint8Array(100) }],
        });
      }
      const first = recorder();
      const joined = recorder();
      const a = storage.compact(first.onProgress);
      const b = storage.compact(joined.onProgress);
      assert.deepEqual(await Promise.all([a, b]), [true, true]);
      checkCalls(first.calls, "first");
      checkCalls(joined.calls, "joined");
      assert.deepEqual(joined.calls, first.calls);
    } finally {
      await storage.close();
    }
  });
});

Deno.test("progress: an onProgress that throws fails the compaction, which changes nothing", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    await using db = await open({ path });
    for (let i = 0; i < 50; i++) await db.put("k", i);
    const before = await Deno.readFile(path);
    const error = await db.compact({
      onProgress: () => {
        throw new Error("stop");
      },
    }).then(() => undefined, (e) => e);
    assert(error instanceof Error);
    assert.equal((error.cause as Error).message, "stop");
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal(await db.get("k"), 49);
  });
});

Deno.test("progress: repair reports the source's entries read, then written again, ending at the total", async () => {
  await withDir(async (dir) => {
    for (const encryption of [undefined, SECRET]) {
      const path = `${dir}/${encryption ? "sealed" : "plain"}.tdb`;
      {
        await using db = await open({
          path,
          ...(encryption ? { encryption } : {}),
        });
        await fill(db);
      }
      const storage = await FileStorage.open(path, { readOnly: true });
      const keys = storage.stats().keys;
      await storage.close();
      const source = { path, ...(encryption ? { encryption } : {}) };
      // Without a target: each entry read once.
      const dry = recorder();
      await repair(source, undefined, { onProgress: dry.onProgress });
      assert.equal(checkCalls(dry.calls, "report only"), keys);
      assert(dry.calls.length > 2 && dry.calls.length < N / 10);
      // With one: read, then written.
      const { calls, onProgress } = recorder();
      const report = await repair(source, { path: `${path}.new` }, {
        onProgress,
      });
      assert.equal(report.copied, N);
      assert.equal(checkCalls(calls, "repair"), 2 * keys);
      assert.deepEqual(calls[0], [0, 2 * keys]);
      // Part of the way at the end of the read, and more after it.
      assert(calls.some(([d]) => d === keys));
      assert(calls.some(([d]) => d > keys && d < 2 * keys));
    }
  });
});

Deno.test("progress: rekey reports the values re-encrypted, of those stored, ending at the total after the compaction", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/sealed.tdb`;
    await using db = await open({ path, encryption: SECRET });
    await fill(db);
    const values = (db.stats().storageStats?.keys as number) - 1;
    const { calls, onProgress } = recorder();
    const n = await db.rekey({ passphrase: "new", iterations: 1000 }, {
      onProgress,
    });
    assert.equal(n, values);
    assert.equal(checkCalls(calls, "rekey"), values);
    assert.deepEqual(calls[0], [0, values]);
    assert(calls.length > 2 && calls.length < N / 10, `${calls.length} calls`);
    await assert.rejects(
      db.rekey(
        { passphrase: "x", iterations: 1000 },
        { onProgress: 1 } as never,
      ),
      {
        name: "TypeError",
        message:
          "Cannot rekey the database: onProgress must be a function, got number 1",
      },
    );
    await assert.rejects(
      db.rekey({ passphrase: "x", iterations: 1000 }, { progress: 1 } as never),
      { name: "TypeError", message: /unknown option 'progress' of rekey\(\)/ },
    );
  });
});

Deno.test("progress: an onProgress that is not a function is a TypeError, and nothing is done", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    await using db = await open({ path });
    await db.put("k", 1);
    for (const bad of [5, "x", {}, null]) {
      await assert.rejects(db.verify({ onProgress: bad } as never), {
        name: "TypeError",
        message: /^Cannot verify: onProgress must be a function, got /,
      });
      await assert.rejects(db.compact({ onProgress: bad } as never), {
        name: "TypeError",
        message: /^Cannot compact: onProgress must be a function, got /,
      });
      await assert.rejects(
        db.backup(`${dir}/app.tbk`, { onProgress: bad } as never),
        {
          name: "TypeError",
          message: /^Cannot back up: onProgress must be a function, got /,
        },
      );
      await assert.rejects(
        repair({ path }, { path: `${dir}/new.tdb` }, {
          onProgress: bad,
        } as never),
        {
          name: "TypeError",
          message: /^Cannot repair: onProgress must be a function, got /,
        },
      );
    }
    await assert.rejects(Deno.lstat(`${dir}/new.tdb`), Deno.errors.NotFound);
    await assert.rejects(Deno.lstat(`${dir}/app.tbk`), Deno.errors.NotFound);
    await assert.rejects(db.verify({ onProgres: () => {} } as never), {
      name: "TypeError",
      message:
        "Cannot verify: unknown option 'onProgres' of verify(); did you mean 'onProgress'?",
    });
    await assert.rejects(db.compact(5 as never), {
      name: "TypeError",
      message:
        "Cannot compact: the options of compact() must be an object, got number 5",
    });
  });
});
