/**
 * Model-based property test of the durable change feed on memory (restarted
 * over the same memory in one process), file and Deno KV storages: random
 * puts, deletes, expiries, restarts and compactions, and after each step a
 * read of the feed from every position saved so far, which must yield
 * exactly the latest change of every key changed after it, in step order,
 * each position after `since` and growing. Long runs: TETHER_TORTURE=1.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { Database, FeedChange } from "../mod.ts";
import { collect, place, PLACES } from "./changes_helpers.ts";

const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
const RUNS = TORTURE ? 300 : 25;
const STEPS = TORTURE ? 80 : 30;
const KEYS = ["a", "b", "c", "d", "e"];
const COLLECTIONS = ["x", "y"];

type Op =
  | { op: "put"; c: string; k: string; n: number; ttl: boolean }
  | { op: "delete"; c: string; k: string }
  | { op: "batch"; c: string; ks: string[]; n: number }
  | { op: "bulkNew"; c: string; count: number; n: number }
  | { op: "expire" }
  | { op: "restart" }
  | { op: "compact" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      c: fc.constantFrom(...COLLECTIONS),
      k: fc.constantFrom(...KEYS),
      n: fc.nat(1000),
      ttl: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("delete" as const),
      c: fc.constantFrom(...COLLECTIONS),
      k: fc.constantFrom(...KEYS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("batch" as const),
      c: fc.constantFrom(...COLLECTIONS),
      ks: fc.uniqueArray(fc.constantFrom(...KEYS), {
        minLength: 1,
        maxLength: 3,
      }),
      n: fc.nat(1000),
    }),
  },
  {
    // New keys in one bulk write (`assumeNew`): on Deno KV one block of
    // puts per commit, its ids front-coded (`new7-0`, `new7-1`, ...).
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("bulkNew" as const),
      c: fc.constantFrom(...COLLECTIONS),
      count: fc.integer({ min: 1, max: 4 }),
      n: fc.nat(1000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "expire" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "restart" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "compact" as const }) },
);

/** The model's view of one key: its latest change and the step of it. */
interface Latest {
  type: "put" | "delete" | "expire";
  version: number;
  doc?: unknown;
  step: number;
  live: boolean;
  ttl: boolean;
}

for (const name of PLACES) {
  Deno.test(`changes (${name}): any saved seq yields exactly the latest change of each key changed after it (model, restarts)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 5, maxLength: STEPS, size: "max" }),
        async (ops) => {
          const at = await place(name);
          let db: Database = await at.open();
          try {
            const model = new Map<string, Latest>();
            /** Saved positions and the step they were read at. */
            const saved: { seq: string | undefined; step: number }[] = [
              { seq: undefined, step: -1 },
            ];
            const change = (
              c: string,
              k: string,
              next: Omit<Latest, "step">,
              step: number,
            ) => model.set(`${c}/${k}`, { ...next, step });
            for (let step = 0; step < ops.length; step++) {
              const o = ops[step]!;
              switch (o.op) {
                case "put": {
                  const was = model.get(`${o.c}/${o.k}`);
                  await db.collection(o.c).put(o.k, { n: o.n }, {
                    ...(o.ttl ? { ttl: 1000 } : {}),
                  });
                  change(o.c, o.k, {
                    type: "put",
                    version: was?.live ? was.version + 1 : 1,
                    doc: { n: o.n },
                    live: true,
                    ttl: o.ttl,
                  }, step);
                  break;
                }
                case "batch": {
                  await db.collection(o.c).putBatch(
                    new Map(o.ks.map((k) => [k, { n: o.n }])),
                  );
                  for (const k of o.ks) {
                    const was = model.get(`${o.c}/${k}`);
                    change(o.c, k, {
                      type: "put",
                      version: was?.live ? was.version + 1 : 1,
                      doc: { n: o.n },
                      live: true,
                      ttl: false,
                    }, step);
                  }
                  break;
                }
                case "bulkNew": {
                  // Keys no other step uses: new on every storage.
                  const ks = Array.from(
                    { length: o.count },
                    (_, i) => `new${step}-${i}`,
                  );
                  await db.collection(o.c).putBatch(
                    new Map(ks.map((k) => [k, { n: o.n }])),
                    { atomic: false, assumeNew: true },
                  );
                  for (const k of ks) {
                    change(o.c, k, {
                      type: "put",
                      version: 1,
                      doc: { n: o.n },
                      live: true,
                      ttl: false,
                    }, step);
                  }
                  break;
                }
                case "delete": {
                  const was = model.get(`${o.c}/${o.k}`);
                  const removed = await db.collection(o.c).delete(o.k);
                  assert.equal(removed, was?.live === true);
                  if (was?.live) {
                    change(o.c, o.k, {
                      type: "delete",
                      version: was.version + 1,
                      live: false,
                      ttl: false,
                    }, step);
                  }
                  break;
                }
                case "expire": {
                  at.clock.advance(1000);
                  await db.cleanup();
                  for (const [key, was] of model) {
                    if (!was.live || !was.ttl) continue;
                    model.set(key, {
                      type: "expire",
                      version: was.version,
                      live: false,
                      ttl: false,
                      step,
                    });
                  }
                  break;
                }
                case "restart":
                  await db.close();
                  db = await at.open();
                  break;
                case "compact":
                  await db.compact();
                  break;
              }
              // Read from every saved position; save the newest one.
              for (const { seq, step: from } of saved) {
                const got = await collect(
                  db,
                  seq === undefined
                    ? { expiries: true }
                    : { since: seq, expiries: true },
                );
                check(got, model, seq, from, name === "kv");
              }
              const all = await collect(db, { expiries: true });
              if (all.length > 0) {
                const last = all.at(-1)!;
                const newest = Math.max(
                  ...[...model.values()].map((l) => l.step),
                );
                saved.push({ seq: last.seq, step: newest });
              }
            }
          } finally {
            await db.close();
            await at.drop();
          }
        },
      ),
      { numRuns: name === "kv" ? Math.ceil(RUNS / 2) : RUNS },
    );
  });
}

/**
 * The feed read from `since` (saved when the model's newest change was at
 * step `from`) must be the latest change of every key changed after `from`,
 * ordered by step (changes of one step in any order), positions growing.
 */
function check(
  got: readonly FeedChange[],
  model: ReadonlyMap<string, Latest>,
  since: string | undefined,
  from: number,
  lenient: boolean,
): void {
  const expected = [...model.entries()]
    .filter(([, l]) => l.step > from)
    // Deno KV expires items itself: after a restart this process does not
    // sweep what an earlier one wrote, so an expiry may leave no marker.
    .filter(([, l]) => !(lenient && l.type === "expire"));
  let last = since === undefined ? -1 : Number(since);
  let lastStep = -Infinity;
  const seen = new Set<string>();
  for (const c of got) {
    assert(Number(c.seq) > last, `seq ${c.seq} after ${last}`);
    last = Number(c.seq);
    const key = `${c.collection}/${c.key}`;
    assert(!seen.has(key), `${key} appears once`);
    seen.add(key);
    const l = model.get(key);
    assert(l !== undefined, `${key} was changed`);
    assert(l.step > from, `${key} changed after the saved position`);
    assert(l.step >= lastStep, `${key} in step order`);
    lastStep = l.step;
    assert.equal(c.type, l.type, key);
    assert.equal(c.version, l.version, key);
    assert.deepEqual(c.doc, l.doc, key);
  }
  if (lenient) {
    for (const [k, l] of model) {
      if (l.type === "expire" && seen.has(k)) expected.push([k, l]);
    }
  }
  assert.deepEqual(
    [...seen].sort(),
    expected.map(([k]) => k).sort(),
    `from ${since}: the keys changed after step ${from}`,
  );
}
