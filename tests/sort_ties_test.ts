/**
 * Sort ties: documents equal on every sort key come in the order of their
 * keys (`_id`), ascending, or descending when the last sort key is, whether
 * the order comes from an in-memory sort or from an index walked forwards or
 * backwards, so a query lists the same documents in the same order with or
 * without an index.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, open } from "../mod.ts";
import { compileSort, type SortSpec } from "../src/query/sort.ts";
import { compareStrings } from "../src/key_codec.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 500 : 60;

type Doc = { a: number; b: number; c?: string };

const docArb = fc.record({
  a: fc.integer({ min: 0, max: 3 }),
  b: fc.integer({ min: 0, max: 2 }),
  c: fc.constantFrom("x", "y"),
}, { requiredKeys: ["a", "b"] });

const sortArb: fc.Arbitrary<SortSpec> = fc.oneof(
  fc.record({ a: fc.constantFrom(1 as const, -1 as const) }),
  fc.record({ b: fc.constantFrom(1 as const, -1 as const) }),
  fc.tuple(
    fc.constantFrom(1 as const, -1 as const),
    fc.constantFrom(1 as const, -1 as const),
  ).map(([x, y]): SortSpec => ({ a: x, b: y })),
  fc.tuple(
    fc.constantFrom(1 as const, -1 as const),
    fc.constantFrom(1 as const, -1 as const),
  ).map(([x, y]): SortSpec => ({ b: x, a: y })),
);

const filterArb = fc.oneof(
  fc.constant({}),
  fc.integer({ min: 0, max: 3 }).map((a) => ({ a })),
  fc.integer({ min: 0, max: 3 }).map((a) => ({ a: { $gte: a } })),
  fc.integer({ min: 0, max: 2 }).map((b) => ({ b })),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 }))
    .map(([a, b]) => ({ a, b: { $lte: b } })),
);

const INDEXES: readonly (readonly string[])[][] = [
  [],
  [["a"]],
  [["b"]],
  [["a", "b"]],
  [["b", "a"]],
  [["a"], ["b", "a"]],
];

/** What the query must list: matches by the sort, ties by key. */
function model(
  docs: readonly [string, Doc][],
  filter: Record<string, unknown>,
  sort: SortSpec,
  skip: number,
  limit: number,
): string[] {
  const test = (d: Doc) =>
    Object.entries(filter).every(([f, cond]) => {
      const v = d[f as "a" | "b"];
      if (typeof cond === "number") return v === cond;
      const c = cond as { $gte?: number; $lte?: number };
      return (c.$gte === undefined || v >= c.$gte) &&
        (c.$lte === undefined || v <= c.$lte);
    });
  const cmp = compileSort(sort);
  const keys = Object.keys(sort);
  const dir = sort[keys[keys.length - 1]!]!;
  const hits = docs.filter(([, d]) => test(d)).sort(([ka, a], [kb, b]) =>
    cmp(a, b) || dir * compareStrings(ka, kb)
  );
  return hits.slice(skip, limit === 0 ? undefined : skip + limit).map((
    [k],
  ) => k);
}

async function listed(
  db: Database,
  collection: boolean,
  filter: Record<string, unknown>,
  sort: SortSpec,
  skip: number,
  limit: number,
): Promise<string[]> {
  const options = { sort, skip, ...(limit === 0 ? {} : { limit }) };
  if (collection) {
    const found = await db.collection<Doc & { _id: string }>("c")
      .find(filter, options).toArray();
    return found.map((d) => d._id);
  }
  const out: string[] = [];
  for await (const e of db.find(filter, options).entries()) out.push(e.key);
  return out;
}

Deno.test("sort ties: the same order with any index or none, as the model (keys, values with and without _id, plain or encrypted)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(docArb, { maxLength: 30 }),
      fc.array(
        fc.tuple(
          filterArb,
          sortArb,
          fc.constantFrom(0, 0, 1, 3),
          fc.constantFrom(0, 0, 2, 5),
        ),
        { minLength: 1, maxLength: 5 },
      ),
      fc.boolean(),
      fc.boolean(),
      async (items, queries, collection, encrypted) => {
        // Keys out of insertion order, some non-ASCII.
        const docs = items.map((d, i): [string, Doc] => [
          `${["k", "é", "K", "\u{1F600}"][i % 4]}${(i * 7) % 31}`,
          d,
        ]);
        const dbs: Database[] = [];
        try {
          for (const specs of INDEXES) {
            // Encrypted: blind indexes (equality only, digests in no order).
            const db = await open(
              encrypted
                ? { encryption: { passphrase: "ties", iterations: 1000 } }
                : {},
            );
            dbs.push(db);
            for (const fields of specs) {
              if (collection) await db.collection("c").createIndex(fields);
              else await db.createIndex(fields);
            }
            if (collection) {
              await db.collection("c").insertMany(
                docs.map(([_id, d]) => ({ _id, ...d })),
              );
            } else await db.putBatch(new Map(docs));
          }
          for (const [filter, sort, skip, limit] of queries) {
            const want = model(docs, filter, sort, skip, limit);
            for (const [i, db] of dbs.entries()) {
              assert.deepEqual(
                await listed(db, collection, filter, sort, skip, limit),
                want,
                `indexes ${JSON.stringify(INDEXES[i])}, ${
                  JSON.stringify({ filter, sort, skip, limit })
                }`,
              );
            }
          }
        } finally {
          for (const db of dbs) await db.close();
        }
      },
    ),
    { numRuns: RUNS },
  );
});
