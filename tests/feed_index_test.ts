// The change feed's in-RAM position index: it keeps no per-item map until a
// reader asks, so it is checked against a model both before and after its
// first read, and its stale entries are shown to stay bounded.

import assert from "node:assert/strict";
import fc from "fast-check";
import { FeedIndex } from "../src/engine/feed_index.ts";
import { DELETE, PUT } from "../src/engine/feed_format.ts";
import { IdFilter } from "../src/engine/id_filter.ts";
import { StringIndex } from "../src/string_index.ts";

type Op =
  | { op: "put"; id: string }
  | { op: "delete"; id: string }
  | { op: "forget"; id: string }
  | { op: "read"; since: number };

const ids = fc.constantFrom("a", "b", "c", "d", "e", "f");
const ops = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant("put"), id: ids }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("delete"), id: ids }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("forget"), id: ids }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("read"),
        since: fc.nat({ max: 60 }),
      }),
    },
  ) as fc.Arbitrary<Op>,
  { maxLength: 120 },
);

type Model = Map<string, { position: number; kind: number }>;

/**
 * Applies the ops to the index and the model; at each read, checks that
 * the index lists each item's latest change after `since`, then `check`.
 */
function runOps(
  index: FeedIndex,
  model: Model,
  list: readonly Op[],
  check: () => void,
): void {
  for (const step of list) {
    if (step.op === "put" || step.op === "delete") {
      const position = index.next();
      const kind = step.op === "put" ? PUT : DELETE;
      index.applied([position], ["c"], [step.id], [kind], undefined);
      model.set(step.id, { position, kind });
    } else if (step.op === "forget") {
      // Only a delete's entry is ever forgotten (its tombstone purged).
      const latest = model.get(step.id);
      if (latest === undefined || latest.kind !== DELETE) continue;
      assert(index.forget("c", step.id, latest.position));
      model.delete(step.id);
    } else {
      const { entries, done, blocked } = index.after(
        step.since,
        Infinity,
        undefined,
      );
      assert(done && !blocked);
      const expected = [...model]
        .filter(([, v]) => v.position > step.since)
        .sort((x, y) => x[1].position - y[1].position)
        .map(([id, v]) => [id, v.position, v.kind]);
      assert.deepEqual(
        entries.map((e) => [e.id, e.position, e.kind]),
        expected,
      );
      check();
    }
  }
}

Deno.test("feed index: reads before and after the first one agree with a model of each item's latest change", () => {
  fc.assert(
    fc.property(ops, fc.boolean(), (list, bounded) => {
      const index = new FeedIndex(false);
      // A tight bound drops stale entries early (as the engine's would).
      if (bounded) index.liveBound = () => 0;
      const model: Model = new Map();
      runOps(index, model, list, () => {
        assert.equal(index.size, model.size);
      });
      const all = index.after(0, Infinity, undefined).entries;
      assert.deepEqual(
        all.map((e) => e.id).sort(),
        [...model.keys()].sort(),
      );
    }),
    { numRuns: 300, seed: 7 },
  );
});

Deno.test("feed index: before any read, stale entries stay bounded by the engine's count of items", () => {
  const index = new FeedIndex(false);
  let live = 0;
  index.liveBound = () => live;
  const seen = new Set<string>();
  // 100 sensors, each rewritten 2,000 times: 200,000 changes.
  for (let i = 0; i < 200_000; i++) {
    const id = `s${i % 100}`;
    if (!seen.has(id)) {
      seen.add(id);
      live++;
    }
    index.applied([index.next()], ["r"], [id], [PUT], undefined);
    // Checked every 1,024 entries: stale ones go once they are half.
    assert(index.held <= 1024, `${index.held} entries held after ${i + 1}`);
  }
  // Read what the index holds: each sensor's latest change, once.
  const { entries } = index.after(0, Infinity, undefined);
  assert.equal(entries.length, 100);
  assert.deepEqual(
    entries.map((e) => e.position),
    Array.from({ length: 100 }, (_, k) => 199_901 + k),
  );
  // Without a bound nothing is dropped before the first read; from then
  // on, the per-item map drops stale entries as they pass half.
  const unbounded = new FeedIndex(false);
  for (let i = 0; i < 5_000; i++) {
    unbounded.applied([unbounded.next()], ["r"], ["x"], [PUT], undefined);
  }
  assert.equal(unbounded.held, 5_000);
  assert.equal(unbounded.after(0, Infinity, undefined).entries.length, 1);
  for (let i = 0; i < 5_000; i++) {
    unbounded.applied([unbounded.next()], ["r"], ["x"], [PUT], undefined);
  }
  assert(unbounded.held <= 1024, `${unbounded.held} entries held`);
});

Deno.test("feed index: documents indexed in bulk at the first read, beside tombstones left from before, agree with a model", () => {
  const history = fc.array(
    fc.record({ id: ids, put: fc.boolean() }),
    { maxLength: 30 },
  );
  fc.assert(
    fc.property(history, ops, fc.boolean(), (before, list, leftBehind) => {
      const index = new FeedIndex(false);
      const model: Model = new Map();
      // What a load finds: each item's latest change, and (on a file
      // storage) the tombstone of a delete even after a later put.
      const tombs = new Map<string, number>();
      for (const { id, put } of before) {
        const position = index.next();
        model.set(id, { position, kind: put ? PUT : DELETE });
        if (!put) tombs.set(id, position);
        else if (!leftBehind) tombs.delete(id);
      }
      for (const id of [...tombs.keys()].sort()) {
        index.add(tombs.get(id)!, "c", id, DELETE);
      }
      const docs = [...model].filter(([, v]) => v.kind === PUT).sort();
      for (const [, v] of docs) index.defer(v.position);
      index.loaded(0);
      // The first reader's indexing of the documents (feedIndexReady).
      for (const [id, v] of docs) index.addDoc(v.position, "c", id);
      runOps(index, model, list, () => {
        for (const [id, v] of model) {
          assert.equal(index.latest("c", id) ?? v.position, v.position);
        }
      });
      const all = index.after(0, Infinity, undefined).entries;
      assert.deepEqual(
        all.map((e) => [e.id, e.position]).sort(),
        [...model].map(([id, v]) => [id, v.position]).sort(),
      );
      // Counting puts the bulk entries in the map: exact from then on.
      assert.equal(index.size, model.size);
      assert.deepEqual(
        index.after(0, Infinity, undefined).entries.map((e) => e.id).sort(),
        [...model.keys()].sort(),
      );
    }),
    { numRuns: 300, seed: 11 },
  );
});

Deno.test("feed index: entries added out of position order read in order, over a dense or a sparse range of positions", () => {
  for (const spread of [1, 10_000]) {
    const index = new FeedIndex(false);
    const positions = Array.from({ length: 500 }, (_, i) => 1 + i * spread);
    // Shuffled (a fixed permutation): documents come in key order.
    const shuffled = positions.map((_, i) => positions[(i * 7919) % 500]!);
    assert.equal(new Set(shuffled).size, 500);
    for (const p of shuffled) index.defer(p);
    index.loaded(0);
    for (const p of shuffled) index.addDoc(p, "c", `k${p}`);
    const { entries } = index.after(0, Infinity, undefined);
    assert.deepEqual(entries.map((e) => e.position), positions);
    assert.deepEqual(entries.map((e) => e.id), positions.map((p) => `k${p}`));
  }
});

Deno.test("id filter: never says no for an id added, says no for most others, and tells when it outgrows its size", () => {
  const filter = new IdFilter(1_000);
  const added = Array.from({ length: 1_000 }, (_, i) => `esp32-${i % 7}/${i}`);
  for (const id of added) filter.add(id, 1);
  assert.equal(filter.full, false);
  for (const id of added) assert(filter.has(id, 1), id);
  let maybe = 0;
  for (let i = 0; i < 10_000; i++) if (filter.has(`other-${i}`, 1)) maybe++;
  assert(maybe < 2_000, `${maybe} of 10,000 others said maybe`);
  for (let i = 0; i < 1_100; i++) filter.add(`more-${i}`, 1);
  assert.equal(filter.full, true);
});

Deno.test("string index: puts and gets agree with a Map, with many keys in few slots", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.stringMatching(/^[ab]{0,6}$/), fc.nat(99)), {
        maxLength: 200,
      }),
      (steps) => {
        const keys = new Set(steps.map(([k]) => k));
        const table = new StringIndex(keys.size);
        const model = new Map<string, number>();
        for (const [key, value] of steps) {
          assert.equal(table.put(key, value), model.get(key) ?? -1);
          model.set(key, value);
          for (const k of keys) assert.equal(table.get(k), model.get(k) ?? -1);
        }
        // Full: every distinct key is in; one more is refused.
        assert.throws(() => table.put("c".repeat(7), 0), RangeError);
      },
    ),
    { numRuns: 200, seed: 3 },
  );
});
