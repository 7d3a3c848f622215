/**
 * Differential test of the update compiler against mingo's `update`:
 * random documents × random updates (every operator mingo and MongoDB
 * share, `$push` modifiers, `$[]` and `$[<id>]` with arrayFilters), and the
 * two must produce the same document (field order aside: MongoDB and this
 * compiler create new fields in path order, mingo in operator order).
 *
 * Updates are generated type-correct (numeric operators on number fields,
 * array operators on array fields, one operator per field), so both sides
 * apply them; the error cases are in update_manual_test.ts.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { update as mingoUpdate } from "mingo";
import { compileUpdate, type Update } from "../src/query/update.ts";

// Fixed seed; UPDATE_SEED (with --allow-env) explores others.
const SEED = Number(
  Deno.permissions.querySync({ name: "env", variable: "UPDATE_SEED" })
      .state === "granted"
    ? Deno.env.get("UPDATE_SEED") ?? 20261205
    : 20261205,
);
const RUNS = Deno.permissions.querySync({
        name: "env",
        variable: "TETHER_TORTURE",
      }).state === "granted" && Deno.env.get("TETHER_TORTURE") === "1"
  ? 20_000
  : 600;

const small = fc.integer({ min: 0, max: 20 });
// MINGO DEVIATION: mingo's $addToSet removes duplicates already in the
// array; MongoDB (and this compiler) leaves them. Stored arrays are unique.
const ints = fc.uniqueArray(small, { maxLength: 5 });
const objs = fc.array(fc.record({ x: small, y: small }), { maxLength: 4 });

/** Documents: two number fields, two int arrays, an object array, a sub-document. */
const docArb = fc.record({
  n1: small,
  n2: small,
  a1: ints,
  a2: ints,
  o: objs,
  sub: fc.record({ k: small, list: ints }, { requiredKeys: ["list"] }),
  // `o` is always there: `$[]` on a missing field is an error (MongoDB's).
  // MINGO DEVIATION: the arrays are always there too, as mingo ignores
  // `$push` modifiers on a missing field (MongoDB applies them to the new
  // array, as this compiler does: `$each: [0, 0], $slice: 1` gives `[0]`).
}, { requiredKeys: ["o", "a1", "a2", "sub"] });

const numOp = fc.oneof(
  fc.record({ op: fc.constant("$inc"), v: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ op: fc.constant("$mul"), v: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ op: fc.constant("$min"), v: small }),
  fc.record({ op: fc.constant("$max"), v: small }),
  fc.record({ op: fc.constant("$set"), v: small }),
  fc.record({ op: fc.constant("$unset"), v: fc.constant("") }),
  fc.tuple(fc.constantFrom("and", "or", "xor"), small).map(([k, n]) => ({
    op: "$bit",
    v: { [k]: n } as unknown,
  })),
);

const pushModifiers = fc.record({
  $each: ints,
  $position: fc.integer({ min: -4, max: 6 }),
  // MINGO DEVIATION: mingo ignores `$slice: 0`; MongoDB empties the array
  // (as this compiler does; see update_manual_test.ts).
  $slice: fc.integer({ min: -4, max: 6 }).filter((n) => n !== 0),
  $sort: fc.constantFrom(1, -1),
}, { requiredKeys: ["$each"] });

const arrOp = fc.oneof(
  fc.record({ op: fc.constant("$push"), v: fc.oneof(small, pushModifiers) }),
  fc.record({
    op: fc.constant("$addToSet"),
    v: fc.oneof(small, fc.record({ $each: ints })),
  }),
  fc.record({ op: fc.constant("$pop"), v: fc.constantFrom(1, -1) }),
  fc.record({ op: fc.constant("$pullAll"), v: ints }),
  fc.record({
    op: fc.constant("$pull"),
    v: fc.oneof(small, fc.record({ $gte: small }), fc.record({ $lt: small })),
  }),
  fc.record({ op: fc.constant("$set"), v: ints }),
);

/** Per element of `o`: numeric operators on `o.$[].x` or `o.$[e].y`. */
const elemOp = fc.record({
  path: fc.constantFrom("o.$[].x", "o.$[e].y"),
  op: fc.constantFrom("$inc", "$set", "$max", "$min"),
  v: small,
  bound: small,
});

const updateArb = fc.record({
  n1: fc.option(numOp, { nil: undefined }),
  n2: fc.option(numOp, { nil: undefined }),
  a1: fc.option(arrOp, { nil: undefined }),
  a2: fc.option(arrOp, { nil: undefined }),
  "sub.k": fc.option(numOp, { nil: undefined }),
  "sub.list": fc.option(arrOp, { nil: undefined }),
  elem: fc.option(elemOp, { nil: undefined }),
});

type Spec = { op: string; v: unknown };

function build(
  u: Record<string, Spec | undefined> & {
    elem?: { path: string; op: string; v: number; bound: number } | undefined;
  },
): {
  update: Record<string, Record<string, unknown>>;
  arrayFilters?: Record<string, unknown>[];
} {
  const update: Record<string, Record<string, unknown>> = {};
  let arrayFilters: Record<string, unknown>[] | undefined;
  for (const [path, spec] of Object.entries(u)) {
    if (spec === undefined || path === "elem") continue;
    const { op, v } = spec as Spec;
    (update[op] ??= {})[path] = v;
  }
  if (u.elem !== undefined) {
    (update[u.elem.op] ??= {})[u.elem.path] = u.elem.v;
    if (u.elem.path.includes("$[e]")) {
      arrayFilters = [{ "e.x": { $gte: u.elem.bound } }];
    }
  }
  return { update, ...(arrayFilters ? { arrayFilters } : {}) };
}

Deno.test("updates agree with mingo on random documents and updates", () => {
  fc.assert(
    fc.property(docArb, updateArb, (generated, spec) => {
      // fast-check's records have no prototype; documents do.
      const doc = JSON.parse(JSON.stringify(generated));
      const { update, arrayFilters } = build(spec);
      if (Object.keys(update).length === 0) return;
      const ours = compileUpdate(update as Update, {
        ...(arrayFilters ? { arrayFilters } : {}),
      })(doc).doc;
      const theirs = structuredClone(doc) as Record<string, unknown>;
      mingoUpdate(theirs, update as never, arrayFilters as never);
      assert.deepEqual(ours, theirs);
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

Deno.test("the differential test can fail: a wrong $push $slice is caught", () => {
  const doc = { a: [1, 2, 3] };
  const update = { $push: { a: { $each: [4], $slice: -2 } } };
  const theirs = structuredClone(doc);
  mingoUpdate(theirs, update as never);
  assert.deepEqual(compileUpdate(update)(doc).doc, theirs);
  assert.notDeepEqual({ a: [1, 2] }, theirs);
});
