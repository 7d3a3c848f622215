/**
 * Differential test of `aggregate` against mingo's Aggregator on random
 * documents and random pipelines: document stages ($match, $addFields,
 * $project, $unwind, $sort, $skip, $limit) followed by at most one stage
 * that groups ($group with each accumulator, $count, $bucket,
 * $sortByCount), then an optional $sort and $limit on the result.
 *
 * Where mingo differs from MongoDB the generator leaves the case out, with a
 * MINGO DEVIATION comment; the differences of our own are listed in
 * docs/aggregation.md.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Aggregator } from "mingo";
import { open } from "../mod.ts";
import type { Pipeline, PipelineStage } from "../src/query/aggregate.ts";

const TORTURE = Deno.permissions.querySync({
      name: "env",
      variable: "TETHER_TORTURE",
    }).state === "granted" && Deno.env.get("TETHER_TORTURE") === "1";

// MINGO DEVIATION ($push of a missing value): mingo pushes null, MongoDB
// skips it; `n` is never missing (it may be null). `x` may be missing and is
// pushed only through $ifNull.
const docArb = fc.record({
  g: fc.constantFrom("a", "b", "c"),
  n: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: -20, max: 20 }) },
    { weight: 1, arbitrary: fc.constant(null) },
  ),
  x: fc.integer({ min: 0, max: 3 }),
  tags: fc.array(fc.constantFrom("p", "q", "r"), { maxLength: 3 }),
}, { requiredKeys: ["g", "n", "tags"], noNullPrototype: true });

const small = fc.integer({ min: -10, max: 10 });
const matchArb: fc.Arbitrary<PipelineStage> = fc.oneof(
  small.map((v) => ({ $match: { n: { $gt: v } } })),
  fc.constantFrom("a", "b").map((g) => ({ $match: { g } })),
  fc.constantFrom("p", "q").map((t) => ({ $match: { tags: t } })),
  // MINGO DEVIATION (comparing a missing field in an expression): MongoDB
  // orders missing below every value (`{ $lt: ["$x", 0] }` is true without
  // x), mingo answers false; the operand goes through $ifNull.
  small.map((v) => ({
    $match: { $expr: { $lt: [{ $ifNull: ["$x", 0] }, v] } },
  })),
);
const addFieldsArb: fc.Arbitrary<PipelineStage> = fc.oneof(
  small.map((v) => ({
    $addFields: { m: { $add: [{ $ifNull: ["$n", 0] }, v] } },
  })),
  fc.constant({
    $addFields: { sign: { $cond: [{ $gte: ["$n", 0] }, "pos", "neg"] } },
  }),
  fc.constant({ $set: { x: { $ifNull: ["$x", -1] } } }),
);
const projectArb: fc.Arbitrary<PipelineStage> = fc.oneof(
  fc.constant({ $project: { g: 1, n: 1, tags: 1 } }),
  fc.constant({ $project: { x: 0 } }),
  fc.constant({
    $project: {
      g: 1,
      n: 1,
      tags: 1,
      d: { $multiply: [{ $ifNull: ["$n", 1] }, 2] },
    },
  }),
);
// MINGO DEVIATION (unwinding a missing/non-array field): both agree on
// arrays; `tags` is always an array.
const unwindArb: fc.Arbitrary<PipelineStage> = fc.oneof(
  fc.constant({ $unwind: "$tags" }),
  fc.constant({ $unwind: { path: "$tags", preserveNullAndEmptyArrays: true } }),
);
// Sorts end on keys that make the order total (ties would come out in any
// order in mingo): _id, then tags (unwound copies of one document differ
// only there, or are equal).
const sortArb: fc.Arbitrary<PipelineStage> = fc.constantFrom(
  { $sort: { n: 1, _id: 1, tags: 1 } },
  { $sort: { g: -1, n: -1, _id: 1, tags: 1 } },
  { $sort: { _id: -1, tags: 1 } },
);
const docStage: fc.Arbitrary<PipelineStage> = fc.oneof(
  { weight: 3, arbitrary: matchArb },
  { weight: 2, arbitrary: addFieldsArb },
  { weight: 1, arbitrary: projectArb },
  { weight: 2, arbitrary: unwindArb },
  { weight: 2, arbitrary: sortArb },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 5 }).map((n) => ({ $skip: n })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 8 }).map((n) => ({ $limit: n })),
  },
);

const keyArb = fc.constantFrom("$g", "$x", null, { g: "$g", s: "$x" });
const accArb = fc.constantFrom(
  { $sum: "$n" },
  { $sum: 1 },
  { $avg: "$n" },
  { $min: "$n" },
  { $max: "$n" },
  { $first: "$n" },
  { $last: "$n" },
  { $count: {} },
  { $push: "$n" },
  { $push: { $ifNull: ["$x", "none"] } },
  { $addToSet: "$g" },
  { $min: "$x" },
  { $max: "$x" },
);
const groupArb: fc.Arbitrary<PipelineStage> = fc.tuple(
  keyArb,
  fc.uniqueArray(accArb, { minLength: 1, maxLength: 4 }),
).map(([key, accs]) => ({
  $group: Object.fromEntries([
    ["_id", key],
    ...accs.map((a, i) => [`f${i}`, a]),
  ]),
}));
const groupingStage: fc.Arbitrary<PipelineStage> = fc.oneof(
  { weight: 4, arbitrary: groupArb },
  { weight: 1, arbitrary: fc.constant({ $count: "total" }) },
  {
    weight: 2,
    // MINGO DEVIATION (values on an inner boundary): mingo puts 0 in
    // [-5, 0) where MongoDB puts it in [0, 5); inner boundaries fall
    // between the generated integers.
    arbitrary: fc.constantFrom(
      {
        $bucket: {
          groupBy: "$n",
          boundaries: [-20, -5.5, 0.5, 5.5, 21],
          default: "other",
        },
      },
      {
        $bucket: {
          groupBy: "$x",
          boundaries: [0, 1.5, 4],
          default: "none",
          output: { c: { $sum: 1 }, ns: { $push: "$n" }, a: { $avg: "$n" } },
        },
      },
    ),
  },
  // MINGO DEVIATION ($sortByCount ties): MongoDB leaves the order of equal
  // counts open; results are compared sorted by _id (below).
  {
    weight: 1,
    arbitrary: fc.constantFrom("$g", "$tags", "$x").map((f) => ({
      $sortByCount: f,
    })),
  },
);

const pipelineArb: fc.Arbitrary<Pipeline> = fc.tuple(
  fc.array(docStage, { maxLength: 4 }),
  fc.option(groupingStage, { nil: undefined }),
  fc.boolean(),
).map(([docs, group, tail]) => {
  const p: PipelineStage[] = [...docs];
  if (group !== undefined) {
    p.push(group);
    // Groups have unique _ids, so a sort by _id is total. (No tail after
    // $bucket: see the empty buckets below. None after grouping by `tags`:
    // MINGO DEVIATION (sorting arrays): MongoDB sorts ["r", "p"] and ["p"]
    // as equal (by their smallest element), mingo element by element.)
    if (
      tail && !("$bucket" in group) && group.$sortByCount !== "$tags"
    ) {
      p.push({ $sort: { _id: 1 } }, { $limit: 2 });
    }
  }
  return p;
});

/** A canonical text of a value: object keys and set-like arrays sorted. */
function canon(v: unknown, sets: boolean): string {
  if (Array.isArray(v)) {
    const parts = v.map((x) => canon(x, sets));
    return `[${(sets ? parts.sort() : parts).join(",")}]`;
  }
  if (v !== null && typeof v === "object" && !(v instanceof Date)) {
    // MINGO DEVIATION (missing fields in an object expression): mingo keeps
    // `{ s: undefined }` where MongoDB leaves the field out; compared as
    // absent.
    return `{${
      Object.keys(v).filter((k) =>
        (v as Record<string, unknown>)[k] !== undefined
      ).sort().map((k) =>
        `${k}:${canon((v as Record<string, unknown>)[k], false)}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "undefined";
}

/** Rows in a canonical order when the pipeline leaves the order open. */
function normalize(
  rows: Record<string, unknown>[],
  p: Pipeline,
): string[] {
  const groups = p.some((s) =>
    "$group" in s || "$bucket" in s || "$sortByCount" in s
  );
  const last = p[p.length - 1];
  const ordered = last !== undefined && ("$limit" in last) && groups;
  // $addToSet gives a set: its order is open.
  const out = rows.map((r) =>
    canon(
      Object.fromEntries(
        Object.entries(r).map(([k, v]) => [
          k,
          Array.isArray(v) && /^f\d$/.test(k)
            ? [...v].map((x) => canon(x, false)).sort()
            : v,
        ]),
      ),
      false,
    )
  );
  return groups && !ordered ? out.sort() : out;
}

Deno.test("differential: random pipelines agree with mingo's Aggregator", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(docArb, { maxLength: 16 }),
      fc.array(pipelineArb, { minLength: 1, maxLength: 6 }),
      async (raw, pipelines) => {
        await using db = await open();
        const docs = raw.map((d, i) => ({
          _id: `k${String(i).padStart(2, "0")}`,
          ...d,
        }));
        if (docs.length !== 0) await db.insertMany(docs as never);
        for (const p of pipelines) {
          const ours = await db.aggregate(p).toArray() as Record<
            string,
            unknown
          >[];
          let theirs = new Aggregator(p as never).run(
            structuredClone(docs),
          ) as Record<string, unknown>[];
          // MINGO DEVIATION (empty buckets): mingo outputs a document for
          // every bucket; MongoDB only for buckets that hold documents.
          if (p.some((s) => "$bucket" in s)) {
            theirs = theirs.filter((r) => r.count !== 0 && r.c !== 0);
          }
          // MINGO DEVIATION ($count of nothing): mingo outputs
          // { total: 0 }; MongoDB outputs no document.
          if (p.some((s) => "$count" in s)) {
            theirs = theirs.filter((r) => r.total !== 0);
          }
          assert.deepEqual(
            normalize(ours, p),
            normalize(theirs, p),
            JSON.stringify(p),
          );
        }
      },
    ),
    { seed: 20261205, numRuns: TORTURE ? 3000 : 60 },
  );
});
