import assert from "node:assert/strict";
import { compileFilter, type Filter } from "../src/query/compile.ts";
import { compareValues, valuesEqual } from "../src/query/compare.ts";
import { getPath } from "../src/query/path.ts";
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

function m(filter: Filter, doc: unknown, tags?: readonly string[]): boolean {
  return compileFilter(filter)(doc, tags);
}

function yes(filter: Filter, ...docs: unknown[]): void {
  const p = compileFilter(filter);
  for (const d of docs) {
    assert(
      p(d),
      `expected ${Deno.inspect(filter)} to match ${Deno.inspect(d)}`,
    );
  }
}

function no(filter: Filter, ...docs: unknown[]): void {
  const p = compileFilter(filter);
  for (const d of docs) {
    assert(
      !p(d),
      `expected ${Deno.inspect(filter)} not to match ${Deno.inspect(d)}`,
    );
  }
}

both("compareValues orders by BSON type bracket, then value", () => {
  const ordered = [
    undefined,
    null,
    NaN,
    -1,
    0,
    2.5,
    "",
    "B",
    "a",
    "\uFFFF",
    "\u{1F600}",
    {},
    { a: 1 },
    { a: 1, b: 1 },
    { b: 0 },
    [],
    [1],
    [1, 2],
    [2],
    false,
    true,
    new Date(0),
    new Date(1),
    /a/,
    /a/i,
    /b/,
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      const c = Math.sign(compareValues(ordered[i], ordered[j]));
      assert.equal(c, Math.sign(i - j), `${i} vs ${j}`);
      assert.equal(valuesEqual(ordered[i], ordered[j]), i === j);
    }
  }
  assert.equal(compareValues(0, -0), 0);
  assert.equal(compareValues(new Date(5), new Date(5)), 0);
});

both(
  "valuesEqual is deep, by time for Dates, order-sensitive for objects",
  () => {
    assert(
      valuesEqual({ a: [1, { b: new Date(3) }] }, {
        a: [1, { b: new Date(3) }],
      }),
    );
    assert(!valuesEqual({ a: 1, b: 2 }, { b: 2, a: 1 }));
    assert(!valuesEqual([1, 2], [2, 1]));
    assert(!valuesEqual({ a: undefined }, {}));
    assert(valuesEqual(NaN, NaN));
    assert(!valuesEqual(1, "1"));
  },
);

both("getPath reads nested fields and array indexes", () => {
  const doc = { a: { b: [{ c: 1 }, { c: 2 }] }, n: null };
  assert.equal(getPath(doc, "a.b.1.c"), 2);
  assert.equal(getPath(doc, "a.b.c"), undefined);
  assert.equal(getPath(doc, "n"), null);
  assert.equal(getPath(doc, "n.x"), undefined);
  assert.equal(getPath(doc, "toString"), undefined);
  assert.equal(getPath("str", "length"), undefined);
});

both("equality: scalars, missing, null, Dates, arrays, objects", () => {
  yes({ a: 1 }, { a: 1 }, { a: [0, 1] }, { a: 1, b: 2 });
  no({ a: 1 }, { a: "1" }, {}, { a: [[1]] }, { a: { b: 1 } }, { b: 1 });
  yes({}, {}, { a: 1 }, 42);
  yes({ a: null }, {}, { a: null }, { a: [1, null] });
  no({ a: null }, { a: 0 }, { a: [1] }, { a: false });
  yes({ d: new Date(5) }, { d: new Date(5) }, {
    d: [new Date(1), new Date(5)],
  });
  no({ d: new Date(5) }, { d: new Date(6) }, { d: 5 });
  yes({ a: [1, 2] }, { a: [1, 2] }, { a: [[1, 2], 3] });
  no({ a: [1, 2] }, { a: [2, 1] }, { a: [1, 2, 3] }, { a: 1 });
  yes({ a: [] }, { a: [] }, { a: [[]] });
  yes({ a: { b: 1, c: 2 } }, { a: { b: 1, c: 2 } }, { a: [{ b: 1, c: 2 }] });
  no({ a: { b: 1, c: 2 } }, { a: { c: 2, b: 1 } }, { a: { b: 1 } });
  yes({ a: { $eq: null } }, {});
  yes({ a: { $eq: [1] } }, { a: [[1]] }, { a: [1] });
});

both("dot paths traverse objects and arrays", () => {
  yes({ "a.b": 2 }, { a: { b: 2 } }, { a: [{ b: 1 }, { b: 2 }] }, {
    a: [{ b: [2] }],
  });
  no({ "a.b": 2 }, { a: [[{ b: 2 }]] }, { a: 2 }, { a: { b: { c: 2 } } });
  yes({ "a.0": 5 }, { a: [5, 6] }, { a: { 0: 5 } });
  no({ "a.1": 5 }, { a: [5] }, { a: [] });
  yes({ "a.0.b": 1 }, { a: [{ b: 1 }] });
  yes({ "a.1.b": 5 }, { a: [1, { b: 5 }] });
  // Numeric segment selecting a nested array: the array itself, not its elements.
  no({ "a.0": 1 }, { a: [[1, 2]] });
  yes({ "a.0": [1, 2] }, { a: [[1, 2]] });
  // Nested numeric paths through nested arrays.
  yes({ "a.0.1": 2 }, { a: [[1, 2]] });
  // Null through arrays of objects: an element without the field is missing.
  yes({ "a.b": null }, { a: [{ b: 1 }, { c: 1 }] }, { a: 1 }, { a: {} }, {});
  no({ "a.b": null }, { a: [1, 2] }, { a: [] }, { a: [{ b: 1 }] });
  yes({ "a.b.c": 1 }, { a: [{ b: [{ c: 1 }] }] });
});

both("non-object documents have no fields; prototype keys are missing", () => {
  for (const d of [42, "str", null, true, [1, 2], undefined]) {
    assert(m({ a: null }, d));
    assert(!m({ a: { $exists: true } }, d));
    assert(!m({ length: 2 }, d));
  }
  no({ toString: { $exists: true } }, {});
  no({ constructor: { $exists: true } }, {});
  const protoFilter = JSON.parse('{"__proto__": {"$exists": true}}');
  no(protoFilter, {});
  yes(protoFilter, JSON.parse('{"__proto__": 1}'));
  yes({ "a.length": null }, { a: "abc" });
});

both("$ne and $nin negate $eq and $in, so they match missing", () => {
  yes({ a: { $ne: 1 } }, {}, { a: 2 }, { a: [2, 3] }, { a: null });
  no({ a: { $ne: 1 } }, { a: 1 }, { a: [1, 2] });
  no({ a: { $ne: null } }, {}, { a: null }, { a: [null, 1] });
  yes({ a: { $ne: [1, 2] } }, { a: [1] }, { a: [2, 1] });
  no({ a: { $ne: [1, 2] } }, { a: [1, 2] }, { a: [[1, 2]] });
  yes({ a: { $nin: [1, 2] } }, {}, { a: 3 }, { a: [3, 4] });
  no({ a: { $nin: [1, 2] } }, { a: 2 }, { a: [3, 2] });
  no({ a: { $nin: [null] } }, {});
});

both("$gt/$gte/$lt/$lte only match within the type bracket", () => {
  yes({ a: { $gt: 30 } }, { a: 31 }, { a: [1, 40] });
  no({ a: { $gt: 30 } }, { a: 30 }, { a: "40" }, { a: null }, {}, { a: true });
  yes({ a: { $gte: "b" } }, { a: "b" }, { a: "c" });
  no({ a: { $gte: "b" } }, { a: "a" }, { a: 5 });
  yes({ a: { $lt: new Date(10) } }, { a: new Date(9) });
  no({ a: { $lt: new Date(10) } }, { a: 9 }, { a: new Date(10) });
  yes({ a: { $lte: null } }, {}, { a: null });
  yes({ a: { $gte: null } }, {}, { a: null });
  no({ a: { $gt: null } }, {}, { a: null });
  no({ a: { $lt: null } }, {}, { a: null });
  yes({ a: { $gt: 1, $lt: 5 } }, { a: 3 }, { a: [0, 10] });
  no({ a: { $gt: 1, $lt: 5 } }, { a: 6 });
  yes({ a: { $gt: [1] } }, { a: [2] });
  yes({ a: { $lt: true } }, { a: false });
  yes({ a: { $gt: { b: 1 } } }, { a: { b: 2 } });
  no({ a: { $gt: NaN } }, { a: 1 });
});

both("$in accepts values and RegExps", () => {
  yes({ a: { $in: [1, "x", /^q/] } }, { a: 1 }, { a: "x" }, { a: "qq" }, {
    a: [0, "quiz"],
  });
  no({ a: { $in: [1, "x", /^q/] } }, { a: "1" }, {}, { a: [] });
  yes({ a: { $in: [null] } }, {}, { a: null });
  yes({ a: { $in: [[1, 2]] } }, { a: [1, 2] });
  yes({ a: { $in: [new Date(3)] } }, { a: new Date(3) });
  yes({ a: { $in: [{ b: 1 }] } }, { a: [{ b: 1 }] });
  no({ a: { $in: [] } }, {}, { a: 1 });
});

both("$exists and $type", () => {
  yes({ a: { $exists: true } }, { a: null }, { a: [] }, { a: 0 });
  no({ a: { $exists: true } }, {}, { b: 1 });
  yes({ a: { $exists: false } }, {}, { b: 1 });
  yes({ "a.b": { $exists: false } }, { a: [1] }, { a: [] });
  no({ "a.b": { $exists: false } }, { a: [{ b: null }] });
  yes({ a: { $type: "string" } }, { a: "x" }, { a: [1, "x"] });
  yes({ a: { $type: "array" } }, { a: [] }, { a: [[1]] });
  yes({ a: { $type: "number" } }, { a: 1.5 }, { a: 1 });
  yes({ a: { $type: "int" } }, { a: 1 });
  yes({ a: { $type: "double" } }, { a: 1.5 });
  no({ a: { $type: "double" } }, { a: 1 });
  yes({ a: { $type: ["null", "bool"] } }, { a: null }, { a: false });
  no({ a: { $type: "null" } }, {});
  yes({ a: { $type: "date" } }, { a: new Date() });
  yes({ a: { $type: 2 } }, { a: "s" });
  yes({ a: { $type: "object" } }, { a: {} }, { a: [{}] });
  no({ a: { $type: "object" } }, { a: new Date() }, { a: [] });
});

both("$all, $size, $elemMatch", () => {
  yes({ a: { $all: [1, 2] } }, { a: [2, 3, 1] });
  no({ a: { $all: [1, 2] } }, { a: [1] }, {});
  yes({ a: { $all: [1] } }, { a: 1 });
  yes({ a: { $all: [/^x/, "y"] } }, { a: ["xa", "y"] });
  yes({ a: { $all: [[1]] } }, { a: [1] }, { a: [[1]] });
  no({ a: { $all: [] } }, { a: [] }, {});
  yes({ a: { $all: [{ $elemMatch: { b: 1 } }, { $elemMatch: { c: 2 } }] } }, {
    a: [{ b: 1 }, { c: 2 }],
  });
  yes({ a: { $size: 2 } }, { a: [1, [2, 3]] });
  no({ a: { $size: 2 } }, { a: [[1, 2]] }, { a: "ab" }, {});
  yes({ a: { $size: 0 } }, { a: [] });
  yes({ "a.b": { $size: 1 } }, { a: [{ b: [1] }] });
  no({ "a.b": { $size: 2 } }, { a: [{ b: 1 }, { b: 2 }] });
  yes({ a: { $elemMatch: { $gte: 80, $lt: 85 } } }, { a: [70, 82] });
  no({ a: { $elemMatch: { $gte: 80, $lt: 85 } } }, { a: [70, 90] }, { a: 82 });
  yes({ a: { $elemMatch: { b: 1, c: { $gt: 1 } } } }, { a: [{ b: 1, c: 2 }] });
  no({ a: { $elemMatch: { b: 1, c: { $gt: 1 } } } }, {
    a: [{ b: 1 }, { c: 2 }],
  }, { a: [1] });
  yes({ a: { $elemMatch: { $or: [{ b: 1 }, { c: 1 }] } } }, { a: [{ c: 1 }] });
  yes({ a: { $elemMatch: { $ne: 1 } } }, { a: [1, 2] });
  no({ a: { $elemMatch: { $ne: 1 } } }, { a: [1] }, { a: [] });
  yes({ a: { $elemMatch: { $size: 1 } } }, { a: [[1], 2] });
  yes({ a: { $elemMatch: {} } }, { a: [{}] });
  no({ a: { $elemMatch: {} } }, { a: [1] });
});

both("$regex, $options and RegExp values", () => {
  yes({ a: /^jo/i }, { a: "John" }, { a: ["x", "jOe"] });
  no({ a: /^jo/i }, { a: "ajo" }, { a: 5 }, {}, { a: [["john"]] });
  yes({ a: { $regex: "^jo", $options: "i" } }, { a: "JO" });
  yes({ a: { $regex: /^a.b$/s } }, { a: "a\nb" });
  yes({ a: { $regex: "^b", $options: "m" } }, { a: "a\nb" });
  yes({ a: { $regex: /x/g } }, { a: "x" }, { a: "x" });
  const p = compileFilter({ a: /x/g });
  assert(p({ a: "x" }) && p({ a: "x" }) && p({ a: "ax" }));
  no({ a: { $eq: /x/ } }, { a: "x" });
  yes({ a: { $eq: /x/ } }, { a: /x/ });
  yes({ a: { $regex: "\\u{1F600}", $options: "u" } }, { a: "\u{1F600}" });
});

both("$mod truncates toward zero", () => {
  yes({ a: { $mod: [2, 1] } }, { a: 3 }, { a: 3.5 }, { a: [2, 5] });
  no({ a: { $mod: [2, 1] } }, { a: 4 }, { a: -1 }, { a: "3" }, { a: null }, {});
  yes({ a: { $mod: [2, -1] } }, { a: -3 });
  yes({ a: { $mod: [2.9, 0.5] } }, { a: 4 });
});

both("$not, $and, $or, $nor", () => {
  yes({ a: { $not: { $gt: 1 } } }, {}, { a: 1 }, { a: "x" });
  no({ a: { $not: { $gt: 1 } } }, { a: 2 }, { a: [0, 2] });
  yes({ a: { $not: /^x/ } }, {}, { a: "y" }, { a: 1 });
  no({ a: { $not: /^x/ } }, { a: "xy" });
  yes({ a: { $not: { $gt: 1, $lt: 5 } } }, { a: 7 }, {});
  no({ a: { $not: { $gt: 1, $lt: 5 } } }, { a: 3 });
  yes({ a: { $not: { $regex: "^X", $options: "i" } } }, { a: "y" });
  yes({ $and: [{ a: 1 }, { b: 2 }] }, { a: 1, b: 2 });
  no({ $and: [{ a: 1 }, { b: 2 }] }, { a: 1 });
  yes({ $or: [{ a: 1 }, { b: 2 }] }, { b: 2 });
  no({ $or: [{ a: 1 }, { b: 2 }] }, {});
  yes({ $nor: [{ a: 1 }, { b: 2 }] }, {}, { a: 2 });
  no({ $nor: [{ a: 1 }, { b: 2 }] }, { a: 1 });
  yes({ a: 1, $or: [{ b: 1 }, { c: 1 }] }, { a: 1, c: 1 });
});

both("$contains: substring for strings, element equality for arrays", () => {
  yes({ name: { $contains: "Jo" } }, { name: "John" }, { name: ["Jo", "x"] });
  no({ name: { $contains: "Jo" } }, { name: "jo" }, { name: ["John"] }, {}, {
    name: 5,
  });
  yes({ tags: { $contains: "x" } }, { tags: ["x", "y"] });
  yes({ a: { $contains: { b: 1 } } }, { a: [{ b: 1 }] });
  yes({ a: { $contains: 3 } }, { a: [1, 3] });
  no({ a: { $contains: 3 } }, { a: 3 }, { a: "3" });
  yes({ "a.b": { $contains: "x" } }, { a: [{ b: ["x"] }] }, {
    a: { b: "axe" },
  });
});

both("tags rule: tags paths resolve against the given tags", () => {
  assert(m({ tags: "active" }, { name: "a" }, ["user", "active"]));
  assert(!m({ tags: "active" }, { tags: ["active"] }, ["user"]));
  assert(m({ tags: "active" }, { tags: ["active"] }));
  assert(m({ tags: { $all: ["user", "active"] } }, {}, ["active", "user"]));
  assert(m({ tags: { $size: 0 } }, { tags: [1] }, []));
  assert(m({ "tags.0": "user" }, {}, ["user"]));
  assert(m({ tags: { $exists: false } }, {}, undefined));
  assert(m({ $or: [{ tags: "x" }, { a: 1 }] }, {}, ["x"]));
  assert(m({ tags: { $contains: "x" } }, { tags: "nope" }, ["x"]));
  // Not at the top of the document: $elemMatch sub-filters use the element.
  assert(m({ a: { $elemMatch: { tags: 1 } } }, { a: [{ tags: 1 }] }, ["zzz"]));
  // Other paths are unaffected.
  assert(m({ tagsX: 1 }, { tagsX: 1 }, ["y"]));
});

function rejects(
  filter: unknown,
  message: string,
  type: typeof TypeError | typeof RangeError = TypeError,
): void {
  assert.throws(
    () => compileFilter(filter as Filter),
    (e: unknown) => e instanceof type && e.message.includes(message),
    `expected ${type.name} with ${JSON.stringify(message)}`,
  );
}

both("malformed filters throw at compile time", () => {
  rejects(
    { age: { $gtx: 1 } },
    "Cannot compile filter at 'age': unknown operator '$gtx'",
  );
  rejects(
    { $foo: 1 },
    "Cannot compile filter: unknown top-level operator '$foo'",
  );
  rejects({ $where: "this.a > 1" }, "'$where' is not supported");
  rejects({ $where: () => true }, "'$where' is not supported");
  rejects({ $limit: 5 }, "pass it as the 'limit' find option");
  rejects({ $skip: 5 }, "pass it as the 'skip' find option");
  rejects({ $sort: { a: 1 } }, "pass it as the 'sort' find option");
  rejects(
    { a: { $gt: 1, b: 2 } },
    "at 'a': operator object mixes operators and fields ('$gt' with 'b')",
  );
  rejects({ a: { b: 2, $gt: 1 } }, "mixes operators and fields");
  rejects({ a: { $in: 1 } }, "'$in' needs an array, got number 1");
  rejects({ a: { $nin: "x" } }, "'$nin' needs an array");
  rejects({ a: { $all: {} } }, "'$all' needs an array");
  rejects(
    { a: { $all: [{ $gt: 1 }] } },
    "'$all' entries may only use '$elemMatch'",
  );
  rejects(
    { a: { $all: [{ $elemMatch: { b: 1 } }, 2] } },
    "cannot mix '$elemMatch'",
  );
  rejects({ $and: [] }, "'$and' needs a non-empty array of filters, got []");
  rejects({ $or: [] }, "'$or' needs a non-empty array");
  rejects({ $nor: {} }, "'$nor' needs an array of filters");
  rejects(
    { $or: [1] },
    "at '$or[0]': a filter must be a plain object, got number 1",
  );
  rejects(
    { $and: [{ a: { $bad: 1 } }] },
    "at '$and[0].a': unknown operator '$bad'",
  );
  rejects(
    { a: { $size: -1 } },
    "'$size' needs a non-negative integer, got -1",
    RangeError,
  );
  rejects({ a: { $size: 1.5 } }, "non-negative integer", RangeError);
  rejects({ a: { $size: "1" } }, "'$size' needs a number");
  rejects({ a: { $mod: [0, 1] } }, "'$mod' divisor must not be 0", RangeError);
  rejects({ a: { $mod: [Infinity, 1] } }, "must be finite", RangeError);
  rejects({ a: { $mod: [2] } }, "'$mod' needs an array [divisor, remainder]");
  rejects({ a: { $mod: ["2", 1] } }, "divisor must be a number");
  rejects({ a: { $regex: "(" } }, "'$regex' is not a valid regular expression");
  rejects({ a: { $regex: 5 } }, "'$regex' needs a string or a RegExp");
  rejects({ a: { $regex: "a", $options: "x" } }, "unsupported flags 'x'");
  rejects({ a: { $regex: /a/i, $options: "m" } }, "options are set both");
  rejects({ a: { $options: "i" } }, "'$options' needs a '$regex' beside it");
  rejects({ a: { $exists: 1 } }, "'$exists' needs true or false");
  rejects({ a: { $type: "nope" } }, "'$type' got unknown type");
  rejects({ a: { $type: [] } }, "'$type' needs at least one type");
  rejects({ a: { $elemMatch: 1 } }, "'$elemMatch' needs an object");
  rejects({ a: { $elemMatch: { $gtx: 1 } } }, "unknown operator '$gtx'");
  rejects(
    { a: { $elemMatch: { b: { $gtx: 1 } } } },
    "at 'a.b': unknown operator '$gtx'",
  );
  rejects(
    { a: { $not: {} } },
    "'$not' needs a RegExp or a non-empty operator object",
  );
  rejects({ a: { $not: 5 } }, "'$not' needs a RegExp");
  rejects({ a: { $not: { b: 1 } } }, "'$not' needs an operator object");
  rejects({ a: { $ne: /x/ } }, "'$ne' cannot take a RegExp");
  rejects({ a: () => 1 }, "the value must be a document value, got function");
  rejects({ a: undefined }, "use null to match a missing field");
  rejects(
    { a: { $eq: undefined } },
    "the operand of '$eq' must be a document value",
  );
  rejects(
    { a: { $in: [1, () => 1] } },
    "must be a document value, got function",
  );
  rejects({ a: { b: Symbol("s") } }, "got symbol");
  rejects({ a: 1n }, "got bigint");
  rejects({ a: new Map() }, "got Map instance");
  rejects({ "a..b": 1 }, "the field path has an empty segment");
  rejects(null, "a filter must be a plain object, got null");
  rejects([{ a: 1 }], "a filter must be a plain object, got array");
  rejects({ a: { $contains: undefined } }, "the operand of '$contains'");
});
