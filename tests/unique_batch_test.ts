/**
 * Unique indexes under batches, as a property against a model: a
 * `putBatch` or `deleteMany`/`putBatch` sequence over a few ids and a few
 * values (swaps, rotations, values kept, given up and taken in one batch)
 * is accepted exactly when every live document keeps a value of its own
 * afterwards, and then leaves the documents the model has; a refused batch
 * changes nothing. Every storage kind: memory, file (reopened in between),
 * Deno KV. `verify()` finds nothing at the end of each run.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, DuplicateKeyError, open } from "../mod.ts";

const IDS = ["a", "b", "c", "d"];
const VALUES = ["v", "w", "x"];

type Step =
  | { kind: "batch"; items: [string, string][] }
  | { kind: "delete"; id: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.uniqueArray(
      fc.tuple(fc.constantFrom(...IDS), fc.constantFrom(...VALUES)),
      { minLength: 1, maxLength: 4, selector: ([id]) => id },
    ).map((items) => ({ kind: "batch" as const, items })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...IDS).map((id) => ({
      kind: "delete" as const,
      id,
    })),
  },
);

/** Applies a step to the model: `false` when the database must refuse it. */
function model(docs: Map<string, string>, s: Step): boolean {
  if (s.kind === "delete") {
    docs.delete(s.id);
    return true;
  }
  const next = new Map(docs);
  for (const [id, email] of s.items) next.set(id, email);
  const seen = new Set<string>();
  for (const email of next.values()) {
    if (seen.has(email)) return false;
    seen.add(email);
  }
  docs.clear();
  for (const [id, email] of next) docs.set(id, email);
  return true;
}

async function run(
  steps: Step[],
  openDb: () => Promise<Database>,
  reopen: boolean,
): Promise<void> {
  let db = await openDb();
  try {
    let c = db.collection<{ email: string }>("u");
    await c.createIndex("email", { unique: true });
    const docs = new Map<string, string>();
    for (const s of steps) {
      const ok = model(docs, s);
      if (s.kind === "delete") await c.delete(s.id);
      else if (ok) {
        await c.putBatch(
          new Map(s.items.map(([id, email]) => [id, { email }])),
        );
      } else {
        await assert.rejects(
          c.putBatch(new Map(s.items.map(([id, email]) => [id, { email }]))),
          DuplicateKeyError,
        );
      }
      if (reopen) {
        await db.close();
        db = await openDb();
        c = db.collection<{ email: string }>("u");
      }
      for (const id of IDS) {
        const doc = await c.get(id);
        assert.deepEqual(doc?.email, docs.get(id), `${id} after ${s.kind}`);
      }
      for (const email of VALUES) {
        const holders = (await c.find({ email }).toArray()).length;
        const expected = [...docs.values()].filter((v) => v === email).length;
        assert.equal(holders, expected, `holders of ${email}`);
      }
    }
    assert.deepEqual((await db.verify()).problems, []);
  } finally {
    await db.close();
  }
}

const RUNS = Deno.env.get("TETHER_TORTURE") === "1" ? 300 : 60;

Deno.test("unique index under batches (memory): accepted exactly when every value stays unique, and then as the model (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 12 }),
      (s) => run(s, () => open(), false),
    ),
    { numRuns: RUNS },
  );
});

Deno.test("unique index under batches (file, reopened after every step): accepted exactly when every value stays unique, and then as the model (property)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-unique-" });
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 8 }),
        (s) => {
          const path = `${dir}/db${n++}.tdb`;
          return run(s, () => open({ path }), true);
        },
      ),
      { numRuns: Math.ceil(RUNS / 3) },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unique index under batches (Deno KV): accepted exactly when every value stays unique, and then as the model (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 12 }),
      async (s) => {
        const kv = await Deno.openKv(":memory:");
        try {
          await run(s, () => open({ kv }), false);
        } finally {
          kv.close();
        }
      },
    ),
    { numRuns: Math.ceil(RUNS / 2) },
  );
});
