/**
 * The synchronous run of an exact index plan (src/query/index_run.ts):
 * `toArray()` of a query that an index answers alone reads the object
 * tier's tree in one loop instead of the general run's pages. Its results
 * must be the general run's (the same query iterated with `for await`,
 * which takes the pages) and the model's, with expiry, skip, limit, a
 * covered sort, `readonly` and projections; writes and a close during one
 * of its pauses must leave it correct.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ClosedError, ConflictError, type Database, open } from "../mod.ts";
import { cursorHooks } from "../src/query/cursor.ts";
import { Budget } from "../src/engine/yield.ts";
import { FakeClock } from "./conformance/database_suite.ts";
import { FileStorage, KvStorage, type Storage } from "../storage.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 300 : 40;

type Doc = { n: number; s: string };
type Query = {
  filter: Record<string, unknown>;
  lo: number;
  hi: number;
  sort?: 1 | -1 | undefined;
  skip: number;
  limit: number;
  readonly: boolean;
  project: boolean;
};

const query = fc.record({
  lo: fc.integer({ min: -1, max: 12 }),
  width: fc.integer({ min: 0, max: 12 }),
  shape: fc.constantFrom("eq", "gte-lt", "gt", "lte"),
  sort: fc.constantFrom(undefined, 1 as const, -1 as const),
  skip: fc.constantFrom(0, 0, 1, 3),
  limit: fc.constantFrom(0, 0, 1, 2, 5),
  readonly: fc.boolean(),
  project: fc.boolean(),
}).map((q): Query => {
  const hi = q.lo + q.width;
  const filter = q.shape === "eq"
    ? { n: q.lo }
    : q.shape === "gte-lt"
    ? { n: { $gte: q.lo, $lt: hi } }
    : q.shape === "gt"
    ? { n: { $gt: q.lo } }
    : { n: { $lte: hi } };
  const [lo, hiOf] = q.shape === "eq"
    ? [q.lo, q.lo]
    : q.shape === "gte-lt"
    ? [q.lo, hi - 0.5]
    : q.shape === "gt"
    ? [q.lo + 0.5, Infinity]
    : [-Infinity, hi];
  return { ...q, filter, lo, hi: hiOf };
});

/** What the query must return, in index order (`n`, then key). */
function model(
  docs: Map<string, Doc>,
  live: Set<string>,
  q: Query,
): unknown[] {
  let hits = [...docs].filter(([k, d]) =>
    live.has(k) && d.n >= q.lo && d.n <= q.hi
  );
  hits.sort(([ka, a], [kb, b]) => a.n - b.n || (ka < kb ? -1 : 1));
  // Ties go by key in the direction of the (last) sort key.
  if (q.sort === -1) hits.reverse();
  hits = hits.slice(q.skip, q.limit === 0 ? undefined : q.skip + q.limit);
  return hits.map(([, d]) => q.project ? { n: d.n } : d);
}

/** Runs `q` through `toArray()` (the index run) and `for await` (pages). */
async function run(db: Database, q: Query): Promise<unknown[]> {
  const options = {
    ...(q.sort === undefined ? {} : { sort: { n: q.sort } }),
    ...(q.skip === 0 ? {} : { skip: q.skip }),
    ...(q.limit === 0 ? {} : { limit: q.limit }),
    ...(q.readonly ? { readonly: true } : {}),
    ...(q.project ? { fields: { n: 1 as const } } : {}),
  };
  // First, so that items expired since the last query are still in the
  // index (a query's sweep removes them later).
  const fast = await db.find(q.filter, options).toArray();
  const paged: unknown[] = [];
  for await (const v of db.find(q.filter, options)) paged.push(v);
  assert.deepEqual(fast, paged);
  if (q.readonly && !q.project) {
    for (const v of fast) assert(Object.isFrozen(v));
  } else {
    for (const v of fast) assert(!Object.isFrozen(v));
  }
  const plan = await db.find(q.filter, options).explain();
  assert.equal(plan.index, "n_1", JSON.stringify(plan));
  return fast;
}

for (const kind of ["memory", "file"] as const) {
  Deno.test(`index run [${kind}]: toArray() of an exact index plan returns what the pages and the model return`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tether-index-run-" });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              n: fc.integer({ min: 0, max: 10 }),
              ttl: fc.constantFrom(undefined, undefined, 5, 15, 25, 35, 45),
            }),
            { maxLength: 60 },
          ),
          fc.array(query, { minLength: 1, maxLength: 6 }),
          async (items, queries) => {
            const clock = new FakeClock();
            await Deno.remove(`${dir}/db`, { recursive: true }).catch(
              () => {},
            );
            await using db = await open({
              ...(kind === "file" ? { path: `${dir}/db` } : {}),
              clock,
              ttlCheckInterval: Infinity,
              cleanupInterval: Infinity,
            });
            await db.createIndex("n");
            const docs = new Map<string, Doc>();
            const expires = new Map<string, number>();
            for (const [i, { n, ttl }] of items.entries()) {
              const key = `k${String(i).padStart(3, "0")}`;
              const doc = { n, s: `v${i}` };
              await db.put(key, doc, ttl === undefined ? {} : { ttl });
              docs.set(key, doc);
              expires.set(key, ttl ?? Infinity);
            }
            let elapsed = 0;
            for (const q of queries) {
              // Items expire between queries, so the run meets some that
              // are expired and not yet swept.
              clock.advance(10);
              elapsed += 10;
              const live = new Set(
                [...expires].filter(([, t]) => t > elapsed).map(([k]) => k),
              );
              assert.deepEqual(await run(db, q), model(docs, live, q));
            }
          },
        ),
        { numRuns: RUNS },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/**
 * Makes the copy of the `at`-th result spend the chunk's budget (a busy
 * wait past it), and runs `during` to its end inside the run's next pause
 * (the pause is wrapped: writes that give the event loop turns of their
 * own still all land before the run goes on).
 */
function pauseAt(
  at: number,
  during: () => Promise<void>,
): { ran: () => number; [Symbol.dispose](): void } {
  const { copy } = cursorHooks;
  const pause = Budget.prototype.pause;
  let n = 0;
  let ran = -1;
  let armed = false;
  cursorHooks.copy = (value) => {
    if (++n === at) {
      const until = performance.now() + 12;
      while (performance.now() < until) { /* spend the budget */ }
      armed = true;
    }
    return copy(value);
  };
  Budget.prototype.pause = async function (this: Budget): Promise<void> {
    await pause.call(this);
    if (!armed) return;
    armed = false;
    ran = n;
    await during();
  };
  return {
    ran: () => ran,
    [Symbol.dispose]() {
      cursorHooks.copy = copy;
      Budget.prototype.pause = pause;
    },
  };
}

const N = 2_000;

/** A database of N documents `{ n: i }` under keys `k<i>`, indexed on n. */
async function numbered(n: number): Promise<Database> {
  const db = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await db.createIndex("n");
  await db.putBatch(
    new Map(Array.from({ length: n }, (_, i) => [`k${i}`, { n: i }])),
  );
  return db;
}

Deno.test("index run: writes during a pause are seen ahead of the run and not behind it, each document once", async () => {
  await using db = await numbered(N);
  const before = db.stats().ops.queries;
  let result: { n: number }[];
  {
    using spy = pauseAt(300, async () => {
      await db.delete("k1500"); // ahead: gone
      await db.put("ahead", { n: 1200.5 }); // ahead: seen
      await db.delete("k10"); // behind: already read
      await db.put("behind", { n: 5.5 }); // behind: not seen
      await db.put("k1800", { n: 1800, changed: true }); // ahead: new value
    });
    result = await db.find({ n: { $gte: 0 } }).toArray() as { n: number }[];
    // The writes ran at a pause inside the run (not before, not after).
    assert(spy.ran() >= 300 && spy.ran() < N, `ran after ${spy.ran()}`);
  }
  assert.equal(db.stats().ops.queries, before + 1);
  const ns = result.map((d) => d.n);
  assert.deepEqual(ns, [...ns].sort((a, b) => a - b), "index order");
  assert.equal(new Set(ns).size, ns.length, "each document once");
  assert(ns.includes(1200.5));
  assert(!ns.includes(1500));
  assert(ns.includes(10));
  assert(!ns.includes(5.5));
  assert.deepEqual(result.find((d) => d.n === 1800), {
    n: 1800,
    changed: true,
  });
  assert.equal(result.length, N);
});

Deno.test("index run: in reverse order too, writes during a pause are seen ahead and not behind", async () => {
  await using db = await numbered(N);
  let result: { n: number }[];
  {
    using spy = pauseAt(300, async () => {
      await db.delete("k100"); // ahead (lower): gone
      await db.put("ahead", { n: 300.5 }); // ahead: seen
      await db.delete("k1990"); // behind: already read
      await db.put("behind", { n: 1950.5 }); // behind: not seen
      await db.put("k200", { n: 200, changed: true }); // ahead: new value
    });
    result = await db.find({ n: { $gte: 0 } }, { sort: { n: -1 } })
      .toArray() as { n: number }[];
    assert(spy.ran() >= 300 && spy.ran() < N, `ran after ${spy.ran()}`);
  }
  const ns = result.map((d) => d.n);
  assert.deepEqual(ns, [...ns].sort((a, b) => b - a), "reverse index order");
  assert.equal(new Set(ns).size, ns.length, "each document once");
  assert(ns.includes(300.5) && !ns.includes(100));
  assert(ns.includes(1990) && !ns.includes(1950.5));
  assert.deepEqual(result.find((d) => d.n === 200), { n: 200, changed: true });
  assert.equal(result.length, N);
});

Deno.test("index run: a close during a pause rejects the run with ClosedError", async () => {
  const db = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await db.createIndex("n");
  await db.putBatch(Array.from({ length: 2_000 }, (_, i) => ({ n: i })));
  using _spy = pauseAt(300, () => db.close());
  await assert.rejects(
    db.find({ n: { $gte: 0 } }).toArray(),
    (e) => e instanceof ClosedError && /Cannot query/.test(e.message),
  );
  await db.close();
});

Deno.test("index run: an index dropped, made again, or its collection cleared mid-query is a ConflictError, never a document that does not match", async () => {
  const changes: Record<string, (db: Database) => Promise<unknown>> = {
    dropped: (db) => db.dropIndex("n"),
    "made again": async (db) => {
      await db.dropIndex("n");
      await db.createIndex("n");
    },
    cleared: (db) => db.clear(),
  };
  for (const [what, change] of Object.entries(changes)) {
    // The synchronous run (toArray), paused by its budget...
    {
      await using db = await numbered(N);
      // A document the index no longer tracks stops matching.
      using _spy = pauseAt(300, async () => {
        await change(db);
        await db.put("k1000", { n: -1 });
      });
      await assert.rejects(
        db.find({ n: { $gte: 0 } }).toArray(),
        (e) =>
          e instanceof ConflictError &&
          /index 'n_1' was dropped or rebuilt/.test(e.message),
        what,
      );
    }
    // ...and the pages of an iteration, paused by its consumer.
    {
      await using db = await numbered(N);
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const d of db.find({ n: { $gte: 0 } })) {
            seen.push((d as { n: number }).n);
            if (seen.length === 100) {
              await change(db);
              await db.put("k1000", { n: -1 });
            }
          }
        })(),
        ConflictError,
        what,
      );
      assert(seen.every((n) => n >= 0), what);
    }
  }
});

Deno.test("index pages (file, kv): a dropped index is a ConflictError, not a query cut short; a document changed between its index entry and its read is filtered out", async () => {
  for (const kind of ["file", "kv"] as const) {
    const dir = await Deno.makeTempDir({ prefix: "tether-index-pages-" });
    try {
      // A storage whose first document read (after `armed`) is preceded by
      // a write that moves one document out of the query's range.
      const inner = kind === "file"
        ? await FileStorage.open(`${dir}/db.tdb`)
        : new KvStorage(await Deno.openKv(`${dir}/kv.sqlite`));
      let armed = false;
      const opened: { db?: Database } = {};
      const storage = new Proxy(inner, {
        get(target, prop) {
          if (prop === "getMany") {
            return async (keys: readonly Uint8Array[]) => {
              if (armed) {
                armed = false;
                await opened.db!.put("k00010", { n: -1 }); // was { n: 10 }
              }
              return await target.getMany(keys);
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }) as Storage;
      const db = opened.db = await open({ storage });
      await db.createIndex("n");
      // Enough for several pages of the index scan (KV: in several commits).
      await db.putBatch(
        new Map(
          Array.from({ length: 3_000 }, (_, i) => [
            `k${String(i).padStart(5, "0")}`,
            { n: i },
          ]),
        ),
        { atomic: false },
      );
      armed = true;
      const found = await db.find({ n: { $gte: 0 } }).toArray() as {
        n: number;
      }[];
      assert.equal(found.length, 2_999, kind);
      assert(found.every((d) => d.n >= 0), kind);
      // A drop while a `for await` consumer holds a page.
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const d of db.find({ n: { $gte: 0 } })) {
            seen.push((d as { n: number }).n);
            if (seen.length === 1) await db.dropIndex("n");
          }
        })(),
        (e) =>
          e instanceof ConflictError &&
          /index 'n_1' was dropped/.test(e.message),
        kind,
      );
      await db.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("index run: a multikey index, or a plan of several ranges, takes the pages and lists each document once", async () => {
  await using db = await open();
  await db.createIndex("t");
  await db.put("a", { t: [1, 1, 2] });
  await db.put("b", { t: 3 });
  await db.put("c", { t: [3, 2] });
  const all = await db.find({ t: { $gte: 0 } }).toArray();
  assert.deepEqual(all.map((d) => JSON.stringify(d)).sort(), [
    '{"t":3}',
    '{"t":[1,1,2]}',
    '{"t":[3,2]}',
  ]);
  await db.createIndex("n");
  await db.putBatch(Array.from({ length: 20 }, (_, i) => ({ n: i % 5 })));
  const some = await db.find({ n: { $in: [1, 3] } }).toArray() as {
    n: number;
  }[];
  assert.deepEqual(some.map((d) => d.n), [1, 1, 1, 1, 3, 3, 3, 3]);
});
