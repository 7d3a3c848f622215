// Issue 13, item 14: out-of-range durations, filters and updates nested
// 10,000 deep, sparse arrays and non-integer versions are RangeErrors or
// TypeErrors before anything changes; closing a Deno KV database while a
// cursor iterates is a ClosedError.

import assert from "node:assert/strict";
import { ClosedError, type Database, open } from "../mod.ts";
import { MAX_TTL } from "../src/validate.ts";

function nest(depth: number, wrap: (inner: unknown) => unknown, leaf: unknown) {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}

/** Asserts an error of a class whose message contains every fragment. */
function error(
  type: typeof TypeError | typeof RangeError,
  ...fragments: string[]
): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof type, `not a ${type.name}: ${e}`);
    assert.ok(
      !/Maximum call stack/.test(e.message),
      `a stack overflow: ${e.message}`,
    );
    for (const f of fragments) {
      assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
    }
    return true;
  };
}

async function snapshot(db: Database): Promise<unknown> {
  const out: unknown[] = [];
  for (const name of await db.collections()) {
    for await (const e of db.collection(name).find({}).entries()) {
      out.push([name, e.key, e.value, e.version, e.expiresAt]);
    }
  }
  return out;
}

Deno.test("input: ttl must be above 0 and at most 100 years; NaN, negative, Infinity and 1e300 are RangeErrors", async () => {
  await using db = await open();
  await db.put("k", { a: 1 });
  const before = await snapshot(db);
  for (const ttl of [1e300, MAX_TTL + 1, Infinity, -1, -Infinity, NaN, 0]) {
    const name = String(ttl);
    const fragment = `ttl must be milliseconds above 0 and at most ${MAX_TTL}`;
    await assert.rejects(db.put("k", 2, { ttl }), error(RangeError, fragment));
    await assert.rejects(db.put(2, { ttl }), error(RangeError, fragment));
    await assert.rejects(
      db.putBatch([1, 2], { ttl: [1000, ttl] }),
      error(RangeError, fragment, "item 1"),
    );
    await assert.rejects(
      db.collection("c").insert({ a: 1 }, { ttl }),
      error(RangeError, fragment),
    );
    // The value is named (1e+300, NaN, -1...).
    await assert.rejects(
      db.put("k", 2, { ttl }),
      error(RangeError, `got ${name === "1e+300" ? "1e+300" : name}`),
    );
  }
  await assert.rejects(
    db.put("k", 2, { ttl: "5" as unknown as number }),
    error(TypeError, "ttl must be a number"),
  );
  assert.deepEqual(await snapshot(db), before);
  // The maximum itself is accepted.
  await db.put("far", 1, { ttl: MAX_TTL });
  const entry = await db.getEntry("far");
  assert.ok(entry!.expiresAt! - entry!.createdAt === MAX_TTL);
});

Deno.test("input: the maximum ttl works on Deno KV", async () => {
  await using db = await open({ kv: ":memory:" });
  await db.put("far", 1, { ttl: MAX_TTL });
  assert.equal(await db.get("far"), 1);
  await assert.rejects(db.put("k", 1, { ttl: 1e300 }), RangeError);
});

Deno.test("input: a 10,000-deep filter is a RangeError at compile time, not a stack overflow", async () => {
  await using db = await open();
  await db.put("k", { x: 1, a: [{ x: 1 }] });
  const deep = 10_000;
  const filters: [string, unknown][] = [
    ["$and", nest(deep, (v) => ({ $and: [v] }), { x: 1 })],
    ["$or", nest(deep, (v) => ({ $or: [v] }), { x: 1 })],
    ["$nor", nest(deep, (v) => ({ $nor: [v] }), { x: 1 })],
    ["$not", { x: nest(deep, (v) => ({ $not: v }), { $eq: 1 }) }],
    ["$elemMatch", { a: nest(deep, (v) => ({ $elemMatch: v }), { x: 1 }) }],
    ["$elemMatch ops", {
      a: nest(deep, (v) => ({ $elemMatch: v }), { $eq: 1 }),
    }],
    ["plain object", { x: nest(deep, (v) => ({ a: v }), 1) }],
    ["array", { x: nest(deep, (v) => [v], 1) }],
    ["$in operand", { x: { $in: [nest(deep, (v) => ({ a: v }), 1)] } }],
    ["$eq operand", { x: { $eq: nest(deep, (v) => [v], 1) } }],
  ];
  for (const [name, filter] of filters) {
    assert.throws(
      () => db.find(filter as never),
      error(RangeError, "Cannot compile filter", "deeper than 100 levels"),
      name,
    );
    await assert.rejects(
      db.count(filter as never),
      error(RangeError, "deeper than 100 levels"),
      name,
    );
    await assert.rejects(
      db.update(filter as never, { $set: { y: 1 } }),
      error(RangeError, "deeper than 100 levels"),
      name,
    );
    await assert.rejects(
      db.deleteMany(filter as never),
      error(RangeError, "deeper than 100 levels"),
      name,
    );
  }
  assert.deepEqual(await db.find({}).toArray(), [{ x: 1, a: [{ x: 1 }] }]);
  // Up to the limit, filters still work.
  assert.equal(
    await db.count(nest(98, (v) => ({ $and: [v] }), { x: 1 }) as never),
    1,
  );
  assert.equal(
    await db.count({ x: nest(97, (v) => ({ $not: v }), { $eq: 2 }) } as never),
    1,
  );
});

Deno.test("input: a 10,000-deep update is a RangeError, not a stack overflow, and changes nothing", async () => {
  await using db = await open();
  await db.put("k", { x: 1, list: [1] });
  const before = await snapshot(db);
  const deepObject = nest(10_000, (v) => ({ a: v }), 1);
  const deepArray = nest(10_000, (v) => [v], 1);
  const updates: [string, unknown][] = [
    ["$set value", { $set: { y: deepObject } }],
    ["$set path", { $set: { [Array(10_000).fill("a").join(".")]: 1 } }],
    ["$unset path", { $unset: { [Array(10_000).fill("a").join(".")]: "" } }],
    ["$push", { $push: { list: deepArray } }],
    ["$push $each", { $push: { list: { $each: [deepArray] } } }],
    ["$addToSet", { $addToSet: { list: deepObject } }],
    ["$pull condition", {
      $pull: { list: nest(10_000, (v) => ({ $elemMatch: v }), 1) },
    }],
    ["$min", { $min: { x: deepArray } }],
    ["merge", { y: deepObject }],
  ];
  for (const [name, update] of updates) {
    await assert.rejects(
      db.update({}, update as never),
      error(RangeError, "Cannot compile update"),
      name,
    );
  }
  assert.deepEqual(await snapshot(db), before);
});

Deno.test("input: sparse arrays given to putBatch and insertMany are TypeErrors naming the index", async () => {
  await using db = await open();
  await db.put("k", 1);
  const before = await snapshot(db);
  // deno-lint-ignore no-sparse-arrays
  const holey = [1, , 3];
  await assert.rejects(
    db.putBatch(holey),
    error(TypeError, "items has a hole at index 1"),
  );
  await assert.rejects(
    db.putBatch(new Array(3)),
    error(TypeError, "items has a hole at index 0"),
  );
  // deno-lint-ignore no-sparse-arrays
  const ttls = [1000, , 1000];
  await assert.rejects(
    db.putBatch([1, 2, 3], { ttl: ttls }),
    error(TypeError, "ttl has a hole at index 1"),
  );
  // deno-lint-ignore no-sparse-arrays
  const docs = [{ a: 1 }, { a: 2 }, , { a: 4 }];
  await assert.rejects(
    db.collection("c").insertMany(docs as never),
    error(TypeError, "documents has a hole at index 2"),
  );
  assert.deepEqual(await snapshot(db), before);
  // Explicit undefined TTLs are not holes.
  assert.equal(
    (await db.putBatch([1, 2], { ttl: [undefined, 5000] })).length,
    2,
  );
});

Deno.test("input: expectedVersion must be a whole number from 1, on update and replace", async () => {
  await using db = await open();
  await db.put("k", { a: 1 });
  const before = await snapshot(db);
  for (const v of [1.5, -1, 0, NaN, Infinity, 2 ** 53]) {
    await assert.rejects(
      db.update({}, { $set: { a: 2 } }, { expectedVersion: v }),
      error(RangeError, "expectedVersion must be a whole number from 1"),
    );
    await assert.rejects(
      db.replace("k", { a: 2 }, { expectedVersion: v }),
      error(RangeError, "expectedVersion must be a whole number from 1"),
    );
  }
  await assert.rejects(
    db.replace("k", { a: 2 }, { expectedVersion: "1" as unknown as number }),
    error(TypeError, "expectedVersion must be a number"),
  );
  // Refused even when nothing would be replaced.
  await assert.rejects(
    db.replace("absent", { a: 2 }, { expectedVersion: 1.5 }),
    RangeError,
  );
  assert.deepEqual(await snapshot(db), before);
  assert.ok(await db.replace("k", { a: 2 }, { expectedVersion: 1 }));
});

Deno.test("input: closing a Deno KV database while a cursor iterates gives ClosedError, not BadResource", async () => {
  for (const indexed of [false, true]) {
    const db = await open({ kv: ":memory:" });
    try {
      await db.createIndex("i");
      for (let b = 0; b < 12; b++) {
        await db.putBatch(Array.from({ length: 50 }, (_, i) => ({ i })));
      }
      let seen = 0;
      await assert.rejects(
        (async () => {
          for await (const _ of db.find(indexed ? { i: { $gte: 0 } } : {})) {
            if (++seen === 5) await db.close();
          }
        })(),
        (e: unknown) => {
          assert.ok(e instanceof ClosedError, `${indexed}: ${e}`);
          assert.match(e.message, /closed/);
          return true;
        },
      );
      assert.ok(seen >= 5 && seen < 600, `saw ${seen}`);
    } finally {
      await db.close();
    }
  }
});
