// count() without an index plan walks the object tier's records in no
// particular order (a count needs none) instead of the ordered scan that
// find() uses: both must give the same numbers, with TTLs, tags, skip and
// limit, while writes interleave, and stop on an abort or a close.

import assert from "node:assert/strict";
import fc from "fast-check";
import { ClosedError, open } from "../mod.ts";
import { FakeClock } from "./conformance/database_suite.ts";

interface Doc {
  n: number;
  city: string;
  tags?: string[];
}

const CITIES = ["NY", "LA", "SF"];
const FILTERS: Record<string, unknown>[] = [
  {},
  { city: "SF" },
  { n: { $gte: 10 } },
  { city: { $in: ["NY", "LA"] }, n: { $lt: 25 } },
  { tags: "red" },
  { $or: [{ n: 3 }, { city: "LA" }] },
];

Deno.test("count over the records agrees with find() and a model: TTLs, skip, limit", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          n: fc.nat({ max: 40 }),
          city: fc.constantFrom(...CITIES),
          red: fc.boolean(),
          ttl: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
        }),
        { maxLength: 60 },
      ),
      fc.nat({ max: 120 }),
      fc.nat({ max: 5 }),
      fc.option(fc.nat({ max: 20 }), { nil: undefined }),
      async (rows, advance, skip, limit) => {
        const clock = new FakeClock();
        await using db = await open<Doc>({
          clock,
          ttlCheckInterval: Infinity,
          cleanupInterval: Infinity,
        });
        const live: Doc[] = [];
        for (const [i, row] of rows.entries()) {
          const doc: Doc = { n: row.n, city: row.city };
          if (row.red) doc.tags = ["red"];
          await db.put(
            `k${i}`,
            doc,
            row.ttl === undefined ? {} : {
              ttl: row.ttl,
            },
          );
          if (row.ttl === undefined || row.ttl > advance) live.push(doc);
        }
        clock.advance(advance);
        for (const filter of FILTERS) {
          const options = limit === undefined ? { skip } : { skip, limit };
          const counted = await db.find(filter as never, options).count();
          const found = (await db.find(filter as never, options).toArray())
            .length;
          const matches = live.filter((d) =>
            filter === FILTERS[1]
              ? d.city === "SF"
              : filter === FILTERS[2]
              ? d.n >= 10
              : filter === FILTERS[3]
              ? (d.city === "NY" || d.city === "LA") && d.n < 25
              : filter === FILTERS[4]
              ? d.tags?.includes("red") === true
              : filter === FILTERS[5]
              ? d.n === 3 || d.city === "LA"
              : true
          ).length;
          const expected = Math.max(
            0,
            Math.min(matches - skip, limit ?? Infinity),
          );
          assert.equal(counted, expected, JSON.stringify({ filter, options }));
          assert.equal(found, expected);
          if (skip === 0 && limit === undefined) {
            assert.equal(await db.count(filter as never), expected);
          }
        }
      },
    ),
    { numRuns: 60, seed: 11 },
  );
});

Deno.test("count over the records while writes interleave: every document that stays is counted once", async () => {
  await using db = await open<Doc>();
  const n = 60_000;
  for (let i = 0; i < n; i += 10_000) {
    const batch = new Map<string, Doc>();
    for (let j = i; j < i + 10_000; j++) {
      batch.set(`k${j}`, { n: j, city: "NY" });
    }
    await db.putBatch(batch);
  }
  const keys = Array.from({ length: n }, (_, i) => `k${(i * 7919) % n}`);
  let writing = true;
  let wrote = 0;
  const writer = (async () => {
    // Between the count's chunks: delete some, add others.
    while (writing) {
      await new Promise((r) => setTimeout(r, 0));
      await db.delete(keys[wrote]!);
      await db.put(`new${wrote}`, { n: -1, city: "LA" });
      wrote++;
    }
  })();
  // Counts back to back until one saw writes land while it ran.
  let interleaved = 0;
  const until = Date.now() + 20_000;
  while (interleaved === 0 && Date.now() < until) {
    const before = wrote;
    const counted = await db.count({ city: "NY" });
    const after = wrote;
    // Documents present from start to end are always counted; those
    // deleted meanwhile may or may not be; none deleted before is.
    assert(
      counted >= n - after && counted <= n - before,
      `${counted} of ${n} (${before}..${after} deleted)`,
    );
    if (after > before) interleaved++;
  }
  writing = false;
  await writer;
  assert(interleaved > 0, "no write landed during a count");
  assert.equal(await db.count({ city: "NY" }), n - wrote);
  assert.equal(await db.count({ city: "LA" }), wrote);
});

Deno.test("count over the records stops on an abort and on close", async () => {
  const db = await open<Doc>();
  for (let i = 0; i < 100_000; i += 10_000) {
    await db.putBatch(
      Array.from({ length: 10_000 }, (_, j) => ({ n: i + j, city: "NY" })),
    );
  }
  const controller = new AbortController();
  const reason = new Error("enough");
  setTimeout(() => controller.abort(reason), 0);
  // Enough counts back to back that one is under way when the timer fires.
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 1_000; i++) {
        await db.find({ n: { $gte: 0 } }, { signal: controller.signal })
          .count();
      }
    })(),
    (e) => e === reason,
  );
  setTimeout(() => db.close(), 0);
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 1_000; i++) await db.count({ n: { $gte: 0 } });
    })(),
    ClosedError,
  );
});
