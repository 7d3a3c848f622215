/**
 * Differential test of the query compiler against mingo, a MongoDB query
 * engine for JavaScript objects: random documents × random filters, and the
 * two must agree on every pair.
 *
 * Where mingo 7 deviates from MongoDB, `compileFilter` follows MongoDB and the
 * generators below avoid the narrow case; each exclusion is marked
 * `MINGO DEVIATION` with what mingo does differently.
 */

import fc from "fast-check";
import { Query } from "mingo";
import { open } from "../mod.ts";
import { compileFilter, type Filter } from "../src/query/compile.ts";
import assert from "node:assert/strict";
import { codeGeneration, setCodeGeneration } from "../src/query/codegen.ts";

/**
 * Registers a test twice: with filters compiled to generated code, and with
 * the interpreter that answers where code generation is forbidden.
 */
function both(name: string, fn: () => void | Promise<void>): void {
  for (const mode of ["auto", "off"] as const) {
    Deno.test(`${name} [${mode === "auto" ? "compiled" : "interpreted"}]`, async () => {
      const before = setCodeGeneration(mode);
      try {
        assert.equal(
          codeGeneration(),
          mode === "auto" ? "compiled" : "interpreted",
        );
        await fn();
      } finally {
        setCodeGeneration(before);
      }
    });
  }
}

// Fixed seed; QUERY_SEED (with --allow-env) explores others.
const DEFAULT_SEED = 20240611;
const SEED = Deno.permissions.querySync({ name: "env", variable: "QUERY_SEED" })
    .state === "granted"
  ? Number(Deno.env.get("QUERY_SEED") ?? DEFAULT_SEED)
  : DEFAULT_SEED;
// The normal suite runs a third of the property runs; `deno task torture`
// (TETHER_TORTURE=1) runs them all.
const RUNS = Deno.permissions.querySync({
        name: "env",
        variable: "TETHER_TORTURE",
      }).state === "granted" && Deno.env.get("TETHER_TORTURE") === "1"
  ? 1
  : 1 / 3;

// ---------------------------------------------------------------------------
// Documents

// mingo 7 crashes hashing null-prototype objects (it reads
// obj.constructor.name), so every generated record has Object.prototype.
const int = fc.integer({ min: -3, max: 3 });
// MINGO DEVIATION ($mod): MongoDB truncates a fractional dividend toward zero
// ({$mod: [2, 1]} matches 3.5); mingo never matches it. Floats are only
// generated in the fields that $mod is not applied to ($mod is only used on
// "n").
const float = fc.constantFrom(-1.5, 0.5, 2.5, 1e-3);
const str = fc.constantFrom("", "a", "b", "ab", "B", "ba");
const date = fc.constantFrom(0, 1000, 5000).map((t) => new Date(t));
// MINGO DEVIATION ($mod on non-numbers): mingo coerces null, booleans and
// Dates and strings to numbers (null % 2 === 0, "" % 2 === 0), so
// {$mod: [2, 0]} matches null or ""; MongoDB only matches numbers. The $mod
// field "n" holds integers and non-numeric, non-empty strings only.
const intScalar = fc.oneof(int, fc.constantFrom("a", "b", "ab"));
const anyScalar = fc.oneof(
  int,
  float,
  str,
  fc.constant(null),
  fc.boolean(),
  date,
);

function valueArb(scalar: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  // MINGO DEVIATION (object equality): MongoDB compares embedded documents
  // field by field in order ({x: 1, y: 2} != {y: 2, x: 1}); mingo ignores
  // order. Objects are always generated with keys in the order x, y.
  const sub = fc.oneof(
    { weight: 3, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  );
  // MINGO DEVIATION (missing fields in array elements): MongoDB's
  // {"a.x": null} matches {a: [{x: 1}, {}]} (the second element lacks x);
  // mingo does not. Objects inside arrays always have every field.
  // MINGO DEVIATION (arrays inside array elements): MongoDB's "a.x" on
  // {a: [{x: [1, 5]}]} offers 1, 5 and [1, 5] to every operator, so
  // {"a.x": {$in: [5]}} and {"a.x": {$gte: 5}} match; mingo does not look
  // inside such arrays for $gt/$gte/$lt/$lte/$in/$nin/$mod. Objects inside
  // arrays hold scalars only.
  const fullObj = fc.record({ x: scalar, y: scalar }, {
    noNullPrototype: true,
  });
  const obj = fc.record({ x: sub, y: sub }, {
    requiredKeys: [],
    noNullPrototype: true,
  });
  return fc.oneof(
    { weight: 4, arbitrary: scalar },
    { weight: 2, arbitrary: fc.array(scalar, { maxLength: 4 }) },
    { weight: 2, arbitrary: obj },
    { weight: 2, arbitrary: fc.array(fullObj, { maxLength: 3 }) },
  );
}

// Arrays of arrays only appear in field "c", so that the operators where mingo
// mishandles them can be kept away from it (see NOT_ON_NESTED).
const nestedArb = fc.oneof(
  fc.array(fc.array(anyScalar, { maxLength: 2 }), { maxLength: 2 }),
  fc.array(fc.oneof(anyScalar, fc.array(anyScalar, { maxLength: 2 })), {
    maxLength: 3,
  }),
);
const NESTED_FIELDS = ["c"];
/** Operators that mingo evaluates differently from MongoDB on nested arrays. */
const NOT_ON_NESTED = new Set<string>([
  // MINGO DEVIATION ($regex, regex values): MongoDB does not look inside an
  // array nested in an array ({c: /^a/} does not match {c: [["ab"]]}); mingo
  // flattens nested arrays and matches.
  "$regex",
  "regex",
  // MINGO DEVIATION ($elemMatch operator form on nested arrays): MongoDB
  // applies the operators to each element as a whole, so
  // {c: {$elemMatch: {$ne: 0}}} matches {c: [[0]]} ([0] is not 0); mingo
  // looks inside the inner array and does not match.
  "$elemMatch",
]);

// Arrays in "d" hold objects only: see OBJECT_ELEM_MATCH_FIELDS.
const objectArraysArb = fc.oneof(
  fc.array(
    fc.record({ x: anyScalar, y: anyScalar }, { noNullPrototype: true }),
    {
      maxLength: 3,
    },
  ),
  anyScalar,
);
// MINGO DEVIATION ($elemMatch with a sub-document filter): MongoDB applies it
// to object elements only ({a: {$elemMatch: {x: 1}}} does not match
// {a: [1]}); mingo matches scalar elements as if they were the field's
// value. The document form is only generated for "d", whose arrays hold
// objects only.
const OBJECT_ELEM_MATCH_FIELDS = ["d"];

// MINGO DEVIATION ($all on a non-array): MongoDB's {t: {$all: [v]}} is
// {t: v}, so it matches a scalar field equal to v; mingo only matches arrays.
// $all is only generated for "t", which is always an array of scalars (or
// missing).
const tagsArb = fc.array(anyScalar, { maxLength: 4 });
const ALL_FIELDS = ["t"];

// MINGO DEVIATION ($type on arrays): MongoDB applies $type to each element
// as well ({a: {$type: "string"}} matches {a: [1, "x"]}); mingo only to the
// array itself. $type is only generated for "s", which never holds arrays,
// except $type: "array" (which mingo gets right) on top-level fields without
// nested arrays (through arrays, mingo tests the collected array, see
// NOT_THROUGH_ARRAYS).
const scalarsArb = fc.oneof(
  anyScalar,
  fc.record({ x: anyScalar, y: anyScalar }, {
    requiredKeys: [],
    noNullPrototype: true,
  }),
);
const TYPE_FIELDS = ["s"];

const docArb = fc.record(
  {
    a: valueArb(anyScalar),
    b: valueArb(anyScalar),
    n: valueArb(intScalar),
    c: nestedArb,
    d: objectArraysArb,
    t: tagsArb,
    s: scalarsArb,
  },
  { requiredKeys: [], noNullPrototype: true },
);

// ---------------------------------------------------------------------------
// Filters

// MINGO DEVIATION (index into a nested array): MongoDB's "c.0" on
// {c: [[1, 2]]} produces the inner array [1, 2] itself, without looking at
// its elements, so {"c.0": 1} does not match; mingo matches. No path indexes
// into "c", the only field with arrays of arrays.
const PATHS = [
  "a",
  "b",
  "n",
  "c",
  "a.x",
  "a.y",
  "b.x",
  "n.x",
  "a.0",
  "a.1",
  "a.0.x",
  "n.1",
  "d",
  "d.x",
  "t",
  "t.0",
  "s",
  "s.x",
];
const pathArb = fc.constantFrom(...PATHS);
const operand = fc.oneof(
  { weight: 5, arbitrary: anyScalar },
  { weight: 1, arbitrary: fc.array(anyScalar, { maxLength: 2 }) },
  {
    weight: 1,
    arbitrary: fc.record({ x: anyScalar, y: anyScalar }, {
      requiredKeys: [],
      noNullPrototype: true,
    }),
  },
);
// MINGO DEVIATION ($gt/$gte/$lt/$lte with an array operand): MongoDB also
// compares the whole array field with the operand ({a: {$gt: [1]}} matches
// {a: [2]}); mingo only compares elements. Ordering operands are scalars.
const orderOperand = anyScalar;
const regexArb = fc.constantFrom(/^a/, /b$/, /A/i, /^$/, /a|b/);
const typeAlias = fc.constantFrom(
  "string",
  "object",
  "array",
  "bool",
  "null",
  "date",
  "number",
);

function opExpr(): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    operand.map((v) => ({ $eq: v })),
    operand.map((v) => ({ $ne: v })),
    orderOperand.map((v) => ({ $gt: v })),
    orderOperand.map((v) => ({ $gte: v })),
    orderOperand.map((v) => ({ $lt: v })),
    orderOperand.map((v) => ({ $lte: v })),
    fc.tuple(orderOperand, orderOperand).map(([x, y]) => ({ $gt: x, $lt: y })),
    fc.array(fc.oneof(anyScalar, regexArb), { maxLength: 3 }).map((v) => ({
      $in: v,
    })),
    fc.array(fc.oneof(anyScalar, regexArb), { maxLength: 3 }).map((v) => ({
      $nin: v,
    })),
    fc.boolean().map((v) => ({ $exists: v })),
    typeAlias.map((v) => ({ $type: v })),
    fc.integer({ min: 0, max: 3 }).map((v) => ({ $size: v })),
    regexArb.map((v) => ({ $regex: v })),
    fc.constantFrom("^a", "B", "a$").chain((p) =>
      fc.constantFrom("", "i", "m", "s").map((o) => ({
        $regex: p,
        $options: o,
      }))
    ),
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 }))
      .map((
        [d, r],
      ) => ({ $mod: [d, r] })),
    fc.array(anyScalar, { minLength: 1, maxLength: 2 }).map((v) => ({
      $all: v,
    })),
    opElem().map((v) => ({ $elemMatch: v })),
    fc.record({ x: anyScalar }, { noNullPrototype: true }).map((v) => ({
      $elemMatch: v,
    })),
    fc.tuple(anyScalar, orderOperand).map(([x, y]) => ({
      $elemMatch: { x, y: { $gte: y } },
    })),
  );
}

function opElem(): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    orderOperand.map((v) => ({ $gt: v })),
    orderOperand.map((v) => ({ $lte: v })),
    anyScalar.map((v) => ({ $eq: v })),
    anyScalar.map((v) => ({ $ne: v })),
    fc.array(anyScalar, { maxLength: 3 }).map((v) => ({ $in: v })),
    regexArb.map((v) => ({ $regex: v })),
  );
}

const fieldCond: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: operand },
  { weight: 1, arbitrary: regexArb },
  { weight: 6, arbitrary: opExpr() },
  { weight: 2, arbitrary: opExpr().map((e) => ({ $not: e })) },
  { weight: 1, arbitrary: regexArb.map((r) => ({ $not: r })) },
);

const leafFilter = fc.tuple(pathArb, fieldCond).filter(([p, c]) =>
  allowed(p, c)
)
  .map(([p, c]) => ({ [p]: c }));

const { filter: filterArb } = fc.letrec<{ filter: Filter }>((tie) => ({
  filter: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 5, arbitrary: leafFilter },
    {
      weight: 2,
      arbitrary: fc.array(leafFilter, { minLength: 2, maxLength: 3 }).map((
        fs,
      ) => Object.assign({}, ...fs) as Filter),
    },
    ...(["$and", "$or", "$nor"] as const).map((op) => ({
      weight: 1,
      arbitrary: fc.array(tie("filter"), { minLength: 1, maxLength: 3 }).map((
        fs,
      ) => ({ [op]: fs })),
    })),
  ),
}));

/**
 * Operators that mingo evaluates differently from MongoDB when a dotted path
 * crosses an array (e.g. "a.x" with a = [{x: 1}, {x: 2}]): mingo collects the
 * values into a new array ([1, 2]) and applies the operator to it, MongoDB
 * applies it to each value.
 */
const NOT_THROUGH_ARRAYS = new Set<string>([
  // MINGO DEVIATION ($size): {"a.x": {$size: 0}} matches {a: []} in mingo
  // (the collected array is empty); in MongoDB nothing is produced, no match.
  "$size",
  // MINGO DEVIATION ($elemMatch): likewise, {"a.y": {$elemMatch: {$ne: 0}}}
  // matches {a: [{y: 1}]} in mingo (the collected [1]); in MongoDB y is not
  // an array, no match.
  "$elemMatch",
]);

function mentionsNull(v: unknown): boolean {
  if (v === null) return true;
  if (Array.isArray(v)) return v.some(mentionsNull);
  if (typeof v === "object" && !(v instanceof Date) && !(v instanceof RegExp)) {
    return Object.values(v as object).some(mentionsNull);
  }
  return false;
}

function mentionsArrayOperand(cond: unknown): boolean {
  if (Array.isArray(cond)) return true;
  if (
    typeof cond !== "object" || cond === null || cond instanceof Date ||
    cond instanceof RegExp
  ) return false;
  return Object.entries(cond).some(([k, v]) =>
    (k === "$in" || k === "$nin" || k === "$all" || k === "$mod")
      ? (v as unknown[]).some((x) => mentionsArrayOperand(x))
      : mentionsArrayOperand(v)
  );
}

function notOps(cond: unknown): string[] {
  if (typeof cond !== "object" || cond === null || !("$not" in cond)) return [];
  const not = (cond as { $not: unknown }).$not;
  return not instanceof RegExp ? ["regex"] : Object.keys(not as object);
}

/** Excludes the narrow cases where mingo deviates from MongoDB. */
function allowed(path: string, cond: unknown): boolean {
  const ops = typeof cond === "object" && cond !== null &&
      !Array.isArray(cond) && !(cond instanceof Date) &&
      !(cond instanceof RegExp)
    ? Object.keys(cond)
    : [];
  const top = path.split(".")[0]!;
  if (NESTED_FIELDS.includes(top)) {
    if (cond instanceof RegExp && NOT_ON_NESTED.has("regex")) return false;
    if (ops.some((op) => NOT_ON_NESTED.has(op))) return false;
    const not = ops.includes("$not")
      ? (cond as { $not: unknown }).$not
      : undefined;
    if (not instanceof RegExp && NOT_ON_NESTED.has("regex")) return false;
    if (not !== undefined && !(not instanceof RegExp)) {
      if (Object.keys(not as object).some((op) => NOT_ON_NESTED.has(op))) {
        return false;
      }
    }
  }
  if (
    /\.[^0-9]/.test(path) &&
    (ops.some((op) => NOT_THROUGH_ARRAYS.has(op)) ||
      notOps(cond).some((op) => NOT_THROUGH_ARRAYS.has(op)))
  ) {
    return false;
  }
  const elemMatch = (cond as { $elemMatch?: unknown } | null)?.$elemMatch ??
    ((cond as { $not?: { $elemMatch?: unknown } } | null)?.$not?.$elemMatch);
  if (
    elemMatch !== undefined &&
    !Object.keys(elemMatch as object)[0]?.startsWith("$") &&
    !OBJECT_ELEM_MATCH_FIELDS.includes(path)
  ) {
    return false;
  }
  if (
    (ops.includes("$all") || notOps(cond).includes("$all")) &&
    !ALL_FIELDS.includes(path)
  ) {
    return false;
  }
  // MINGO DEVIATION ($all with null): MongoDB's {t: {$all: [null]}} is
  // {t: null} and matches a missing t; mingo does not.
  if (
    (ops.includes("$all") || notOps(cond).includes("$all")) &&
    mentionsNull(cond)
  ) return false;
  // MINGO DEVIATION (null through an index past the end): MongoDB's "t.0" on
  // {t: []} produces nothing, so {"t.0": null} does not match; mingo treats
  // it as missing and matches. Null operands are not used on index paths.
  if (/\.[0-9]/.test(path) && mentionsNull(cond)) return false;
  const type = (cond as { $type?: unknown } | null)?.$type ??
    (cond as { $not?: { $type?: unknown } } | null)?.$not?.$type;
  if (
    type !== undefined && !TYPE_FIELDS.includes(top) &&
    (type !== "array" || NESTED_FIELDS.includes(top) || path.includes("."))
  ) {
    return false;
  }
  // MINGO DEVIATION (array operands through arrays): mingo resolves "a.x" on
  // {a: [{x: 1}, {x: 2}]} to the collected array [1, 2] and compares array
  // operands with it, so {"a.x": [1, 2]} and {"a.x": []} (on {a: []}) match;
  // MongoDB compares each x on its own and does not match. Dotted paths get
  // no array operands (the ones inside $in/$all lists included).
  if (/\.[^0-9]/.test(path) && mentionsArrayOperand(cond)) return false;
  // MINGO DEVIATION ($gte/$lte null): MongoDB's {$gte: null} and {$lte: null}
  // match null and missing, like {$eq: null}; mingo does not match missing.
  const inner = (cond as { $not?: unknown } | null)?.$not ?? cond;
  for (const c of [cond, inner]) {
    if (typeof c === "object" && c !== null && ("$gte" in c || "$lte" in c)) {
      const o = c as { $gte?: unknown; $lte?: unknown };
      if (o.$gte === null || o.$lte === null) return false;
    }
  }
  // See the $mod note at `float`.
  if ((ops.includes("$mod") || notOps(cond).includes("$mod")) && top !== "n") {
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------

function mingoPredicate(filter: Filter): (doc: unknown) => boolean {
  const q = new Query(filter as Record<string, unknown>, {});
  return (doc) => q.test(doc as Record<string, unknown>);
}

both("compileFilter agrees with mingo on random documents and filters", () => {
  const docs = fc.sample(docArb, { numRuns: 500, seed: SEED });
  fc.assert(
    fc.property(filterArb, (filter) => {
      const ours = compileFilter(filter);
      const mingoTest = mingoPredicate(filter);
      for (const doc of docs) {
        let expected: boolean;
        try {
          expected = mingoTest(doc);
        } catch (e) {
          throw new Error(
            `mingo threw ${e}\n  filter=${show(filter)}\n  doc=${show(doc)}`,
          );
        }
        const actual = ours(doc);
        if (actual !== expected) {
          throw new Error(
            `disagree: ours=${actual} mingo=${expected}\n  filter=${
              show(filter)
            }\n  doc=${show(doc)}`,
          );
        }
      }
    }),
    { seed: SEED, numRuns: Math.round(4000 * RUNS) },
  );
});

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof RegExp) return `/${x.source}/${x.flags}`;
    if (typeof x === "string" && /^\d{4}-\d\d-\d\dT/.test(x)) {
      return `Date(${x})`;
    }
    return x;
  });
}

both(
  "indexed queries agree with mingo and with a collection scan",
  async () => {
    // The same random documents and filters, through the whole engine: once
    // in a collection with many indexes (single, compound, multikey, sparse,
    // unique-free) and once in one without, so the planner can never change an
    // answer.
    await using db = await open();
    const indexed = db.collection<Record<string, unknown>>("indexed", {
      indexes: [
        { fields: "a" },
        { fields: "b" },
        { fields: "n" },
        { fields: ["s", "a"] },
        { fields: ["s", "b"] },
        { fields: "c" },
        { fields: "a.x" },
        { fields: "d.x" },
        { fields: "t" },
        { fields: "s", sparse: true },
        { fields: ["s", "n"], sparse: true },
      ],
    });
    const plain = db.collection<Record<string, unknown>>("plain");
    const byId = (docs: Record<string, unknown>[]) =>
      docs.map((d) => d._id as string).sort();
    await fc.assert(
      fc.asyncProperty(
        fc.array(docArb, { maxLength: 30 }),
        filterArb,
        async (raw, filter) => {
          const docs = raw.map((d, i) => ({
            _id: `d${String(i).padStart(2, "0")}`,
            ...(d as Record<string, unknown>),
          }));
          await indexed.clear();
          await plain.clear();
          if (docs.length > 0) {
            await indexed.insertMany(docs);
            await plain.insertMany(docs);
          }
          const test = mingoPredicate(filter);
          const expected = docs.filter((d) => test(d)).map((d) => d._id).sort();
          const viaIndex = byId(await indexed.find(filter).toArray());
          const viaScan = byId(await plain.find(filter).toArray());
          const detail = `filter=${show(filter)} plan=${
            (await indexed.find(filter).explain()).description
          }`;
          if (JSON.stringify(viaIndex) !== JSON.stringify(expected)) {
            throw new Error(
              `indexed ${show(viaIndex)} != mingo ${
                show(expected)
              }\n  ${detail}`,
            );
          }
          if (JSON.stringify(viaScan) !== JSON.stringify(expected)) {
            throw new Error(`scan ${show(viaScan)} != mingo\n  ${detail}`);
          }
          const counted = await indexed.count(filter);
          if (counted !== expected.length) {
            throw new Error(
              `count ${counted} != ${expected.length}\n  ${detail}`,
            );
          }
        },
      ),
      { seed: SEED, numRuns: Math.round(1500 * RUNS) },
    );
  },
);
