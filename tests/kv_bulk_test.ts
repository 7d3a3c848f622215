/**
 * Bulk writes of new items on Deno KV (`putBatch` with `assumeNew`, and
 * `applyBatch`/`receive` with `assumeNew`): one mutation and no version
 * check per item, commits far past 90 items, each atomic, the change feed
 * still listing every item once, several handles on one KV.
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { applyBatch } from "../gateway.ts";
import type { KvAtomicLike, KvLike } from "../src/storage/kv.ts";

/** Every atomic commit a KV saw: its sets, deletes and checks. */
interface Seen {
  sets: number;
  deletes: number;
  checks: number;
}

/** Wraps a KV to record its commits; `fail(n)` makes the n-th from now throw. */
function recording(kv: Deno.Kv): {
  kv: KvLike;
  commits: Seen[];
  failAfter: (n: number) => void;
} {
  const commits: Seen[] = [];
  let failIn = -1;
  const wrapped = new Proxy(kv, {
    get(target, name) {
      if (name === "atomic") {
        return (): KvAtomicLike => {
          const op = target.atomic();
          const seen: Seen = { sets: 0, deletes: 0, checks: 0 };
          const proxy: KvAtomicLike = {
            check(...checks) {
              seen.checks += checks.length;
              op.check(...checks as Deno.AtomicCheck[]);
              return this;
            },
            set(key, value, options) {
              seen.sets++;
              op.set(key as Deno.KvKey, value, options);
              return this;
            },
            delete(key) {
              seen.deletes++;
              op.delete(key as Deno.KvKey);
              return this;
            },
            async commit() {
              if (failIn === 0) {
                failIn = -1;
                throw new Error("the process was killed");
              }
              if (failIn > 0) failIn--;
              const result = await op.commit();
              if (result.ok) commits.push(seen);
              return result;
            },
          };
          return proxy;
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as KvLike;
  return { kv: wrapped, commits, failAfter: (n) => failIn = n };
}

async function feedKeys(
  db: {
    changes: (
      o: { since?: string; live?: boolean },
    ) => AsyncIterable<{ key: string; seq: string }>;
  },
  since?: string,
): Promise<{ keys: string[]; seqs: string[] }> {
  const keys: string[] = [];
  const seqs: string[] = [];
  for await (
    const c of db.changes(
      since === undefined ? { live: false } : { since, live: false },
    )
  ) {
    keys.push(c.key);
    seqs.push(c.seq);
  }
  return { keys, seqs };
}

const items = (n: number, from = 0, tag = "v"): Map<string, unknown> =>
  new Map(
    Array.from({ length: n }, (_, i) => [
      `k${String(from + i).padStart(6, "0")}`,
      { i: from + i, tag },
    ]),
  );

Deno.test("kv bulk: assumeNew writes one mutation and no check per item, in commits far past 90", async () => {
  const raw = await Deno.openKv(":memory:");
  const { kv, commits } = recording(raw);
  await using db = await open({ kv: kv as Deno.Kv });
  const col = db.collection("readings");
  await col.put("warm", 0); // loads the collection
  commits.length = 0;
  const n = 2500;
  await col.putBatch(items(n), { atomic: false, assumeNew: true });
  assert.ok(commits.length <= 4, `${commits.length} commits for ${n} items`);
  const sets = commits.reduce((a, c) => a + c.sets, 0);
  const checks = commits.reduce((a, c) => a + c.checks, 0);
  assert.ok(sets <= n + 6 * commits.length, `${sets} sets for ${n} items`);
  assert.ok(checks <= 3 * commits.length, `${checks} checks`);
  for (const c of commits) assert.ok(c.sets + c.deletes <= 1000);
  assert.deepEqual(await col.get("k000000"), { i: 0, tag: "v" });
  assert.deepEqual(await col.get("k002499"), { i: 2499, tag: "v" });
  assert.equal(await col.count(), n + 1);
  const entry = await col.getEntry("k001234");
  assert.equal(entry?.version, 1);
});

Deno.test("kv bulk: the change feed lists every item once, in order, and resumes from any position", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const col = db.collection("readings");
  await col.put("first", 1);
  await col.putBatch(items(1500), { atomic: false, assumeNew: true });
  await col.put("last", 2);
  const all = await feedKeys(col);
  assert.equal(all.keys.length, 1502);
  assert.equal(all.keys[0], "first");
  assert.equal(all.keys[1], "k000000");
  assert.equal(all.keys[1500], "k001499");
  assert.equal(all.keys[1501], "last");
  assert.equal(new Set(all.keys).size, 1502);
  const positions = all.seqs.map(Number);
  for (let i = 1; i < positions.length; i++) {
    assert.ok(positions[i]! > positions[i - 1]!, "positions grow");
  }
  // From inside a block, and from its last position.
  for (const at of [1, 700, 1000, 1500]) {
    const rest = await feedKeys(col, all.seqs[at]);
    assert.deepEqual(rest.keys, all.keys.slice(at + 1), `since #${at}`);
  }
});

Deno.test("kv bulk: a put over an existing item replaces it; the feed lists it once, at its new position", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const col = db.collection("readings");
  await col.putBatch(items(300), { atomic: false, assumeNew: true });
  await col.putBatch(items(200, 100, "w"), { atomic: false, assumeNew: true });
  assert.deepEqual(await col.get("k000150"), { i: 150, tag: "w" });
  assert.deepEqual(await col.get("k000050"), { i: 50, tag: "v" });
  const { keys } = await feedKeys(col);
  assert.equal(keys.length, 300);
  assert.equal(new Set(keys).size, 300);
  // The replaced ones come last, after the ones kept.
  assert.deepEqual(keys.slice(0, 100), [...items(100).keys()]);
  assert.deepEqual(keys.slice(100), [...items(200, 100).keys()]);
  // A checked put afterwards sees the current item.
  await col.put("k000150", { i: 150, tag: "x" });
  assert.equal((await col.getEntry("k000150"))?.version, 2);
});

Deno.test("kv bulk: a collection with an index is written with reads and checks (its entries stay right)", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const col = db.collection<{ i: number; tag: string }>("readings");
  await col.createIndex("tag");
  await col.putBatch(items(150) as Map<string, { i: number; tag: string }>, {
    atomic: false,
    assumeNew: true,
  });
  await col.putBatch(
    items(50, 0, "w") as Map<string, { i: number; tag: string }>,
    { atomic: false, assumeNew: true },
  );
  assert.equal((await col.find({ tag: "v" }).toArray()).length, 100);
  assert.equal((await col.find({ tag: "w" }).toArray()).length, 50);
  assert.equal((await col.getEntry("k000010"))?.version, 2);
});

Deno.test("kv bulk: an index made by another handle is seen before a blind write", async () => {
  const kv = await Deno.openKv(":memory:");
  await using a = await open({ kv });
  await using b = await open({ kv });
  await a.collection("readings").put("k000001", { i: 1, tag: "v" });
  await b.collection("readings").createIndex("tag");
  await a.collection("readings").putBatch(items(20, 0, "w"), {
    atomic: false,
    assumeNew: true,
  });
  const found = await b.collection("readings").find({ tag: "v" }).toArray();
  assert.equal(found.length, 0, "the old index entry of k000001 is gone");
  assert.equal(
    (await b.collection("readings").find({ tag: "w" }).toArray()).length,
    20,
  );
});

Deno.test("kv bulk: two handles writing at once take distinct positions; the feed lists every item", async () => {
  const kv = await Deno.openKv(":memory:");
  await using a = await open({ kv });
  await using b = await open({ kv });
  await Promise.all([
    a.collection("readings").putBatch(items(1200, 0), {
      atomic: false,
      assumeNew: true,
    }),
    b.collection("readings").putBatch(items(1200, 5000), {
      atomic: false,
      assumeNew: true,
    }),
    a.collection("readings").putBatch(items(300, 9000), { atomic: false }),
  ]);
  const { keys, seqs } = await feedKeys(b.collection("readings"));
  assert.equal(keys.length, 2700);
  assert.equal(new Set(keys).size, 2700);
  assert.equal(new Set(seqs).size, 2700);
  assert.equal(await a.collection("readings").count(), 2700);
});

Deno.test("kv bulk: options are checked before anything is written", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const col = db.collection("readings");
  await assert.rejects(
    col.putBatch(items(2), { assumeNew: true }),
    TypeError,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    col.putBatch(items(2), { atomic: false, assumeNew: 1 as any }),
    TypeError,
  );
  assert.equal(await col.count(), 0);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    applyBatch(db, { origin: "o", changes: [] }, { assumeNew: "yes" as any }),
    TypeError,
  );
});

function relayBatch(from: number, n: number, tag = "v") {
  return {
    origin: "gw~1",
    changes: Array.from({ length: n }, (_, i) => ({
      seq: String(from + i + 1),
      type: "put" as const,
      collection: "readings",
      key: `k${String(from + i).padStart(6, "0")}`,
      version: 1,
      doc: { i: from + i, tag },
    })),
  };
}

Deno.test("kv bulk: applyBatch with assumeNew is idempotent and its target's feed lists what it applied", async () => {
  const raw = await Deno.openKv(":memory:");
  const { kv, commits } = recording(raw);
  await using db = await open({ kv: kv as Deno.Kv });
  const first = relayBatch(0, 500);
  commits.length = 0;
  assert.deepEqual(await applyBatch(db, first, { assumeNew: true }), {
    applied: 500,
    skipped: 0,
  });
  const docCommits = commits.filter((c) => c.sets >= 500);
  assert.equal(docCommits.length, 1, "the 500 documents in one commit");
  assert.deepEqual(await applyBatch(db, first, { assumeNew: true }), {
    applied: 0,
    skipped: 500,
  });
  assert.deepEqual(
    await applyBatch(db, relayBatch(500, 500), { assumeNew: true }),
    { applied: 500, skipped: 0 },
  );
  const { keys } = await feedKeys(db.collection("readings"));
  assert.deepEqual(keys, [...items(1000).keys()]);
  assert.equal(await db.collection("readings").count(), 1000);
});

Deno.test("kv bulk: applyBatch with assumeNew cut short by a crash is completed when sent again", async () => {
  const raw = await Deno.openKv(":memory:");
  const { kv, failAfter } = recording(raw);
  await using db = await open({ kv: kv as Deno.Kv, maxRetries: 0 });
  await applyBatch(db, relayBatch(0, 10), { assumeNew: true });
  // 2,500 changes: three commits of documents; the second one fails.
  const big = relayBatch(10, 2500);
  failAfter(1);
  await assert.rejects(applyBatch(db, big, { assumeNew: true }));
  const col = db.collection("readings");
  const partial = await col.count();
  assert.ok(partial > 10 && partial < 2510, `${partial} after the crash`);
  assert.deepEqual(await applyBatch(db, big, { assumeNew: true }), {
    applied: 2500,
    skipped: 0,
  });
  assert.deepEqual(await applyBatch(db, big, { assumeNew: true }), {
    applied: 0,
    skipped: 2500,
  });
  assert.equal(await col.count(), 2510);
  const { keys } = await feedKeys(col);
  assert.equal(keys.length, 2510);
  assert.equal(new Set(keys).size, 2510);
  assert.deepEqual(await col.get("k002509"), { i: 2509, tag: "v" });
});

Deno.test("kv bulk: two receivers on one KV applying the same batches at once apply each change once in effect", async () => {
  const kv = await Deno.openKv(":memory:");
  await using a = await open({ kv });
  await using b = await open({ kv });
  const batches = [relayBatch(0, 700), relayBatch(700, 700)];
  for (const batch of batches) {
    const results = await Promise.all([
      applyBatch(a, batch, { assumeNew: true }),
      applyBatch(b, batch, { assumeNew: true }),
    ]);
    for (const r of results) assert.equal(r.applied + r.skipped, 700);
  }
  // Sent again later, to either: skipped.
  assert.deepEqual(await applyBatch(b, batches[0]!, { assumeNew: true }), {
    applied: 0,
    skipped: 700,
  });
  const col = a.collection("readings");
  assert.equal(await col.count(), 1400);
  const { keys } = await feedKeys(col);
  assert.equal(new Set(keys).size, 1400, "each document listed once");
  assert.equal(keys.length, 1400);
  assert.deepEqual(await col.get("k001399"), { i: 1399, tag: "v" });
});

Deno.test("kv bulk: receive() with assumeNew answers after the commit; its option is checked", async () => {
  const { receive } = await import("../gateway.ts");
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => receive(db, { token: "t", assumeNew: "yes" as any }),
    TypeError,
  );
  const handle = receive(db, { token: "t", assumeNew: true });
  const post = (body: unknown) =>
    handle(
      new Request("http://cloud/sync", {
        method: "POST",
        headers: {
          authorization: "Bearer t",
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      }),
    );
  const batch = relayBatch(0, 1200);
  const first = await post(batch);
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { applied: 1200, skipped: 0 });
  assert.equal(await db.collection("readings").count(), 1200);
  const again = await post(batch);
  assert.deepEqual(await again.json(), { applied: 0, skipped: 1200 });
});
