/**
 * Issue 16 filter fixes, run compiled and interpreted, each checked against
 * mingo: `$elemMatch` on elements that are arrays, `$in`/`$nin` with
 * operator-like objects matched literally, `$exists` with any truthy or
 * falsy operand.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Query } from "mingo";
import { compileFilter, type Filter } from "../src/query/compile.ts";
import { setCodeGeneration } from "../src/query/codegen.ts";

function both(name: string, fn: () => void): void {
  for (const mode of ["auto", "off"] as const) {
    Deno.test(`${name} [${mode === "auto" ? "compiled" : "interpreted"}]`, () => {
      const before = setCodeGeneration(mode);
      try {
        fn();
      } finally {
        setCodeGeneration(before);
      }
    });
  }
}

function check(filter: Filter, doc: Record<string, unknown>, want: boolean) {
  const got = compileFilter(filter)(doc);
  const mingo = new Query(filter as Record<string, unknown>).test(doc);
  assert.equal(mingo, want, `mingo ${JSON.stringify([filter, doc])}`);
  assert.equal(got, want, JSON.stringify([filter, doc]));
}

both("$elemMatch reads into elements that are arrays", () => {
  check({ a: { $elemMatch: { "0": 1 } } }, { a: [[1, 2]] }, true);
  check({ a: { $elemMatch: { "1": 2 } } }, { a: [[1, 2]] }, true);
  check({ a: { $elemMatch: { "0": 2 } } }, { a: [[1, 2]] }, false);
  // mingo says true here; MongoDB's document form of $elemMatch never
  // matches scalar elements (a number has no field "0"), and neither do we.
  assert.equal(
    compileFilter({ a: { $elemMatch: { "0": 1 } } })({ a: [1, 2] }),
    false,
  );
  check({ a: { $elemMatch: { "0.b": 3 } } }, { a: [[{ b: 3 }]] }, true);
  check(
    { a: { $elemMatch: { $elemMatch: { $eq: 1 } } } },
    { a: [[1, 2]] },
    true,
  );
});

both("$in / $nin match operator-like objects literally", () => {
  check({ a: { $in: [{ $gt: 1 }] } }, { a: { $gt: 1 } }, true);
  check({ a: { $in: [{ $gt: 1 }] } }, { a: 5 }, false);
  check({ a: { $nin: [{ $gt: 1 }] } }, { a: 5 }, true);
  check({ a: { $nin: [{ $gt: 1 }] } }, { a: { $gt: 1 } }, false);
});

both("$exists takes any truthy or falsy operand", () => {
  for (const yes of [1, true, "x", -1, {}, []]) {
    check({ a: { $exists: yes } }, { a: 5 }, true);
    check({ a: { $exists: yes } }, { b: 5 }, false);
  }
  for (const no of [0, false, null, ""]) {
    check({ a: { $exists: no } }, { a: 5 }, false);
    check({ a: { $exists: no } }, { b: 5 }, true);
    check({ a: { $exists: no } }, { a: null }, false);
  }
});

both("$exists and $elemMatch agree with mingo on random documents", () => {
  // Elements are arrays (scalar elements: see the mingo quirk above).
  const value = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });
  const doc = fc.record({ a: fc.array(value, { maxLength: 3 }) }, {
    requiredKeys: [],
  });
  const filter = fc.oneof(
    fc.record({
      a: fc.record({
        $elemMatch: fc.record({ "0": fc.integer({ min: 0, max: 3 }) }),
      }),
    }),
    fc.record({
      a: fc.record({
        $exists: fc.oneof(fc.integer({ min: 0, max: 1 }), fc.boolean()),
      }),
    }),
  );
  fc.assert(
    fc.property(filter, doc, (f, d) => {
      assert.equal(
        compileFilter(f as Filter)(d),
        new Query(f as Record<string, unknown>).test(d),
      );
    }),
    { numRuns: 300 },
  );
});

/** The Manual's collection for the `$bits*` pages. */
const BITS_DOCS = [
  { _id: 1, a: 54, binaryValueofA: "00110110" },
  { _id: 2, a: 20, binaryValueofA: "00010100" },
  { _id: 3, a: 20.0, binaryValueofA: "00010100" },
  { _id: 4, a: Uint8Array.of(0x66), binaryValueofA: "01100110" }, // "Zg=="
];

function ids(filter: Filter): number[] {
  const p = compileFilter(filter);
  return BITS_DOCS.filter((d) => p(d)).map((d) => d._id);
}

both("$bits*: the MongoDB Manual's examples", () => {
  const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  assert.deepEqual(ids({ a: { $bitsAllSet: [1, 5] } }), [1, 4]);
  assert.deepEqual(ids({ a: { $bitsAllSet: 50 } }), [1]);
  assert.deepEqual(ids({ a: { $bitsAllSet: b64("MC==") } }), [1]);
  assert.deepEqual(ids({ a: { $bitsAnySet: [1, 5] } }), [1, 4]);
  assert.deepEqual(ids({ a: { $bitsAnySet: 35 } }), [1, 4]);
  assert.deepEqual(ids({ a: { $bitsAnySet: b64("MC==") } }), [1, 2, 3, 4]);
  assert.deepEqual(ids({ a: { $bitsAllClear: [1, 5] } }), [2, 3]);
  assert.deepEqual(ids({ a: { $bitsAllClear: 35 } }), [2, 3]);
  assert.deepEqual(ids({ a: { $bitsAllClear: b64("IA==") } }), [2, 3]);
  assert.deepEqual(ids({ a: { $bitsAnyClear: [1, 5] } }), [2, 3]);
  // 0x66 has bit 0 clear, so _id 4 matches too.
  assert.deepEqual(ids({ a: { $bitsAnyClear: 35 } }), [1, 2, 3, 4]);
  assert.deepEqual(ids({ a: { $bitsAnyClear: b64("MC==") } }), [2, 3, 4]);
});

both(
  "$bits*: negative numbers are two's complement, fractions never match",
  () => {
    const p = compileFilter({ a: { $bitsAllSet: [0, 63, 200] } });
    assert.equal(p({ a: -1 }), true);
    assert.equal(p({ a: 1 }), false);
    assert.equal(compileFilter({ a: { $bitsAnySet: 1 } })({ a: 1.5 }), false);
    assert.equal(compileFilter({ a: { $bitsAnyClear: 1 } })({ a: "1" }), false);
    assert.equal(compileFilter({ a: { $bitsAllSet: 2 } })({ a: [1, 2] }), true);
    assert.throws(() => compileFilter({ a: { $bitsAllSet: -1 } }), RangeError);
    assert.throws(
      () => compileFilter({ a: { $bitsAllSet: [1.5] } }),
      RangeError,
    );
    assert.throws(() => compileFilter({ a: { $bitsAllSet: "1" } }), TypeError);
    assert.throws(() => compileFilter({ a: { $bitsAllSetx: 1 } }), TypeError);
  },
);

both("$bits* agree with mingo on random integers", () => {
  const op = fc.constantFrom(
    "$bitsAllSet",
    "$bitsAnySet",
    "$bitsAllClear",
    "$bitsAnyClear",
  );
  const operand = fc.oneof(
    fc.integer({ min: 0, max: 1023 }),
    fc.uniqueArray(fc.integer({ min: 0, max: 12 }), { maxLength: 4 }),
  );
  fc.assert(
    fc.property(op, operand, fc.integer({ min: 0, max: 4095 }), (o, x, a) => {
      const f = { a: { [o]: x } };
      assert.equal(compileFilter(f)({ a }), new Query(f).test({ a }));
    }),
    { numRuns: 300 },
  );
});

both("$jsonSchema: the MongoDB Manual's example", () => {
  // The Manual's "students" schema and a document in the style of its
  // inventory example: the match is the set that satisfies the schema.
  const schema = {
    required: ["name", "major", "gpa", "address"],
    properties: {
      name: { bsonType: "string", description: "must be a string" },
      address: {
        bsonType: "object",
        required: ["zipcode"],
        properties: {
          street: { bsonType: "string" },
          zipcode: { bsonType: "string" },
        },
      },
    },
  };
  const p = compileFilter({ $jsonSchema: schema });
  const good = {
    name: "Alice",
    major: "Music",
    gpa: 3.5,
    address: { street: "1 Main", zipcode: "12345" },
  };
  assert.equal(p(good), true);
  assert.equal(p({ ...good, name: 7 }), false);
  assert.equal(p({ ...good, address: { street: "1 Main" } }), false);
  assert.equal(p({ name: "Bob", major: "Art", gpa: 2 }), false);
  // $nor with $jsonSchema finds the documents that do not satisfy it.
  const bad = compileFilter({ $nor: [{ $jsonSchema: schema }] });
  assert.equal(bad(good), false);
  assert.equal(bad({ name: "Bob" }), true);
});

both("$jsonSchema keywords", () => {
  const t = (schema: Record<string, unknown>, doc: unknown) =>
    compileFilter({ $jsonSchema: schema })(doc);
  const props = (p: Record<string, unknown>) => ({ properties: p });
  assert(t(props({ n: { bsonType: "int" } }), { n: 3 }));
  assert(!t(props({ n: { bsonType: "int" } }), { n: 3.5 }));
  assert(t(props({ n: { bsonType: "double" } }), { n: 3.5 }));
  assert(t(props({ n: { bsonType: ["null", "number"] } }), { n: null }));
  assert(t(props({ n: { bsonType: "date" } }), { n: new Date() }));
  assert(t(props({ n: { bsonType: "binData" } }), { n: Uint8Array.of(1) }));
  assert(!t(props({ n: { type: "array" } }), { n: {} }));
  assert(t(props({ n: { enum: [1, "x", [2]] } }), { n: [2] }));
  assert(!t(props({ n: { enum: [1, "x"] } }), { n: 2 }));
  assert(t(props({ n: { minimum: 1, maximum: 3 } }), { n: 3 }));
  assert(!t(props({ n: { maximum: 3, exclusiveMaximum: true } }), { n: 3 }));
  assert(t(props({ n: { minimum: 1 } }), { n: "a string passes" }));
  assert(t(props({ s: { minLength: 2, maxLength: 3 } }), { s: "ab" }));
  assert(!t(props({ s: { maxLength: 3 } }), { s: "abcd" }));
  assert(t(props({ s: { pattern: "^a" } }), { s: "abc" }));
  assert(!t(props({ s: { pattern: "^a" } }), { s: "bc" }));
  assert(t(props({ a: { items: { bsonType: "int" } } }), { a: [1, 2] }));
  assert(!t(props({ a: { items: { bsonType: "int" } } }), { a: [1, "2"] }));
  assert(!t(props({ a: { minItems: 2 } }), { a: [1] }));
  assert(!t(props({ a: { uniqueItems: true } }), { a: [1, 1] }));
  const closed = {
    properties: { _id: {}, a: {} },
    additionalProperties: false,
  };
  assert(t(closed, { _id: 1, a: 2 }));
  assert(!t(closed, { _id: 1, a: 2, b: 3 }));
  assert(!t({ additionalProperties: { bsonType: "string" } }, { x: 1 }));
  assert(t({ anyOf: [{ required: ["a"] }, { required: ["b"] }] }, { b: 1 }));
  assert(!t({ not: { required: ["a"] } }, { a: 1 }));
  assert.throws(
    () => compileFilter({ $jsonSchema: { bsonType: "nope" } }),
    TypeError,
  );
  assert.throws(
    () => compileFilter({ $jsonSchema: { $ref: "#/x" } }),
    TypeError,
  );
  assert.throws(() => compileFilter({ $jsonSchema: 5 }), TypeError);
  assert.throws(() => compileFilter({ $jsonSchemax: {} }), TypeError);
});

// mingo has no built-in $jsonSchema (it needs a validator plugged in), so
// the random check is against a plain oracle of the same keywords.
both("$jsonSchema agrees with an oracle on random documents", () => {
  type Sub = { bsonType?: string; minimum?: number; enum?: number[] };
  const schema = fc.record({
    required: fc.constantFrom(["a"], ["b"], ["a", "b"]),
    properties: fc.record({
      a: fc.oneof(
        fc.record({ bsonType: fc.constantFrom("string", "int", "array") }),
        fc.record({ minimum: fc.integer({ min: 0, max: 3 }) }),
        fc.record({
          enum: fc.array(fc.integer({ min: 0, max: 3 }), {
            minLength: 1,
            maxLength: 3,
          }),
        }),
      ),
    }),
  }, { requiredKeys: [] });
  const doc = fc.record({
    a: fc.oneof(
      fc.integer({ min: 0, max: 3 }),
      fc.string({ maxLength: 2 }),
      fc.constant([1]),
    ),
    b: fc.integer(),
  }, { requiredKeys: [] });
  const oracle = (
    s: { required?: readonly string[]; properties?: { a: Sub } },
    d: Record<string, unknown>,
  ): boolean => {
    if (s.required && !s.required.every((k) => k in d)) return false;
    const a = s.properties?.a;
    if (a === undefined || !("a" in d)) return true;
    const v = d.a;
    if (a.bsonType === "string") return typeof v === "string";
    if (a.bsonType === "int") return Number.isInteger(v);
    if (a.bsonType === "array") return Array.isArray(v);
    if (a.minimum !== undefined) return typeof v !== "number" || v >= a.minimum;
    if (a.enum !== undefined) return a.enum.some((e) => e === v);
    return true;
  };
  fc.assert(
    fc.property(schema, doc, (s, d) => {
      assert.equal(
        compileFilter({ $jsonSchema: s })(d),
        oracle(s as Parameters<typeof oracle>[0], d),
        JSON.stringify([s, d]),
      );
    }),
    { numRuns: 300 },
  );
});

Deno.test("sort: MongoDB's order across types, arrays by min/max, ties by _id", async () => {
  const { compileSort } = await import("../src/query/sort.ts");
  const docs = [
    { _id: 1, v: true },
    { _id: 2, v: "b" },
    { _id: 3, v: new Date(0) },
    { _id: 4, v: { x: 1 } },
    { _id: 5, v: null },
    { _id: 6, v: 2 },
    { _id: 7 },
    { _id: 8, v: [0, 9] },
  ];
  const asc = [...docs].sort(compileSort({ v: 1 })).map((d) => d._id);
  // Missing and null tie (by _id); [0, 9] sorts by its min 0 ascending.
  assert.deepEqual(asc, [5, 7, 8, 6, 2, 4, 1, 3]);
  const desc = [...docs].sort(compileSort({ v: -1 })).map((d) => d._id);
  // Descending, [0, 9] sorts by its max 9, above 2; missing and null tie
  // by _id descending (the direction of the last key).
  assert.deepEqual(desc, [3, 1, 4, 2, 8, 6, 7, 5]);
  const ties = [{ _id: "c", k: 1 }, { _id: "a", k: 1 }, { _id: "b", k: 0 }];
  assert.deepEqual(
    [...ties].sort(compileSort({ k: 1 })).map((d) => d._id),
    ["b", "a", "c"],
  );
  assert.deepEqual(
    [...ties].sort(compileSort({ k: -1 })).map((d) => d._id),
    ["c", "a", "b"],
  );
  // The last key sets the ties' direction.
  assert.deepEqual(
    [...ties, { _id: "d", k: 1 }].sort(compileSort({ k: -1, z: 1 })).map((
      d,
    ) => d._id),
    ["a", "c", "d", "b"],
  );
  assert.deepEqual(
    [...docs].reverse().sort(compileSort({ v: 1 })).map((d) => d._id),
    asc,
  );
});
