/**
 * Property-based hostile-input tests of the query language: filters,
 * updates, projections, sorts and pipelines from the grammar in
 * fixtures/query_fuzz_inputs.ts, run on a memory database whose varied
 * documents sit in a plain collection and in one with indexes (single,
 * compound, unique sparse, multikey), so that the planner's index paths run.
 *
 * 1. A read answers or throws a TypeError/RangeError saying "Cannot …",
 *    never a leaked internal error; reads change nothing; the plain and the
 *    indexed collection agree.
 * 2. A write that throws changes nothing; one that succeeds verifies.
 * 3. Results are copies, and so is what a write stored.
 * 4. Nothing pollutes a prototype; results hold only plain objects.
 * 5. Compiled and interpreted filters agree.
 * 6. Where mingo and we both accept a filter, the matches agree.
 *
 * Runs grow 20x with TETHER_TORTURE set (QUERY_FUZZ_SEED replays a seed).
 * Each property counts how often it reached each of its branches (success,
 * error…) and asserts it reached all.
 * The bugs it found are fixed; each has a test at the end.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Query } from "mingo";
import {
  type Collection,
  ConflictError,
  type Database,
  DuplicateKeyError,
  open,
  TooLargeError,
} from "../mod.ts";
import { compileFilter, type Filter } from "../src/query/compile.ts";
import { codeGeneration, setCodeGeneration } from "../src/query/codegen.ts";
import * as gen from "./fixtures/query_fuzz_inputs.ts";
import {
  assertNoPollution,
  attempt,
  fuzzRuns,
  type Outcome,
} from "./fixtures/fuzz_common.ts";

// A random seed each run (fast-check prints it on failure); QUERY_FUZZ_SEED
// replays one.
const runs = fuzzRuns("QUERY_FUZZ_SEED");

type Doc = Record<string, unknown>;
type Coll = Collection<Doc>;
// deno-lint-ignore no-explicit-any
type Any = any;

// ---- helpers ---------------------------------------------------------------

/**
 * A memory database with the seed documents in a plain and an indexed
 * collection; `await using` closes it.
 */
async function fixture(readonly = false) {
  const db: Database = await open({ readonly });
  const plain = db.collection<Doc>("plain");
  const indexed = db.collection<Doc>("indexed", { indexes: gen.INDEXES });
  await plain.insertMany(gen.seedDocs());
  await indexed.insertMany(gen.seedDocs());
  const colls = [plain, indexed] as const;
  return { db, colls, [Symbol.asyncDispose]: () => db.close() };
}

// JavaScript's own messages ("undefined is not" / "null is not" narrowed to
// V8's forms: "undefined is not an expression" is the library's). Several
// of V8's TypeErrors start with "Cannot " too.
const LEAK = new RegExp(
  "Cannot read properties|is not a function|is not iterable|Maximum call " +
    "stack|(undefined|null) is not (a |an object|iterable)|Invalid array " +
    "length|Cannot (set properties|convert|mix BigInt|create property|" +
    "assign to read only|add property|redefine|destructure|use 'in')|" +
    "Invalid time value|Reduce of empty|before initialization",
);
/** The domain errors a write may also throw: unique index, size, version. */
const WRITE_ERRORS = [DuplicateKeyError, TooLargeError, ConflictError];

/**
 * Asserts `e` is a caller error, a TypeError or RangeError (or one of
 * `also`) whose message starts with "Cannot <verb>" and is not one of
 * JavaScript's own; returns its class name.
 */
function callerError(
  e: unknown,
  also: readonly (abstract new (...a: never[]) => Error)[] = [],
): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : e;
  assert(
    e instanceof TypeError || e instanceof RangeError ||
      also.some((c) => e instanceof c),
    `not a caller error: ${String(text)}`,
  );
  assert.match((e as Error).message, /^Cannot [a-z]+/, String(text));
  assert.doesNotMatch((e as Error).message, LEAK, String(text));
  return (e as Error).constructor.name;
}

/**
 * Every document of the collections with its metadata, and the indexes: a
 * deep copy, so that it stays what it was even if reads shared the stored
 * objects.
 */
async function dump(colls: readonly Coll[], clone = true): Promise<Any[]> {
  const out: unknown[] = [];
  for (const c of colls) {
    out.push(c.name, await c.indexes());
    for await (const e of c.find({}).entries()) out.push(e);
  }
  return clone ? structuredClone(out) : out;
}

/** Property 4: a result holds only plain objects, arrays, Dates and bytes. */
function assertPlain(v: unknown, path = "result"): void {
  if (typeof v !== "object" || v === null) return;
  if (v instanceof Date || v instanceof Uint8Array) return;
  const want = Array.isArray(v) ? Array.prototype : Object.prototype;
  assert.equal(Object.getPrototypeOf(v), want, `${path}: foreign prototype`);
  for (const k of Object.keys(v)) assertPlain((v as Doc)[k], `${path}.${k}`);
}

/** Changes everything reachable from `v` that is not frozen. */
function mutate(v: unknown): void {
  if (typeof v !== "object" || v === null) return;
  if (v instanceof Date) return void v.setTime(123_456_789);
  if (v instanceof Uint8Array) return void v.fill(7);
  const items = Array.isArray(v) ? v : Object.values(v);
  items.forEach(mutate);
  if (Object.isFrozen(v)) return;
  if (Array.isArray(v)) return void v.reverse().push("mutated");
  for (const k of Object.keys(v)) (v as Doc)[k] = "mutated";
  (v as Doc).added = { deep: ["x"] };
}

/** A comparable text of a value (dates, bytes, -0 and key order kept). */
function canon(v: unknown): string {
  if (v instanceof Date) return `D${v.getTime()}`;
  if (v instanceof Uint8Array) return `B[${v}]`;
  if (Array.isArray(v)) return `[${v.map(canon)}]`;
  if (typeof v === "object" && v !== null) {
    const fields = Object.entries(v).map(([k, x]) => `${k}:${canon(x)}`);
    return `{${fields}}`;
  }
  if (Object.is(v, -0)) return "-0";
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** Whether `op` appears as a key anywhere in `v`. */
function mentions(v: unknown, op: string, depth = 0): boolean {
  if (typeof v !== "object" || v === null || depth > 300) return false;
  return Object.keys(v).some((k) =>
    k === op || mentions((v as Doc)[k], op, depth + 1)
  );
}

/** Counts the branches a property reached; `check` asserts it reached all. */
function counter<K extends string>(...names: K[]) {
  const seen = new Map<K, number>(names.map((n) => [n, 0]));
  return {
    hit: (n: K) => void seen.set(n, seen.get(n)! + 1),
    check: () => {
      for (const [n, c] of seen) assert(c > 0, `never reached '${n}'`);
    },
  };
}

/** Runs a read of fixtures/query_fuzz_inputs.ts's `readOp`. */
// deno-fmt-ignore
const READS: Record<string, (c: Coll, f: Any, o: Any, op: Any) => unknown> = {
  find: (c, f, o) => c.find(f, o).toArray(),
  cursorCount: (c, f, o) => c.find(f, o).count(),
  page: (c, f, o, op) => c.find(f, o).page(op.size).then((p) => p.items),
  entries: (c, f, o) => Array.fromAsync(c.find(f, o).entries(), (e) => e.value),
  findOne: (c, f, o) => c.findOne(f, o),
  count: (c, f) => c.count(f),
  explain: (c, f, o, op) => c.find(f, o).explain(op.mode),
  aggregate: (c, _, o, op) => c.aggregate(op.pipeline, o).toArray(),
  distinct: (c, f, _, op) => c.distinct(op.field, f),
};
const runRead = (c: Coll, op: Any) =>
  READS[op.kind]!(c, op.filter, op.options, op);

/** Runs a write of `writeOp`, giving each method only its own options. */
function runWrite(c: Coll, op: Any): Promise<unknown> {
  const { filter: f, update: u, options: o } = op;
  const { returnDocument, expectedVersion, upsert, arrayFilters } = o ?? {};
  // deno-fmt-ignore
  switch (op.kind) {
    case "findOneAndUpdate":
      return c.findOneAndUpdate(f, u, { upsert, returnDocument, arrayFilters });
    case "update": return c.update(f, u, { expectedVersion });
    case "replaceOne": return c.replaceOne(f, u, { expectedVersion, upsert });
    case "deleteMany": return c.deleteMany(f);
    default: return c[op.kind as "updateOne"](f, u, { upsert, arrayFilters });
  }
}

/** Whether the plain and the indexed collection must give the same answer. */
function orderFree(op: Any): boolean {
  const o = op.options ?? {};
  return ["find", "cursorCount", "count"].includes(op.kind) &&
    o.limit === undefined && o.skip === undefined && o.after === undefined &&
    !mentions(op.filter, "$limit") && !mentions(op.filter, "$expr");
}

// ---- the properties ----------------------------------------------------------

Deno.test("query fuzz 1: a read answers or throws a caller error, and changes nothing", async () => {
  await using fx = await fixture();
  const before = await dump(fx.colls);
  const count = counter("ok", "error", "agree");
  await fc.assert(
    fc.asyncProperty(gen.readOp, async (op) => {
      const outcomes: Outcome[] = [];
      for (const c of fx.colls) {
        outcomes.push(await attempt(() => runRead(c, op)));
      }
      for (const r of outcomes) {
        count.hit(r.ok ? "ok" : "error");
        if (!r.ok) callerError(r.error);
        else if (op.kind !== "explain") assertPlain(r.value);
        if (r.ok && "filter" in op && op.kind !== "count") {
          assert(!gen.malformed(op.filter), "a malformed filter passed");
        }
      }
      const [plain, indexed] = outcomes as [Outcome, Outcome];
      if (orderFree(op)) {
        assert.equal(plain.ok, indexed.ok, "plain and indexed disagree");
        if (plain.ok && indexed.ok) {
          // In order when sorted (ties go by _id): index order or not.
          const sorted = (op as Any).options?.sort !== undefined;
          const set = (v: unknown) =>
            Array.isArray(v) && !sorted ? v.map(canon).sort() : canon(v);
          assert.deepEqual(set(indexed.value), set(plain.value));
          count.hit("agree");
        }
      }
      assertNoPollution();
    }),
    runs(800),
  );
  assert.deepStrictEqual(await dump(fx.colls), before, "a read wrote");
  assert.deepEqual((await fx.db.verify()).problems, []);
  count.check();
});

Deno.test("query fuzz 2: a write that throws changes nothing; one that succeeds verifies", async () => {
  const count = counter("ok", "error", "applyError", "upsert");
  await fc.assert(
    fc.asyncProperty(gen.writeOp, fc.boolean(), async (op, useIndexed) => {
      await using fx = await fixture();
      const c = fx.colls[useIndexed ? 1 : 0];
      const before = await dump(fx.colls);
      const r = await attempt(() => runWrite(c, op));
      count.hit(r.ok ? "ok" : "error");
      if (r.ok) {
        if ((r.value as Any)?.upsertedCount) count.hit("upsert");
        assert(!gen.malformed(op.filter), "a malformed filter passed");
        assertPlain(r.value);
        for await (const { key, value } of c.find({}).entries()) {
          assert([undefined, key].includes(value._id as string), "an _id");
        }
      } else {
        callerError(r.error, WRITE_ERRORS);
        // An error raised on a document, after the update compiled.
        if (/^Cannot apply/.test((r.error as Error).message)) {
          count.hit("applyError");
        }
        assert.deepStrictEqual(await dump(fx.colls), before, "partial write");
      }
      assert.deepEqual((await fx.db.verify()).problems, []);
      assertNoPollution();
    }),
    runs(400),
  );
  count.check();
});

const copyOp: fc.Arbitrary<Any> = fc.oneof(
  gen.readOp.filter((op) => op.kind !== "explain" && op.kind !== "count"),
  gen.writeOp.filter((op) => op.kind === "findOneAndUpdate"),
  fc.record({ kind: fc.constant("get"), id: fc.constantFrom("d1", "d5") }),
);

Deno.test("query fuzz 3: mutating a result, or what a write was given, changes no later read", async () => {
  const count = counter("mutated", "error", "frozen");
  const property = async (op: Any, stored: unknown, readonly: boolean) => {
    await using fx = await fixture(readonly);
    const c = fx.colls[1];
    const r = await attempt(() =>
      op.kind === "get"
        ? c.get(op.id)
        : op.kind === "findOneAndUpdate"
        ? runWrite(c, op)
        : runRead(c, op)
    );
    if (!r.ok) {
      count.hit("error");
      callerError(r.error, WRITE_ERRORS);
    } else {
      const before = await dump(fx.colls);
      if (readonly && Object.isFrozen(r.value)) count.hit("frozen");
      mutate(r.value);
      count.hit("mutated");
      assert.deepStrictEqual(await dump(fx.colls), before, "shared result");
    }
    // What updateOne, insert and replaceOne were given.
    const input: Doc[] = structuredClone([{ stored }, { x: [stored] }]);
    await c.updateOne({ _id: "d1" }, { $set: { v: input[0] } });
    await c.insert({ _id: "in", v: input[0] });
    await c.replaceOne({ _id: "d2" }, input[1]!);
    const written = await dump(fx.colls);
    mutate(input);
    assert.deepStrictEqual(await dump(fx.colls), written, "shared input");
    assertNoPollution();
  };
  await fc.assert(
    fc.asyncProperty(copyOp, gen.storedValue, fc.boolean(), property),
    runs(200),
  );
  count.check();
});

Deno.test("query fuzz 4: no sequence of operations pollutes a prototype or stores a foreign one", async () => {
  const count = counter("ok", "error");
  const ops = fc.array(gen.anyOp, { minLength: 1, maxLength: 4 });
  await fc.assert(
    fc.asyncProperty(ops, async (ops) => {
      await using fx = await fixture();
      for (const op of ops) {
        for (const c of fx.colls) {
          const write = "update" in op || op.kind === "deleteMany";
          const r = await attempt(() =>
            write ? runWrite(c, op) : runRead(c, op)
          );
          count.hit(r.ok ? "ok" : "error");
          if (r.ok && op.kind !== "explain") assertPlain(r.value);
          assertNoPollution();
        }
      }
      for (const e of await dump(fx.colls, false)) assertPlain(e?.value);
      for (const k in {}) assert.fail(`Object.prototype has '${k}'`);
    }),
    runs(150),
  );
  count.check();
});

/** Each document's match, or the error the filter throws, as text. */
function outcomes(filter: unknown, docs: readonly unknown[]): unknown[] {
  const text = (where: string, e: unknown) =>
    `${where} ${callerError(e)}: ${(e as Error).message}`;
  let p: (d: unknown) => boolean;
  try {
    p = compileFilter(filter as Filter);
  } catch (e) {
    return [text("compile", e)];
  }
  return docs.map((d) => {
    try {
      return p(d);
    } catch (e) {
      return text("run", e);
    }
  });
}

/** Runs `f` with filters compiled to code (`"auto"`) or interpreted. */
async function inMode<T>(mode: "auto" | "off", f: () => T) {
  const before = setCodeGeneration(mode);
  try {
    const want = mode === "auto" ? "compiled" : "interpreted";
    assert.equal(codeGeneration(), want);
    return await f();
  } finally {
    setCodeGeneration(before);
  }
}

Deno.test("query fuzz 5: compiled and interpreted filters agree", async () => {
  await using fx = await fixture();
  const count = counter("match", "nomatch", "error");
  const docs = [...gen.seedDocs(), ...gen.ODD_DOCS];
  const filters = fc.oneof(gen.anyFilter, gen.mingoFilter);
  await fc.assert(
    fc.asyncProperty(filters, async (filter) => {
      const compiled = await inMode("auto", () => outcomes(filter, docs));
      const interpreted = await inMode("off", () => outcomes(filter, docs));
      assert.deepStrictEqual(interpreted, compiled);
      for (const o of compiled) {
        count.hit(o === true ? "match" : o === false ? "nomatch" : "error");
      }
      for (const c of fx.colls) {
        const run = () =>
          attempt(async () =>
            (await c.find(filter as Filter).toArray()).map(canon)
          );
        const [a, b] = [await inMode("auto", run), await inMode("off", run)];
        const name = (o: Outcome) => o.ok ? o.value : callerError(o.error);
        assert.deepStrictEqual(name(b), name(a));
      }
      assertNoPollution();
    }),
    runs(500),
  );
  count.check();
});

Deno.test("query fuzz 6: where mingo and we accept a filter, the matches agree", async () => {
  await using fx = await fixture();
  const docs = gen.seedDocs();
  const count = counter("some", "none", "mingoRefused");
  await fc.assert(
    fc.asyncProperty(gen.mingoFilter, async (filter) => {
      let want: unknown[];
      try {
        want = new Query(filter).find(docs).all().map((d) => (d as Doc)._id);
      } catch {
        return void count.hit("mingoRefused");
      }
      for (const c of fx.colls) {
        const got = (await c.find(filter).toArray()).map((d) => d._id);
        assert.deepEqual(got.sort(), want.sort(), c.name);
      }
      count.hit(want.length > 0 ? "some" : "none");
    }),
    runs(500),
  );
  count.check();
});

// ---- bugs the fuzz found (fixed) ---------------------------------------------

/** Asserts `f` rejects with a caller error. */
async function refuses(f: () => unknown): Promise<void> {
  const r = await attempt(f);
  assert(!r.ok, "accepted");
  callerError(r.error);
}
/** Registers a regression test, run on the fixture's collections. */
function bug(name: string, fn: (c: Coll, indexed: Coll) => Promise<void>) {
  Deno.test(name, async () => {
    await using fx = await fixture();
    await fn(...fx.colls);
  });
}

// Found by the fuzz (fixed): Collection.count() tests `Object.keys(filter).length === 0` before
// the filter is validated (src/collection/query.ts, count): count(null)
// leaks Object.keys' TypeError "Cannot convert undefined or null to object",
// and count(5), count("") and count([]) count every document where find()
// refuses the same filters.
bug(
  "found by the fuzz 1: count() refuses a filter that is not an object",
  async (c) => {
    for (const f of [null, 5, "", []]) await refuses(() => c.count(f as Any));
  },
);

// Found by the fuzz (fixed): a top-level filter that is an object but not a plain one (a Map, a
// Date, a class instance, an object with another prototype) is accepted:
// checkFilter (src/collection/query.ts) refuses only non-objects, null and
// arrays, then `const { $limit, ...conditions } = filter` copies the own
// fields into a plain object, so the compiler's plain-object check never
// sees the original. `new Map([["n", 1]])` has no own fields and matches
// everything: deleteMany(new Map()) deletes every document.
bug(
  "found by the fuzz 2: a filter that is not a plain object is refused",
  async (c) => {
    const before = await dump([c]);
    for (const f of [new Map([["n", 1]]), new Date(0), new (class {})()]) {
      await refuses(() => c.find(f as Any).toArray());
      await refuses(() => c.deleteMany(f as Any));
    }
    await refuses(() => c.find(Object.create({ n: 1 })).toArray());
    assert.deepStrictEqual(await dump([c]), before);
  },
);

// Found by the fuzz (fixed): `$literal` returns its operand as given (src/query/expression.ts,
// `$literal: (arg) => { const v = arg; return () => v; }`): the caller's
// object is put, uncopied, into every output document (mutating one result
// changes the others and the pipeline), and values no expression may
// produce (a Map, a function, a symbol) reach the results.
bug(
  "found by the fuzz 3: $literal gives each result a copy of a document value",
  async (c) => {
    const lit = { a: [1] };
    const rows = await c.aggregate([{ $set: { x: { $literal: lit } } }])
      .toArray();
    assert.notEqual(rows[0]!.x, lit);
    assert.notEqual(rows[0]!.x, rows[1]!.x);
    for (const v of [new Map(), () => 1, Symbol("s")]) {
      await refuses(() =>
        c.aggregate([{ $set: { x: { $literal: v } } }]).toArray()
      );
    }
  },
);

// Found by the fuzz (fixed): aggregation writes output fields with plain assignment
// (`out[k] = v` in src/query/aggregate.ts compileSet and $unwind,
// aggregate_project.ts, aggregate_group.ts, and the object expressions of
// expression.ts), where the rest of src/query uses setOwn. Deno's default
// removes Object.prototype.__proto__, but under --unsafe-proto (and in
// Node, for a consumer of the JSR package) a field named `__proto__`
// replaces the result's prototype: `{ $set: { __proto__: [1] } }` gives a
// document whose prototype is that array and that has no such field; a
// `$group` _id `{ __proto__: { polluted: 1 } }` inherits `polluted`.
bug(
  "found by the fuzz 4: an aggregation field named __proto__ stays a field (--unsafe-proto)",
  async () => {
    const code = `import { open } from "${import.meta.resolve("../mod.ts")}";
    const db = await open(); const c = db.collection("c");
    await c.insert({ _id: "a" });
    const v = (x) => Object.fromEntries([["__proto__", x]]);
    const rows = [
      ...await c.aggregate([{ $set: v([1]) }]).toArray(),
      ...await c.aggregate([{ $group: { _id: v({ polluted: 1 }) } }]).toArray(),
    ];
    const sound = (d) => Object.getPrototypeOf(d) === Object.prototype &&
      Object.hasOwn(d, "__proto__");
    console.log(JSON.stringify([sound(rows[0]), sound(rows[1]._id)]));
    await db.close();`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--unsafe-proto", code],
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.deepEqual(JSON.parse(text), [true, true]);
  },
);

// Found by the fuzz (fixed): a forged `after` position (page() hands it to clients, who may send
// back anything) is checked only for the types of its fields
// (src/query/cursor.ts, decodePosition): a negative or fractional offset or
// range number reads past the plan's arrays ("Cannot read properties of
// undefined (reading 'record')" / "(reading 'start')"), and a key that is
// not base64 throws atob's DOMException.
bug(
  "found by the fuzz 5: a forged cursor position is refused",
  async (plain, indexed) => {
    const after = (p: unknown) => btoa(JSON.stringify(p));
    for (const o of [-1, 0.5]) {
      const options = { sort: { n: 1 }, after: after({ o }) } as const;
      await refuses(() => plain.find({}, options).toArray());
    }
    const r = after({ p: "n_1:asc:1", r: -1, k: "" });
    await refuses(() => indexed.find({ n: 1 }, { after: r }).toArray());
    const k = after({ p: "scan", r: 0, k: "\u0000" });
    await refuses(() => plain.find({}, { after: k }).toArray());
    // Both forms in one token (found 8 Dec, seed 282419371): a valid scan
    // position passed the check and the unchecked offset was read.
    const both = after({ o: -1, p: "scan", r: 0, k: "" });
    await refuses(() =>
      plain.find({}, { sort: { n: 1 }, after: both }).toArray()
    );
  },
);

// Found by the fuzz (fixed): a hole in an expression's array (`{ $add: [, 1] }`) is never
// compiled: list() in src/query/expression_util.ts and the array case of
// the expression compiler (src/query/expression.ts) use Array#map, which
// skips holes, so the hole is neither refused (as `undefined` is: "undefined
// is not an expression") nor compiled, and evaluating it throws "e is not a
// function" (in $expr: "a is not a function").
bug(
  "found by the fuzz 6: a hole in an expression's array is refused",
  async (c) => {
    const hole = new Array(2).fill(1, 1); // [ <empty>, 1 ]
    await refuses(() =>
      c.aggregate([{ $set: { x: { $add: hole } } }]).toArray()
    );
    await refuses(() => c.find({ $expr: { $gt: hole } }).toArray());
  },
);

// Found by the fuzz (fixed): a `$regex` too large for V8 passes the compile-time check
// (src/query/evaluation.ts builds it with `new RegExp`, which succeeds: V8
// compiles a pattern when first run) and every query that runs it throws
// a SyntaxError "Invalid regular expression: /…/: Regular expression too
// large". Running it once at compile time (`re.test("")`) would catch it.
bug(
  "found by the fuzz 7: a $regex too large to compile is a caller error",
  async (c) => {
    await refuses(() => c.count({ s: { $regex: "x".repeat(70_000) } }));
  },
);
