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
