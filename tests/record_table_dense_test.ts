/**
 * The record table's dense arrays (record_table.ts): every slot at a place,
 * its value beside it, holes where slots went, squeezed out only while no
 * walk pins them. Random adds, deletes, updates (with and without expiry or
 * tags), clears, pins and releases against a model, with a walk that moves
 * between the steps as a paused count does: every slot that stays in the
 * table from the walk's start to its end is visited exactly once.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { DocSlot, RecordTable } from "../src/engine/record_table.ts";
import { PREFIX, record } from "./record_helpers.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 2_000 : 200;

/** The table's arrays agree with each other and with the model. */
function checkArrays(table: RecordTable, model: Map<string, DocSlot>): void {
  const { dense, docs } = table;
  assert.equal(dense.length, docs.length);
  const seen = new Set<DocSlot>();
  for (let i = 0; i < dense.length; i++) {
    const slot = dense[i];
    if (slot === undefined) {
      assert.equal(docs[i], undefined);
      continue;
    }
    assert.equal(slot.pos, i);
    assert.equal(docs[i], slot.doc);
    assert.equal(model.get(slot.id), slot);
    seen.add(slot);
  }
  assert.equal(seen.size, model.size);
  const marked = [...model.values()].some((s) => s.tags !== undefined);
  assert.equal(table.plain, !marked);
}

type Op =
  | { t: "add"; id: number; marked: boolean }
  | { t: "delete"; id: number }
  | { t: "update"; id: number; marked: boolean }
  | { t: "clear" }
  | { t: "walk"; steps: number }
  | { t: "bulk"; n: number };

Deno.test("record table: dense arrays equal a model; a pinned walk visits each staying slot once", () => {
  const id = fc.nat({ max: 30 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant("add" as const),
        id,
        marked: fc.boolean(),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({ t: fc.constant("delete" as const), id }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("update" as const),
        id,
        marked: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ t: "clear" as const }) },
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant("walk" as const),
        steps: fc.integer({ min: 1, max: 8 }),
      }),
    },
    // Enough deletes to make the table want to squeeze (over 1,024 holes).
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant("bulk" as const),
        n: fc.integer({ min: 1100, max: 3000 }),
      }),
    },
  );
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 50 }),
      fc.boolean(),
      (ops, pinned) => {
        const table = new RecordTable();
        const model = new Map<string, DocSlot>();
        // A walk over the dense array that starts now, pinned or not.
        let release = pinned ? table.pin() : undefined;
        let at = 0;
        const visits = new Map<DocSlot, number>();
        const present = new Set(model.values()); // present since the start
        let cleared = false;
        for (const o of ops) {
          if (o.t === "add") {
            const key = `k${o.id}`;
            if (model.has(key)) continue; // the engine adds only new ids
            const slot = new DocSlot(
              key,
              PREFIX,
              record(o.id, o.marked ? ["t"] : undefined),
            );
            table.add(slot);
            model.set(key, slot);
          } else if (o.t === "delete") {
            const key = `k${o.id}`;
            assert.equal(table.delete(key), model.get(key));
            present.delete(model.get(key)!);
            model.delete(key);
          } else if (o.t === "update") {
            const slot = model.get(`k${o.id}`);
            if (slot === undefined) continue;
            table.update(slot, record(-o.id, o.marked ? ["t"] : undefined));
          } else if (o.t === "clear") {
            table.clear();
            model.clear();
            present.clear();
            cleared = true;
          } else if (o.t === "bulk") {
            // Adds n, then deletes them all: holes past the squeeze mark.
            for (let i = 0; i < o.n; i++) {
              table.add(new DocSlot(`b${i}`, PREFIX, record(i)));
            }
            for (let i = 0; i < o.n; i++) table.delete(`b${i}`);
          } else {
            const dense = table.dense;
            for (let s = 0; s < o.steps && at < dense.length; s++, at++) {
              const slot = dense[at];
              if (slot !== undefined) {
                visits.set(slot, (visits.get(slot) ?? 0) + 1);
              }
            }
          }
          checkArrays(table, model);
        }
        // Finish the walk.
        const dense = table.dense;
        for (; at < dense.length; at++) {
          const slot = dense[at];
          if (slot !== undefined) visits.set(slot, (visits.get(slot) ?? 0) + 1);
        }
        for (const n of visits.values()) assert.equal(n, 1, "visited twice");
        if (release !== undefined && !cleared) {
          // Pinned: every slot present from start to end was visited.
          for (const slot of present) assert(visits.has(slot), slot.id);
        }
        release?.();
        release?.(); // idempotent
        release = undefined;
        checkArrays(table, model);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("record table: holes are squeezed out once no walk pins the arrays", () => {
  const table = new RecordTable();
  for (let i = 0; i < 5000; i++) {
    table.add(new DocSlot(`k${i}`, PREFIX, record(i)));
  }
  const release = table.pin();
  const before = table.dense.slice();
  for (let i = 0; i < 4000; i++) table.delete(`k${i}`);
  // Pinned: places kept, holes where the slots went.
  assert.equal(table.dense.length, 5000);
  for (let i = 4000; i < 5000; i++) assert.equal(table.dense[i], before[i]);
  release();
  // Released: squeezed, every slot at its new place.
  assert.equal(table.dense.length, 1000);
  for (let i = 0; i < 1000; i++) {
    const slot = table.dense[i]!;
    assert.equal(slot.pos, i);
    assert.equal(table.docs[i], slot.doc);
    assert.equal(table.get(slot.id), slot);
  }
  // A new slot fills the end (no holes left).
  table.add(new DocSlot("new", PREFIX, record(-1)));
  assert.equal(table.dense.length, 1001);
});
