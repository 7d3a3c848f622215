/**
 * The lazy orders of the object tier: a record table's key order and the
 * trees of non-unique indexes take new entries in a pending run that the
 * first reader merges (record_table.ts, ram_index.ts, settle.ts). Random
 * adds, removals, re-adds and partial merges against a model: every read
 * sees exactly the model's entries, in order; the database-level scans see
 * what was written just before them; a first scan over many pending
 * entries merges them in chunks.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { DocSlot, RecordTable } from "../src/engine/record_table.ts";
import { RamIndexes } from "../src/engine/ram_index.ts";
import {
  CollectionIndexes,
  entryKeyId,
  sameEntry,
} from "../src/engine/indexes.ts";
import type { StoredRecord } from "../src/value_codec.ts";
import { PREFIX, record } from "./record_helpers.ts";
import { settleIndex, settleOrder } from "../src/engine/settle.ts";
import { open } from "../mod.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 2_000 : 150;
type TableOp =
  | { t: "add"; id: string }
  | { t: "delete"; id: string }
  | { t: "settle"; limit: number }
  | { t: "read" };

const ids = fc.constantFrom("a", "b", "c", "aa", "ab", "b\u{1F600}", "z", "");

/** The steps both models take: a delete, a partial merge, a read. */
const common = [
  fc.record({ t: fc.constant("delete" as const), id: ids }),
  fc.record({
    t: fc.constant("settle" as const),
    limit: fc.integer({ min: 1, max: 3 }),
  }),
  fc.constant({ t: "read" as const }),
] as const;

Deno.test("lazy order: the record table's key order equals a model through adds, deletes and partial merges", () => {
  const op: fc.Arbitrary<TableOp> = fc.oneof(
    fc.record({ t: fc.constant("add" as const), id: ids }),
    ...common,
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const table = new RecordTable();
      const model = new Map<string, DocSlot>();
      const check = (reverse: boolean) => {
        const got = [...table.slots(reverse)];
        const want = [...model.values()].sort((x, y) =>
          Buffer.compare(Buffer.from(x.id), Buffer.from(y.id))
        );
        if (reverse) want.reverse();
        assert.deepEqual(got.map((s) => s.id), want.map((s) => s.id));
        for (let i = 0; i < got.length; i++) assert.equal(got[i], want[i]);
        assert.equal(table.pending, 0);
      };
      for (const o of ops) {
        if (o.t === "add") {
          if (model.has(o.id)) continue; // the engine adds only new ids
          const slot = new DocSlot(o.id, PREFIX, record(o.id));
          table.add(slot);
          model.set(o.id, slot);
        } else if (o.t === "delete") {
          assert.equal(table.delete(o.id), model.get(o.id));
          model.delete(o.id);
        } else if (o.t === "settle") {
          table.settle(o.limit);
        } else {
          check(false);
        }
        assert.equal(table.size, model.size);
      }
      check(true);
    }),
    { numRuns: RUNS },
  );
});

type IndexOp =
  | { t: "put"; id: string; v: number }
  | { t: "delete"; id: string }
  | { t: "settle"; limit: number }
  | { t: "read" };

Deno.test("lazy order: index trees equal a model through adds, removals and partial merges", () => {
  const indexes = new CollectionIndexes("c");
  const spec = { sparse: false, multikey: false };
  indexes.add({ name: "v", fields: ["v"], unique: false, ...spec });
  indexes.add({ name: "u", fields: ["u"], unique: true, ...spec });
  const op: fc.Arbitrary<IndexOp> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant("put" as const),
        id: ids,
        v: fc.integer({ min: 0, max: 3 }),
      }),
    },
    ...common,
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const ram = new RamIndexes("c", true);
      // id -> its slot and record, as the engine keeps them.
      const docs = new Map<string, { slot: DocSlot; rec: StoredRecord }>();
      const check = () => {
        for (const name of ["v", "u"]) {
          const got = [...ram.tree(name).values()].map((slot) => slot.id);
          const want = [...docs.values()]
            .map(({ slot, rec }) => ({
              id: slot.id,
              key: entryKeyId(
                indexes.entries(slot.id, rec).find((e) => e.index === name)!,
              ),
            }))
            .sort((x, y) => x.key < y.key ? -1 : x.key > y.key ? 1 : 0)
            .map((x) => x.id);
          assert.deepEqual(got, want, name);
        }
        assert.equal(ram.pending, 0);
      };
      for (const o of ops) {
        if (o.t === "put") {
          const was = docs.get(o.id);
          // Every document has its own unique value (its id).
          const rec = record({ v: o.v, u: o.id });
          const slot = was?.slot ?? new DocSlot(o.id, PREFIX, rec);
          const before = was === undefined
            ? []
            : indexes.entries(o.id, was.rec);
          const after = indexes.entries(o.id, rec);
          // As the engine applies a commit: changed entries out, then in.
          for (const e of before) {
            if (!after.some((x) => sameEntry(x, e))) {
              assert(ram.remove(e, slot));
            }
          }
          for (const e of after) {
            if (!before.some((x) => sameEntry(x, e))) {
              ram.add(e, slot);
            }
          }
          docs.set(o.id, { slot, rec });
        } else if (o.t === "delete") {
          const was = docs.get(o.id);
          if (was === undefined) continue;
          for (const e of indexes.entries(o.id, was.rec)) {
            assert(ram.remove(e, was.slot));
          }
          docs.delete(o.id);
        } else if (o.t === "settle") {
          ram.settle(undefined, o.limit);
        } else {
          check();
        }
      }
      check();
    }),
    { numRuns: RUNS },
  );
});

Deno.test("lazy order: a scan sees the puts just before it, and merges a large run in chunks", async () => {
  await using db = await open();
  const c = db.collection("c", { indexes: [{ fields: "n" }] });
  const n = 20_000;
  const items = new Map<string, { n: number }>();
  // Keys out of order, so the merge has to sort.
  for (let i = 0; i < n; i++) items.set(`k${(i * 7919) % n}`, { n: i % 7 });
  await c.putBatch(items);
  await c.put("k-late", { n: 3 });
  await c.delete("k5");
  const keys: string[] = [];
  for await (const e of c.find({}).entries()) keys.push(e.key);
  const want = [...items.keys(), "k-late"].filter((k) => k !== "k5").sort();
  assert.deepEqual(keys, want);
  const threes: string[] = [];
  for await (const e of c.find({ n: 3 }).entries()) threes.push(e.key);
  assert.deepEqual(
    threes,
    want.filter((k) => k === "k-late" || items.get(k)!.n === 3).sort(),
  );
  assert.equal(await c.count({ n: 3 }), threes.length);
  // The chunked merges leave nothing behind.
  const table = new RecordTable();
  for (let i = 0; i < 10_000; i++) {
    table.add(new DocSlot(`x${(i * 31) % 10_000}`, PREFIX, record(i)));
  }
  await settleOrder(table);
  assert.equal(table.pending, 0);
  const ram = new RamIndexes("c", true);
  const indexes = new CollectionIndexes("c");
  indexes.add({
    name: "v",
    fields: ["v"],
    unique: false,
    sparse: false,
    multikey: false,
  });
  for (let i = 0; i < 10_000; i++) {
    const rec = record({ v: i % 13 });
    const slot = new DocSlot(`x${i}`, PREFIX, rec);
    for (const e of indexes.entries(slot.id, rec)) ram.add(e, slot);
  }
  assert.equal(ram.pending, 10_000);
  await settleIndex(ram, "v");
  assert.equal(ram.pending, 0);
  assert.equal(ram.tree("v").size, 10_000);
});
