import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, startsWith } from "../src/bytes.ts";
import {
  indexEntries,
  indexName,
  type IndexSpec,
  indexTuples,
  isMultikeyDocument,
} from "../src/engine/index_keys.ts";
import { decodeKey, encodeKey } from "../src/key_codec.ts";
import {
  compareIndexKeyParts,
  compareIndexKeys,
  decodeIndexKey,
  encodeIndexKey,
  type IndexKeyPart,
} from "../src/index_key_codec.ts";
import { compareValues } from "../src/query/compare.ts";
import { compilePathMatcher } from "../src/query/path.ts";

function spec(fields: string[], sparse = false): IndexSpec {
  return { name: indexName(fields), fields, unique: false, sparse };
}

// --- indexTuples -------------------------------------------------------------

Deno.test("indexName: MongoDB style", () => {
  assert.equal(indexName(["city"]), "city_1");
  assert.equal(indexName(["city", "age"]), "city_1_age_1");
  assert.throws(() => indexName([]), TypeError);
  assert.throws(() => indexName([""]), TypeError);
});

Deno.test("indexTuples: scalar fields, missing and null", () => {
  const s = spec(["city", "age"]);
  assert.deepStrictEqual(indexTuples(s, { city: "NY", age: 30 }), [[
    "NY",
    30,
  ]]);
  assert.deepStrictEqual(indexTuples(s, { city: "NY" }), [["NY", null]]);
  assert.deepStrictEqual(indexTuples(s, { city: null, age: 1 }), [[null, 1]]);
  assert.deepStrictEqual(indexTuples(s, {}), [[null, null]]);
  // Not a document: every field is missing.
  assert.deepStrictEqual(indexTuples(s, 42), [[null, null]]);
  assert.deepStrictEqual(indexTuples(s, ["NY"]), [[null, null]]);
  // Dates, booleans, objects and arrays as values.
  const d = new Date(5);
  assert.deepStrictEqual(indexTuples(spec(["x"]), { x: d }), [[d]]);
  assert.deepStrictEqual(indexTuples(spec(["x"]), { x: false }), [[false]]);
  assert.deepStrictEqual(indexTuples(spec(["x"]), { x: { a: 1 } }), [[{
    a: 1,
  }]]);
  // Inherited properties are missing.
  assert.deepStrictEqual(indexTuples(spec(["toString"]), {}), [[null]]);
  assert.deepStrictEqual(indexTuples(spec(["__proto__"]), {}), [[null]]);
  assert.equal(isMultikeyDocument(s, { city: "NY" }), false);
});

Deno.test("indexTuples: nested paths", () => {
  const s = spec(["address.city"]);
  assert.deepStrictEqual(indexTuples(s, { address: { city: "NY" } }), [["NY"]]);
  assert.deepStrictEqual(indexTuples(s, { address: "NY" }), [[null]]);
  assert.deepStrictEqual(indexTuples(s, { address: { zip: 1 } }), [[null]]);
});

Deno.test("indexTuples: sparse skips documents missing every field", () => {
  const s = spec(["a", "b"], true);
  assert.deepStrictEqual(indexTuples(s, { c: 1 }), []);
  assert.deepStrictEqual(indexTuples(s, { a: 1 }), [[1, null]]);
  assert.deepStrictEqual(indexTuples(s, { b: null }), [[null, null]]);
  assert.deepStrictEqual(indexTuples(s, { a: [] }), [[null, null]]);
  // A path through an array of scalars offers nothing: missing.
  assert.deepStrictEqual(indexTuples(spec(["a.x"], true), { a: [1, 2] }), []);
  assert.deepStrictEqual(indexTuples(spec(["a.x"]), { a: [1, 2] }), [[null]]);
});

Deno.test("indexTuples: arrays make the index multikey", () => {
  const s = spec(["tags"]);
  assert.deepStrictEqual(indexEntries(s, { tags: ["a", "b", "a"] }), {
    tuples: [["a"], ["b"]],
    multikey: true,
  });
  // An empty array is indexed as null.
  assert.deepStrictEqual(indexEntries(s, { tags: [] }), {
    tuples: [[null]],
    multikey: true,
  });
  // Nested arrays are values.
  assert.deepStrictEqual(indexTuples(s, { tags: [[1, 2], 3] }), [[[1, 2]], [
    3,
  ]]);
  // Compound: the array field expands, the others repeat.
  assert.deepStrictEqual(
    indexTuples(spec(["city", "tags"]), { city: "NY", tags: [1, 2] }),
    [["NY", 1], ["NY", 2]],
  );
  // Identical values (0 and -0) are deduplicated.
  assert.deepStrictEqual(indexTuples(s, { tags: [0, -0, 1] }), [[0], [1]]);
});

Deno.test("indexTuples: paths through arrays of objects", () => {
  const s = spec(["items.sku"]);
  const doc = { items: [{ sku: "a" }, { sku: "b" }, { qty: 1 }, 5] };
  // The element without the field contributes missing (null); the scalar
  // element contributes nothing.
  assert.deepStrictEqual(indexEntries(s, doc), {
    tuples: [["a"], ["b"], [null]],
    multikey: true,
  });
  // Arrays in arrays of objects.
  assert.deepStrictEqual(
    indexTuples(s, { items: [{ sku: ["x", "y"] }, [{ sku: "z" }]] }),
    [["x"], ["y"]],
  );
  // A numeric segment selects an element by position as well.
  assert.deepStrictEqual(indexTuples(spec(["a.0"]), { a: [7, 8] }), [[7]]);
  assert.deepStrictEqual(indexTuples(spec(["a.0"]), { a: [[1, 2]] }), [[[
    1,
    2,
  ]]]);
  // "a.1.b": element 1 by position, and field "1" of each element (missing,
  // as the query matcher sees it).
  assert.deepStrictEqual(
    indexTuples(spec(["a.1.b"]), { a: [{ b: 1 }, { b: 2 }] }),
    [[null], [2]],
  );
  // Two fields through the same array are allowed (cross product).
  assert.deepStrictEqual(
    indexTuples(spec(["items.sku", "items.qty"]), {
      items: [{ sku: "a", qty: 1 }, { sku: "b", qty: 2 }],
    }),
    [["a", 1], ["a", 2], ["b", 1], ["b", 2]],
  );
});

Deno.test("indexTuples: two separate array fields are an error", () => {
  assert.throws(
    () => indexTuples(spec(["a", "b"]), { a: [1], b: [2] }),
    {
      name: "TypeError",
      message:
        "Cannot index document in index 'a_1_b_1': more than one array field ('a' and 'b'); a compound index allows one array per document",
    },
  );
  // One array is fine either way round.
  assert.equal(indexTuples(spec(["a", "b"]), { a: 1, b: [2, 3] }).length, 2);
});

Deno.test("indexTuples: metadata virtual fields", () => {
  const meta = { createdAt: 100, updatedAt: 200, version: 3 };
  const s = spec(["_createdAt", "_updatedAt", "_version"]);
  assert.deepStrictEqual(indexTuples(s, { a: 1 }, meta), [[100, 200, 3]]);
  // An own field wins.
  assert.deepStrictEqual(indexTuples(s, { _version: "v" }, meta), [[
    100,
    200,
    "v",
  ]]);
  // Without metadata they are ordinary (missing) fields.
  assert.deepStrictEqual(indexTuples(s, {}), [[null, null, null]]);
  // Present metadata keeps a sparse index entry.
  assert.deepStrictEqual(
    indexTuples(spec(["_createdAt"], true), {}, meta),
    [[100]],
  );
});

Deno.test("indexTuples: invalid specs and values", () => {
  assert.throws(
    () =>
      indexTuples({ name: "x", fields: [], unique: false, sparse: false }, {}),
    { name: "TypeError", message: /index 'x': the index has no fields/ },
  );
  assert.throws(() => indexTuples(spec(["a..b"]), {}), TypeError);
  assert.throws(() => indexTuples(spec(["a"]), { a: "\ud800" }), {
    name: "TypeError",
    message: /^Cannot index document in index 'a_1': .*lone surrogate/,
  });
});

// --- Object and array key encoding -------------------------------------------

Deno.test("encodeIndexKey: scalars encode as encodeKey", () => {
  const parts = [null, 1, "x", true, new Date(3), new Uint8Array([0, 1])];
  assert.deepStrictEqual(encodeIndexKey(parts), encodeKey(parts));
  const prefix = encodeKey(["i"]);
  assert.deepStrictEqual(
    encodeIndexKey(["a"], prefix),
    encodeKey(["a"], prefix),
  );
});

Deno.test("encodeIndexKey: object and array format", () => {
  assert.deepStrictEqual(
    encodeIndexKey([{ a: true }]),
    new Uint8Array([0x40, 0x70, 0x30, 0x61, 0x00, 0x71, 0x00]),
  );
  assert.deepStrictEqual(
    encodeIndexKey([[null, []]]),
    new Uint8Array([0x50, 0x10, 0x50, 0x00, 0x00]),
  );
  // Objects and arrays are prefixes of what extends them.
  const key = encodeIndexKey([{ a: 1 }, "id"]);
  assert(startsWith(key, encodeIndexKey([{ a: 1 }])));
  assert.deepStrictEqual(decodeIndexKey(key), [{ a: 1 }, "id"]);
  // decodeKey stays scalar-only.
  assert.throws(() => decodeKey(key), /unknown type tag 0x40/);
});

Deno.test("encodeIndexKey: rejects what cannot be a key", () => {
  const bad: [unknown, RegExp][] = [
    [{ a: undefined }, /^Cannot encode key part 0 at 'a': undefined/],
    [[1, undefined], /^Cannot encode key part 0 at '1': undefined/],
    // deno-lint-ignore no-sparse-arrays
    [[1, , 2], /^Cannot encode key part 0 at '1': undefined/],
    [{ a: /x/ }, /^Cannot encode key part 0 at 'a': an object \(RegExp\)/],
    [{ a: { b: new Map() } }, /at 'a\.b': an object \(Map\)/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => encodeIndexKey([value as IndexKeyPart]), {
      name: "TypeError",
      message,
    });
  }
  assert.throws(() => encodeIndexKey([{ a: NaN }]), RangeError);
  assert.throws(() => encodeIndexKey([[new Date(NaN)]]), RangeError);
  let deep: IndexKeyPart = 1;
  for (let i = 0; i < 300; i++) deep = [deep];
  assert.throws(() => encodeIndexKey([deep]), RangeError);
});

Deno.test("decodeIndexKey: rejects malformed objects and arrays", () => {
  const cases: [number[], RegExp][] = [
    [[0x40], /object has no terminator/],
    [[0x50, 0x10], /array has no terminator/],
    [[0x40, 0x20, 0x10, 0x00], /field name is not a string/],
    [[0x40, 0x20, 0x30, 0x61, 0x00], /has no value/],
    [[0x40, 0x20, 0x30, 0x61, 0x00, 0x10, 0x00], /bracket byte/],
    [
      [0x40, 0x70, 0x30, 0x61, 0x00, 0x71, 0x70, 0x30, 0x61, 0x00, 0x70, 0x00],
      /twice/,
    ],
    // "b" then "1": property order would put "1" first.
    [
      [0x40, 0x10, 0x30, 0x62, 0x00, 0x10, 0x10, 0x30, 0x31, 0x00, 0x10, 0x00],
      /property order/,
    ],
    [[0x50, 0x30, 0x61], /string has no terminator/],
    [[0x50, 0x20, 0x01], /number is truncated/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => decodeIndexKey(new Uint8Array(bytes)),
      (e: unknown) =>
        e instanceof TypeError && e.message.startsWith("Cannot decode key: ") &&
        message.test(e.message),
      `[${bytes.join(", ")}]`,
    );
  }
});

// Values without missing/undefined, RegExps or byte arrays: the document
// values the order is defined on.
const scalarArb: fc.Arbitrary<IndexKeyPart> = fc.oneof(
  fc.constant(null),
  fc.double({ noNaN: true }),
  fc.integer({ min: -3, max: 3 }),
  fc.string({
    maxLength: 3,
    unit: fc.constantFrom("a", "b", "\0", "é", "\uffff", "😀"),
  }),
  fc.boolean(),
  fc.integer({ min: -3, max: 3 }).map((t) => new Date(t)),
);

const { value: valueArb } = fc.letrec<{ value: IndexKeyPart }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalarArb,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.array(
      fc.tuple(fc.constantFrom("a", "b", "", "1", "__proto__"), tie("value")),
      { maxLength: 3 },
    ).map((entries) => {
      const o: Record<string, IndexKeyPart> = {};
      for (const [k, v] of entries) {
        Object.defineProperty(o, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }),
  ),
}));

// Pairs that share structure, so that comparisons go deep.
const pairArb: fc.Arbitrary<[IndexKeyPart, IndexKeyPart]> = fc.oneof(
  fc.tuple(valueArb, valueArb),
  fc.tuple(valueArb, valueArb, valueArb).map((
    [p, a, b],
  ): [IndexKeyPart, IndexKeyPart] => [[p, a], [p, b]]),
  fc.tuple(valueArb, valueArb, valueArb).map((
    [p, a, b],
  ): [IndexKeyPart, IndexKeyPart] => [{ k: p, l: a }, { k: p, l: b }]),
  fc.tuple(valueArb, valueArb).map((
    [p, a],
  ): [IndexKeyPart, IndexKeyPart] => [[p], [p, a]]),
);

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

function normalize(v: IndexKeyPart): unknown {
  if (typeof v === "number") return v === 0 ? 0 : v;
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === "object" && v !== null && !(v instanceof Date)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(o, k, {
        value: normalize((v as Record<string, IndexKeyPart>)[k]!),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return o;
  }
  return v;
}

Deno.test("encodeIndexKey: byte order is compareValues order", () => {
  fc.assert(
    fc.property(pairArb, ([a, b]) => {
      const expected = sign(compareValues(a, b));
      const ea = encodeIndexKey([a]);
      const eb = encodeIndexKey([b]);
      assert.equal(sign(compareBytes(ea, eb)), expected);
      assert.equal(sign(compareIndexKeyParts(a, b)), expected);
      // As tuple elements followed by more parts.
      assert.equal(
        sign(compareBytes(encodeIndexKey([a, "z"]), encodeIndexKey([b, null]))),
        expected === 0 ? 1 : expected,
      );
      assert.equal(
        sign(compareIndexKeys([a, "z"], [b, null])),
        expected === 0 ? 1 : expected,
      );
    }),
    { seed: 20240601, numRuns: 5000 },
  );
});

Deno.test("decodeIndexKey: round trip", () => {
  fc.assert(
    fc.property(fc.array(valueArb, { maxLength: 4 }), (tuple) => {
      const bytes = encodeIndexKey(tuple);
      const back = decodeIndexKey(bytes);
      assert.deepStrictEqual(back, normalize(tuple));
      assert.deepStrictEqual(encodeIndexKey(back), bytes);
    }),
    { seed: 7, numRuns: 3000 },
  );
});

Deno.test("indexTuples: a document's tuples carry every value the matcher offers", () => {
  // Every non-array value a path offers a query operator is indexed
  // (missing as null): the basis of the planner's soundness.
  const docArb = fc.dictionary(fc.constantFrom("a", "b", "0"), valueArb, {
    maxKeys: 3,
  });
  const paths = ["a", "b", "a.b", "a.0", "a.b.a", "0"];
  fc.assert(
    fc.property(docArb, fc.constantFrom(...paths), (doc, path) => {
      const tuples = indexTuples(spec([path]), doc).map((t) =>
        encodeIndexKey(t).join(",")
      );
      const keys = new Set(tuples);
      assert.equal(keys.size, tuples.length);
      compilePathMatcher(path, true)(doc, (v) => {
        if (!Array.isArray(v)) {
          const key = encodeIndexKey([
            v === undefined ? null : v as IndexKeyPart,
          ]).join(",");
          assert(keys.has(key), `${path}: ${JSON.stringify(v)} not indexed`);
        }
        return false;
      });
    }),
    { seed: 11, numRuns: 3000 },
  );
});

Deno.test("indexEntries: one top-level field gives what a compound walk gives for it (the scalar fast path)", () => {
  const value = fc.oneof(
    fc.string(),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.date({ noInvalidDate: true }),
    fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
  );
  const outcome = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (e) {
      return { error: (e as Error).message.replace(/index '[^']*'/, "") };
    }
  };
  fc.assert(
    fc.property(
      fc.constantFrom("a", "constructor", "__proto__", "_version"),
      value,
      fc.boolean(),
      (name, v, sparse) => {
        const doc: Record<string, unknown> = {};
        Object.defineProperty(doc, name, {
          value: v,
          enumerable: true,
          writable: true,
        });
        const one = outcome(() => indexEntries(spec([name], sparse), doc));
        // The compound index walks every field; its second field is a
        // scalar, so it neither adds tuples nor makes the index multikey.
        const two = outcome(() => {
          const e = indexEntries(spec([name, "z"], sparse), { ...doc, z: 1 });
          return {
            tuples: e.tuples.map((t) => [t[0]]),
            multikey: e.multikey,
          };
        });
        if (sparse && v === undefined) return; // the compound has `z`
        assert.deepStrictEqual(one, two);
      },
    ),
    { numRuns: 500 },
  );
});
