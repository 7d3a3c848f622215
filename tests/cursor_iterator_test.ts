import assert from "node:assert/strict";
import { open } from "../mod.ts";

// The cursor's value iterator hands out buffered results without a
// generator per value; these pin down the async-iterator behaviour it keeps.

Deno.test("cursor iterator: overlapping next() calls get every value once, in order", async () => {
  await using db = await open();
  const n = 1000;
  await db.putBatch(
    new Map(
      Array.from(
        { length: n },
        (_, i) => [`k${String(i).padStart(4, "0")}`, { i }],
      ),
    ),
  );
  const it = db.find({})[Symbol.asyncIterator]();
  const results = await Promise.all(
    Array.from({ length: n + 2 }, () => it.next()),
  );
  assert.deepEqual(
    results.slice(0, n).map((r) => (r.value as { i: number }).i),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.equal(results[n]!.done, true);
  assert.equal(results[n + 1]!.done, true);
});

Deno.test("cursor iterator: return() ends it; a new iteration starts over", async () => {
  await using db = await open();
  await db.putBatch(Array.from({ length: 600 }, (_, i) => ({ i })));
  const cursor = db.find({}, { sort: { i: 1 } });
  const it = cursor[Symbol.asyncIterator]();
  assert.equal(((await it.next()).value as { i: number }).i, 0);
  assert.deepEqual(await it.return!(), { value: undefined, done: true });
  assert.equal((await it.next()).done, true);
  let seen = 0;
  for await (const v of cursor) {
    assert.equal((v as { i: number }).i, seen++);
    if (seen === 300) break;
  }
  assert.equal(seen, 300);
  assert.equal((await cursor.toArray()).length, 600);
});

Deno.test("cursor iterator: values are copies; an error rejects next() and ends it", async () => {
  await using db = await open();
  await db.put("a", { x: { y: 1 } });
  for await (const v of db.find({})) (v as { x: { y: number } }).x.y = 2;
  assert.deepEqual(await db.get("a"), { x: { y: 1 } });
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  const it = db.find({}, { signal: controller.signal })[Symbol.asyncIterator]();
  await assert.rejects(() => it.next(), /stop/);
  assert.equal((await it.next()).done, true);
});
