/**
 * Compiled queries: generated code is safe against hostile field names and
 * values, shared between filters of one shape, bounded in number, agrees
 * with the interpreter, and the interpreter answers where code generation
 * from strings is forbidden.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compileFilter,
  type Filter,
  parseFilter,
} from "../src/query/compile.ts";
import {
  cachedShapes,
  codeGeneration,
  filterSource,
  MAX_GENERATED_CONDITIONS,
  setCodeGeneration,
  SHAPE_CACHE_SIZE,
} from "../src/query/codegen.ts";
import { compileSort } from "../src/query/sort.ts";
import { open } from "../mod.ts";

/** Compiles a filter both ways. */
function bothWays(filter: Filter): {
  compiled: (doc: unknown, tags?: readonly string[]) => boolean;
  interpreted: (doc: unknown, tags?: readonly string[]) => boolean;
} {
  const before = setCodeGeneration("auto");
  try {
    const compiled = compileFilter(filter);
    setCodeGeneration("off");
    const interpreted = compileFilter(filter);
    return { compiled, interpreted };
  } finally {
    setCodeGeneration(before);
  }
}

const HOSTILE = [
  'a"); Deno.exit(1); //',
  'a"); throw 1; //',
  'a"]; globalThis.pwned = 1; //',
  "a'); globalThis.pwned = 1; //",
  "a`; globalThis.pwned = 1; //",
  "a${globalThis.pwned = 1}",
  "*/ globalThis.pwned = 1; /*",
  "a\\",
  "\\u0022",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "prototype",
  "x\u2028globalThis.pwned = 1",
  "\u2029",
  "line\nbreak",
  "\r",
  "\0",
  "\ud800",
  "\udfff lone",
  "😀",
  "c0",
  "h",
  "d",
  "t",
  "v",
  "x",
];

function own(key: string, value: unknown): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  Object.defineProperty(doc, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return doc;
}

Deno.test("hostile field names and values never become code", () => {
  const g = globalThis as { pwned?: unknown };
  delete g.pwned;
  for (const name of HOSTILE) {
    const filters: Filter[] = [
      own(name, 5),
      own(name, { $gt: 4, $lte: 5 }),
      own(name, { $ne: name }),
      own(name, name),
      own(name, { $in: [name, 5] }),
      { $or: [own(name, 6), own(`${name}.${name}`, 5)] },
      own(`outer.${name}`, { $gte: 5 }),
    ];
    const docs: unknown[] = [
      own(name, 5),
      own(name, name),
      own(name, [1, 5]),
      own(name, { [name]: 5 }),
      { outer: own(name, 7) },
      { outer: [own(name, 7)] },
      {},
      { [name === "__proto__" ? "p" : name]: 6 },
    ];
    for (const filter of filters) {
      const { compiled, interpreted } = bothWays(filter);
      for (const doc of docs) {
        assert.equal(
          compiled(doc),
          interpreted(doc),
          `name ${JSON.stringify(name)}, filter ${Deno.inspect(filter)}, doc ${
            Deno.inspect(doc)
          }`,
        );
      }
      const { source } = filterSource(parseFilter(filter));
      // Values are constants: a string value never appears in the source.
      if (name.length > 3) {
        assert(!source.includes(`=== "${name}"`), source);
      }
    }
  }
  assert.equal(g.pwned, undefined);
  // The expected answers, not only agreement.
  const p = compileFilter(own('a"); throw 1; //', { $gte: 5 }));
  assert(p(own('a"); throw 1; //', 5)));
  assert(!p({ a: 5 }));
  // A dot splits the path: 'a"); Deno' then 'exit(1); //'.
  const exit = compileFilter(own('a"); Deno.exit(1); //', 5));
  assert(exit({ 'a"); Deno': { "exit(1); //": 5 } }));
  const proto = compileFilter(own("__proto__", { $exists: true }));
  assert(!proto({}), "an inherited __proto__ is missing");
  const protoOwn = compileFilter(own("__proto__", 1));
  assert(protoOwn(own("__proto__", 1)));
  assert(!protoOwn({}));
  const ctor = compileFilter({ constructor: { $exists: true } });
  assert(!ctor({}), "inherited methods are missing");
  assert(ctor({ constructor: 1 }));
  const sep = compileFilter(own("a\u2028b", "x\u2029"));
  assert(sep(own("a\u2028b", "x\u2029")));
  assert(!sep(own("a\u2028b", "x")));
});

Deno.test("filters of one shape share generated code; values are parameters", () => {
  const before = setCodeGeneration("auto"); // clears the cache
  try {
    const a = filterSource(parseFilter({ age: 42, city: "SF" }));
    const b = filterSource(parseFilter({ age: 43, city: "LA" }));
    assert.equal(a.source, b.source);
    assert.deepEqual(a.constants, [42, "SF"]);
    assert.deepEqual(b.constants, [43, "LA"]);
    // A different operand type or operator is another shape.
    const c = filterSource(parseFilter({ age: "42", city: "SF" }));
    const d = filterSource(parseFilter({ age: { $gt: 42 }, city: "SF" }));
    assert.notEqual(a.source, d.source);
    assert(!a.source.includes("42") && !c.source.includes('"42"'));

    const p42 = compileFilter({ age: 42 });
    assert.equal(cachedShapes(), 1);
    const p43 = compileFilter({ age: 43 });
    assert.equal(cachedShapes(), 1);
    assert(p42({ age: 42 }) && !p42({ age: 43 }));
    assert(p43({ age: 43 }) && !p43({ age: 42 }));
    compileFilter({ age: { $lt: 43 } });
    assert.equal(cachedShapes(), 2);
  } finally {
    setCodeGeneration(before);
  }
});

Deno.test("a compiled filter tests the document's kind once; arrays, scalars, null and Dates answer as in the interpreter", () => {
  const before = setCodeGeneration("auto");
  try {
    // One look at `d` for the whole filter, none per field; and no step
    // for methods where a comparison fails on them anyway.
    const { source } = filterSource(
      parseFilter({ city: "SF", age: { $gte: 30 }, n: { $lt: 2 } }),
    );
    assert.equal(source.split("h.isArray(d)").length - 1, 1, source);
    assert(!source.includes('typeof v === "function"'), source);
    // A null test still treats a method as a missing field.
    assert(
      filterSource(parseFilter({ a: null })).source.includes(
        'typeof v === "function"',
      ),
    );
  } finally {
    setCodeGeneration(before);
  }
  const filters: Filter[] = [
    { length: 3 },
    { length: { $exists: false } },
    { "0": 1 },
    { "0": { $exists: true } },
    { a: null },
    { a: { $ne: 1 }, "b.c": { $exists: false } },
    { getTime: { $exists: true } },
    { $or: [{ a: 1 }, { toString: null }] },
    { tags: "x", a: { $gt: 0 } },
    { $nor: [{ a: 1 }], "x.y": null },
    {},
  ];
  const docs: unknown[] = [
    "abc",
    [1, 2, 3],
    [{ a: 1 }],
    3,
    null,
    true,
    new Date(0),
    /re/,
    { a: 1, b: { c: 2 }, length: 3, "0": 1 },
    { a: [0, 1], tags: ["x"] },
    {},
  ];
  for (const filter of filters) {
    const { compiled, interpreted } = bothWays(filter);
    for (const doc of docs) {
      for (const tags of [undefined, ["x"]]) {
        assert.equal(
          compiled(doc, tags),
          interpreted(doc, tags),
          `filter ${Deno.inspect(filter)} doc ${Deno.inspect(doc)}`,
        );
      }
    }
  }
});

Deno.test("very large filters are interpreted, not compiled", () => {
  const before = setCodeGeneration("auto");
  try {
    const n = MAX_GENERATED_CONDITIONS + 1;
    const big = {
      $or: Array.from({ length: n }, (_, i) => ({ [`f${i}`]: i })),
    };
    const p = compileFilter(big);
    assert.equal(cachedShapes(), 0, "no source was generated");
    assert(p({ f7: 7 }) && !p({ f7: 8 }));
    compileFilter({ $or: big.$or.slice(1) });
    assert.equal(cachedShapes(), 1, "one condition less is compiled");
  } finally {
    setCodeGeneration(before);
  }
});

Deno.test("the shape cache is bounded (least recently used shapes go)", () => {
  const before = setCodeGeneration("auto");
  try {
    const first = compileFilter({ f0: 1 });
    for (let i = 0; i < SHAPE_CACHE_SIZE + 50; i++) {
      compileFilter({ [`f${i}`]: { $gte: i } });
      assert(cachedShapes() <= SHAPE_CACHE_SIZE);
    }
    assert.equal(cachedShapes(), SHAPE_CACHE_SIZE);
    // Evicted shapes still compile and answer.
    assert(first({ f0: 1 }));
    assert(compileFilter({ f0: { $gte: 0 } })({ f0: 3 }));
  } finally {
    setCodeGeneration(before);
  }
});

// Keys that are hostile to code generation or to property lookup.
const keyArb = fc.constantFrom(
  "a",
  "b",
  "__proto__",
  "constructor",
  'q"); x(',
  "\u2028",
  "tags",
);
const scalarArb = fc.oneof(
  fc.integer({ min: -2, max: 2 }),
  fc.constantFrom("", "a", "b", 'q"); x(', "\u2029"),
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(NaN, 0.5, -0),
);
const valueArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { weight: 4, arbitrary: scalarArb },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 3 }) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(keyArb, tie("value")), { maxLength: 2 })
        .map((kvs) => {
          const o: Record<string, unknown> = {};
          for (const [k, v] of kvs) {
            Object.defineProperty(o, k, {
              value: v,
              enumerable: true,
              writable: true,
              configurable: true,
            });
          }
          return o;
        }),
    },
  ),
})).value;
const pathArb = fc.oneof(
  keyArb,
  fc.tuple(keyArb, keyArb).map(([a, b]) => `${a}.${b}`),
  fc.tuple(keyArb, fc.constantFrom("0", "1")).map(([a, i]) => `${a}.${i}`),
);
const opArb = fc.oneof(
  scalarArb,
  fc.tuple(
    fc.constantFrom("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"),
    scalarArb,
  ).map(([op, v]) => ({ [op]: v })),
  fc.array(scalarArb, { maxLength: 3 }).map((vs) => ({ $in: vs })),
  fc.array(scalarArb, { maxLength: 3 }).map((vs) => ({ $nin: vs })),
  fc.boolean().map((b) => ({ $exists: b })),
  fc.integer({ min: 0, max: 2 }).map((n) => ({ $size: n })),
  scalarArb.map((v) => ({ $not: { $eq: v } })),
  fc.constant({ $regex: "^a" }),
);
const fieldArb = fc.tuple(pathArb, opArb).map(([p, op]) => own(p, op));
const filterArb: fc.Arbitrary<Filter> = fc.letrec((tie) => ({
  filter: fc.oneof(
    { weight: 3, arbitrary: fieldArb },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.constantFrom("$and", "$or", "$nor"),
        fc.array(tie("filter"), { minLength: 1, maxLength: 3 }),
      ).map(([op, fs]) => ({ [op]: fs })),
    },
  ),
})).filter as fc.Arbitrary<Filter>;

Deno.test("compiled and interpreted filters agree on random documents (hostile keys, tags)", () => {
  const docs = fc.sample(
    fc.tuple(
      valueArb,
      fc.option(fc.array(fc.constantFrom("a", "b"), { maxLength: 2 })),
    ),
    { numRuns: 200, seed: 7 },
  );
  fc.assert(
    fc.property(filterArb, (filter) => {
      const { compiled, interpreted } = bothWays(filter);
      for (const [doc, tags] of docs) {
        const t = tags ?? undefined;
        assert.equal(
          compiled(doc, t),
          interpreted(doc, t),
          `filter ${Deno.inspect(filter)} doc ${Deno.inspect(doc)} tags ${
            Deno.inspect(t)
          }`,
        );
      }
    }),
    { seed: 11, numRuns: Deno.env.get("TETHER_TORTURE") ? 20_000 : 500 },
  );
});

Deno.test("where code generation is forbidden, the interpreter answers", async () => {
  // A host that forbids code generation from strings (V8's flag, as some
  // edge runtimes set it): `new Function` throws an EvalError.
  const script = `
    import { compileFilter } from ${
    JSON.stringify(new URL("../src/query/compile.ts", import.meta.url).href)
  };
    import { codeGeneration } from ${
    JSON.stringify(new URL("../src/query/codegen.ts", import.meta.url).href)
  };
    import { open } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url).href)
  };
    let evalError = false;
    try { new Function("return 1"); } catch (e) { evalError = e instanceof EvalError; }
    const p = compileFilter({ age: { $gte: 30 }, city: "SF" });
    await using db = await open();
    await db.putBatch([{ age: 31, city: "SF" }, { age: 29, city: "SF" }, { age: 40, city: "NY" }]);
    console.log(JSON.stringify({
      evalError,
      mode: codeGeneration(),
      a: p({ age: 31, city: "SF" }),
      b: p({ age: 29, city: "SF" }),
      count: await db.count({ age: { $gte: 30 }, city: "SF" }),
      found: await db.find({ age: { $gt: 30 } }, { sort: { age: -1 } }).toArray(),
    }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--ext=ts",
      "--v8-flags=--disallow-code-generation-from-strings",
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, stderr);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(result, {
    evalError: true,
    mode: "interpreted",
    a: true,
    b: false,
    count: 1,
    found: [{ age: 40, city: "NY" }, { age: 31, city: "SF" }],
  });
});

Deno.test("compiled sorts order like the interpreter", () => {
  const docs = fc.sample(valueArb, { numRuns: 300, seed: 3 });
  for (
    const spec of [
      { a: 1 },
      { a: -1 },
      { "a.b": 1, a: -1 },
      own("__proto__", 1) as Record<string, 1>,
      own('q"); x(', -1) as Record<string, -1>,
    ] as Record<string, 1 | -1>[]
  ) {
    const before = setCodeGeneration("auto");
    try {
      const compiled = compileSort(spec);
      setCodeGeneration("off");
      const interpreted = compileSort(spec);
      for (let i = 0; i + 1 < docs.length; i++) {
        assert.equal(
          Math.sign(compiled(docs[i], docs[i + 1])),
          Math.sign(interpreted(docs[i], docs[i + 1])),
          `sort ${Deno.inspect(spec)} ${Deno.inspect(docs[i])} vs ${
            Deno.inspect(docs[i + 1])
          }`,
        );
      }
    } finally {
      setCodeGeneration(before);
    }
  }
});

Deno.test("queries through the database agree in both modes", async () => {
  await using db = await open();
  const users = db.collection<Record<string, unknown>>("users");
  await users.createIndex("age");
  const docs = [];
  for (let i = 0; i < 200; i++) {
    docs.push({ name: `u${i}`, age: i % 40, city: ["SF", "NY", "LA"][i % 3] });
  }
  await users.insertMany(docs);
  const run = async () => [
    await users.count({ city: "SF", age: { $gte: 30 } }),
    (await users.find({ age: 12 }).toArray()).length,
    await users.find({ $or: [{ city: "LA" }, { age: { $lt: 3 } }] }, {
      sort: { age: -1, name: 1 },
      limit: 5,
    }).toArray(),
  ];
  const before = setCodeGeneration("auto");
  try {
    const compiled = await run();
    assert.equal(codeGeneration(), "compiled");
    setCodeGeneration("off");
    assert.deepEqual(await run(), compiled);
  } finally {
    setCodeGeneration(before);
  }
});

Deno.test("a hole in a filter's or a pipeline's list (a sparse array) is a TypeError at compile time naming where, compiled or interpreted, never a crash when matching", async () => {
  // Sparse arrays cannot come from JSON, but a JavaScript caller can write
  // them; list methods (`map`, `some`) pass over their holes. Found by
  // torture's query fuzz 5 (seed -554783672): `{ "1.2": { $type: [, 1] } }`
  // compiled, then threw "tests[i] is not a function" on every document.
  // deno-lint-ignore no-sparse-arrays
  const hole = <T>(x: T): T[] => [, x] as T[];
  const cases: [Filter, RegExp][] = [
    [{ a: { $type: hole(1) } }, /at 'a': '\$type' got unknown type undefined/],
    [{ $and: hole({ a: 1 }) }, /at '\$and\[0\]': a filter must be/],
    [{ $or: hole({ a: 1 }) }, /at '\$or\[0\]': a filter must be/],
    [{ $nor: hole({ a: 1 }) }, /at '\$nor\[0\]': a filter must be/],
    [{ a: { $elemMatch: { $or: hole({ b: 1 }) } } }, /\$or\[0\]/],
    [{ $jsonSchema: { type: hole("object") } }, /'type' has a hole at index 0/],
    [{ $jsonSchema: { required: hole("a") } }, /'required' has a hole/],
    [{ $jsonSchema: { enum: hole(1) } }, /'enum' has a hole at index 0/],
    [{ $jsonSchema: { anyOf: hole({}) } }, /'anyOf' has a hole/],
    [
      { $jsonSchema: { properties: { a: { items: hole({}) } } } },
      /'items' has a hole/,
    ],
  ];
  const docs = [{ a: 1 }, { a: [1, 2] }, {}, { a: null }];
  for (const mode of ["auto", "off"] as const) {
    const before = setCodeGeneration(mode);
    try {
      for (const [filter, message] of cases) {
        assert.throws(
          () => compileFilter(filter),
          (e: unknown) => e instanceof TypeError && message.test(e.message),
          `${mode}: ${JSON.stringify(filter)}`,
        );
      }
      // Dense lists of the same shapes still work.
      const p = compileFilter({ a: { $type: ["number", "array"] } });
      assert.deepEqual(docs.map((d) => p(d)), [true, true, false, false]);
    } finally {
      setCodeGeneration(before);
    }
  }
  await using db = await open();
  const c = db.collection("c");
  await c.put("x", { a: 1 });
  assert.throws(() => c.find({ $or: hole({ a: 1 }) }), /\$or\[0\]/);
  assert.throws(
    () => c.aggregate(hole({ $match: {} })),
    /stage 0 must be an object/,
  );
  assert.deepEqual(await c.find({ $or: [{ a: 1 }] }).toArray(), [{ a: 1 }]);
});
