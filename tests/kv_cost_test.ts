/**
 * What one write asks of Deno KV: the reads, checks, sets and deletes of a
 * put (new key, over a key this handle wrote, over a key another handle
 * wrote), a delete, a put after a delete, a `putBatch` and a `putBatch` with
 * `assumeNew`, by key space (`d` documents, `q` change feed by position,
 * `k` feed counter, `m` schema, `t` tombstones). A change to the KV layout
 * or the write path that changes these counts must change this test, so
 * the cost stays a decision (docs/storages.md, docs/changes.md).
 */

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { decodeKey } from "../src/key_codec.ts";
import type { KvAtomicLike, KvKey, KvLike } from "../src/storage/kv.ts";

/** One atomic commit: the key space of each check, set and delete. */
interface Commit {
  checks: string[];
  sets: string[];
  deletes: string[];
}

/** What a KV was asked, since the last `reset()`. */
interface Log {
  commits: Commit[];
  /** Key spaces read with `get` and `getMany` (one entry per key). */
  reads: string[];
  /** `list` calls. */
  lists: number;
}

/** The key space of a KV key under the database prefix (`d`, `q`, ...). */
function space(key: KvKey): string {
  const part = key[1];
  if (!(part instanceof Uint8Array)) return String(part); // "c": split values
  const head = decodeKey(part)[0];
  return head === "q" && decodeKey(part).length === 3 ? "q-block" : `${head}`;
}

function counting(kv: Deno.Kv): { kv: KvLike; log: Log; reset(): void } {
  const log: Log = { commits: [], reads: [], lists: 0 };
  const wrapped: KvLike = {
    get: (key) => {
      log.reads.push(space(key));
      return kv.get(key as Deno.KvKey);
    },
    getMany: (keys) => {
      for (const key of keys) log.reads.push(space(key));
      return kv.getMany(keys as Deno.KvKey[]);
    },
    list: (selector, options) => {
      log.lists++;
      return kv.list(selector as Deno.KvListSelector, options);
    },
    atomic: (): KvAtomicLike => {
      const op = kv.atomic();
      const seen: Commit = { checks: [], sets: [], deletes: [] };
      const proxy: KvAtomicLike = {
        check(...checks) {
          for (const c of checks) seen.checks.push(space(c.key));
          op.check(...checks as Deno.AtomicCheck[]);
          return proxy;
        },
        set(key, value, options) {
          seen.sets.push(space(key));
          op.set(key as Deno.KvKey, value, options);
          return proxy;
        },
        delete(key) {
          seen.deletes.push(space(key));
          op.delete(key as Deno.KvKey);
          return proxy;
        },
        commit() {
          log.commits.push(seen);
          return op.commit();
        },
      };
      return proxy;
    },
    watch: (keys) => kv.watch(keys as Deno.KvKey[]),
    close: () => kv.close(),
  };
  return {
    kv: wrapped,
    log,
    reset() {
      log.commits = [];
      log.reads = [];
      log.lists = 0;
    },
  };
}

/** Counts of each key space, sorted, e.g. `{ d: 1, k: 1, q: 1 }`. */
function tally(list: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of [...list].sort()) out[s] = (out[s] ?? 0) + 1;
  return out;
}

const quiet = { ttlCheckInterval: Infinity, cleanupInterval: Infinity };

/**
 * Runs `body` on a database over a counting in-memory KV, after a first
 * write (which reads the feed counter) and with the log cleared.
 */
async function warmed(
  body: (c: ReturnType<typeof counting>, db: Database) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    const c = counting(kv);
    await using db = await open({ kv: c.kv, ...quiet });
    await db.put("warm", 0);
    c.reset();
    await body(c, db);
  } finally {
    kv.close();
  }
}

Deno.test("kv cost: single puts, a delete and a put after it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const c = counting(kv);
    const db = await open({ kv: c.kv, ...quiet });
    await db.put("warm", 0); // the first write reads the feed counter
    c.reset();

    // A new key: no read, one commit; no tombstone is touched.
    await db.put("a", { n: 1 });
    assert.deepEqual(c.log.reads, []);
    assert.equal(c.log.commits.length, 1);
    assert.deepEqual(tally(c.log.commits[0]!.checks), { d: 1, k: 1, m: 1 });
    assert.deepEqual(tally(c.log.commits[0]!.sets), { d: 1, k: 1, q: 1 });
    assert.deepEqual(c.log.commits[0]!.deletes, []);

    // Over a key this handle wrote: its earlier by-position entry goes.
    c.reset();
    await db.put("a", { n: 2 });
    assert.deepEqual(c.log.reads, []);
    assert.equal(c.log.commits.length, 1);
    assert.deepEqual(tally(c.log.commits[0]!.sets), { d: 1, k: 1, q: 1 });
    assert.deepEqual(tally(c.log.commits[0]!.deletes), { q: 1 });

    // A delete: the tombstone and its by-position entry.
    c.reset();
    assert.equal(await db.delete("a"), true);
    assert.equal(c.log.commits.length, 1);
    assert.deepEqual(tally(c.log.commits[0]!.sets), { k: 1, q: 1, t: 1 });
    assert.deepEqual(tally(c.log.commits[0]!.deletes), { d: 1, q: 1 });

    // A put after the delete (this handle knows the key is gone) leaves
    // the tombstone: the feed and backups see the newer record.
    c.reset();
    await db.put("a", { n: 3 });
    assert.deepEqual(c.log.reads, []);
    assert.equal(c.log.commits.length, 1);
    assert.deepEqual(tally(c.log.commits[0]!.sets), { d: 1, k: 1, q: 1 });
    assert.deepEqual(c.log.commits[0]!.deletes, []);
    await db.close();

    // Over a key another handle wrote: the guess of its version fails once,
    // then the schema, the document and the counter are read.
    const other = await open({ kv: c.kv, ...quiet });
    await other.get("warm");
    c.reset();
    await other.put("a", { n: 4 });
    assert.equal(c.log.commits.length, 2);
    assert.deepEqual(tally(c.log.reads), { d: 1, k: 2, m: 1 });
    assert.deepEqual(tally(c.log.commits[1]!.sets), { d: 1, k: 1, q: 1 });
    assert.deepEqual(tally(c.log.commits[1]!.deletes), { q: 1 });
    assert.equal((await other.getEntry("a"))?.version, 2);
    await other.close();
  } finally {
    kv.close();
  }
});

Deno.test("kv cost: putBatch of 40 new items is one commit of 81 sets and 42 checks", async () => {
  await warmed(async (c, db) => {
    const items = new Map(
      Array.from({ length: 40 }, (_, i) => [`k${i}`, { i }] as const),
    );
    await db.putBatch(items);
    assert.equal(c.log.commits.length, 1);
    const [commit] = c.log.commits;
    assert.deepEqual(tally(commit!.checks), { d: 40, k: 1, m: 1 });
    assert.deepEqual(tally(commit!.sets), { d: 40, k: 1, q: 40 });
    assert.deepEqual(commit!.deletes, []);
    // Keys this handle never saw are taken as absent (each checked as such).
    assert.deepEqual(c.log.reads, []);
  });
});

Deno.test("kv cost: putBatch with assumeNew writes one mutation per item, a block and the counter per commit", async () => {
  await warmed(async (c, db) => {
    const items = new Map(
      Array.from({ length: 2000 }, (_, i) => [`k${i}`, { i }] as const),
    );
    await db.putBatch(items, { atomic: false, assumeNew: true });
    assert.deepEqual(c.log.reads, []);
    assert.equal(c.log.commits.length, 3); // at most 1,000 mutations each
    let docs = 0;
    for (const commit of c.log.commits) {
      const sets = tally(commit.sets);
      docs += sets["d"]!;
      assert.deepEqual({ ...sets, d: 0 }, { d: 0, k: 1, "q-block": 1 });
      assert.ok(commit.sets.length + commit.deletes.length <= 1000);
      assert.deepEqual(tally(commit.checks), { k: 1, m: 1 });
      assert.deepEqual(commit.deletes, []);
    }
    assert.equal(docs, 2000);
  });
});
