import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, startsWith } from "../src/bytes.ts";
import {
  compareKeyParts,
  compareKeys,
  decodeKey,
  encodeKey,
  KEY_TYPE_ORDER,
  type KeyPart,
} from "../src/key_codec.ts";

// --- Arbitraries -----------------------------------------------------------

const interestingNumbers = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  Infinity,
  -Infinity,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  Number.EPSILON,
  2 ** 53 + 2,
  1e-300,
  -1e300,
];

const numberArb: fc.Arbitrary<number> = fc.oneof(
  fc.double({ noNaN: true }),
  fc.integer({ min: -5, max: 5 }),
  fc.integer(),
  fc.constantFrom(...interestingNumbers),
);

// A small alphabet so that generated strings often share prefixes and hit
// the UTF-16 vs code point order difference (astral vs U+E000-U+FFFF).
const trickyChar = fc.constantFrom(
  "\0",
  "\x01",
  "a",
  "b",
  "\x7f",
  "\x80",
  "\u07ff",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\ufeff",
  "\uffff",
  "\u{10000}",
  "\u{1f600}",
  "\u{10ffff}",
);

const stringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: trickyChar, maxLength: 6 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ maxLength: 8 }),
);

const bytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.array(fc.constantFrom(0, 1, 0x7f, 0xfe, 0xff), { maxLength: 6 }).map(
    (a) => new Uint8Array(a),
  ),
  fc.uint8Array({ maxLength: 8 }),
);

const dateArb: fc.Arbitrary<Date> = fc.oneof(
  fc.date({ noInvalidDate: true }),
  fc.constantFrom(-8.64e15, -1, 0, 1, 8.64e15).map((t) => new Date(t)),
);

const partArb: fc.Arbitrary<KeyPart> = fc.oneof(
  fc.constant(null),
  numberArb,
  stringArb,
  bytesArb,
  fc.boolean(),
  dateArb,
);

const tupleArb: fc.Arbitrary<KeyPart[]> = fc.array(partArb, { maxLength: 5 });

// Pairs of tuples that often share a prefix, so the comparison reaches the
// later elements.
const tuplePairArb: fc.Arbitrary<[KeyPart[], KeyPart[]]> = fc.oneof(
  fc.tuple(tupleArb, tupleArb),
  fc.tuple(tupleArb, tupleArb, tupleArb).map((
    [p, a, b],
  ): [KeyPart[], KeyPart[]] => [p.concat(a), p.concat(b)]),
  fc.tuple(tupleArb, partArb, partArb).map((
    [p, a, b],
  ): [KeyPart[], KeyPart[]] => [p.concat([a]), p.concat([b])]),
);

function normalize(tuple: readonly KeyPart[]): KeyPart[] {
  return tuple.map((p) => (p === 0 ? 0 : p));
}

function reference(a: readonly KeyPart[], b: readonly KeyPart[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareKeyParts(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

// --- Properties ------------------------------------------------------------

Deno.test("key codec: decode(encode(t)) round-trips (-0 becomes 0)", () => {
  fc.assert(
    fc.property(tupleArb, (t) => {
      assert.deepStrictEqual(decodeKey(encodeKey(t)), normalize(t));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("key codec: byte order of encodings equals tuple order", () => {
  fc.assert(
    fc.property(tuplePairArb, ([a, b]) => {
      const bytes = Math.sign(compareBytes(encodeKey(a), encodeKey(b)));
      assert.equal(bytes, Math.sign(reference(a, b)));
      assert.equal(Math.sign(compareKeys(a, b)), bytes);
    }),
    { numRuns: 5000 },
  );
});

Deno.test("key codec: compareKeyParts is antisymmetric and agrees with code points", () => {
  fc.assert(
    fc.property(partArb, partArb, (a, b) => {
      assert.equal(
        Math.sign(compareKeyParts(a, b)),
        -Math.sign(compareKeyParts(b, a)) || 0,
      );
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(stringArb, stringArb, (a, b) => {
      const ca = [...a].map((c) => c.codePointAt(0)!);
      const cb = [...b].map((c) => c.codePointAt(0)!);
      let expected = ca.length - cb.length;
      for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
        if (ca[i] !== cb[i]) {
          expected = ca[i]! - cb[i]!;
          break;
        }
      }
      assert.equal(Math.sign(compareKeyParts(a, b)), Math.sign(expected));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("key codec: encoding of a tuple prefixes encodings of its extensions", () => {
  fc.assert(
    fc.property(tupleArb, tupleArb, (t, more) => {
      assert.ok(startsWith(encodeKey(t.concat(more)), encodeKey(t)));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("key codec: whatever decodes re-encodes to the same bytes", () => {
  // Fragments of valid encodings glued with noise, so that decoding often
  // gets far and sometimes succeeds.
  const fragment = fc.oneof(
    tupleArb.map((t) => encodeKey(t)),
    fc.uint8Array({ maxLength: 3 }),
    fc.array(fc.constantFrom(0x00, 0x10, 0x20, 0x30, 0x60, 0x70, 0x80, 0xff), {
      maxLength: 4,
    }).map((a) => new Uint8Array(a)),
  );
  let decoded = 0;
  fc.assert(
    fc.property(fc.array(fragment, { maxLength: 4 }), (frags) => {
      const bytes = new Uint8Array(frags.reduce((n, f) => n + f.length, 0));
      let o = 0;
      for (const f of frags) {
        bytes.set(f, o);
        o += f.length;
      }
      let parts: KeyPart[];
      try {
        parts = decodeKey(bytes);
      } catch (err) {
        assert.ok(err instanceof TypeError, String(err));
        assert.match(err.message, /^Cannot decode key: /);
        return;
      }
      decoded++;
      assert.deepStrictEqual(encodeKey(parts), bytes);
    }),
    { numRuns: 3000 },
  );
  assert.ok(decoded > 100, `only ${decoded} inputs decoded`);
});

// --- Units -----------------------------------------------------------------

Deno.test("key codec: types order null < number < string < bytes < false < true < date", () => {
  const ascending: KeyPart[] = [
    null,
    -Infinity,
    -1,
    0,
    Infinity,
    "",
    "\0",
    "a",
    "\uffff",
    "\u{10000}",
    new Uint8Array(),
    new Uint8Array([0]),
    new Uint8Array([0xff]),
    false,
    true,
    new Date(-8.64e15),
    new Date(0),
    new Date(8.64e15),
  ];
  for (let i = 0; i < ascending.length; i++) {
    for (let j = 0; j < ascending.length; j++) {
      const expected = Math.sign(i - j);
      const a = ascending[i]!;
      const b = ascending[j]!;
      assert.equal(Math.sign(compareKeyParts(a, b)), expected, `${i} vs ${j}`);
      assert.equal(
        Math.sign(compareBytes(encodeKey([a]), encodeKey([b]))),
        expected,
        `${i} vs ${j} encoded`,
      );
    }
  }
  assert.deepStrictEqual(KEY_TYPE_ORDER, [
    "null",
    "number",
    "string",
    "bytes",
    "boolean",
    "date",
  ]);
  assert.ok(Object.isFrozen(KEY_TYPE_ORDER));
});

Deno.test("key codec: encodes the documented layout", () => {
  assert.deepStrictEqual(encodeKey([]), new Uint8Array());
  assert.deepStrictEqual(
    encodeKey([null, false, true, "a\0", new Uint8Array([0, 0xff])]),
    new Uint8Array([
      0x10,
      0x70,
      0x71,
      0x30,
      0x61,
      0x00,
      0xff,
      0x00,
      0x60,
      0x00,
      0xff,
      0xff,
      0x00,
    ]),
  );
  assert.deepStrictEqual(
    encodeKey([1]),
    new Uint8Array([0x20, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0]),
  );
  assert.deepStrictEqual(
    encodeKey([-1]),
    new Uint8Array([0x20, 0x40, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  );
  assert.deepStrictEqual(encodeKey([-0]), encodeKey([0]));
  assert.deepStrictEqual(
    encodeKey([new Date(1)]).subarray(1),
    encodeKey([1]).subarray(1),
  );
  assert.equal(encodeKey([new Date(0)])[0], 0x80);
  assert.deepStrictEqual(
    encodeKey(["é€😀"]),
    new Uint8Array([0x30, ...new TextEncoder().encode("é€😀"), 0]),
  );
});

Deno.test("key codec: round-trips edge values", () => {
  const big = "x\0é😀".repeat(50_000);
  const bigBytes = new Uint8Array(300_000).map((_, i) => i % 3 === 0 ? 0 : i);
  const tuples: KeyPart[][] = [
    [],
    [""],
    ["\ufeff"],
    ["\ufeffa\0"],
    [new Uint8Array()],
    [big, bigBytes, big],
    ["a".repeat(63), "a".repeat(64), "\0".repeat(70)],
    [new Date(-8.64e15), new Date(8.64e15), new Date(-1)],
  ];
  for (const t of tuples) assert.deepStrictEqual(decodeKey(encodeKey(t)), t);
  assert.ok(Object.is(decodeKey(encodeKey([-0]))[0], 0));
});

Deno.test("key codec: results are independent arrays", () => {
  const a = encodeKey(["first"]);
  const copy = a.slice();
  const b = encodeKey(["second, which is longer", 1, 2, 3]);
  assert.deepStrictEqual(a, copy);
  b.fill(0);
  assert.deepStrictEqual(a, copy);

  const input = encodeKey([new Uint8Array([1, 2, 3]), new Uint8Array([0, 1])]);
  const [x, y] = decodeKey(input) as [Uint8Array, Uint8Array];
  assert.notEqual(x.buffer, input.buffer);
  assert.notEqual(y.buffer, input.buffer);
  x[0] = 9;
  assert.deepStrictEqual(decodeKey(input)[0], new Uint8Array([1, 2, 3]));

  // A Uint8Array subclass encodes like its contents and decodes plain.
  class Sub extends Uint8Array {}
  const decoded = decodeKey(encodeKey([new Sub([1, 0])]))[0];
  assert.equal(Object.getPrototypeOf(decoded), Uint8Array.prototype);
});

Deno.test("key codec: a re-entrant encode does not corrupt the outer one", () => {
  const parts: KeyPart[] = ["outer", 1];
  Object.defineProperty(parts, 1, {
    get(): KeyPart {
      encodeKey(["inner".repeat(100), "zzzzzzzz"]);
      return 1;
    },
  });
  assert.deepStrictEqual(encodeKey(parts), encodeKey(["outer", 1]));
});

Deno.test("key codec: rejects NaN and invalid dates with RangeError", () => {
  assert.throws(() => encodeKey(["a", "b", NaN]), {
    name: "RangeError",
    message: "Cannot encode key part 2: NaN has no order",
  });
  assert.throws(() => encodeKey([new Date(NaN)]), {
    name: "RangeError",
    message: /^Cannot encode key part 0: an invalid Date/,
  });
  assert.throws(() => compareKeyParts(NaN, 1), RangeError);
  assert.throws(() => compareKeyParts(1, new Date(NaN)), RangeError);
  // The encoder still works after a failure.
  assert.deepStrictEqual(decodeKey(encodeKey(["ok"])), ["ok"]);
});

Deno.test("key codec: rejects non-key values with TypeError naming the part", () => {
  const bad: unknown[] = [
    undefined,
    {},
    [],
    1n,
    Symbol("s"),
    () => 0,
    new ArrayBuffer(1),
    new Uint16Array(1),
    new Number(1),
    new String("s"),
  ];
  for (const value of bad) {
    assert.throws(
      () => encodeKey(["x", value as KeyPart]),
      (err: unknown) =>
        err instanceof TypeError &&
        err.message.startsWith("Cannot encode key part 1: "),
      String(typeof value),
    );
    assert.throws(() => compareKeyParts(value as KeyPart, 1), TypeError);
    assert.throws(() => compareKeyParts(1, value as KeyPart), TypeError);
  }
  assert.throws(() => encodeKey([undefined as unknown as KeyPart]), {
    name: "TypeError",
    message: /^Cannot encode key part 0: undefined is not a key part/,
  });
  assert.throws(
    () => encodeKey("abc" as unknown as KeyPart[]),
    { name: "TypeError", message: /^Cannot encode key: expected an array/ },
  );
  assert.throws(
    () => decodeKey([0x10] as unknown as Uint8Array),
    { name: "TypeError", message: /^Cannot decode key: expected a Uint8Array/ },
  );
});

Deno.test("key codec: rejects lone surrogates with TypeError", () => {
  for (const s of ["\ud800", "a\udc00", "\ud800a", "\udc00\ud800", "x\ud83d"]) {
    assert.throws(() => encodeKey([s]), {
      name: "TypeError",
      message: /^Cannot encode key part 0: the string has a lone surrogate/,
    });
    assert.throws(() => compareKeyParts(s, "a"), TypeError);
  }
  assert.deepStrictEqual(decodeKey(encodeKey(["\ud83d\ude00"])), ["😀"]);
});

Deno.test("key codec: malformed input is a TypeError", () => {
  const cases: [number[], RegExp][] = [
    [[0x20, 0xbf, 0xf0, 0, 0], /number is truncated/],
    [[0x20], /number is truncated/],
    [[0x80, 0x80, 0, 0], /date is truncated/],
    [[0x30, 0x61, 0x62], /string has no terminator/],
    [[0x30, 0x61, 0x00, 0xff], /string has no terminator/],
    [[0x60, 0x01], /byte array has no terminator/],
    [[0x30], /string has no terminator/],
    [[0x40], /unknown type tag 0x40/],
    [[0x10, 0x00], /unknown type tag 0x00 at offset 1/],
    [[0xff], /unknown type tag 0xff/],
    [[0x30, 0xc3, 0x00], /not valid UTF-8/],
    [[0x30, 0xed, 0xa0, 0x80, 0x00], /not valid UTF-8/],
    [[0x30, 0xc0, 0x80, 0x00], /not valid UTF-8/],
    [[0x20, 0xff, 0xf8, 0, 0, 0, 0, 0, 0], /NaN/],
    [[0x20, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /-0/],
    // 0.5 ms is not a time value; 8.64e15 + 1 is out of range.
    [[0x80, ...encodeKey([0.5]).subarray(1)], /not a valid time value/],
    [[0x80, ...encodeKey([8.64e15 + 1]).subarray(1)], /not a valid time/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => decodeKey(new Uint8Array(bytes)),
      (err: unknown) =>
        err instanceof TypeError &&
        err.message.startsWith("Cannot decode key: ") &&
        message.test(err.message),
      `[${bytes.join(", ")}]`,
    );
  }
  assert.deepStrictEqual(decodeKey(new Uint8Array()), []);
});
